"""The model half of the command line: train, predict, models, and the model part of status."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from argus_core.cli.output import printable
from argus_core.data import schema, store
from argus_core.errors import ArgusError, SettingsError
from argus_core.model import registry
from argus_core.model.config import CLASSICAL_FIT_BUDGET
from argus_core.model.registry import DEFAULT_ROOT as DEFAULT_MODELS


def positive_int(text: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    _add_train(sub)
    _add_forecasting(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from argus_core.model.config import TrainConfig

    defaults = TrainConfig()
    tr = sub.add_parser("train", help="train a TFT on a dataset and register it",
                        description="Train a Temporal Fusion Transformer (continues from the champion unless "
                                    "--fresh). Killed and started again with the same arguments, it resumes from "
                                    "its last checkpoint.")
    tr.add_argument("--dataset", required=True, type=Path)
    tr.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="models directory (default: models)")
    tr.add_argument("--epochs", type=int, default=defaults.epochs)
    tr.add_argument("--batch-size", type=_batch, default=defaults.batch_size,
                    help=f"windows per batch (default {defaults.batch_size}), or auto: {defaults.batch_size} on the "
                         "CPU, 1,024 on a GPU with the learning rate scaled by the square root of the ratio")
    tr.add_argument("--hidden-size", type=int, default=None,
                    help=f"network width (default: the recipe's; {defaults.hidden_size} with --recipe given)")
    tr.add_argument("--learning-rate", type=_rate, default=defaults.learning_rate,
                    help=f"a number (default {defaults.learning_rate}), or auto: Lightning's learning-rate finder's "
                         "suggestion")
    tr.add_argument("--find-lr", action="store_true",
                    help="run the learning-rate finder, print and record its suggestion and curve, train nothing")
    tr.add_argument("--batches-per-epoch", type=int, default=defaults.batches_per_epoch)
    tr.add_argument("--max-steps", type=int, default=defaults.max_steps, help="stop after K optimiser steps")
    tr.add_argument("--streaming", action="store_true", help="read day partitions in turn (bounded memory)")
    tr.add_argument("--fresh", action="store_true", help="start from scratch instead of the champion")
    tr.add_argument("--encoder-length", type=int, default=None,
                    help=f"steps of history per forecast (default: the recipe's; {defaults.encoder_length} with "
                         "--recipe given)")
    tr.add_argument("--accumulate", type=int, default=defaults.accumulate, metavar="K",
                    help="gradient accumulation: one optimiser step per K batches (default: 1)")
    tr.add_argument("--recipe", choices=("auto", "given"), default=None,
                    help="auto: train each candidate recipe (encoder length, centre, size) and keep the one with "
                         "the lowest validation MASE; given: train with the flags (default: auto unless "
                         "--encoder-length, --hidden-size or --center is given)")
    tr.add_argument("--horizon", type=int, default=defaults.horizon,
                    help="steps ahead (default: eight hours at the dataset's step: 96 at 5min, 32 at 15min)")
    tr.add_argument("--threads", type=int, default=None, help="torch threads (default: cores - 1)")
    tr.add_argument("--seed", type=int, default=defaults.seed)
    tr.add_argument("--time-limit", type=float, default=None, metavar="MINUTES")
    tr.add_argument("--layout", choices=("auto", "wide", "series"), default=defaults.layout,
                    help="wide: one series per server, all metrics at once (the simulated fleet); series: one "
                         "series per server and metric (imported data); auto picks series unless the dataset "
                         "has the schema v1 metrics")
    tr.add_argument("--holdout", type=float, default=defaults.holdout, metavar="SHARE",
                    help="keep the last SHARE of every series out of training, for `backtest` (default: 0)")
    tr.add_argument("--start-from", default=None, metavar="ID",
                    help="continue from this model (for example one pretrained on the simulated fleet) "
                         "instead of the champion")
    tr.add_argument("--incident-share", type=float, default=defaults.incident_share, metavar="SHARE",
                    help="share of each training batch drawn from windows around the dataset's known incidents "
                         f"(default: {defaults.incident_share})")
    tr.add_argument("--level-shifts", type=float, default=defaults.level_shifts, metavar="SHARE",
                    help="imported data: share of training windows given a step that lasts into the forecast, "
                         "so the network learns that a level can move and stay; an experiment that lost on both "
                         f"real sets over three seeds (default: {defaults.level_shifts})")
    tr.add_argument("--loss-scale", choices=("window", "global"), default=defaults.loss_scale,
                    help="window: each window's errors count in units of its own recent spread (default); "
                         "global: in units of each metric's spread over the whole training set")
    tr.add_argument("--center", choices=("mean", "last", "recent"), default=None,
                    help="where each window is centred before the network sees it: its encoder's mean, "
                         "its last value, or its last hour's mean (default: the model's own; mean for a new one)")
    tr.add_argument("--seasonal-inputs", choices=("auto", "none", "day", "week"), default=defaults.seasonal_inputs,
                    help="hand the network each metric's value one day (and one week) earlier at every step, as "
                         "known inputs: auto adds the day, and the week where the data holds it (default: auto)")
    tr.add_argument("--devices", type=int, default=defaults.devices, metavar="N",
                    help="train on N devices (GPUs, or CPU processes) at once through Lightning's DDP: each "
                         "takes its share of the windows (default: 1)")
    tr.add_argument("--num-nodes", type=int, default=defaults.num_nodes, metavar="M",
                    help="machines taking part (run the same command on each, with MASTER_ADDR, MASTER_PORT and "
                         "NODE_RANK set, or under torchrun or SLURM; default: 1)")
    tr.add_argument("--strategy", choices=("auto", "ddp", "ddp_find_unused_parameters_true"),
                    default=defaults.strategy, help="Lightning's strategy for several processes (default: ddp)")
    tr.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default=defaults.accelerator,
                    help="auto: a GPU when torch sees one (default); cpu: the CPU even on a GPU machine")
    tr.add_argument("--server", action="append", default=None, metavar="NAME",
                    help="fine-tune a copy of the fleet champion (or --start-from) on this server's history and "
                         "keep it as the server's own model when it beats the fleet model on the server's "
                         "hold-out (repeat for several servers)")
    tr.add_argument("--webhook", default=os.environ.get("ARGUS_WEBHOOK"),
                    help="URL called (Slack-compatible JSON) when the run completes or fails")
    tr.add_argument("--run-id", type=int, default=None, help=argparse.SUPPRESS)  # set by the training console
    tr.set_defaults(handler=_train)


def _add_forecasting(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("predict", help="forecast every server of a dataset",
                        description="Forecast p10/p50/p90 for every server and target metric over the model's "
                                    "horizon after --as-of (default: the end of the data).")
    pr.add_argument("--dataset", required=True, type=Path)
    pr.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    pr.add_argument("--model", default=None, help="model id (default: the champion)")
    pr.add_argument("--as-of", default=None, help="forecast from this time (UTC), using only data up to it")
    pr.add_argument("--output", required=True, type=Path, help="parquet (or .csv) file for the forecast")
    pr.set_defaults(handler=_predict)

    bt = sub.add_parser("backtest", help="score a model on data it did not train on, beside baselines",
                        description="Rolling-origin backtest on each series' hold-out (train --holdout) or the data "
                                    "after the model's training span: the TFT, naive, seasonal naive and a "
                                    "classical model (statsforecast, optional) in the same run. MASE, pinball loss "
                                    "and p10-p90 coverage per series and overall; saved with the model.")
    bt.add_argument("--dataset", required=True, type=Path)
    bt.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    bt.add_argument("--model", default=None, help="model id (default: the champion)")
    bt.add_argument("--origins", type=positive_int, default=None, metavar="N",
                    help="the last N origins of each series (default: every origin that fits)")
    bt.add_argument("--every", type=positive_int, default=None, metavar="STEPS", help="steps between origins (default: "
                                                                               "one horizon)")
    bt.add_argument("--horizon", type=int, default=None,
                    help="steps ahead; must be the model's horizon (default: the model's)")
    bt.add_argument("--classical-origins", type=positive_int, default=None, metavar="N",
                    help="fit the classical model at the last N origins of each series (default: as many as keep "
                         f"it to {CLASSICAL_FIT_BUDGET} fits, at least one per series; where that is not every "
                         "origin, every model is also scored on those origins)")
    bt.add_argument("--classical", choices=("autoarima", "autoets", "mstl", "none"), default="autoarima",
                    help="classical baseline from statsforecast (default: autoarima; mstl: a one-day season with an "
                         "AutoETS trend; skipped when not installed)")
    bt.add_argument("--json", action="store_true", help="print the summary as JSON")
    bt.set_defaults(handler=_backtest)

    mo = sub.add_parser("models", help="list, promote or roll back models")
    mo.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    mo_sub = mo.add_subparsers(title="actions", metavar="ACTION")
    ls = mo_sub.add_parser("list", help="every registered model")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_models_list)
    pm = mo_sub.add_parser("promote", help="make a model the champion (when its backtest beats the champion's)",
                           description="Shows the candidate's backtest against the champion's on the same windows and "
                                       "promotes it only when it beats the champion (served MASE relative to seasonal "
                                       "naive), keeps its coverage in 0.70-0.90 and makes no metric more than 10% "
                                       "worse. --force promotes anyway and says so in the audit trail.")
    pm.add_argument("model_id", metavar="ID")
    pm.add_argument("--force", action="store_true", help="promote although the guard refuses (recorded)")
    pm.set_defaults(handler=_models_promote)
    rb = mo_sub.add_parser("rollback", help="bring back the previous champion")
    rb.set_defaults(handler=_models_rollback)
    for action in (ls, pm, rb):  # `models list --models DIR` as `runs list --models DIR` takes it
        action.add_argument("--models", type=Path, default=argparse.SUPPRESS,
                            help="models directory (default: models)")
    mo.set_defaults(handler=_models_list, json=False)


def _backtest(args: argparse.Namespace) -> int:
    import json

    from argus_core.model import Forecaster, backtest_table, json_safe, run_backtest

    store.read_manifest(args.dataset)  # a clear error before the slow imports
    if args.horizon is not None:
        horizon = Forecaster.champion(args.models, args.model).horizon
        if args.horizon != horizon:
            print(f"error: the model forecasts {horizon} steps ahead; --horizon {args.horizon} needs a model "
                  f"trained with --horizon {args.horizon}", file=sys.stderr)
            return 1
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    result = run_backtest(args.dataset, args.models, args.model, origins=args.origins, every=args.every,
                          classical=args.classical, log=log, classical_origins=args.classical_origins)
    if args.json:
        print(json.dumps(json_safe({k: v for k, v in result.summary.items() if k != "per_series"}), indent=1))
    else:
        for line in backtest_table(result.summary):
            print(line)
        print(f"saved with model {result.summary['model_id']} ({result.summary['seconds']:.0f} s)")
    return 0


def training_config(args: argparse.Namespace):
    """(TrainConfig, webhook) of a `train` command: the run record's settings, whole, when the
    console started it (``--run-id``); the flags otherwise."""
    from argus_core.model.config import TrainConfig

    if args.run_id is not None:
        from argus_core.runs import jobs
        from argus_core.runs.store import RunStore, default_path

        return jobs.run_config(RunStore(default_path(args.models)), args.run_id)
    defaults = TrainConfig()
    shaped = any(value is not None for value in (args.encoder_length, args.hidden_size, args.center))
    recipe = args.recipe or ("given" if shaped else "auto")
    config = TrainConfig(
        recipe=recipe, accumulate=args.accumulate, epochs=args.epochs,
        find_lr="only" if args.find_lr else "use" if args.learning_rate == "auto" else "off",
        batch_size=defaults.batch_size if args.batch_size == "auto" else args.batch_size,
        batch_size_auto=args.batch_size == "auto",
        hidden_size=args.hidden_size if args.hidden_size is not None else defaults.hidden_size,
        learning_rate=defaults.learning_rate if args.learning_rate == "auto" else args.learning_rate,
        batches_per_epoch=args.batches_per_epoch, max_steps=args.max_steps,
        streaming=args.streaming, fresh=args.fresh,
        encoder_length=args.encoder_length if args.encoder_length is not None else defaults.encoder_length,
        horizon=args.horizon,
        threads=args.threads, seed=args.seed, time_limit_minutes=args.time_limit,
        layout=args.layout, holdout=args.holdout, start_from=args.start_from, loss_scale=args.loss_scale,
        incident_share=args.incident_share, level_shifts=args.level_shifts, center=args.center,
        seasonal_inputs=args.seasonal_inputs,
        devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy, accelerator=args.accelerator,
    )
    return config, args.webhook


def _resumes_a_run(models: Path, run_id: int) -> bool:
    """Whether run ``run_id`` was started to resume another (its checkpoint is then taken on purpose,
    even one a failed run left)."""
    from argus_core.runs.store import RunStore, default_path

    return RunStore(default_path(models)).get(run_id).resumed_from is not None


def _train(args: argparse.Namespace) -> int:
    from argus_core.model import accelerator_problem, global_rank
    from argus_core.model import fit as train
    from argus_core.model.config import check
    from argus_core.runs.recording import recorded_training

    config, webhook = training_config(args)
    problems = check(config)  # the same check as the training console's
    if problems:
        print("error: invalid training settings: " + "; ".join(problems), file=sys.stderr)
        return 2
    store.read_manifest(args.dataset)  # a clear error before the slow imports
    missing = accelerator_problem(config)
    if missing:  # before anything is recorded
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if args.server:  # per-server fine-tuning: not a run of the run store
        from argus_core.model import fit_server as specialise

        outcomes = specialise(args.dataset, args.models, args.server, config, log=lambda line: print(line, flush=True))
        kept = [o for o in outcomes if o.kept]
        print(f"{len(kept)} of {len(outcomes)} server(s) now have their own model"
              + (": " + ", ".join(f"{o.server} ({o.model_id})" for o in kept) if kept else ""))
        return 0
    if global_rank(config.devices) != 0:
        # another process of a multi-process training: rank 0 records the run and saves the model
        train(args.dataset, args.models, config, log=lambda line: None)
        return 0
    if config.find_lr == "only":  # a sweep, not a training: nothing for the run store
        train(args.dataset, args.models, config, log=lambda line: print(line, flush=True))
        return 0
    resuming = args.run_id is not None and _resumes_a_run(args.models, args.run_id)
    if args.run_id is None:  # started from a shell (the console records the trainings it starts)
        from argus_core import access

        access.record(args.models, access.shell_actor(), "train.start", str(args.dataset),
                      detail="from the command line")
    result = recorded_training(args.models, args.dataset, config, lambda callbacks: train(
        args.dataset, args.models, config, log=lambda line: print(line, flush=True), extra_callbacks=callbacks,
        resume_failed=resuming), run_id=args.run_id, webhook=webhook)
    print(f"trained {result.model_id} in {result.seconds:.0f} s on {result.device}: {result.epochs} epochs, "
          f"{result.steps} steps, best val loss {result.best_val_loss:.4f}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from argus_core.model import Forecaster

    store.read_manifest(args.dataset)
    as_of = parse_as_of(args.as_of)
    model = Forecaster.champion(args.models, args.model)
    history = _history_for(args.dataset, model.spec, as_of)
    result = model.forecast(history, as_of=as_of)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".csv":
        result.quantiles.to_csv(args.output, index=False)
    else:
        result.quantiles.to_parquet(args.output, index=False)
    servers = result.quantiles[schema.SERVER].nunique()
    print(f"forecast of {servers} servers x {len(model.spec.targets)} metrics x {model.spec.horizon} steps "
          f"from {result.as_of} with {model.model_id} -> {args.output}")
    for server, reason in result.skipped.items():
        print(f"  skipped {server}: {reason}")
    return 0


def parse_as_of(text: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a UTC time; SettingsError naming the value when it is not one."""
    if text is None:
        return None
    times, unreadable, _ = schema.parse_times(pd.Series([text], dtype="string"))
    if unreadable.any() or pd.isna(times.iloc[0]):
        raise SettingsError(f"--as-of {text!r} is not a time: give an ISO 8601 time such as 2026-03-11T15:00Z "
                            "(UTC unless it carries an offset), between 1677 and 2262")
    return times.iloc[0]


