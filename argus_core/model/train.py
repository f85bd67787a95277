"""Training a TFT with Lightning: standard or streaming, incremental or fresh, resumable.

``train(dataset_dir, model_root, TrainConfig(...))`` trains, saves a model directory and
registers it (the first model becomes champion). Progress goes to ``log`` as one line per epoch:

    epoch  3/20  train 0.4123  val 0.3981 BEST  lr 3.0e-03  12.4 s/epoch  ETA 3m 28s

Checkpoints (weights and optimiser state in safetensors, counters in JSON; no pickle) are
written every ``checkpoint_minutes`` and at every epoch end under
``<model_root>/.checkpoints/<run key>``. Running the same training again after a crash or a
SIGKILL finds them and resumes instead of starting over.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core import atomic
from argus_core.data import schema, store
from argus_core.errors import ArgusError, DatasetError, SettingsError
from argus_core.model import artifacts, datasets, distributed, layout, registry
from argus_core.model import config as train_config
from argus_core.model import inputs as forecast_inputs
from argus_core.model.callbacks import Checkpoints, ProgressLine, ThreadGovernor
from argus_core.model.config import GPU_BATCH, TrainConfig, check, horizon_steps, processes
from argus_core.model.spec import ModelSpec, seasonal_lags_for, spec_for, with_spreads
from argus_core.model.streaming import streaming_loaders, streaming_parameters
from argus_core.model.threads import use_threads

Log = Callable[[str], None]


@dataclass
class TrainResult:
    model_id: str
    path: Path
    best_val_loss: float
    epochs: int
    steps: int
    seconds: float
    resumed_from: dict | None
    became_champion: bool
    device: str
    rank: int = 0  # the process's rank in a multi-process training: only rank 0 saves and registers


def train(dataset_dir: str | Path, model_root: str | Path, config: TrainConfig | None = None,
          log: Log = print, extra_callbacks: list | None = None, resume_failed: bool = False) -> TrainResult:
    """Train (or continue) a TFT on ``dataset_dir`` and register it in ``model_root``.

    Killed and started again with the same settings, it resumes from its last checkpoint; a run
    killed while saving saves that same model on the rerun instead of training on. A run that
    raised leaves its checkpoint marked failed: the next run starts over unless ``resume_failed``
    (an explicit resume of that run). Raises ArgusError subclasses for anything a user can fix."""
    import lightning.pytorch as pl

    config = config or TrainConfig()
    problems = check(config)
    if problems:
        raise SettingsError("invalid training settings: " + "; ".join(problems))
    if config.recipe == "auto" and not config.streaming and not config.start_from and config.find_lr != "only":
        return _train_recipes(dataset_dir, model_root, config, log, extra_callbacks)
    started = time.perf_counter()
    world = processes(config)
    # each process of a multi-process training gets its share of the cores
    threads = use_threads(config.threads or (max(1, (os.cpu_count() or 2) // world) if world > 1 else None))
    if distributed.global_rank(config.devices) != 0:
        log = _quiet  # one voice: rank 0's
    pl.seed_everything(config.seed, verbose=False)
    _quiet_libraries(world)
    config, on_gpu = _on_device(config, log)

    manifest = store.read_manifest(dataset_dir)
    config = replace(config, horizon=horizon_steps(config.horizon, manifest.get("step", schema.DEFAULT_STEP)))
    model_root = Path(model_root)
    artifacts.remove_stale_staging(model_root)  # a kill during a save leaves its temporary directory
    frame = None if config.streaming else store.read(
        dataset_dir, servers=None if config.server is None else [config.server], manifest=manifest)
    if config.server is not None and frame.empty:  # one server's own model (model.specialise)
        raise DatasetError(f"no server named {config.server!r} in {dataset_dir}")
    spec, champion = _spec_to_train(model_root, config, manifest, frame, log)
    # a GPU run keeps its training windows on its GPU (each process of a DDP run on its own one)
    data = _training_data(dataset_dir, manifest, spec, config, frame, champion,
                          f"cuda:{distributed.local_rank()}" if on_gpu else None)
    network = data.network
    if champion is not None:
        network.load_state_dict(champion.network.state_dict())
        log(f"continuing from champion {champion.model_id} (use --fresh to start from scratch)")
    lr_found = find_learning_rate(network, data.train_loader, model_root, log) if config.find_lr != "off" else None
    if config.find_lr == "only":
        record = model_root / ".lr-find" / f"{train_config.run_key(dataset_dir, manifest, config)}.json"
        atomic.write_json(record, {"dataset": str(Path(dataset_dir).resolve()), **lr_found})
        log(f"recorded in {record}; train at it with --learning-rate auto (or --learning-rate "
            f"{lr_found['suggestion']:.2e})")
        return TrainResult("", record, math.nan, 0, 0, time.perf_counter() - started, None, False, "")

    run_key = train_config.run_key(dataset_dir, manifest, config)
    checkpoints = Checkpoints(train_config.checkpoint_dir(model_root, dataset_dir, manifest, config), config, log)
    resumed = checkpoints.restore(network, resume_failed=resume_failed)
    epochs_left = config.epochs - (resumed["epoch"] + 1 if resumed else 0)
    # the run had finished its epochs (or was saving its model) when it died: save, do not train on
    finished = resumed is not None and (epochs_left <= 0 or bool(resumed.get("final_model_id")))
    time_limit_s = config.time_limit_minutes * 60 if config.time_limit_minutes else None
    progress = ProgressLine(config.epochs, epochs_left, log, checkpoints, time_limit_s)
    callbacks = [progress, checkpoints, *(extra_callbacks or [])]
    if threads > 1 and not on_gpu and world == 1:  # a busy core would stall every multi-threaded step
        callbacks.append(ThreadGovernor(threads, log))
    trainer = _trainer(config, epochs_left, callbacks, on_gpu, world, model_root / ".tensorboard", run_key)
    if finished:
        log("the run had finished training when it stopped: saving its model")
    else:
        try:
            trainer.fit(network, train_dataloaders=data.train_loader, val_dataloaders=data.val_loader)
        except Exception as exc:
            checkpoints.mark(failed=f"{type(exc).__name__}: {exc}"[:300])
            raise
    if not trainer.is_global_zero:  # rank 0 saves and registers the model; this rank's work is done
        return TrainResult("", Path(), progress.best, progress.epochs_seen, trainer.global_step,
                           time.perf_counter() - started, resumed, False, "", rank=trainer.global_rank)

    if progress.best_state is not None:
        network.load_state_dict(progress.best_state)
    if not math.isfinite(progress.best):
        checkpoints.clear()
        raise ArgusError("training ended without a finite validation loss (no validation ran, or the loss "
                         "diverged): nothing was saved or registered; train for more steps or lower the "
                         "learning rate")
    network = network.float().cpu().eval()
    spec, table = data.spec, None
    if not config.streaming:  # what serves each series: the TFT, a simple method or a blend (model.serving)
        table = _serving(network, data.prepared, spec, data.parameters, data.validation_start, config, log)
        if table is not None:
            spec = replace(spec, fallback_season=table.season)
    device = _device_name(on_gpu, threads, world)
    seconds = time.perf_counter() - started
    model_id = (resumed or {}).get("final_model_id") or _model_id(run_key)
    checkpoints.mark(final_model_id=model_id)  # a kill from here on: the rerun saves this same model
    info = _training_info(dataset_dir, manifest, config, data, spec, progress, trainer, resumed, finished,
                          seconds, device, champion, table, lr_found)
    path = model_root / model_id
    if not artifacts.is_complete(path):  # a rerun after a kill between the save and the registration
        path = artifacts.save(model_root, model_id, network, spec, data.parameters, asdict(config), info, table)
    became_champion = _register(dataset_dir, model_root, model_id, path, config, info, log)
    checkpoints.clear()
    log(f"saved {model_id} (best val loss {progress.best:.4f}) to {path}"
        + ("; it is the champion (first model)" if became_champion else "" if config.server is not None
           else f"; promote it with `python -m argus_core models promote {model_id}`"))
    return TrainResult(model_id, path, progress.best, info["epochs"], info["steps"], seconds, resumed,
                       became_champion, device)


# --- train()'s phases ---------------------------------------------------------------------------------

def _quiet_libraries(world: int) -> None:
    """Keep the libraries' advice out of the terminal: Argus says what trains and how it ended."""
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # Lightning's banner ("GPU available: ...", a tip to install its cloud logger, "`Trainer.fit`
    # stopped"): Argus says which device trains, and how training ended, in its own lines. Several
    # processes keep it: "All distributed processes registered. Starting with N processes" is the
    # one sign that every process joined
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING if world == 1 else logging.INFO)
    warnings.filterwarnings("ignore", ".*is an instance of `nn.Module`.*")
    # several processes: the validation loss needs no reduction (every rank scores the same windows),
    # and the windows are sharded by WindowBatches itself (no loader workers)
    warnings.filterwarnings("ignore", ".*sync_dist=True.*")
    warnings.filterwarnings("ignore", ".*`IterableDataset` has `__len__` defined.*")


