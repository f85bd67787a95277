"""What the training console shows, computed without Streamlit: a run's live status, the run
history, settings side by side, and the settings a form asks for. The page only draws these."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pandas as pd

from argus_core.model.config import TrainConfig
from argus_core.runs.store import ACTIVE, Run, RunStore

# the form's starting values: TrainConfig's, with fewer epochs so a first run ends in minutes
FORM_DEFAULTS = replace(TrainConfig(), epochs=12)
RESUMABLE = ("interrupted", "failed", "cancelled")


@dataclass(frozen=True)
class LiveStatus:
    """The latest figures of one run, as the live panel shows them (None: not written yet)."""

    run: Run
    metrics: pd.DataFrame  # every metric row of the run (the curves)
    progress: float
    epoch: int
    step: int
    eta_min: float | None
    val_loss: float | None
    learning_rate: float | None
    cpu_pct: float | None
    memory: tuple[str, float] | None  # ("RAM", MB) or ("GPU memory", MB)
    last_written: str  # a caption: when the last metric arrived

    @property
    def active(self) -> bool:
        return self.run.status in ACTIVE


def current_run(items: list[Run]) -> Run | None:
    """This Argus's queued or running training, else the newest run, else None (a run another loop
    records over the API is shown when it is the newest, never taken for this Argus's own)."""
    return next((r for r in items if r.status in ACTIVE and not r.external), items[0] if items else None)


def live_status(runs: RunStore, run: Run) -> LiveStatus:
    metrics = runs.metrics(run.id)
    latest = metrics.groupby("name")["value"].last() if len(metrics) else pd.Series(dtype=float)
    eta = latest.get("eta_s")
    sample = runs.resources(run.id).tail(1)
    cpu = memory = None
    if len(sample):
        cpu = float(sample["cpu_pct"].iloc[0])
        gpu = sample["gpu_mem_mb"].iloc[0]
        memory = ("RAM", float(sample["rss_mb"].iloc[0])) if pd.isna(gpu) else ("GPU memory", float(gpu))
    written = metrics["time"].max() if len(metrics) else None
    caption = (f"last metric written {time.strftime('%H:%M:%S', time.gmtime(written))} UTC" if written else
               "waiting for the first step (the training process is importing its libraries)")
    return LiveStatus(
        run=run, metrics=metrics, progress=float(latest.get("progress", 0.0)),
        epoch=int(metrics["epoch"].max()) + 1 if len(metrics) else 0,
        step=int(metrics["step"].max()) if len(metrics) else 0,
        eta_min=eta / 60 if eta is not None and run.status == "running" else None,
        val_loss=latest.get("val_loss"), learning_rate=latest.get("learning_rate"),
        cpu_pct=cpu, memory=memory, last_written=caption)


def history_table(runs: RunStore, items: list[Run]) -> pd.DataFrame:
    """One row per run: status, start, duration, best validation loss, dataset and model."""
    metrics = runs.metrics([r.id for r in items]) if items else pd.DataFrame(columns=["run", "name", "value"])
    best = metrics[metrics["name"] == "val_loss"].groupby("run")["value"].min()
    return pd.DataFrame({
        "id": [r.id for r in items],
        "name": [r.name for r in items],
        "status": [r.status for r in items],
        "started": [pd.Timestamp(r.started, unit="s", tz="UTC") if r.started else pd.NaT for r in items],
        "duration_min": [round(r.duration_s / 60, 1) if r.duration_s is not None else None for r in items],
        "best_val_loss": [best.get(r.id) for r in items],
        "dataset": [r.dataset for r in items],
        "model_id": [r.model_id for r in items],
    })


def settings_side_by_side(items: list[Run]) -> pd.DataFrame:
    """One column per run, one row per setting; a 'differs' column flags rows that are not equal."""
    def shown(settings: dict) -> dict:  # horizon 0 is the default, eight hours at the dataset's step
        return {**settings, **({"horizon": "8 h at the step"} if settings.get("horizon") == 0 else {})}

    table = pd.DataFrame({f"run {r.id}": {**shown(r.settings), "dataset": r.dataset} for r in items}).astype(str)
    table["differs"] = table.nunique(axis=1) > 1
    return table.sort_values("differs", ascending=False, kind="stable")


def resumable(items: list[Run], has_checkpoint=None) -> list[int]:
    """Runs of this Argus that stopped before the end and left a checkpoint (``has_checkpoint(run)``;
    runs recorded over the API have none here)."""
    return [r.id for r in items if r.status in RESUMABLE and not r.external
            and (has_checkpoint is None or has_checkpoint(r))]


def promotable(items: list[Run], champion: str | None) -> list[str]:
    """Models of completed runs that are not the champion."""
    return [r.model_id for r in items if r.status == "completed" and r.model_id and r.model_id != champion]


def form_config(*, epochs: float, batch_size: float, hidden_size: float, learning_rate: float,
                batches_per_epoch: float, streaming: bool, fresh: bool, time_limit_minutes: float,
                recipe: str = "given", accumulate: float = 1, find_lr: str = "off", devices: float = 1) -> TrainConfig:
    """The TrainConfig of the console's form (its number widgets return floats; 0 minutes: no limit).
    ``recipe="auto"``: the three recipes of ``model.train.RECIPES``, the best by validation kept
    (the form's hidden size is then the recipes' to choose). ``devices`` > 1: that many processes
    (GPUs, or CPU processes) train one run through DDP."""
    return replace(FORM_DEFAULTS, epochs=int(epochs), batch_size=int(batch_size), hidden_size=int(hidden_size),
                   learning_rate=float(learning_rate), batches_per_epoch=int(batches_per_epoch),
                   streaming=streaming, fresh=fresh, time_limit_minutes=float(time_limit_minutes) or None,
                   recipe=recipe, accumulate=int(accumulate), find_lr=find_lr, devices=int(devices))