def _history_for(dataset: Path, spec, as_of: pd.Timestamp | None) -> pd.DataFrame:
    """The encoder's window (plus one step) up to ``as_of`` or the end of the data."""
    history = store.read_recent(dataset, spec.history_steps + store.LATE_SLACK, as_of)
    if history.empty:
        raise ArgusError(f"{dataset} has no data in the {spec.encoder_length} steps up to {as_of or 'its end'}")
    return history


def _models_list(args: argparse.Namespace) -> int:
    reg = registry.read(args.models)
    if args.json:
        print(json.dumps(reg, indent=2))
        return 0
    if not reg["models"]:
        print(f"no models in {args.models}; train one with `python -m argus_core train --dataset DIR`")
        return 0
    for model_id, entry in sorted(reg["models"].items()):
        mark = "*" if model_id == reg.get("champion") else " "
        loss = entry.get("val_loss")
        own = (f"  {entry['server']}'s own model (from {entry.get('fleet_model')})"
               if entry.get("status") == "specialist" else "")
        print(f"{mark} {model_id}  {entry.get('status', '?'):<10}  val loss {loss if loss is None else f'{loss:.4f}'}"
              f"  {entry.get('created', '')}{own}")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    from argus_core import access
    from argus_core.model import judge, promote

    registry.promotable(args.models, args.model_id)  # an unknown model: its own message, before any comparison
    verdict = judge(args.models, args.model_id)
    if verdict.rows:
        print(f"  {'backtest, same windows':<48} {'champion':>10}  {'candidate':>10}")
    for row in verdict.rows:
        figures = [row["champion"], row["candidate"]]
        print(printable(f"  {row['figure']:<48} " + "  ".join(f"{v:>10.3f}" if isinstance(v, float) else f"{v!s:>10}"
                                                              for v in figures)))
    if verdict.worse:
        print(printable("what gets worse: " + "; ".join(verdict.worse)))
    if not verdict.ok and not args.force:
        print(printable(f"error: {verdict.summary()}"), file=sys.stderr)
        if not verdict.scored and verdict.dataset:
            print(printable(f"score them with `python -m argus_core backtest --dataset {verdict.dataset} --models "
                            f"{args.models} --model ID` for each, or promote anyway with --force"), file=sys.stderr)
        return 1
    detail = "" if verdict.ok else "forced past the guard: " + "; ".join(verdict.reasons)
    # refused, the registry unchanged, when the model does not load; recorded in the audit trail
    access.perform(args.models, access.shell_actor(), "model.promote", args.model_id,
                   lambda: promote(args.models, args.model_id), detail=detail)
    print(f"{args.model_id} is now the champion" + (" (forced past the guard)" if detail else ""))
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from argus_core import access

    reg = access.perform(args.models, access.shell_actor(), "model.rollback", registry.champion_model_id(args.models)
                         or "", lambda: registry.rollback(args.models))
    print(f"rolled back: {reg['champion']} is the champion again")
    return 0


