"""Training settings, importable without torch or Lightning: one set of defaults for the CLI's
flags, the console's form, the run record and the model spec.

A ``TrainConfig`` crosses a process boundary whole, as JSON (``to_json`` / ``from_json``): the
console records it in the run store and the training process reads it back from there, so no
hand-kept list of flags can fall behind this class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from argus_core.errors import SettingsError

LAYOUTS = ("auto", "wide", "series")
LOSS_SCALES = ("window", "global")
CENTERS = ("mean", "last", "recent")
SEASONAL_INPUTS = ("auto", "none", "day", "week")
ACCELERATORS = ("auto", "cpu", "gpu")
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true")
GPU_BATCH = 1024  # what ``batch_size_auto`` trains with on a GPU
NEW_MODEL_CENTER = "mean"  # where a new model centres its windows when ``center`` is None


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    # "auto" batch: on a GPU, GPU_BATCH windows per batch and the learning rate times
    # sqrt(GPU_BATCH / batch_size) (64 windows leave most of a GPU idle); on the CPU, batch_size
    batch_size_auto: bool = False
    hidden_size: int = 32  # 32 learns the fleet's rhythms; 8 is enough for tests
    attention_heads: int = 2
    dropout: float = 0.1
    learning_rate: float = 3e-3
    batches_per_epoch: int = 100  # an epoch is this many random batches, not every window of every server
    val_batches: int = 30
    max_steps: int = -1  # stop after this many optimiser steps (-1: no limit)
    patience: int = 4  # early stopping: epochs without a better validation loss
    streaming: bool = False  # read day partitions in turn instead of the whole dataset
    fresh: bool = False  # False: continue from the champion when it fits the data
    encoder_length: int = 288
    horizon: int = 0  # steps ahead; 0: eight hours at the dataset's step (96 at 5min; horizon_steps)
    validation_fraction: float = 0.15
    incident_share: float = 0.25  # share of each training batch drawn from windows around known incidents
    # series layout: share of training windows given a lasting step (``batches.WindowBatches.shifted``),
    # so the network learns that a level can move and stay (0: none). Off by default: at 0.2 it
    # helped nab-aws at one seed, lost there at two others and lost on jumpstarter-d2
    # (bench/RESULTS.md, "Lasting steps over three seeds")
    level_shifts: float = 0.0
    seed: int = 0
    threads: int | None = None  # None: one less than the cores (``argus_core.model.threads``)
    checkpoint_minutes: float = 2.0
    time_limit_minutes: float | None = None
    layout: str = "auto"  # "wide", "series", or "auto": series when the metric set is not schema v1's
    holdout: float = 0.0  # share at the end of every series never trained on (what `backtest` scores)
    start_from: str | None = None  # model id to continue from (default: the champion, unless fresh)
    # wide layout: "window" weighs each window's errors by its own scale (argus_core.losses), "global" by
    # each target's spread over the whole training set
    loss_scale: str = "window"
    # wide layout, per-window normalisation: where each window is centred (argus_core.normalizers):
    # "mean" of its encoder, its "last" value, or the "recent" mean of its last hour; None keeps the
    # model's own (a fresh model: "mean")
    center: str | None = None
    # known inputs carrying each target's value one day (and one week) earlier (spec.seasonal_lags):
    # "auto" adds the day, and the week where the history holds two weeks beyond a window
    seasonal_inputs: str = "auto"
    # "given": train with the settings above; "auto": train each of ``model.train.RECIPES`` (encoder
    # length, centre, size) on the same data and keep the one with the lowest validation MASE
    recipe: str = "given"
    # Lightning's learning-rate finder: "off"; "use" runs it and trains at its suggestion
    # (``train --learning-rate auto``; suggestion and curve in training_info.json); "only" runs it,
    # prints and records it, and trains nothing (``train --find-lr``)
    find_lr: str = "off"
    accumulate: int = 1  # optimiser step after this many batches (gradient accumulation: a K x larger batch)
    # several processes through Lightning's DDP (NCCL on GPUs, gloo on CPU): each trains on its own
    # share of the windows and the gradients are averaged, so one step sees devices x nodes batches
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"  # "auto": DDP when devices x nodes > 1
    accelerator: str = "auto"  # "auto": a GPU when there is one; "cpu" forces the CPU
    # train on this one server's rows only: per-server fine-tuning (``model.specialise``) sets it
    server: str | None = None


def to_json(config: TrainConfig) -> dict:
    """Every field, as plain JSON values."""
    return asdict(config)


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def from_json(payload: dict, *, ignore: tuple[str, ...] = ()) -> TrainConfig:
    """The ``TrainConfig`` that ``to_json`` wrote. Missing fields take their defaults (runs recorded
    by earlier releases); an unknown field or a value of the wrong type is a SettingsError naming it.
    ``ignore`` names keys stored beside the settings (the run record's ``webhook``)."""
    if not isinstance(payload, dict):
        raise SettingsError(f"training settings must be a JSON object, not {type(payload).__name__}")
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(k for k in payload if k not in known and k not in ignore)
    if unknown:
        raise SettingsError(f"unknown training setting(s): {', '.join(unknown)}")
    values = {}
    for name, value in payload.items():
        if name not in known:
            continue
        kind, _, optional = str(known[name].type).partition(" | ")
        allowed = _TYPES[kind]
        if value is None and optional:
            values[name] = None
            continue
        if isinstance(value, bool) and kind != "bool" or not isinstance(value, allowed):
            raise SettingsError(f"training setting {name} must be {kind}{' or null' if optional else ''}, "
                                f"not {value!r}")
        values[name] = float(value) if kind == "float" else value
    return TrainConfig(**values)


# classical fits one backtest makes unless told (--classical-origins): the last origins of every
# series, at least one each. AutoARIMA takes about 0.8 s a fit on a 2-core machine, so every origin
# of 570 series (22,800 fits) would be five hours; 600 fits are about eight minutes at most
CLASSICAL_FIT_BUDGET = 600
DEFAULT_HORIZON = "8h"  # what the product forecasts when no horizon is given, whatever the step


def horizon_steps(horizon: int, step: str) -> int:
    """``horizon`` steps, or for 0 eight hours at ``step`` (96 at 5min, 32 at 15min, 8 at 1h): a
    fixed count of steps would ask hourly data for four days ahead, beyond "same time yesterday"."""
    if horizon:
        return int(horizon)
    import pandas as pd

    return max(1, int(round(pd.Timedelta(DEFAULT_HORIZON) / pd.Timedelta(step))))


def check(config: TrainConfig) -> list[str]:
    """What is wrong with ``config`` (empty when it can train): checked before anything starts."""
    problems = [f"{name} must be a positive whole number" for name in
                ("epochs", "batch_size", "hidden_size", "batches_per_epoch", "encoder_length",
                 "accumulate", "devices", "num_nodes")
                if not isinstance(getattr(config, name), int) or getattr(config, name) < 1]
    heads = config.attention_heads
    if isinstance(config.hidden_size, int) and config.hidden_size >= 1 and isinstance(heads, int) and heads >= 1 \
            and config.hidden_size % heads:
        problems.append(f"hidden_size must be a multiple of the {heads} attention heads ({heads}, {2 * heads}, "
                        f"{3 * heads}, ...): each head attends over hidden_size / {heads} channels")
    if not isinstance(heads, int) or heads < 1:
        problems.append("attention_heads must be a positive whole number")
    if not isinstance(config.horizon, int) or isinstance(config.horizon, bool) or config.horizon < 0:
        problems.append("horizon must be a positive whole number of steps (or 0: eight hours at the dataset's step)")
    if not 0 < config.learning_rate <= 1:
        problems.append("learning_rate must be in (0, 1]")
    if not isinstance(config.max_steps, int) or not (config.max_steps == -1 or config.max_steps >= 1):
        problems.append("max_steps must be -1 (no limit) or a positive whole number")
    if config.layout not in LAYOUTS:
        problems.append("layout must be auto, wide or series")
    if config.loss_scale not in LOSS_SCALES:
        problems.append("loss_scale must be window or global")
    if config.center not in (None, *CENTERS):
        problems.append("center must be mean, last or recent")
    if config.seasonal_inputs not in SEASONAL_INPUTS:
        problems.append("seasonal_inputs must be auto, none, day or week")
    if config.find_lr not in ("off", "use", "only"):
        problems.append("find_lr must be off, use or only")
    if config.recipe not in ("given", "auto"):
        problems.append("recipe must be given or auto")
    if config.strategy not in STRATEGIES:
        problems.append("strategy must be auto, ddp or ddp_find_unused_parameters_true")
    if config.accelerator not in ACCELERATORS:
        problems.append("accelerator must be auto, cpu or gpu")
    if config.server is not None and config.streaming:
        problems.append("a server's own model is trained in standard mode (drop --streaming)")
    if processes(config) > 1 and config.streaming:
        problems.append("streaming training runs in one process (drop --streaming, or train on one device)")
    if processes(config) > 1 and config.find_lr != "off":
        problems.append("the learning-rate finder runs on one device (find the rate first, then train on several)")
    if not 0 <= config.incident_share < 1:
        problems.append("incident_share must be in [0, 1)")
    if not 0 <= config.level_shifts <= 1:  # NaN fails too
        problems.append("level_shifts must be in [0, 1]")
    if not 0 <= config.holdout < 0.9:
        problems.append("holdout must be in [0, 0.9)")
    if config.time_limit_minutes is not None and config.time_limit_minutes <= 0:
        problems.append("time limit must be positive (or empty for none)")
    return problems


def processes(config: TrainConfig) -> int:
    """How many training processes ``config`` runs (devices x nodes)."""
    devices, nodes = config.devices, config.num_nodes
    return devices * nodes if isinstance(devices, int) and isinstance(nodes, int) else 1


def run_key(dataset_dir, manifest: dict, config: TrainConfig) -> str:
    """What identifies a training for its checkpoints: the dataset (path and contents) and every
    setting but those a run may resume with changed (devices, threads, time limit)."""
    import hashlib
    import json
    from pathlib import Path

    from argus_core.data import store

    settings = {k: v for k, v in asdict(config).items()
                if k not in ("time_limit_minutes", "threads", "devices", "num_nodes", "strategy", "accelerator")}
    payload = json.dumps([str(Path(dataset_dir).resolve()), store.fingerprint(manifest), settings], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def checkpoint_dir(model_root, dataset_dir, manifest: dict, config: TrainConfig):
    """Where a training of ``config`` on ``dataset_dir`` keeps its checkpoint (``.checkpoints/<run key>``)."""
    from pathlib import Path

    return Path(model_root) / ".checkpoints" / run_key(dataset_dir, manifest, config)
