"""`runs list|show|cancel|delete`: the run store from a shell."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from argus_core import access
from argus_core.cli.output import printable
from argus_core.errors import ArgusError
from argus_core.model import registry
from argus_core.runs import jobs
from argus_core.runs.store import RunStore, default_path

LOG_TAIL_LINES = 20


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    ru = sub.add_parser("runs", help="training runs: list, show, cancel, delete",
                        description="Training runs recorded in the run store (models/runs.sqlite).")
    ru_sub = ru.add_subparsers(dest="runs_command", required=True)
    ls = ru_sub.add_parser("list", help="every run, newest first")
    sh = ru_sub.add_parser("show", help="one run: settings, status, curves")
    sh.add_argument("id", type=int)
    ca = ru_sub.add_parser("cancel", help="stop a queued or running training")
    ca.add_argument("id", type=int)
    de = ru_sub.add_parser("delete", help="remove an ended run and its curves (its model stays registered)")
    de.add_argument("id", type=int)
    for parser in (ls, sh, ca, de):
        parser.add_argument("--models", type=Path, default=registry.DEFAULT_ROOT)
    for parser in (ls, sh):
        parser.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_list)
    sh.set_defaults(handler=_show)
    ca.set_defaults(handler=_cancel)
    de.set_defaults(handler=_delete)


def _existing_store(models: Path) -> RunStore | None:
    """The run store if there is one: looking must not create files."""
    path = default_path(models)
    return RunStore(path) if path.exists() else None


def _list(args: argparse.Namespace) -> int:
    runs = _existing_store(args.models)
    if runs is None:
        print("[]" if args.json else f"no runs in {args.models}; start one with "
                                       "`python -m argus_core train --dataset DIR`")
        return 0
    runs.mark_dead_runs()
    items = runs.list()
    if args.json:
        print(json.dumps([_summary(runs, r) for r in items], indent=2, default=str))
        return 0
    if not items:
        print(f"no runs in {runs.path}; start one with `python -m argus_core train --dataset DIR`")
        return 0
    print(f"{'id':>4}  {'status':<11} {'duration':>9} {'best val':>9}  {'model':<28} name")
    for run in items:
        best = runs.metrics(run.id).query("name == 'val_loss'")["value"].min()
        duration = f"{run.duration_s:.0f} s" if run.duration_s is not None else "-"
        print(printable(f"{run.id:>4}  {run.status:<11} {duration:>9} {best:>9.4f}  {run.model_id or '-':<28} "
                        f"{run.name}"))
    return 0


def _show(args: argparse.Namespace) -> int:
    runs = _existing_store(args.models)
    if runs is None:
        raise ArgusError(f"no run {args.id}: there are no runs in {args.models} yet")
    runs.mark_dead_runs()
    summary = _summary(runs, runs.get(args.id))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    for key, value in summary.items():
        if key in ("started", "ended") and value is not None:
            value = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
        if key != "epochs":
            print(f"{key:>13}: {printable(str(value))}")
    for row in summary["epochs"]:
        print(f"  epoch {row['epoch'] + 1:>3}  " + "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    access.perform(args.models, access.shell_actor(), "train.cancel", f"run {args.id}",
                   lambda: jobs.cancel(args.models, args.id))
    print(f"run {args.id} cancelled")
    return 0


def _delete(args: argparse.Namespace) -> int:
    runs = _existing_store(args.models)
    if runs is None:
        raise ArgusError(f"no run {args.id}: there are no runs in {args.models} yet")
    run = access.perform(args.models, access.shell_actor(), "run.delete", f"run {args.id}",
                         lambda: runs.delete(args.id))
    print(printable(f"run {args.id} ({run.name}) deleted" + (f"; its model {run.model_id} stays registered"
                                                             if run.model_id else "")))
    return 0


def _summary(runs: RunStore, run) -> dict:
    metrics = runs.metrics(run.id)
    per_epoch = metrics[metrics["name"].isin(["train_loss", "val_loss", "learning_rate"])]
    epochs = per_epoch.pivot_table(index="epoch", columns="name", values="value", aggfunc="last").reset_index()
    return {**asdict(run), "duration_s": run.duration_s,
            "best_val_loss": float(metrics.loc[metrics["name"] == "val_loss", "value"].min())
            if (metrics["name"] == "val_loss").any() else None,
            "epochs": epochs.to_dict("records")}