def print_model_status(models: Path, dataset: Path | None) -> None:
    champion = registry.champion_model_id(models)
    if not champion:
        print(f"models: none in {models} (train one with `python -m argus_core train --dataset DIR`)")
        return
    print(f"champion: {champion} ({models})")
    if dataset is None:
        return
    from argus_core import anomaly, fleet
    from argus_core.fleet import live_state
    from argus_core.model import Forecaster

    model = Forecaster.champion(models, champion)
    try:
        history = _history_for(dataset, model.spec, None)
        found = fleet.assess(history, model, rules=live_state.rules_for(dataset),
                             judge=anomaly.window_judge(model.path, dataset))
    except ArgusError as exc:
        print(f"  no forecast: {exc}")
        return
    ranked = found.ranking
    print(f"  ten servers most at risk in the next {schema.span_words(model.step * model.horizon)} "
          f"(from {found.as_of}):")
    for row in ranked.head(10).itertuples(index=False):
        when = "no breach at p90" if pd.isna(row.breach_p90) else f"p90 breach {row.breach_p90:%m-%d %H:%M}"
        likely = "" if pd.isna(row.breach_p50) else f", p50 breach {row.breach_p50:%m-%d %H:%M}"
        now = f"  {row.now}" if row.now else ""
        print(f"    {printable(str(row.server_name)):<12} {row.level:<8} score {row.score:5.1f}  {row.driver:<16} "
              f"P(critical) {row.p_critical:.2f}  {when}{likely}{now}")
    abnormal = found.abnormal
    if abnormal is None:
        print("  abnormal now: not known, no detector this Argus can read beside the champion "
              "(`python -m argus_core anomaly fit --dataset DIR`)")
        return
    odd = abnormal[abnormal["abnormal"]]
    print(f"  abnormal now: {len(odd)} of {len(abnormal)} servers")
    for row in odd.head(10).itertuples(index=False):
        print(printable(f"    {row.server_name:<12} deviation {row.deviation:.1f} (fast threshold {row.tau_fast:.1f}); "
                        f"off: {row.drivers}"))


def _or_auto(kind: type, what: str):
    """An argparse type: a ``kind`` value, or the word "auto"."""
    def parse(text: str):
        if text == "auto":
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is neither {what} nor auto") from None
    return parse


_batch = _or_auto(int, "a whole number")  # --batch-size: auto is larger on a GPU
_rate = _or_auto(float, "a number")  # --learning-rate: auto is the learning-rate finder's suggestion

