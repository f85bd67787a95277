"""Early warning, scored: a simulated fleet with injected incidents (a seed never trained on)
replayed through the live path in accelerated fleet time, and every alert rule beside the
baselines Prometheus users have now, in the same run.

    .venv/bin/python bench/bench_alerts.py [--servers 40] [--days 30] [--seed 2027]
                                           [--incident-rate 0.04] [--every 15min] [--cache DIR]
    .venv/bin/python bench/bench_alerts.py --rescore DIR [--variants all]   # the rules again, no replay

``--cache`` keeps every cycle's findings (risk per metric, ranking, abnormal) so ``--rescore``
scores rule sets on them in seconds; rule settings are chosen that way on a validation seed,
then reported on another.

The live path: the first 26 h are the live dataset; then each cycle pushes the next ``--every``
of samples as CSV through ``Service.accept`` (what ``POST /api/v1/samples`` calls), runs
``Service.cycle`` (store, forecast with the shipped champion, risk, levels, abnormal now) with the
service's clock set to fleet time, and advances an ``AlertBook`` per rule set on the cycle's
findings (the shipped ``deploy/alerts.toml`` is the service's own).

Baselines, evaluated at the same cycle times and held the same 15 minutes:
- static: the metric at or over its warning threshold (the usual ``expr: x > 85 for: 15m``);
- linear 8h: ``predict_linear(x[6h], 8h) >= critical`` (a least-squares line on the last 6 h);
- mixin-style: ``predict_linear(x[6h], 4h) >= critical and x >= 0.75 * critical`` (node_exporter's
  mixin guards its filesystem forecast alerts with the current level the same way).

Scores per rule, episode level:
- an incident is alerted when an episode on its server (and metric, for per-metric rules)
  starts between 8 h before its precursor and its breach; the lead is breach - start, and the
  table counts those with a lead of at least 30 minutes;
- a false episode is one fire-to-resolve with no sample at or over the critical threshold (on
  its metric, or on any metric for a server-wide rule) from its start to ``horizon`` after its end;
- false episodes per server-week = false episodes / (servers x replayed days / 7).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from argus_core.data import schema, store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.fleet import alerting, risk  # noqa: E402
from argus_core.live.service import Service, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HISTORY = pd.Timedelta("26h")
HORIZON = pd.Timedelta("8h")
AHEAD = pd.Timedelta("30min")
HOLD = pd.Timedelta("15min")
VARIANTS = {  # rule sets scored beside the shipped file, on the same cycles
    "p_critical >= 0.5, 15 min": {"when": {"p_critical": 0.5}, "resolve": {"p_critical": 0.3}},
    "p_critical >= 0.3, 15 min": {"when": {"p_critical": 0.3}, "resolve": {"p_critical": 0.2}},
    "level >= warning, 15 min": {"when": {"level": "warning"}},
    "level critical, 15 min": {"when": {"level": "critical"}},
}
MORE_VARIANTS = {  # --variants all: the candidates a validation seed chooses among
    "p_critical >= 0.3, 15 min, resolve 1 h": {"when": {"p_critical": 0.3}, "resolve": {"p_critical": 0.2},
                                              "resolve_for": "1h"},
    "p_critical >= 0.3, 30 min": {"when": {"p_critical": 0.3}, "resolve": {"p_critical": 0.2}, "for": "30min"},
    "p_critical >= 0.4, 15 min, resolve 1 h": {"when": {"p_critical": 0.4}, "resolve": {"p_critical": 0.2},
                                              "resolve_for": "1h"},
    "p_critical >= 0.2, 30 min, resolve 1 h": {"when": {"p_critical": 0.2}, "resolve": {"p_critical": 0.1},
                                              "for": "30min", "resolve_for": "1h"},
    "level >= warning, 15 min, resolve 1 h": {"when": {"level": "warning"}, "resolve_for": "1h"},
    "level >= warning, 30 min, resolve 1 h": {"when": {"level": "warning"}, "for": "30min", "resolve_for": "1h"},
    "p_warning >= 0.5, 15 min, resolve 1 h": {"when": {"p_warning": 0.5}, "resolve": {"p_warning": 0.3},
                                             "resolve_for": "1h"},
    "p_critical >= 0.3 and now >= 0.75 x critical, 15 min, resolve 1 h": {
        "when": {"p_critical": 0.3}, "resolve": {"p_critical": 0.2}, "resolve_for": "1h", "now_at_least": 0.75},
    "p_critical >= 0.2 and now >= 0.75 x critical, 15 min, resolve 1 h": {
        "when": {"p_critical": 0.2}, "resolve": {"p_critical": 0.1}, "resolve_for": "1h", "now_at_least": 0.75},
    "p_critical >= 0.3 and now >= 0.6 x critical, 15 min, resolve 1 h": {
        "when": {"p_critical": 0.3}, "resolve": {"p_critical": 0.2}, "resolve_for": "1h", "now_at_least": 0.6},
}
KEEP = {"per_metric": [schema.SERVER, "metric", "p_critical", "p_warning", "breach_p50", "breach_p90", "warning_p50",
                       "breaching_now", "value_now", "warning", "critical", "level", "climb_per_h",
                       "hours_to_critical"],
        "ranking": [schema.SERVER, "level", "driver", "p_critical", "p_warning", "breach_p50", "breach_p90",
                    "score"],
        "abnormal": [schema.SERVER, "abnormal", "drivers"]}


@dataclass
class Episode:
    server: str
    metric: str  # "" for a server-wide rule
    start: pd.Timestamp
    end: pd.Timestamp | None = None


CLIMB_GRID = [(within, guard) for within in ("1h", "2h", "4h") for guard in (0.5, 0.6, 0.75, 0.85)]


def climb_sets() -> dict[str, alerting.RuleSet]:
    """--climb: the shipped early warning plus a climb rule (the recent line reaches critical within
    W, and the metric is at G x critical now), per cell of ``CLIMB_GRID``."""
    shipped = alerting.load_rules(ROOT / "deploy" / "alerts.toml")
    early = next(r for r in shipped.rules if r.condition == "level")
    out = {}
    for within, guard in CLIMB_GRID:
        name = f"{early.name} + climb_within {within}, now >= {guard} x critical, 15 min"
        climb = alerting.parse_rules({"defaults": {"for": "15min", "resolve_for": "15min"}, "rules": [
            {"name": "ArgusFastClimb", "when": {"climb_within": within}, "now_at_least": guard}]}, name).rules[0]
        out[name] = alerting.RuleSet((early, climb), shipped.profile_thresholds, shipped.server_thresholds)
    return out


def with_climbs(per_metric: pd.DataFrame, frame: pd.DataFrame, stamps: np.ndarray) -> pd.DataFrame:
    """Cached per-metric findings with each cycle's recent climb, computed from the samples the
    live service held at that cycle (what ``Service.cycle`` computes now; the caches predate it)."""
    metrics = list(schema.THRESHOLDS)
    pieces = []
    for at, rows in per_metric.groupby("at", sort=True):
        end = np.searchsorted(stamps, np.datetime64(pd.Timestamp(at).tz_convert(None)), side="right")
        begin = np.searchsorted(stamps, np.datetime64((pd.Timestamp(at) - risk.CLIMB_WINDOW).tz_convert(None)),
                                side="right")
        pieces.append(risk.with_climb(rows.copy(), risk.recent_climb(frame.iloc[begin:end], metrics, "5min")))
    return pd.concat(pieces, ignore_index=True)


def rule_sets(more: bool = False) -> dict[str, alerting.RuleSet]:
    shipped = alerting.load_rules(ROOT / "deploy" / "alerts.toml")
    out = {f"shipped: {r.name} ({r.condition})": alerting.RuleSet((r,), shipped.profile_thresholds,
                                                                   shipped.server_thresholds)
           for r in shipped.rules}
    early = tuple(r for r in shipped.rules if r.condition in ("level", "climb_within"))
    if len(early) > 1:  # the early warning is these rules together: an incident is warned of by any
        out[f"shipped early warning: {' + '.join(r.name for r in early)}"] = alerting.RuleSet(
            early, shipped.profile_thresholds, shipped.server_thresholds)
    for name, rule in {**VARIANTS, **(MORE_VARIANTS if more else {})}.items():
        out[name] = alerting.parse_rules({"defaults": {"for": "15min", "resolve_for": "15min"},
                                          "rules": [{"name": name.split(",")[0].replace(" ", ""), **rule}]}, name)
    return out


def csv_body(rows: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    rows.astype({schema.SERVER: str, schema.STATUS: str}).drop(columns=[schema.PROFILE]).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def replay(args, work: Path):
    sim = simulate_fleet(SimConfig(servers=args.servers, hours=args.days * 24, seed=args.seed,
                                   incident_rate=args.incident_rate))
    frame = sim.frame
    start = frame[schema.TIMESTAMP].min()
    first_end = start + HISTORY
    dataset = work / "live"
    store.write_dataset(dataset, frame[frame[schema.TIMESTAMP] <= first_end], kind="simulated", step="5min")
    clock = {"now": first_end}
    service = Service(Settings(dataset=dataset, models=ROOT / "models", rules=ROOT / "deploy" / "alerts.toml",
                               threads=1, late=pd.Timedelta("48h")), clock=lambda: clock["now"])
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in KEEP}
    times = pd.date_range(first_end + args.every, frame[schema.TIMESTAMP].max(), freq=args.every)
    started, cycle_seconds = time.perf_counter(), []
    later = frame[frame[schema.TIMESTAMP] > first_end]
    stamps = later[schema.TIMESTAMP]
    previous = first_end
    for index, now in enumerate(times):
        batch = later[(stamps > previous) & (stamps <= now)]
        previous = now
        clock["now"] = now
        service.accept(csv_body(batch), "text/csv")
        t0 = time.perf_counter()
        snap = service.cycle()
        cycle_seconds.append(time.perf_counter() - t0)
        at = pd.Timestamp(snap.as_of)
        for name, columns in KEEP.items():
            found = getattr(snap, name)
            if len(found):
                frames[name].append(found[[c for c in columns if c in found.columns]].assign(at=at))
        if index % 200 == 0:
            print(f"  cycle {index}/{len(times)} at {now:%m-%d %H:%M}, {time.perf_counter() - started:.0f} s",
                  flush=True)
    return sim, times, {name: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
                        for name, parts in frames.items()}, cycle_seconds


def alert_episodes(findings: dict[str, pd.DataFrame], sim, more: bool,
                   sets: dict[str, alerting.RuleSet] | None = None) -> dict[str, list[Episode]]:
    """Every rule set's episodes over the recorded cycles, as the service's AlertBook makes them."""
    books = {name: alerting.AlertBook(rules) for name, rules in (sets or rule_sets(more)).items()}
    episodes: dict[str, list[Episode]] = {name: [] for name in books}
    open_: dict[str, dict] = {name: {} for name in books}
    profiles = {str(k): str(v) for k, v in sim.servers.items()}
    groups = {name: dict(tuple(frame.groupby("at"))) if len(frame) else {} for name, frame in findings.items()}
    empty = pd.DataFrame(columns=[schema.SERVER, "abnormal"])
    for at in sorted(groups["ranking"]):
        per_metric, ranking = groups["per_metric"][at], groups["ranking"][at]
        abnormal = groups["abnormal"].get(at, empty)
        for name, book in books.items():
            for alert in book.evaluate(at, per_metric, ranking, abnormal, None, profiles):
                if alert.state == "firing":
                    episode = Episode(alert.server, alert.metric, pd.Timestamp(alert.starts_at))
                    open_[name][alert.key] = episode
                    episodes[name].append(episode)
                elif alert.key in open_[name]:
                    open_[name].pop(alert.key).end = pd.Timestamp(alert.ends_at)
    return episodes


# --- baselines on the raw samples ---------------------------------------------------------------------

def metric_matrix(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    values = pd.DataFrame({schema.SERVER: frame[schema.SERVER].astype(str), schema.TIMESTAMP: frame[schema.TIMESTAMP],
                           "v": schema.metric_values(frame, metric)})
    return values.pivot(index=schema.TIMESTAMP, columns=schema.SERVER, values="v").sort_index()


def held_episodes(condition: pd.DataFrame, metric: str, hold: pd.Timedelta) -> list[Episode]:
    """Episodes of a boolean (time x server) condition with the rules' hold and resolve hold."""
    out = []
    for server in condition.columns:
        on = condition[server].to_numpy()
        stamps = condition.index
        since, clear_since, episode = None, None, None
        for t, flag in zip(stamps, on, strict=True):
            if flag:
                clear_since = None
                since = since if since is not None else t
                if episode is None and t - since >= hold:
                    episode = Episode(server, metric, t)
                    out.append(episode)
            else:
                since = None
                if episode is not None:
                    clear_since = clear_since if clear_since is not None else t
                    if t - clear_since >= hold:
                        episode.end, episode, clear_since = t, None, None
    return out


