"""Generator throughput: rows per second for the default 90-server x 30-day fleet.

Prints, in one run on this machine:
  - the vectorised simulator alone (in-memory frame), best of --repeat runs;
  - simulate + write the partitioned parquet dataset (what `generate` does);
  - a baseline: a per-row Python loop in the style of the original generator, on a slice of
    the same fleet (it is too slow for the whole of it), scaled to rows per second.

    .venv/bin/python bench/bench_generate.py [--repeat 3] [--hours 720] [--servers 90]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from argus_core.data import store  # noqa: E402
from argus_core.data.profiles import PROFILES, fleet_composition, fleet_names  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402


def per_row_baseline(servers: int, hours: float, seed: int) -> int:
    """One row at a time, the way the original generator worked: a Python loop per sample."""
    rng = random.Random(seed)
    fleet = fleet_names(fleet_composition(servers))
    start = pd.Timestamp("2026-01-05T00:00Z")
    rows = []
    for name, profile_name in fleet:
        profile = PROFILES[profile_name]
        mem = profile.mem_mean
        for step in range(int(hours * 12)):
            ts = start + pd.Timedelta(minutes=5 * step)
            hour = ts.hour + ts.minute / 60
            activity = profile.rhythm.base + profile.rhythm.market * (9.5 <= hour < 16)
            work = profile.cpu_low + (profile.cpu_high - profile.cpu_low) * activity + rng.gauss(0, 2.5)
            iowait = abs(rng.gauss(profile.iowait_mean, 0.6))
            mem = 0.99 * mem + 0.01 * profile.mem_mean + rng.gauss(0, 0.3)
            rows.append({
                "timestamp": ts, "server_name": name, "status": "healthy",
                "cpu_user_pct": work * 0.8, "cpu_sys_pct": work * 0.2, "cpu_iowait_pct": iowait,
                "cpu_idle_pct": max(0.0, 100 - work - iowait), "mem_used_pct": mem,
                "swap_used_pct": max(0.0, mem - 85) * 4.5, "load_average": profile.cores * work / 100,
                "back_close_wait": int(rng.expovariate(1 / profile.close_wait_base)),
                "net_in_mb_s": profile.net_mean * (0.5 + activity) * math.exp(rng.gauss(0, 0.08)),
            })
    pd.DataFrame(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=90)
    parser.add_argument("--hours", type=float, default=720.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = SimConfig(servers=args.servers, hours=args.hours, seed=7)

    simulate_fleet(SimConfig(servers=4, hours=4))  # warm up imports and caches
    sim_times, rows = [], 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        sim = simulate_fleet(config)
        sim_times.append(time.perf_counter() - started)
        rows = len(sim.frame)

    write_times = []
    workdir = Path(tempfile.mkdtemp(prefix="argus-bench-"))
    try:
        for i in range(args.repeat):
            started = time.perf_counter()
            sim = simulate_fleet(config)
            store.write_dataset(workdir / f"run{i}", sim.frame, kind="simulated", incidents=sim.incidents,
                                extra={"generator": sim.settings})
            write_times.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    baseline_servers, baseline_hours = 9, 24.0
    started = time.perf_counter()
    baseline_rows = per_row_baseline(baseline_servers, baseline_hours, seed=7)
    baseline_time = time.perf_counter() - started

    print(f"fleet: {args.servers} servers x {args.hours:g} h = {rows:,} rows (best of {args.repeat})")
    print(f"{'what':<44}{'seconds':>10}{'rows/s':>14}")
    print(f"{'vectorised simulate (in memory)':<44}{min(sim_times):>10.2f}{rows / min(sim_times):>14,.0f}")
    print(f"{'vectorised simulate + write parquet':<44}{min(write_times):>10.2f}{rows / min(write_times):>14,.0f}")
    label = f"baseline per-row loop ({baseline_servers} x {baseline_hours:g} h)"
    print(f"{label:<44}{baseline_time:>10.2f}{baseline_rows / baseline_time:>14,.0f}")
    speedup = (rows / min(sim_times)) / (baseline_rows / baseline_time)
    print(f"speed-up of simulate over the per-row loop: {speedup:.0f}x")


if __name__ == "__main__":
    main()