def _on_device(config: TrainConfig, log: Log) -> tuple[TrainConfig, bool]:
    """(the settings for the device that trains, whether it is a GPU); SettingsError when the
    device asked for is not here. ``--batch-size auto`` on a GPU: GPU_BATCH windows per batch, the
    learning rate scaled by the square root of the growth."""
    import torch

    missing = accelerator_problem(config)
    if missing:
        raise SettingsError(missing)
    on_gpu = config.accelerator != "cpu" and torch.cuda.is_available()
    if config.batch_size_auto and on_gpu and config.batch_size < GPU_BATCH:
        scaled = config.learning_rate * math.sqrt(GPU_BATCH / config.batch_size)
        log(f"batch size auto on a GPU: {GPU_BATCH} windows per batch, learning rate {config.learning_rate:.1e} -> "
            f"{scaled:.1e} (scaled by the square root of {GPU_BATCH // config.batch_size})")
        config = replace(config, batch_size=GPU_BATCH, learning_rate=scaled)
    return config, on_gpu


def _spec_to_train(model_root: Path, config: TrainConfig, manifest: dict, frame: pd.DataFrame | None,
                   log: Log) -> tuple[ModelSpec, artifacts.LoadedModel | None]:
    """What the model reads and writes, and the champion it continues from (None: a fresh start).
    A continued model keeps the champion's spec, but for the loss and the centre when asked."""
    base_spec = spec_for(
        manifest.get("metrics", list(schema.METRIC_COLUMNS)), config.encoder_length, config.horizon,
        manifest.get("step", schema.DEFAULT_STEP), thresholds=thresholds_of(manifest),
        layout=layout_of(config, manifest))
    base_spec = replace(base_spec, seasonal_lags=() if frame is None else seasonal_lags_for(
        config.seasonal_inputs, base_spec.step, config.horizon, _history_steps(frame, base_spec, config),
        config.encoder_length))
    champion = None if config.fresh else _compatible_champion(model_root, config, base_spec, log)
    spec = base_spec if champion is None else (
        replace(base_spec, target_spreads=champion.spec.target_spreads, profiles=champion.spec.profiles,
                center=champion.spec.center)
        if base_spec.layout == "series" else champion.spec)
    if spec.layout == "wide" and spec.normalization == "encoder":  # a continued model may change its loss
        # per-window weights come with Argus's batches; the stock loader of streaming runs has none
        spec = replace(spec, loss_scale="global" if config.streaming else config.loss_scale)
        if config.center is not None:
            spec = replace(spec, center=config.center)
    elif spec.layout == "series" and config.center is not None:
        spec = replace(spec, center=config.center)
    return spec, champion


