"""The climb rule (``argus_core/model/climb.py``), chosen on validation fleets and scored on others.

    .venv/bin/python bench/bench_climb.py --seeds 1001,3001 [--servers 40] [--days 10] [--every 1h]
    .venv/bin/python bench/bench_climb.py --seeds 2027 --variants default      # an unseen fleet

Each seed is a simulated fleet with injected incidents (a seed the shipped champion never trained
on). At every origin (each ``--every`` after the first 26 h) the shipped champion forecasts the
fleet once; the TFT's raw paths and the history are kept, and every variant of the rule is applied
to them, so all variants see the same forecasts. Per variant, in the same run:

- breach foresight: an incident is foreseen when, at an origin between 8 h before its precursor
  and its breach, the served p90 path crosses the incident metric's critical threshold; lead =
  breach - that origin; counted when >= 30 min;
- false crossings: runs of consecutive origins where a (server, metric) p90 path crosses critical
  and no actual value reaches it within the horizon, per server-week;
- error: the p50's mean absolute error over the first hour and over the horizon, inside incident
  windows (precursor start to breach) and outside them, as a ratio to naive's (the last value)
  on the same points; and the p10-p90 coverage inside.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from argus_core.data import schema, store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.model import climb, forecast, registry, threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HISTORY = pd.Timedelta("26h")


def origins_of(sim, every: pd.Timedelta) -> list[pd.Timestamp]:
    stamps = sim.frame[schema.TIMESTAMP]
    first, last = stamps.min() + HISTORY, stamps.max() - pd.Timedelta("8h")
    return list(pd.date_range(first, last, freq=every))


def forecasts(model, frame: pd.DataFrame, origins: list[pd.Timestamp]):
    """Per origin: (servers, TFT paths (S, targets, H, 3), raw history (S, T, unknown))."""
    out = []
    for origin in origins:
        window = frame[(frame[schema.TIMESTAMP] > origin - HISTORY) & (frame[schema.TIMESTAMP] <= origin)]
        servers, values, raw = forecast.network_paths(model, window)
        out.append((origin, servers, values, raw))
    return out


def actual_paths(frame: pd.DataFrame, targets: list[str], origins, horizon: int, step: pd.Timedelta):
    """(server, target) -> values on the full time grid, and the grid's index of each origin."""
    wide = {}
    for target in targets:
        values = schema.metric_values(frame, target)
        table = pd.DataFrame({"s": frame[schema.SERVER].astype(str), "t": frame[schema.TIMESTAMP], "v": values})
        wide[target] = table.pivot_table(index="s", columns="t", values="v", aggfunc="first")
    return wide


