"""Per-server fine-tuning: a server's own model, kept only where it beats the fleet model.

``specialise(dataset, models, ["db-02"], config)`` copies the fleet champion, trains the copy
further on that one server's history (its last ``holdout`` share left out), then forecasts the
held-out part with both, from origins one horizon apart, and compares the TFTs' errors (the
geometric mean over the server's series of MASE, in-sample seasonal-naive scale). The copy is
registered as the server's specialist (``registry.add_specialist``) only when its error is at
least ``MARGIN`` lower; otherwise it is deleted and the fleet model keeps the server. Forecasts by
the fleet model then route that server to its specialist (``forecast.forecast_fleet``).

Where the fleet model was trained with a hold-out, the copy keeps the same share out, so both are
scored on data neither trained on. A fleet model trained on everything has seen the server's
hold-out; the comparison then favours the fleet model, and a specialist kept anyway won against
that advantage.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import store
from argus_core.errors import ArgusError, ModelNotFound
from argus_core.model import artifacts, datasets, layout, registry
from argus_core.model.config import TrainConfig

HOLDOUT = 0.25  # share of the server's history kept out when the fleet model kept none
# the specialist must err this much less on the hold-out: with a few origins of one server, a
# smaller difference is as likely noise as skill, and a second model is one more thing to maintain
MARGIN = 0.02


@dataclass(frozen=True)
class Outcome:
    server: str
    fleet_model: str
    kept: bool
    model_id: str | None  # the specialist, when kept
    fleet_mase: float
    specialist_mase: float
    origins: int
    seconds: float

    def line(self) -> str:
        verdict = (f"kept as {self.model_id}" if self.kept else
                   f"not kept (it must err at least {MARGIN:.0%} less than the fleet model)")
        return (f"{self.server}: hold-out MASE {self.specialist_mase:.3f} fine-tuned against {self.fleet_mase:.3f} "
                f"for fleet model {self.fleet_model} over {self.origins} origins: {verdict}")


def specialise(dataset_dir: str | Path, model_root: str | Path, servers: list[str], config: TrainConfig,
               log: Callable[[str], None] = print) -> list[Outcome]:
    """Fine-tune the fleet model (``config.start_from`` or the champion) on each of ``servers``."""
    model_root = Path(model_root)
    fleet_id = config.start_from or registry.champion_model_id(model_root)
    if not fleet_id:
        raise ModelNotFound(f"no fleet model in {model_root} to fine-tune: train one first "
                            f"(`python -m argus_core train --dataset {dataset_dir}`)")
    entry = registry.read(model_root)["models"].get(fleet_id, {})
    if entry.get("fleet_model"):
        raise ArgusError(f"model {fleet_id} is already a server's own model; fine-tune the fleet model "
                         f"{entry['fleet_model']} instead")
    if not (model_root / fleet_id).is_dir():
        raise ModelNotFound(f"no model {fleet_id!r} in {model_root}; see `python -m argus_core models list`")
    known = set(map(str, store.read_manifest(dataset_dir).get("servers", {})))
    unknown = [s for s in servers if s not in known]
    if unknown:
        raise ArgusError(f"no server named {', '.join(map(repr, unknown))} in {dataset_dir}; it has "
                         f"{', '.join(sorted(known)[:8])}{' ...' if len(known) > 8 else ''}")
    fleet = artifacts.load(model_root / fleet_id)
    return [_one(dataset_dir, model_root, fleet, server, config, log) for server in dict.fromkeys(servers)]


def _one(dataset_dir, model_root: Path, fleet: artifacts.LoadedModel, server: str, config: TrainConfig,
         log: Callable[[str], None]) -> Outcome:
    from argus_core.model.train import train

    scratch = model_root / ".specialists" / f"{fleet.model_id}-{_slug(server)}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        shutil.copytree(fleet.path, scratch / fleet.model_id)  # what the copy continues from
        candidate = _fine_tune_config(fleet, server, config)
        log(f"{server}: fine-tuning a copy of {fleet.model_id} on its history (last {candidate.holdout:.0%} "
            "kept out)")
        result = train(dataset_dir, scratch, candidate, log=lambda line: log(f"  {line}"))
        info = json.loads((result.path / "training_info.json").read_text())
        if info.get("continued_from") != fleet.model_id:
            raise ArgusError(f"the copy of {fleet.model_id} could not continue on {server}'s history (see the "
                             "lines above); nothing was registered")
        specialist = artifacts.load(result.path)
        frame = store.read(dataset_dir, servers=[server])
        starts = {key: int((pd.Timestamp(stamp) - layout.EPOCH) // pd.Timedelta(fleet.spec.step))
                  for key, stamp in info["evaluation_start"].items()}
        fleet_score, origins = holdout_mase(fleet, frame, starts)
        own_score, _ = holdout_mase(specialist, frame, starts)
        kept = math.isfinite(own_score) and math.isfinite(fleet_score) and own_score <= (1 - MARGIN) * fleet_score
        model_id = None
        if kept:
            model_id = result.model_id
            shutil.move(str(result.path), str(model_root / model_id))
            replaced = registry.add_specialist(model_root, fleet.model_id, server, model_id, {
                "created": info["created"], "val_loss": info["best_val_loss"], "dataset": info["dataset"],
                "continued_from": fleet.model_id,
                "holdout_mase": {"fleet": round(fleet_score, 4), "specialist": round(own_score, 4),
                                 "origins": origins}})
            if replaced:
                log(f"{server}: {model_id} replaces its earlier specialist {replaced}")
        outcome = Outcome(server, fleet.model_id, kept, model_id, fleet_score, own_score, origins, result.seconds)
        log(outcome.line())
        return outcome
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fine_tune_config(fleet: artifacts.LoadedModel, server: str, config: TrainConfig) -> TrainConfig:
    """The fleet model's own training settings (its shape must match to continue from it), with
    this run's budget, and the fleet model's hold-out share (or ``HOLDOUT``) kept out."""
    recorded = fleet.config.get("training") or {}
    known = {f.name for f in fields(TrainConfig)}
    base = TrainConfig(**{k: v for k, v in recorded.items() if k in known and k != "server"})
    hp = artifacts.decode(fleet.config.get("hparams", {}))
    lags = fleet.spec.seasonal_lags
    return replace(
        base, server=server, start_from=fleet.model_id, fresh=False, recipe="given", streaming=False,
        encoder_length=fleet.spec.encoder_length, horizon=fleet.spec.horizon,
        hidden_size=int(hp.get("hidden_size", base.hidden_size)),
        attention_heads=int(hp.get("attention_head_size", base.attention_heads)),
        seasonal_inputs="none" if not lags else "day" if len(lags) == 1 else "week",
        layout=fleet.spec.layout, holdout=float(fleet.training_info.get("holdout") or config.holdout or HOLDOUT),
        epochs=config.epochs, batches_per_epoch=config.batches_per_epoch, batch_size=config.batch_size,
        learning_rate=config.learning_rate, max_steps=config.max_steps, threads=config.threads, seed=config.seed,
        time_limit_minutes=config.time_limit_minutes, checkpoint_minutes=config.checkpoint_minutes,
        val_batches=config.val_batches, patience=config.patience, find_lr="off", devices=1, num_nodes=1,
        accelerator=config.accelerator)


def holdout_mase(model: artifacts.LoadedModel, frame: pd.DataFrame, starts: dict[str, int]) -> tuple[float, int]:
    """(geometric mean over series of the TFT's p50 MASE after each series' start, origins scored):
    origins one horizon apart, MASE in units of the in-sample mean absolute one-day change."""
    import torch

    from argus_core.model import backtest, forecast
    from argus_core.model.batches import WindowBatches

    spec, network = model.spec, model.network
    prepared = layout.prepare(frame, spec)
    windows = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters),
                            list(network.hparams.x_reals), list(network.hparams.x_categoricals), 64,
                            complete=False, first_start=starts, shuffle=False)
    chosen = backtest.origin_windows(windows, spec, starts, spec.horizon, None)
    if not len(chosen):
        return math.nan, 0
    with torch.inference_mode():
        x, _, scales = windows.window_inputs(chosen)
        p50 = forecast.sorted_prediction(network(x))[..., 1] * scales[:, None, None]  # (B, targets, H)
    season = int(backtest.SEASON / pd.Timedelta(spec.step))
    denominators = backtest.mase_scales(windows, spec, starts, season)
    unknown = list(spec.unknown_reals)
    errors: dict[tuple, list[float]] = {}
    for b, (s, w) in enumerate(chosen):
        origin = w + spec.encoder_length
        for t, target in enumerate(spec.targets):
            actual = windows.values[s, origin:origin + spec.horizon, unknown.index(target)]
            key = (str(windows.names[s]), target)
            errors.setdefault(key, []).extend(np.abs(p50[b, t] - actual)[~np.isnan(actual)].tolist())
    ratios = []
    for (name, target), values in errors.items():
        scale = denominators.get(backtest.series_of(name, target, spec), math.nan)
        if values and math.isfinite(scale) and scale > 0:
            ratios.append(float(np.mean(values)) / scale)
    ratios = [r for r in ratios if r > 0]
    return (float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan), int(len(chosen))


def _slug(server: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in server)[:60]