def linear_prediction(values: pd.DataFrame, window_steps: int, ahead_steps: int) -> pd.DataFrame:
    """predict_linear: a least-squares line over the last ``window_steps``, read ``ahead_steps`` on."""
    x = np.arange(window_steps, dtype=np.float64)
    x_mean = x.mean()
    weights = (x - x_mean) / ((x - x_mean) ** 2).sum()
    data = values.to_numpy(np.float64)
    out = np.full_like(data, np.nan)
    for i in range(window_steps - 1, len(data)):
        block = data[i - window_steps + 1:i + 1]
        slope = weights @ block
        level = block.mean(axis=0)
        out[i] = level + slope * (window_steps - 1 - x_mean + ahead_steps)
    return pd.DataFrame(out, index=values.index, columns=values.columns)


def baselines(matrices: dict[str, pd.DataFrame], times: pd.DatetimeIndex) -> dict[str, list[Episode]]:
    out = {"baseline: static >= warning, 15 min": [], "baseline: predict_linear(6h, 8h) >= critical, 15 min": [],
           "baseline: mixin-style predict_linear(6h, 4h) and >= 0.75 x critical": []}
    step = pd.Timedelta("5min")
    for metric, values in matrices.items():
        limit = schema.THRESHOLDS[metric]
        linear8 = linear_prediction(values, int(pd.Timedelta("6h") / step), int(HORIZON / step))
        linear4 = linear_prediction(values, int(pd.Timedelta("6h") / step), int(pd.Timedelta("4h") / step))
        at = values.index.intersection(times)
        out["baseline: static >= warning, 15 min"] += held_episodes(values.loc[at] >= limit.warning, metric, HOLD)
        out["baseline: predict_linear(6h, 8h) >= critical, 15 min"] += held_episodes(
            linear8.loc[at] >= limit.critical, metric, HOLD)
        out["baseline: mixin-style predict_linear(6h, 4h) and >= 0.75 x critical"] += held_episodes(
            (linear4.loc[at] >= limit.critical) & (values.loc[at] >= 0.75 * limit.critical), metric, HOLD)
    return out


