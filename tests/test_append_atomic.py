"""An append is atomic: whatever step it dies at, the dataset reads exactly as before it (or, once
the manifest has been renamed into place, exactly as after it), and a retry completes it
(issue 15, item 2). The process is really killed (``os._exit``) at each file-system step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from argus_core.data import schema, store
from argus_core.data.simulate import SimConfig, simulate_fleet

ROOT = Path(__file__).resolve().parents[1]
# Runs one append in a child process and dies (exit 77) at file-system step K (0: never). Prints
# the number of steps taken when it lives.
CHILD = r"""
import os, sys
import pyarrow.parquet as pq
import pandas as pd
from argus_core.data import schema, store

dataset, new_rows, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
frame = schema.validate(pd.read_parquet(new_rows))
steps = 0

def step(real):
    def wrapped(*args, **kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os._exit(77)
        return real(*args, **kwargs)
    return wrapped

os.replace, os.unlink, os.rmdir = step(os.replace), step(os.unlink), step(os.rmdir)
pq.write_table = step(pq.write_table)
store.append(dataset, frame, source="next-day.parquet")
print(steps)
"""


def read_state(dataset: Path) -> tuple[dict, pd.DataFrame]:
    manifest = store.read_manifest(dataset)
    frame = store.read(dataset)
    return {k: manifest[k] for k in ("rows", "start", "end", "servers", "partitions", "sources")}, frame


def same(a: tuple[dict, pd.DataFrame], b: tuple[dict, pd.DataFrame]) -> bool:
    return a[0] == b[0] and a[1].astype(str).equals(b[1].astype(str))


@pytest.fixture
def two_days(tmp_path: Path):
    """A dataset of a day and a half, and rows that finish the second day and start a third."""
    sim = simulate_fleet(SimConfig(servers=4, hours=60, seed=3))
    frame = sim.frame
    cut = pd.Timestamp("2026-01-06T12:00Z")
    dataset = tmp_path / "ds"
    store.append(dataset, schema.validate(frame[frame[schema.TIMESTAMP] < cut]), source="first.parquet")
    rows = tmp_path / "next.parquet"
    frame[frame[schema.TIMESTAMP] >= cut].to_parquet(rows, index=False)
    return dataset, rows


def run_child(dataset: Path, rows: Path, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(dataset), str(rows), str(kill_at)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_kill_at_every_step_leaves_the_dataset_as_before_or_as_after(two_days, tmp_path):
    dataset, rows = two_days
    before = read_state(dataset)
    reference = tmp_path / "reference"
    subprocess.run(["cp", "-r", str(dataset), str(reference)], check=True)
    done = run_child(reference, rows, 0)
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.split()[-1])
    after = read_state(reference)
    assert total >= 4 and not same(before, after)
    outcomes = []
    for kill_at in range(1, total + 1):
        trial = tmp_path / f"trial-{kill_at}"
        subprocess.run(["cp", "-r", str(dataset), str(trial)], check=True)
        died = run_child(trial, rows, kill_at)
        assert died.returncode == 77, died.stderr[-2000:]
        state = read_state(trial)
        assert same(state, before) or same(state, after), f"killed at step {kill_at} of {total}"
        outcomes.append("before" if same(state, before) else "after")
        if outcomes[-1] == "before":  # the retry completes the append (no "rows already in the dataset")
            again = run_child(trial, rows, 0)
            assert again.returncode == 0, again.stderr[-2000:]
            assert same(read_state(trial), after)
            assert not list(trial.rglob("*.tmp"))
    assert "before" in outcomes and "after" in outcomes  # the kills landed on both sides of the commit


def test_a_manifest_that_cannot_be_written_changes_nothing_and_a_retry_works(two_days, monkeypatch):
    from argus_core import atomic

    dataset, rows = two_days
    before = read_state(dataset)
    frame = schema.validate(pd.read_parquet(rows))
    real = atomic.write_json

    def refused(path, payload, **kwargs):
        raise PermissionError(f"[Errno 1] Operation not permitted: '{path}'")  # as chattr +i makes it

    monkeypatch.setattr(atomic, "write_json", refused)
    with pytest.raises(PermissionError):
        store.append(dataset, frame, source="next-day.parquet")
    assert same(read_state(dataset), before)
    assert sorted(p.name for p in dataset.rglob("*.parquet")) == sorted(
        store.partition_file(dataset, store.read_manifest(dataset), day).name
        for day in store.read_manifest(dataset)["partitions"])
    monkeypatch.setattr(atomic, "write_json", real)
    manifest = store.append(dataset, frame, source="next-day.parquet")
    assert manifest["rows"] == before[0]["rows"] + len(frame)
