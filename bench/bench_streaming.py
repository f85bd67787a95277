"""Peak memory of `train --streaming` against standard mode on the same large fleet.

    .venv/bin/python bench/bench_streaming.py [--servers 1000] [--days 60] [--dataset DIR]
        [--modes streaming,standard] [--batches 30]

Simulates the fleet once (1,000 servers x 60 days at 5 minutes is 17.3 M rows; kept in
``--dataset`` for reruns), then runs the same short `train` command through the CLI in each mode,
each in its own process, and reports that process's peak resident memory (``ru_maxrss`` from
``wait4``), its wall time and whether it saved a model. Both modes use the same network and budget
(hidden size 16, one epoch of ``--batches`` batches, no seasonal inputs, which streaming does not
read); only how the data reaches the network differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from argus_core.data import store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402


def ensure_dataset(path: Path, servers: int, days: int) -> int:
    if (path / "manifest.json").exists():
        return int(store.read_manifest(path).get("rows", 0))
    started = time.perf_counter()
    sim = simulate_fleet(SimConfig(servers=servers, hours=24 * days, seed=5))
    store.write_dataset(path, sim.frame, kind="simulated", step="5min", incidents=sim.incidents)
    rows = len(sim.frame)
    print(f"simulated and wrote {rows:,} rows ({servers} servers x {days} days) in "
          f"{time.perf_counter() - started:.0f} s to {path}", flush=True)
    return rows


def run_mode(dataset: Path, mode: str, batches: int, threads: int) -> tuple[float, float, int, str]:
    """(peak RSS in MB, wall seconds, exit status, last line of output) of one `train` process."""
    models = Path(tempfile.mkdtemp(prefix=f"argus-{mode}-"))
    command = [sys.executable, "-m", "argus_core", "train", "--dataset", str(dataset), "--models", str(models),
               "--epochs", "1", "--batches-per-epoch", str(batches), "--hidden-size", "16",
               "--encoder-length", "288", "--horizon", "96", "--threads", str(threads), "--fresh",
               "--seasonal-inputs", "none", "--recipe", "given", *(["--streaming"] if mode == "streaming" else [])]
    log = models / "train.log"
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, seconds, os.waitstatus_to_exitcode(status), (lines[-1] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--dataset", type=Path, default=ROOT / "data" / "bench-streaming")
    parser.add_argument("--modes", default="streaming,standard")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = ensure_dataset(args.dataset, args.servers, args.days)
    print(f"dataset: {rows:,} rows in {args.dataset}", flush=True)
    print("| mode | peak RSS | wall time | exit | last line |")
    print("| --- | ---: | ---: | ---: | --- |")
    for mode in args.modes.split(","):
        peak, seconds, code, last = run_mode(args.dataset, mode, args.batches, args.threads)
        print(f"| {mode} | {peak:,.0f} MB | {seconds:.0f} s | {code} | {last[:120]} |", flush=True)


if __name__ == "__main__":
    main()