@dataclass
class _TrainingData:
    spec: ModelSpec  # with the target spreads measured on the data
    parameters: dict  # the fitted dataset parameters (encoders, normalisers)
    network: object  # the TFT, built for them
    train_loader: object
    val_loader: object
    span: tuple[str, str]  # the data's first and last timestamp
    prepared: pd.DataFrame | None = None  # the model rows (None when streaming)
    validation_start: dict[str, int] | int | None = None  # per series (or for all): where validation starts
    held: dict[str, int] = field(default_factory=dict)  # per series: where its hold-out starts


def _training_data(dataset_dir: str | Path, manifest: dict, spec: ModelSpec, config: TrainConfig,
                   frame: pd.DataFrame | None, champion, batch_device: str | None) -> _TrainingData:
    """The model rows split into training, validation and hold-out, the fitted dataset parameters
    (the champion's when continuing), the network and its loaders."""
    parameters = champion.dataset_parameters if champion else None
    if parameters is not None and spec.normalization == "encoder":
        for normalizer in datasets.target_normalizers(parameters):  # a continued model may change its centre
            normalizer.center_on = spec.center
    per_series = spec.layout == "series" or config.holdout > 0
    prepared, validation_start, held = None, None, {}
    if config.streaming:
        if per_series:
            raise ArgusError("streaming training covers the wide layout without a hold-out; drop --streaming")
        parameters, spec, span = streaming_parameters(dataset_dir, manifest, spec, config, parameters)
    else:
        prepared = layout.prepare(frame, spec)  # DatasetError when a metric the model needs is missing
        if not spec.target_spreads:
            spec = with_spreads(spec, prepared)
        span = (str(frame[schema.TIMESTAMP].min()), str(frame[schema.TIMESTAMP].max()))
        if per_series:  # DatasetError below when the history is too short
            prepared, validation_start, held = layout.split_per_series(prepared, spec, config.holdout,
                                                                         config.validation_fraction)
            train_ds = parameter_dataset(prepared, spec, parameters)
        else:
            train_ds, val_ds = datasets.training_datasets(prepared, spec, config.validation_fraction, parameters)
            validation_start = int(val_ds.min_prediction_idx)
        parameters = train_ds.get_parameters()
        if not per_series:
            train_loader = train_ds.to_dataloader(train=True, batch_size=config.batch_size, num_workers=0)
            val_loader = val_ds.to_dataloader(train=False, batch_size=config.batch_size, num_workers=0)

    network = build_network(parameters, spec, config)
    if config.streaming:  # one day partition at a time, cut by Argus's own batches
        train_loader, val_loader = streaming_loaders(dataset_dir, manifest, spec, config, parameters, network)
    elif forecast_inputs.supported(parameters):
        # same windows and numbers as the stock dataset, gathered per batch instead of per sample
        train_loader, val_loader = _window_loaders(prepared, spec, parameters, network, config,
                                                   validation_start, _incidents(dataset_dir, spec), batch_device)
    elif per_series:
        raise ArgusError("these dataset parameters cannot be trained per series")
    return _TrainingData(spec, parameters, network, train_loader, val_loader, span, prepared, validation_start, held)