def score(variant, runs, spec, wide, incidents, thresholds, step, servers_count, days):
    targets = list(spec.targets)
    unknown = list(spec.unknown_reals)
    horizon = spec.horizon
    hour = int(pd.Timedelta("1h") / step)
    foreseen: dict[int, pd.Timestamp] = {}
    false_runs, crossing_prev = 0, set()
    false_by_metric: dict[str, int] = {}
    err = {k: [] for k in ("in_hour", "in_all", "out_hour", "out_all", "in_naive_hour", "in_naive_all",
                           "out_naive_hour", "out_naive_all")}
    covered = []
    served_count = 0
    windows = [(i, r.server_name, r.metric, pd.Timestamp(r.precursor_start), pd.Timestamp(r.breach_time))
               for i, r in enumerate(incidents.itertuples(index=False))]
    for origin, servers, values, raw in runs:
        crossing_now = set()
        for t, target in enumerate(targets):
            history = raw[:, :, unknown.index(target)]
            paths = values[:, t]
            if variant is not None:
                paths, mask = climb.apply(paths, history, variant)
                served_count += int(mask.sum())
            table = wide[target]
            future = pd.date_range(origin + step, periods=horizon, freq=step)
            actual = table.reindex(index=servers, columns=future).to_numpy(np.float64)
            last = history[:, -1]
            critical = thresholds[target].critical if target in thresholds else np.inf
            crosses = (paths[:, :, 2] >= critical).any(axis=1)
            reaches = (actual >= critical).any(axis=1)
            for s in np.flatnonzero(crosses):
                key = (servers[s], target)
                crossing_now.add(key)
                if not reaches[s] and key not in crossing_prev:
                    false_runs += 1
                    false_by_metric[target] = false_by_metric.get(target, 0) + 1
            inside = np.zeros(actual.shape, dtype=bool)  # points (not origins) inside an incident window
            for i, server, metric, start, breach in windows:
                if metric != target:
                    continue
                rows = np.flatnonzero(servers == server)
                if not len(rows):
                    continue
                if start - pd.Timedelta("8h") <= origin < breach and crosses[rows[0]] and i not in foreseen:
                    foreseen[i] = origin
                inside[rows[0]] |= np.asarray((future >= start) & (future <= breach))
            error = np.abs(paths[:, :, 1] - actual)
            naive = np.abs(last[:, None] - actual)
            naive = np.broadcast_to(naive, actual.shape)
            first_hour = np.zeros(actual.shape, dtype=bool)
            first_hour[:, :hour] = True
            for where, mask in (("in", inside), ("out", ~inside)):
                err[f"{where}_hour"].append(error[mask & first_hour])
                err[f"{where}_all"].append(error[mask])
                err[f"{where}_naive_hour"].append(naive[mask & first_hour])
                err[f"{where}_naive_all"].append(naive[mask])
            if inside.any():
                a = actual[inside]
                held = (a >= paths[:, :, 0][inside]) & (a <= paths[:, :, 2][inside])
                covered.append(held[np.isfinite(a)])
        crossing_prev = crossing_now

    def ratio(a, b):
        x, y = np.concatenate(err[a]), np.concatenate(err[b])
        keep = np.isfinite(x) & np.isfinite(y)
        return float(np.mean(x[keep]) / max(np.mean(y[keep]), 1e-9)) if keep.any() else float("nan")

    leads = [(incidents.iloc[i]["breach_time"] - o) / pd.Timedelta("1min") for i, o in foreseen.items()]
    return {
        "foreseen_30": sum(lead >= 30 for lead in leads), "foreseen": len(leads), "incidents": len(incidents),
        "median_lead": float(np.median(leads)) if leads else float("nan"),
        "false_per_server_week": false_runs / (servers_count * days / 7),
        "in_hour": ratio("in_hour", "in_naive_hour"), "in_all": ratio("in_all", "in_naive_all"),
        "out_hour": ratio("out_hour", "out_naive_hour"), "out_all": ratio("out_all", "out_naive_all"),
        "coverage_in": float(np.concatenate(covered).mean()) if covered else float("nan"),
        "served": served_count, "false_by_metric": false_by_metric,
    }


def variants(which: str):
    if which == "default":
        return {"TFT alone": None, "climb rule (shipped)": climb.DEFAULT}
    if which == "sides":  # the network's first step below the line only, or far from it either way
        return {"TFT alone": None, "below only": replace(climb.DEFAULT, both_sides=False),
                "either side": replace(climb.DEFAULT, both_sides=True)}
    grid = {"TFT alone": None}
    for damping, gap, band in itertools.product((0.95, 0.97, 0.98), (3.0, 5.0, 8.0), (1.0, 2.0, 4.0)):
        grid[f"damping {damping:g} gap {gap:g} band x{band:g}"] = replace(climb.DEFAULT, damping=damping,
                                                                            min_gap=gap, band_scale=band)
    return grid


