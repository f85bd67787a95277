from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import store
from argus_core.data.simulate import Simulation
from tests.test_store import snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(tmp_path: Path, small_sim: Simulation) -> Path:
    directory = tmp_path / "fleet"
    store.write_dataset(directory, small_sim.frame, kind="simulated", incidents=small_sim.incidents)
    return directory


def new_servers(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows under names the dataset has not seen (ppdb001 -> ppdb901)."""
    renamed = frame.copy()
    renamed["server_name"] = renamed["server_name"].str.replace(r"(\D+)0", r"\g<1>9", regex=True)
    return renamed


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame
    return change


def _swap_rows(frame: pd.DataFrame) -> pd.DataFrame:
    order = list(range(len(frame)))
    order[5], order[6] = order[6], order[5]
    return frame.iloc[order]


BAD_FILES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "missing_column": (lambda f: f.drop(columns=["mem_used_pct"]), "missing column [mem_used_pct]"),
    "wrong_type": (_set("cpu_user_pct", 3, "busy"), "wrong type [cpu_user_pct]"),
    "nan": (_set("swap_used_pct", 4, np.nan), "NaN [swap_used_pct]"),
    "inf": (_set("net_in_mb_s", 4, np.inf), "inf [net_in_mb_s]"),
    "percent_range": (_set("disk_usage_pct", 7, 130.5), "percent outside 0..100 [disk_usage_pct]"),
    "negative_count": (_set("front_close_wait", 8, -4), "negative count [front_close_wait]"),
    "duplicate": (lambda f: pd.concat([f, f.iloc[[9]]]), "duplicate (server_name, timestamp)"),
    "unsorted": (_swap_rows, "unsorted time [timestamp]"),
    "unknown_status": (_set("status", 2, "exploded"), "unknown status [status]"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_file_is_refused_and_changes_nothing(case: str, suffix: str, tmp_path: Path, dataset: Path,
                                                 valid_frame: pd.DataFrame, capsys: pytest.CaptureFixture) -> None:
    mutate, expected = BAD_FILES[case]
    bad = mutate(new_servers(valid_frame))
    path = tmp_path / f"{case}{suffix}"
    if suffix == ".csv":
        bad.to_csv(path, index=False)
    else:
        bad.astype({c: str for c in bad.columns if bad[c].dtype == object}).to_parquet(path) if case == "wrong_type" \
            else bad.to_parquet(path)
    before = snapshot(dataset)
    assert main(["import", str(path), "--dataset", str(dataset)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "nothing was written" in err and "Traceback" not in err
    assert snapshot(dataset) == before
    assert main(["validate", str(path)]) == 1
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"timestamp,server_name,status\n", "empty"),
    (b"PAR1 this is not really parquet", "not a parquet file"),
])
def test_unreadable_files(content: bytes, expected: str, tmp_path: Path, dataset: Path,
                          capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "broken.parquet" if content.startswith(b"PAR1") else tmp_path / "broken.csv"
    path.write_bytes(content)
    before = snapshot(dataset)
    assert main(["import", str(path), "--dataset", str(dataset)]) == 1
    assert expected in capsys.readouterr().err
    assert snapshot(dataset) == before


def test_good_import_then_status(tmp_path: Path, dataset: Path, valid_frame: pd.DataFrame,
                                 capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "new.csv"
    new_servers(valid_frame).to_csv(path, index=False)
    rows_before = store.read_manifest(dataset)["rows"]
    assert main(["validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["import", str(path), "--dataset", str(dataset)]) == 0
    manifest = store.read_manifest(dataset)
    assert manifest["rows"] == rows_before + len(valid_frame)
    assert {"ppdb901", "ppdb902"} <= set(manifest["servers"]) or len(manifest["servers"]) == 32
    assert main(["status", "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "32:" in out and "incidents" in out


def test_full_fleet_is_byte_identical_per_seed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The issue's acceptance run: 90 servers x 720 h, twice with seed 7, once with seed 8."""
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert main(["generate", "--servers", "90", "--hours", "720", "--seed", str(seed),
                     "--output", str(tmp_path / name)]) == 0
    a, b, c = (snapshot(tmp_path / n) for n in "abc")
    assert a == b
    assert a != c
    manifest = store.read_manifest(tmp_path / "a")
    assert manifest["rows"] == 777_600 and len(manifest["servers"]) == 90
    truth = store.read_incidents(tmp_path / "a")
    assert len(truth) >= 10 and truth["kind"].nunique() == 5
    statuses = set(store.read(tmp_path / "a", columns=["status"])["status"].astype(str))
    assert statuses == {"healthy", "morning_spike", "heavy_load", "critical", "maintenance", "recovery", "offline"}


def test_composition_flags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "--servers", "12", "--hours", "2", "--num-database", "5", "--num-ml-compute", "0",
                 "--output", str(tmp_path / "mix")]) == 0
    servers = store.read_manifest(tmp_path / "mix")["servers"]
    profiles = pd.Series(servers).value_counts()
    assert len(servers) == 12 and profiles["DATABASE"] == 5 and "ML_COMPUTE" not in profiles
    assert main(["generate", "--servers", "3", "--num-database", "5", "--output", str(tmp_path / "x")]) == 2
    assert "more than --servers 3" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["generate", "demo-data", "import", "validate", "status"])
def test_every_command_has_help(command: str) -> None:
    result = subprocess.run([sys.executable, "-m", "argus_core", command, "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_no_traceback_from_the_real_entry_point(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = subprocess.run([sys.executable, "-m", "argus_core", "validate", str(missing)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no such file" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "argus_core", "status", "--dataset", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "not an Argus dataset" in result.stderr and "Traceback" not in result.stderr