def _trainer(config: TrainConfig, epochs_left: int, callbacks: list, on_gpu: bool, world: int,
             logs: Path, run_key: str):
    """The Lightning trainer of one run: early stopping on the validation loss, bf16 on a GPU, DDP
    over several processes, no Lightning checkpoints (Argus's own, in safetensors)."""
    import lightning.pytorch as pl

    return pl.Trainer(
        max_epochs=epochs_left,
        max_steps=config.max_steps,
        accelerator="gpu" if on_gpu else "cpu",
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=("ddp" if config.strategy == "auto" else config.strategy) if world > 1 else "auto",
        precision="bf16-mixed" if on_gpu else "32-true",
        # a run of fewer steps than one epoch ends its one epoch there, so it is validated
        limit_train_batches=min(config.batches_per_epoch, config.max_steps) if config.max_steps > 0
        else config.batches_per_epoch,
        limit_val_batches=config.val_batches,
        gradient_clip_val=0.1,
        accumulate_grad_batches=config.accumulate,
        callbacks=[pl.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, mode="min"),
                   pl.callbacks.LearningRateMonitor(logging_interval="epoch"), *callbacks],
        logger=pl.loggers.TensorBoardLogger(str(logs), name=run_key),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        max_time={"minutes": config.time_limit_minutes} if config.time_limit_minutes else None,
    )


def _device_name(on_gpu: bool, threads: int, world: int) -> str:
    import torch

    device = torch.cuda.get_device_name(0) if on_gpu else f"cpu ({threads} threads)"
    return f"{world} x {device} (ddp)" if world > 1 else device


