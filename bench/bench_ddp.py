"""Training throughput in one process and in several (Lightning's DDP), through the CLI.

    .venv/bin/python bench/bench_ddp.py [--processes 1,2] [--servers 30] [--hours 168]
        [--batches 20] [--epochs 3] [--accelerator cpu]

Simulates a fleet once, then runs the same `train` command with ``--devices N`` for each N at the
default threads (cores - 1 alone, cores / N per process in DDP; gloo between CPU processes, NCCL
between GPUs). Samples/s is
windows trained per second of epoch wall time over the epochs after the first (which builds kernels
and, in DDP, sets up the process group): an epoch is ``--batches`` optimiser steps, each of N
batches of 64 windows, then the validation batches (every process scores all of them). On the CPU
a last row runs one process on every core, which is what several processes compete with.
On a 2-core machine two processes cannot be faster than one: the figure says what DDP costs there;
on several GPUs it says how it scales.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from argus_core.data import store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402

EPOCH = re.compile(r"epoch\s+(\d+)/\d+ .* ([\d.]+) s/epoch")
BATCH = 64


def run(dataset: Path, processes: int, batches: int, epochs: int, accelerator: str,
        threads: int | None = None) -> tuple[float, str]:
    """(samples/s after the first epoch, the run's last line)."""
    models = Path(tempfile.mkdtemp(prefix=f"argus-ddp{processes}-"))
    command = [sys.executable, "-m", "argus_core", "train", "--dataset", str(dataset), "--models", str(models),
               "--epochs", str(epochs), "--batches-per-epoch", str(batches), "--batch-size", str(BATCH),
               "--hidden-size", "32", "--encoder-length", "288", "--horizon", "96", "--fresh",
               "--seasonal-inputs", "none", "--devices", str(processes), "--accelerator", accelerator,
               *(["--threads", str(threads)] if threads else [])]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"--devices {processes} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    # ProgressLine prints the mean time per epoch so far: epoch k's own time is k*mean_k - (k-1)*mean_{k-1}
    means = {int(m.group(1)): float(m.group(2)) for m in EPOCH.finditer(done.stdout)}
    own = [k * means[k] - (k - 1) * means[k - 1] for k in sorted(means) if k > 1 and k - 1 in means]
    seconds = sum(own) / len(own)
    return batches * BATCH * processes / seconds, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--servers", type=int, default=30)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "fleet"
        sim = simulate_fleet(SimConfig(servers=args.servers, hours=args.hours, seed=7))
        store.write_dataset(dataset, sim.frame, kind="simulated", incidents=sim.incidents)
        print(f"{args.servers} servers x {args.hours} h; hidden size 32, encoder 288, batch {BATCH} per process")
        print("| processes | samples/s | vs 1 process | last line |")
        print("| ---: | ---: | ---: | --- |")
        base = None
        for processes in map(int, args.processes.split(",")):
            rate, last = run(dataset, processes, args.batches, args.epochs, args.accelerator)
            base = base or rate
            print(f"| {processes} | {rate:.1f} | {rate / base:.2f}x | {last[:110]} |", flush=True)
        cores = os.cpu_count() or 1
        if args.accelerator == "cpu" and cores > 1:  # one process on every core: what DDP competes with
            rate, last = run(dataset, 1, args.batches, args.epochs, args.accelerator, threads=cores)
            print(f"| 1 ({cores} threads) | {rate:.1f} | {rate / base:.2f}x | {last[:110]} |", flush=True)


if __name__ == "__main__":
    main()
