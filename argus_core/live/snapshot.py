"""One cycle's findings, published whole: readers (the API, /metrics, the dashboard) see the last
snapshot or the new one, never half of each.

On disk (``<state>/``): the frames of generation N in ``snapshot-N/`` (ranking, risk per metric,
forecast paths, importance) and ``snapshot.json`` (the meta and the levels), renamed into place
last. A restarted service reads it back, so levels keep their hysteresis across restarts.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from argus_core import atomic
from argus_core.errors import DatasetError

POINTER = "snapshot.json"
FRAMES = ("ranking", "per_metric", "quantiles", "importance")
OPTIONAL = ("abnormal",)  # absent from snapshots written before it existed


@dataclass
class Snapshot:
    generation: int
    model_id: str
    data_end: str | None  # the newest stored sample (ISO 8601, UTC)
    as_of: str | None  # where the forecast starts
    created: str  # when the cycle finished (wall clock, UTC)
    cycle_seconds: float
    horizon_seconds: float
    ranking: pd.DataFrame  # risk.rank_servers: one row per server, riskiest first
    per_metric: pd.DataFrame  # risk.metric_risk: one row per (server, metric)
    quantiles: pd.DataFrame  # the forecast paths: server_name, metric, timestamp, q10, q50, q90
    importance: pd.DataFrame  # server_name, variable, importance (the "why")
    abnormal: pd.DataFrame = field(default_factory=pd.DataFrame)  # model.anomaly.summarise: one row per server
    levels: dict[str, str] = field(default_factory=dict)  # server -> level (the next cycle's hysteresis)
    last_sample: dict[str, str] = field(default_factory=dict)  # server -> its newest sample
    skipped: dict[str, str] = field(default_factory=dict)  # servers without enough history, and why
    model_error: str | None = None  # a champion that failed to load (the previous one kept serving)
    accepted: int = 0  # rows stored by this cycle
    every_seconds: float = 300.0  # the service's cycle period (the dashboard's "late" banner)
    served_by: dict[str, str] = field(default_factory=dict)  # "server | metric" -> what forecasts it, if not the TFT
    forecast_by: dict[str, str] = field(default_factory=dict)  # server -> its own model, where not the fleet model

    def meta(self) -> dict:
        return {k: getattr(self, k) for k in ("generation", "model_id", "data_end", "as_of", "created",
                                              "cycle_seconds", "horizon_seconds", "levels", "last_sample",
                                              "skipped", "model_error", "accepted", "every_seconds",
                                              "served_by", "forecast_by")}


def save(state: Path, snapshot: Snapshot) -> None:
    """Publish ``snapshot`` (frames first, the pointer last) and drop older generations."""
    folder = state / f"snapshot-{snapshot.generation}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*FRAMES, *OPTIONAL):
        with atomic.staged(folder / f"{name}.parquet") as tmp:
            getattr(snapshot, name).to_parquet(tmp, index=False)
    atomic.write_json(state / POINTER, {**snapshot.meta(), "frames": folder.name})
    for old in state.glob("snapshot-*"):
        if old.is_dir() and old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def load(state: Path) -> Snapshot | None:
    """The last published snapshot, None when there is none; DatasetError when it is unreadable."""
    pointer = state / POINTER
    if not pointer.is_file():
        return None
    try:
        meta = json.loads(pointer.read_text())
        folder = state / meta.pop("frames")
        frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
        frames.update({name: pd.read_parquet(folder / f"{name}.parquet") for name in OPTIONAL
                       if (folder / f"{name}.parquet").exists()})
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"the live snapshot in {state} is unreadable ({exc}); move it aside and the next "
                           "cycle writes a new one") from exc
    return Snapshot(**meta, **frames)