def speed(servers: int) -> None:
    """A warm fleet forecast of ``servers`` servers with the climb rule and without it, same process."""
    models = ROOT / "models"
    model = forecast.load_model(models, registry.champion_model_id(models))
    sim = simulate_fleet(SimConfig(servers=servers, hours=27, seed=5, incident_rate=0.0))
    window = sim.frame[sim.frame[schema.TIMESTAMP] > sim.frame[schema.TIMESTAMP].max() - HISTORY]
    original = climb.apply
    timings = {}
    for label, rule in (("without the rule", lambda values, history, rule=None: (values, np.zeros(len(values), bool))),
                        ("with the rule", original)):
        climb.apply = rule
        try:
            forecast.forecast_fleet(model, window)  # warm
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                forecast.forecast_fleet(model, window)
                runs.append(time.perf_counter() - started)
        finally:
            climb.apply = original
        timings[label] = float(np.median(runs))
    print(f"warm fleet forecast of {servers} servers, 1 thread, median of 5: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
          + f" ({timings['with the rule'] / timings['without the rule']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1001,3001")
    parser.add_argument("--servers", type=int, default=40)
    parser.add_argument("--days", type=float, default=10)
    parser.add_argument("--incident-rate", type=float, default=0.04)
    parser.add_argument("--every", default="1h")
    parser.add_argument("--variants", choices=("grid", "default", "sides"), default="grid")
    parser.add_argument("--speed", type=int, default=0, metavar="SERVERS",
                        help="time a warm fleet forecast of SERVERS servers with the rule and without, and stop")
    args = parser.parse_args()
    threads.use_threads(1)
    if args.speed:
        speed(args.speed)
        return
    models = ROOT / "models"
    model = forecast.load_model(models, registry.champion_model_id(models))
    spec = model.spec
    step = pd.Timedelta(spec.step)
    thresholds = {m: schema.Threshold(t["warning"], t["critical"]) if isinstance(t, dict) else t
                  for m, t in (spec.thresholds or schema.THRESHOLDS).items()}
    thresholds = {**schema.THRESHOLDS, **thresholds}
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        started = time.perf_counter()
        sim = simulate_fleet(SimConfig(servers=args.servers, hours=24 * args.days, seed=seed,
                                       incident_rate=args.incident_rate))
        with tempfile.TemporaryDirectory() as tmp:
            store.write_dataset(Path(tmp) / "fleet", sim.frame, kind="simulated", step=spec.step)
            frame = store.read(Path(tmp) / "fleet")
        origins = origins_of(sim, pd.Timedelta(args.every))
        runs = forecasts(model, frame, origins)
        wide = actual_paths(frame, list(spec.targets), origins, spec.horizon, step)
        incidents = sim.incidents
        incidents = incidents[(incidents["breach_time"] > frame[schema.TIMESTAMP].min() + HISTORY)
                              & (incidents["breach_time"] < frame[schema.TIMESTAMP].max())].reset_index(drop=True)
        replay_days = (origins[-1] - origins[0]) / pd.Timedelta("1D")
        print(f"seed {seed}: {len(origins)} origins, {len(incidents)} incidents, forecasts in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        for name, variant in variants(args.variants).items():
            results.setdefault(name, []).append(score(variant, runs, spec, wide, incidents, thresholds, step,
                                                      args.servers, replay_days))
    print("\n| variant | foreseen >= 30 min | median lead | false crossings / server-week | first hour in / out "
          "(x naive) | horizon in / out (x naive) | p10-p90 coverage inside | series served by the climb |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, per_seed in results.items():
        f30 = sum(r["foreseen_30"] for r in per_seed)
        total = sum(r["incidents"] for r in per_seed)
        def mean(key, per_seed=per_seed):
            return np.nanmean([r[key] for r in per_seed])
        print(f"| {name} | {f30}/{total} ({f30 / max(total, 1):.0%}) | {mean('median_lead'):.0f} min | "
              f"{mean('false_per_server_week'):.2f} | {mean('in_hour'):.2f} / {mean('out_hour'):.2f} | "
              f"{mean('in_all'):.2f} / {mean('out_all'):.2f} | {mean('coverage_in'):.2f} | "
              f"{sum(r['served'] for r in per_seed)} |")
    print("\nfalse crossings per metric (all seeds):")
    for name, per_seed in results.items():
        merged: dict[str, int] = {}
        for r in per_seed:
            for metric, count in r["false_by_metric"].items():
                merged[metric] = merged.get(metric, 0) + count
        print(f"  {name}: " + ", ".join(f"{m} {c}" for m, c in sorted(merged.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