def _training_info(dataset_dir, manifest: dict, config: TrainConfig, data: _TrainingData, spec: ModelSpec,
                   progress, trainer, resumed: dict | None, finished: bool, seconds: float, device: str,
                   champion, table, lr_found: dict | None) -> dict:
    """``training_info.json``: what the model was trained on, how, how long and where."""
    return {
        "dataset": str(Path(dataset_dir).resolve()),
        "data_span": list(data.span),
        "data_fingerprint": store.fingerprint(manifest),
        "servers": [config.server] if config.server is not None else sorted(manifest.get("servers", {})),
        "layout": spec.layout,
        "holdout": config.holdout,
        # where each series' hold-out starts (what `backtest` scores): never trained on
        "evaluation_start": {key: _stamp(idx, spec) for key, idx in data.held.items()} if config.holdout > 0 else {},
        "best_val_loss": progress.best,
        "epochs": progress.epochs_seen + (resumed["epoch"] + 1 if resumed else 0),
        "steps": (0 if finished else trainer.global_step) + (resumed["global_step"] if resumed else 0),
        "seconds": round(seconds, 1),
        "device": device,
        "resumed_from": resumed,
        "continued_from": champion.model_id if champion else None,
        "serving": table.counts() if table is not None else {"tft": "all"},
        "lr_find": lr_found,
        "versions": _versions(),
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def _register(dataset_dir: str | Path, model_root: Path, model_id: str, path: Path, config: TrainConfig,
              info: dict, log: Log) -> bool:
    """Fit the abnormal-now detector beside a fleet model and register it (the first model becomes
    champion); whether it is the champion. A server's own model is registered by
    ``model.specialise`` once it has beaten the fleet model, and scored by the fleet's detector."""
    if config.server is not None:
        return False
    # a streaming run reads a few days at a time: so does its detector (the last two days)
    _fit_anomaly(dataset_dir, path, log, days=2.0 if config.streaming else ANOMALY_DAYS)
    if model_id in registry.read(model_root).get("models", {}):  # registered before a kill: not twice
        return registry.champion_model_id(model_root) == model_id
    return registry.register(model_root, model_id, {
        "created": info["created"], "val_loss": info["best_val_loss"], "dataset": info["dataset"],
        "continued_from": info["continued_from"],
    })


def accelerator_problem(config: TrainConfig) -> str | None:
    """Why ``config`` cannot train on this machine's devices (``--accelerator gpu`` without a GPU)."""
    import torch

    if config.accelerator == "gpu" and not torch.cuda.is_available():
        return "--accelerator gpu: torch sees no GPU here (a CPU build of torch, or no CUDA device)"
    return None


# --- choosing the recipe ------------------------------------------------------------------------------

# What `train --recipe auto` tries, each on the same data, the winner chosen by validation MASE:
# a short encoder for series whose rhythm comes and goes (NAB's), a day for strictly daily ones,
# and a wider network on eight hours; the seasonal inputs hand every one of them the day-old value.
RECIPES = (  # cheapest first (jumpstarter-d2, one thread: 190 s, 250 s, 310 s)
    {"encoder_length": 48, "hidden_size": 16, "center": "mean"},
    {"encoder_length": 96, "hidden_size": 32, "center": "recent"},
    {"encoder_length": 288, "hidden_size": 16, "center": "recent"},
)


# a recipe replaces an earlier one only with a validation MASE at least 5 % lower (serving's margin):
# on nab-aws (17 series, four validation origins each) the three recipes came within 4 % of one
# another and the hold-out ranked them otherwise; on jumpstarter-d2 the day-long encoder won by 14 %
RECIPE_MARGIN = 0.05


def replaces(candidate: dict, best: dict) -> bool:
    """Whether a dearer recipe replaces the best so far: its validation MASE (geometric mean over
    series) at least ``RECIPE_MARGIN`` lower, and the median series no worse. The second is the
    guard against a degenerate series: one near-constant series can move the geometric mean on its
    own (its MASE over a near-zero scale), never the median."""
    if candidate["validation_mase"] > (1 - RECIPE_MARGIN) * best["validation_mase"]:
        return False
    mine, theirs = candidate.get("validation_median"), best.get("validation_median")
    return mine is None or theirs is None or mine <= theirs


def _train_recipes(dataset_dir: str | Path, model_root: str | Path, config: TrainConfig, log: Log,
                   extra_callbacks: list | None) -> TrainResult:
    """Train every recipe into a scratch directory, keep the one with the lowest validation MASE
    (the geometric mean over series of the TFT's raw-unit MASE on each series' validation window,
    which compares encoder lengths, as per-window losses cannot; a later recipe must beat the
    best so far by ``RECIPE_MARGIN``), and register only it."""
    import shutil

    from argus_core.model import serving

    model_root = Path(model_root)
    rank = distributed.global_rank(config.devices)
    if rank != 0:
        log = _quiet
    if not config.fresh and registry.champion_model_id(model_root):
        champion = artifacts.load(model_root / registry.champion_model_id(model_root))
        hp = artifacts.decode(champion.config.get("hparams", {}))
        shape = {"encoder_length": champion.spec.encoder_length, "hidden_size": int(hp.get("hidden_size", 32)),
                 "center": champion.spec.center}
        log(f"recipe: continuing from champion {champion.model_id} in its shape "
            f"({', '.join(f'{k} {v}' for k, v in shape.items())}); --fresh searches the recipes instead")
        return train(dataset_dir, model_root, replace(config, recipe="given", **shape), log, extra_callbacks)
    share = config.time_limit_minutes / len(RECIPES) if config.time_limit_minutes else None
    scratch = model_root / ".recipes" / train_config.run_key(dataset_dir, store.read_manifest(dataset_dir), config)
    tried = []
    for number, recipe in enumerate(RECIPES, start=1):
        settings = ", ".join(f"{k} {v}" for k, v in recipe.items())
        log(f"recipe {number}/{len(RECIPES)}: {settings}")
        candidate = replace(config, recipe="given", fresh=True, time_limit_minutes=share, **recipe)
        try:
            result = train(dataset_dir, scratch, candidate, lambda line: log(f"  {line}"), extra_callbacks)
        except ArgusError as exc:  # too little history for this encoder, for example
            log(f"  recipe {number} cannot train here: {exc}")
            tried.append({**recipe, "validation_mase": None, "error": str(exc)[:600]})
            continue
        if result.rank != 0:  # another rank trains each recipe beside rank 0, which scores and keeps one
            continue
        table = serving.load(result.path)
        score = table.validation_mase() if table is not None else float("nan")
        median = table.validation_median() if table is not None else float("nan")
        log(f"  recipe {number}: validation MASE {score:.3f} (geometric mean over series; median series "
            f"{median:.3f}), {result.seconds:.0f} s")
        tried.append({**recipe, "validation_mase": score if math.isfinite(score) else None,
                      "validation_median": median if math.isfinite(median) else None,
                      "seconds": round(result.seconds, 1), "model_id": result.model_id, "path": result.path})
    if rank != 0:
        return TrainResult("", Path(), math.nan, 0, 0, 0.0, None, False, "", rank=rank)
    scored = [t for t in tried if t.get("validation_mase") is not None]
    trained = [t for t in tried if "model_id" in t]
    if not trained:
        shutil.rmtree(scratch, ignore_errors=True)
        # the first recipe asks the least of the data: its reason holds for the others too
        raise ArgusError(f"no recipe could be trained on this data; the least demanding (encoder_length "
                         f"{tried[0]['encoder_length']}): {tried[0]['error']}")
    if not scored:  # the validation windows hold no season to scale MASE by (less than a day of history)
        log("recipe: no recipe has a validation MASE (each series needs a day of history before its "
            "validation window to scale it); keeping the cheapest one that trained")
        scored = [dict(trained[0], validation_mase=math.inf)]
    best = scored[0]  # the recipes go from cheapest to dearest: a dearer one must win clearly
    for tried_one in scored[1:]:
        if replaces(tried_one, best):
            best = tried_one
    chosen = {k: best[k] for k in RECIPES[0]}
    def score(t: dict) -> str:
        if t.get("validation_mase") is not None:
            return f"{t['validation_mase']:.3f}"
        return "no score" if "model_id" in t else "failed"

    log("recipe: chose " + ", ".join(f"{k} {v}" for k, v in chosen.items()) + " (validation MASE: "
        + ", ".join(f"{t['encoder_length']}/{t['hidden_size']}/{t['center']} {score(t)}" for t in tried) + ")")
    # the winner moves into the models directory with the search recorded; the others go
    info_path = best["path"] / "training_info.json"
    info = json.loads(info_path.read_text())
    info["recipe"] = {"chosen": chosen, "candidates": [{k: v for k, v in t.items() if k not in ("path",)}
                                                      for t in tried],
                      "score": "geometric mean over series of the TFT's validation MASE (raw units); a dearer "
                               "recipe must beat the best so far by the margin there, with a median series no "
                               "worse (validation_median)"}
    info["seconds"] = round(sum(t.get("seconds", 0) for t in tried), 1)
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    model_root.mkdir(parents=True, exist_ok=True)
    target = model_root / best["model_id"]
    shutil.move(str(best["path"]), str(target))
    shutil.rmtree(scratch, ignore_errors=True)
    became_champion = registry.register(model_root, best["model_id"], {
        "created": info["created"], "val_loss": info["best_val_loss"], "dataset": info["dataset"],
        "continued_from": None, "recipe": chosen})
    log(f"saved {best['model_id']} to {target}" + ("; it is the champion (first model)" if became_champion else
                                                    f"; promote it with `python -m argus_core models promote "
                                                    f"{best['model_id']}`"))
    return TrainResult(best["model_id"], target, info["best_val_loss"], info["epochs"], info["steps"],
                       info["seconds"], None, became_champion, info["device"])


# --- pieces -------------------------------------------------------------------------------------------

# the abnormal-now detector learns nominal behaviour from at most the last 30 days: a month holds
# every daily and weekly rhythm, and the whole of a 1,000-server x 60-day dataset, read again beside
# the training data, took the process past 23 GB (killed on this 24 GB machine)
ANOMALY_DAYS = 30.0


def _fit_anomaly(dataset_dir: str | Path, model_dir: Path, log: Log, days: float | None = None) -> None:
    """The abnormal-now detector, fitted on the same data and saved beside the model; a dataset
    it cannot be fitted on is said and skipped (the forecaster does not need it)."""
    from argus_core import anomaly

    started = time.perf_counter()
    try:
        detector = anomaly.fit_dataset(dataset_dir, days=days)
    except ArgusError as exc:
        log(f"no anomaly detector: {exc}")
        return
    detector.save(model_dir)
    log(f"anomaly detector fitted on {sum(m.rows for m in detector.profiles.values()):,} nominal rows "
        f"(each server against its previous {detector.baseline_text}) in {time.perf_counter() - started:.1f} s")


LR_RANGE = (1e-5, 1e-1)  # what the learning-rate finder sweeps, exponentially
LR_STEPS = 100  # batches of the sweep (Lightning's default: fewer leave one noisy batch per rate)


def find_learning_rate(network, train_loader, model_root: Path, log: Log, steps: int = LR_STEPS) -> dict:
    """Lightning's learning-rate finder on the training batches: ``steps`` batches at learning
    rates rising from 1e-5 to 1e-1 (one line of log, no progress bar), the loss after each, and
    Lightning's suggestion (the steepest fall of the smoothed loss). The network's weights are
    put back afterwards, from memory, and the network then trains at the suggestion.
    Returns {"suggestion", "curve": [[lr, loss], ...]}."""
    import copy
    import functools

    import lightning.pytorch as pl
    from lightning.pytorch.tuner import Tuner, lr_finder

    before = copy.deepcopy(network.state_dict())
    scratch = model_root / ".lr-find"
    scratch.mkdir(parents=True, exist_ok=True)
    trainer = pl.Trainer(accelerator="auto", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, default_root_dir=str(scratch), gradient_clip_val=0.1)
    # the finder saves a pickled checkpoint and loads it back to undo its sweep (and torch's
    # weights-only loading refuses that file); the weights are kept in memory here instead, so no
    # checkpoint is written or read
    trainer.save_checkpoint = lambda *args, **kwargs: None
    trainer._checkpoint_connector.restore = lambda *args, **kwargs: None
    trainer.strategy.remove_checkpoint = lambda *args, **kwargs: None
    bar = lr_finder.tqdm
    lr_finder.tqdm = functools.partial(bar, disable=True)  # its own progress bar would fill the run's log
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            finder = Tuner(trainer).lr_find(network, train_dataloaders=train_loader, min_lr=LR_RANGE[0],
                                            max_lr=LR_RANGE[1], num_training=steps, early_stop_threshold=None,
                                            update_attr=False)
    finally:
        lr_finder.tqdm = bar
    network.load_state_dict(before)
    curve = [[float(lr), float(loss)] for lr, loss in zip(finder.results["lr"], finder.results["loss"], strict=True)
             if math.isfinite(float(loss))]
    suggestion = finder.suggestion()
    if suggestion is None or not math.isfinite(float(suggestion)):
        raise ArgusError("the learning-rate finder found no suggestion (the loss never fell); set --learning-rate")
    suggestion = float(suggestion)
    network.hparams.learning_rate = suggestion
    points = " ".join(f"{lr:.0e}:{loss:.3f}" for lr, loss in curve[::10])
    log(f"learning-rate finder: suggestion {suggestion:.2e} (loss over {len(curve)} batches, "
        f"{LR_RANGE[0]:.0e} to {LR_RANGE[1]:.0e}: {points})")
    return {"suggestion": suggestion, "curve": curve}


def _serving(network, prepared: pd.DataFrame, spec: ModelSpec, parameters: dict,
             validation_start: int | dict[str, int], config: TrainConfig, log: Log):
    """The serving table chosen on the validation window (None when there is nothing to choose on)."""
    import torch

    from argus_core.errors import DatasetError
    from argus_core.model.batches import WindowBatches

    try:
        windows = WindowBatches(prepared, spec, datasets.reusable(parameters), list(network.hparams.x_reals),
                                list(network.hparams.x_categoricals), config.batch_size, complete=False,
                                first_start=validation_start, shuffle=False)
    except DatasetError as exc:
        log(f"serving: {exc}; the TFT serves every series")
        return None
    with torch.inference_mode():
        from argus_core.model.serving_choice import choose

        return choose(network, windows, spec, validation_start, log)


def build_network(parameters: dict, spec: ModelSpec, config: TrainConfig):
    import torch
    from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

    from argus_core.model.fast_tft import speed_up

    # from_dataset needs a dataset object only for its attributes; a stub frame of one series is enough
    stub = _stub_frame(spec)
    dataset = TimeSeriesDataSet.from_parameters(datasets.reusable(parameters), stub)
    return speed_up(TemporalFusionTransformer.from_dataset(
        dataset,
        hidden_size=config.hidden_size,
        attention_head_size=config.attention_heads,
        hidden_continuous_size=max(4, config.hidden_size // 2),
        dropout=config.dropout,
        learning_rate=config.learning_rate,
        loss=datasets.quantile_loss(spec, parameters),
        # per-target MAE/SMAPE/... on every step: nothing reads them, and they cost time
        logging_metrics=torch.nn.ModuleList([]),
        output_size=len(spec.quantiles) if len(spec.targets) == 1 else [len(spec.quantiles)] * len(spec.targets),
        optimizer="adam",
        # one fused update for the 643 weight tensors: 2 ms a step here, against 13 ms for Adam's per-tensor loop
        optimizer_params={"fused": True},
        reduce_on_plateau_patience=2,
        log_interval=-1,
    ))


def layout_of(config: TrainConfig, manifest: dict) -> str:
    """``config.layout``, or for "auto": series for an imported metric set, wide for schema v1's."""
    if config.layout != "auto":
        return config.layout
    return "series" if manifest.get("metric_kinds") else "wide"


def thresholds_of(manifest: dict) -> dict[str, schema.Threshold]:
    """The defaults, overridden by the thresholds a dataset's import recorded."""
    recorded = {m: schema.Threshold(float(t["warning"]), float(t["critical"]))
                for m, t in manifest.get("thresholds", {}).items()}
    return {**schema.THRESHOLDS, **recorded}


def parameter_dataset(prepared: pd.DataFrame, spec: ModelSpec, parameters: dict | None):
    """A stock dataset over the training rows, for its fitted encoders and scalers (series layout:
    on unit-free values, the numbers the network sees)."""
    fit_on = layout.unit_free(prepared) if spec.layout == "series" else prepared
    return datasets.stock_dataset(fit_on, spec, parameters)


def _incidents(dataset_dir: str | Path, spec: ModelSpec) -> pd.DataFrame:
    incidents = store.read_incidents(dataset_dir)
    if spec.layout == "series" and len(incidents):  # series are (server, metric) keys
        keys = [layout.series_key(s, m) for s, m in zip(incidents["server_name"], incidents["metric"], strict=True)]
        incidents = incidents.assign(server_name=keys)
    return incidents


def _stamp(time_idx: int, spec: ModelSpec) -> str:
    return (layout.EPOCH + pd.Timedelta(spec.step) * int(time_idx)).isoformat()


def _window_loaders(prepared: pd.DataFrame, spec: ModelSpec, parameters: dict, network,
                    config: TrainConfig, first_validation_start: int | dict[str, int], incidents: pd.DataFrame,
                    device: str | None = None):
    import torch

    from argus_core.model.batches import WindowBatches

    cut = first_validation_start
    last_train = ({k: v - spec.horizon for k, v in cut.items()} if isinstance(cut, dict) else cut - spec.horizon)
    common = dict(spec=spec, parameters=datasets.reusable(parameters), x_reals=list(network.hparams.x_reals),
                  categoricals=list(network.hparams.x_categoricals), batch_size=config.batch_size, device=device)
    train = WindowBatches(prepared, last_start=last_train, shuffle=True, seed=config.seed,
                          incidents=incidents, incident_share=config.incident_share, shard=True,
                          level_shifts=config.level_shifts, **common)
    # validation is not sharded: every rank scores the same windows with the same weights, so early
    # stopping and the best weights agree across ranks without a reduction of the loss
    validation = WindowBatches(prepared, first_start=cut, shuffle="once", seed=config.seed + 1, **common)
    return (torch.utils.data.DataLoader(train, batch_size=None),
            torch.utils.data.DataLoader(validation, batch_size=None))


def _stub_frame(spec: ModelSpec) -> pd.DataFrame:
    length = spec.encoder_length + spec.horizon
    stamps = pd.Series(pd.date_range("2026-01-05", periods=length, freq=spec.step, tz="UTC"))
    frame = pd.DataFrame({schema.TIMESTAMP: stamps, schema.SERVER: "stub", schema.PROFILE: spec.profiles[0]})
    for metric in spec.unknown_reals:
        frame[metric] = np.float32(1.0)
    return layout.prepare(frame, spec)


def _compatible_champion(model_root: Path, config: TrainConfig, spec: ModelSpec, log: Log):
    """The model to continue from (``start_from`` or the champion) when it fits this data and shape."""
    champion_id = config.start_from or registry.champion_model_id(model_root)
    if not champion_id:
        return None
    if config.start_from and not (model_root / config.start_from).is_dir():
        raise ArgusError(f"no model {config.start_from!r} in {model_root} to start from; "
                         "see `python -m argus_core models list`")
    try:
        champion = artifacts.load(model_root / champion_id)
    except ArgusError as exc:
        log(f"not continuing from champion {champion_id}: {exc}")
        return None
    hp = champion.config.get("hparams", {})
    hidden = artifacts.decode(hp).get("hidden_size") if hp else None
    if (hidden != config.hidden_size or champion.spec.encoder_length != config.encoder_length
            or champion.spec.horizon != config.horizon):
        log(f"champion {champion_id} has another shape (hidden {hidden}, encoder {champion.spec.encoder_length}, "
            f"horizon {champion.spec.horizon}); training a fresh model")
        return None
    if champion.spec.seasonal_lags != spec.seasonal_lags:
        log(f"champion {champion_id} has other seasonal inputs (lags {list(champion.spec.seasonal_lags)} steps, "
            f"this run {list(spec.seasonal_lags)}); training a fresh model")
        return None
    if champion.spec.layout != spec.layout or (spec.layout == "wide" and champion.spec.targets != spec.targets):
        log(f"champion {champion_id} forecasts other series ({champion.spec.layout} layout: "
            f"{', '.join(champion.spec.forecast_metrics)}); training a fresh model")
        return None
    return champion


def _history_steps(frame: pd.DataFrame, spec: ModelSpec, config: TrainConfig) -> int:
    """Steps a typical server's history spans before its hold-out (the median over servers: real
    series start and end at different dates)."""
    if frame.empty:
        return 0
    stamps = frame.groupby(schema.SERVER, observed=True)[schema.TIMESTAMP]
    span = (stamps.max() - stamps.min()).median()
    return int(span / pd.Timedelta(spec.step) * (1 - config.holdout))


def _quiet(line: str) -> None:
    """The log of a training process other than rank 0's: Lightning's warnings still reach stderr."""


def _model_id(run_key: str) -> str:
    return f"tft-{pd.Timestamp.now(tz='UTC').strftime('%Y%m%d-%H%M%S')}-{run_key[:6]}"


def _versions() -> dict:
    import lightning
    import pytorch_forecasting
    import torch
    return {"torch": torch.__version__, "lightning": lightning.__version__,
            "pytorch_forecasting": pytorch_forecasting.__version__}
