"""`anomaly fit|score`: the "abnormal now" detector beside the champion (``model.anomaly``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from argus_core.cli.output import printable
from argus_core.data import store
from argus_core.data.simulate import MAX_HOURS  # five years: more is a typo
from argus_core.model.registry import DEFAULT_ROOT


def hours_back(text: str) -> float:
    """A positive number of hours, at most five years (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_HOURS:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number of hours above 0 and at most {MAX_HOURS:,}, not {text!r}")
    return value


def add_anomaly_commands(sub: argparse._SubParsersAction) -> None:
    an = sub.add_parser("anomaly", help="fit or run the abnormal-now detector (k-means of nominal behaviour)",
                        description="A k-means model of each profile's nominal behaviour, saved beside a model "
                                    "(anomaly.json); a server is abnormal when it is far from every centre for a "
                                    "while. `train` fits one too.")
    an_sub = an.add_subparsers(dest="anomaly_command", required=True)
    fi = an_sub.add_parser("fit", help="fit on a dataset (its known incidents and labels left out)")
    sc = an_sub.add_parser("score", help="the abnormal servers of a dataset, now or as of a time")
    for parser in (fi, sc):
        parser.add_argument("--dataset", required=True, type=Path)
        parser.add_argument("--models", type=Path, default=DEFAULT_ROOT)
        parser.add_argument("--model", default=None, help="model id (default: the champion)")
    sc.add_argument("--as-of", default=None, help="score the data up to this time (UTC)")
    sc.add_argument("--hours", type=hours_back, default=None,
                    help="history read before --as-of (default: as far back as the detector's baseline reads)")
    fi.set_defaults(handler=_fit)
    sc.set_defaults(handler=_score)


def _fit(args: argparse.Namespace) -> int:
    from argus_core import anomaly
    from argus_core.model import resolve_model_id

    model_dir = Path(args.models) / resolve_model_id(args.models, args.model)
    started = time.perf_counter()
    detector = anomaly.fit_dataset(args.dataset)
    path = detector.save(model_dir)
    parts = ", ".join(f"{p} {len(m.centres)}" for p, m in sorted(detector.profiles.items()))
    print(f"fitted on {sum(m.rows for m in detector.profiles.values()):,} nominal rows in "
          f"{time.perf_counter() - started:.1f} s, each server against its previous {detector.baseline_text} "
          f"(clusters per group: {parts}) -> {path}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from argus_core import anomaly
    from argus_core.cli.models import parse_as_of
    from argus_core.model import resolve_model_id

    model_dir = Path(args.models) / resolve_model_id(args.models, args.model)
    detector = anomaly.AnomalyModel.load(model_dir)
    manifest = store.read_manifest(args.dataset)
    end = parse_as_of(args.as_of) or pd.Timestamp(manifest["end"])
    span = pd.Timedelta(hours=args.hours) if args.hours is not None else \
        pd.Timedelta(detector.step) * detector.history_steps
    frame = store.read(args.dataset, start=end - span, end=end, manifest=manifest)
    if frame.empty:
        print(f"no rows in the {span / pd.Timedelta('1h'):g} h up to {end}", file=sys.stderr)
        return 1
    now = anomaly.abnormal_now(detector, frame)
    flagged = now[now["abnormal"]]
    print(f"{len(flagged)} of {len(now)} servers abnormal at {end:%Y-%m-%d %H:%M} UTC")
    for row in flagged.itertuples(index=False):
        since = "" if pd.isna(row.abnormal_since) else f" since {row.abnormal_since:%m-%d %H:%M}"
        print(printable(f"  {row.server_name:<14} deviation {row.deviation:6.2f} (fast {row.tau_fast:.2f}, "
                        f"persist {row.tau_persist:.2f}){since}; off: {row.drivers}"))
    return 0