# --- scoring ------------------------------------------------------------------------------------------

def critical_tables(matrices: dict[str, pd.DataFrame]) -> dict:
    """Per metric (and "" for any metric), time x server: at or over the critical threshold."""
    over = {metric: values >= schema.THRESHOLDS[metric].critical for metric, values in matrices.items()}
    any_metric = None
    for frame in over.values():
        any_metric = frame if any_metric is None else (any_metric | frame.reindex_like(any_metric).fillna(False))
    return {**over, "": any_metric}


def score(episodes: list[Episode], sim, replay_start: pd.Timestamp, replay_end: pd.Timestamp, over: dict) -> dict:
    incidents = sim.incidents.copy()
    incidents["breach_time"] = pd.to_datetime(incidents["breach_time"], utc=True)
    incidents["precursor_start"] = pd.to_datetime(incidents["precursor_start"], utc=True)
    incidents = incidents[(incidents["breach_time"] > replay_start + pd.Timedelta("1h"))
                          & (incidents["breach_time"] <= replay_end)]
    leads = []
    for row in incidents.itertuples():
        candidates = [e for e in episodes if e.server == str(row.server_name) and e.metric in ("", row.metric)
                      and row.precursor_start - HORIZON <= e.start <= row.breach_time]
        if candidates:
            leads.append((row.breach_time - min(e.start for e in candidates)) / pd.Timedelta("1min"))
    false = 0
    for e in episodes:
        table = over.get(e.metric, over[""])
        end = (e.end or replay_end) + HORIZON
        window = table.loc[(table.index >= e.start) & (table.index <= end), e.server] if e.server in table else []
        if not len(window) or not bool(np.any(window)):
            false += 1
    weeks = len(sim.servers) * (replay_end - replay_start) / pd.Timedelta("7D")
    ahead = sum(1 for lead in leads if lead >= AHEAD / pd.Timedelta("1min"))
    return {"incidents": len(incidents), "alerted": len(leads), "ahead": ahead,
            "median_lead_min": statistics.median(leads) if leads else float("nan"),
            "episodes": len(episodes), "false": false, "false_per_server_week": false / weeks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=40)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--incident-rate", type=float, default=0.04)
    parser.add_argument("--every", type=pd.Timedelta, default=pd.Timedelta("15min"))
    parser.add_argument("--cache", type=Path, default=None, help="keep every cycle's findings here")
    parser.add_argument("--rescore", type=Path, default=None, help="score the rules on a --cache folder")
    parser.add_argument("--variants", choices=("some", "all"), default="some")
    parser.add_argument("--climb", action="store_true", help="also score the shipped early warning with a climb rule "
                        "(climb_within W, now >= G x critical) for each cell of CLIMB_GRID")
    args = parser.parse_args()
    if args.rescore is not None:
        meta = json.loads((args.rescore / "meta.json").read_text())
        args.servers, args.days, args.seed, args.incident_rate = (meta[k] for k in ("servers", "days", "seed",
                                                                                  "incident_rate"))
        args.every = pd.Timedelta(meta["every"])
        findings = {name: pd.read_parquet(args.rescore / f"{name}.parquet") for name in KEEP}
        sim = simulate_fleet(SimConfig(servers=args.servers, hours=args.days * 24, seed=args.seed,
                                       incident_rate=args.incident_rate))
        times = pd.DatetimeIndex(sorted(findings["ranking"]["at"].unique()))
        header = f"rescored from {args.rescore} (replayed {meta['seconds']:.0f} s, a cycle {meta['cycle']:.2f} s)"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            sim, times, findings, cycles = replay(args, Path(tmp))
            replay_seconds = time.perf_counter() - t0
        header = f"in {replay_seconds:.0f} s (a cycle: median {statistics.median(cycles):.2f} s)"
        if args.cache is not None:
            args.cache.mkdir(parents=True, exist_ok=True)
            for name, frame in findings.items():
                frame.to_parquet(args.cache / f"{name}.parquet", index=False)
            (args.cache / "meta.json").write_text(json.dumps({
                "servers": args.servers, "days": args.days, "seed": args.seed, "incident_rate": args.incident_rate,
                "every": str(args.every), "seconds": replay_seconds, "cycle": statistics.median(cycles)}))
    if "hours_to_critical" not in findings["per_metric"].columns:  # a cache from before the climb
        ordered = sim.frame.sort_values(schema.TIMESTAMP, kind="stable").reset_index(drop=True)
        stamps = ordered[schema.TIMESTAMP].dt.tz_convert(None).to_numpy()
        findings["per_metric"] = with_climbs(findings["per_metric"], ordered, stamps)
    episodes = alert_episodes(findings, sim, args.variants == "all")
    if args.climb:
        episodes.update(alert_episodes(findings, sim, False, climb_sets()))
    matrices = {metric: metric_matrix(sim.frame, metric) for metric in schema.THRESHOLDS}  # once, for every rule
    episodes.update(baselines(matrices, times))
    over = critical_tables(matrices)
    print(f"\n{args.servers} servers x {args.days:g} days (seed {args.seed}, incident rate {args.incident_rate}), "
          f"{len(times)} cycles every {args.every} of fleet time {header}\n")
    print("| rule | incidents alerted >= 30 min ahead | alerted at all | median lead | episodes | "
          "false episodes / server-week |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, found in episodes.items():
        s = score(found, sim, times[0] - args.every, times[-1], over)
        print(f"| {name} | {s['ahead']}/{s['incidents']} ({s['ahead'] / max(s['incidents'], 1):.0%}) | "
              f"{s['alerted']}/{s['incidents']} | {s['median_lead_min']:.0f} min | {s['episodes']} | "
              f"{s['false_per_server_week']:.2f} ({s['false']}) |")


if __name__ == "__main__":
    main()
