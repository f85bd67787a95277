"""One cycle's findings, published whole: a saved ``fleet.Assessment`` and what the cycle knows
beside it (its number, when, how long it took, the freshest sample of each server). Readers (the
API, /metrics, the dashboard) see the last snapshot or the new one, never half of each.

On disk (``<state>/``): the frames of generation N in ``snapshot-N/`` (ranking, risk per metric,
forecast paths, importance, abnormal now) and ``snapshot.json`` (the rest of the assessment and
the cycle's meta), renamed into place last. A restarted service reads it back, so levels keep
their hysteresis across restarts.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from argus_core import atomic
from argus_core.data import schema
from argus_core.errors import DatasetError
from argus_core.fleet import Assessment, Thresholds
from argus_core.model import FleetForecast

POINTER = "snapshot.json"
FRAMES = ("ranking", "per_metric", "quantiles", "importance")
OPTIONAL = ("abnormal",)  # absent from snapshots written before it existed


@dataclass
class Snapshot:
    generation: int
    assessment: Assessment
    data_end: str | None  # the newest stored sample (ISO 8601, UTC)
    created: str  # when the cycle finished (wall clock, UTC)
    cycle_seconds: float
    last_sample: dict[str, str] = field(default_factory=dict)  # server -> its newest sample
    stale: dict[str, str] = field(default_factory=dict)  # servers left out for reporting nothing lately, and why
    model_error: str | None = None  # a champion that failed to load (the previous one kept serving)
    accepted: int = 0  # rows stored by this cycle
    every_seconds: float = 300.0  # the service's cycle period (the dashboard's "late" banner)
    history_steps: int = 0  # rows per server the model read (0: a snapshot older than this field)
    data_arrived: str | None = None  # when a cycle last stored new rows (wall clock, UTC; None: not known)

    # what readers ask of the assessment, by the names the API and the exporter use
    @property
    def model_id(self) -> str:
        return self.assessment.model_id

    @property
    def as_of(self) -> str:
        return self.assessment.as_of.isoformat()

    @property
    def horizon_seconds(self) -> float:
        return float(self.assessment.step.total_seconds() * self.assessment.horizon)

    @property
    def ranking(self) -> pd.DataFrame:
        return self.assessment.ranking

    @property
    def per_metric(self) -> pd.DataFrame:
        return self.assessment.per_metric

    @property
    def quantiles(self) -> pd.DataFrame:
        return self.assessment.forecast.quantiles

    @property
    def importance(self) -> pd.DataFrame:
        return self.assessment.forecast.importance

    @property
    def abnormal(self) -> pd.DataFrame:
        found = self.assessment.abnormal
        return found if found is not None else pd.DataFrame()

    @property
    def levels(self) -> dict[str, str]:
        return self.assessment.levels

    @property
    def skipped(self) -> dict[str, str]:
        """Servers not ranked, and why: too little history for the model, or no recent sample."""
        return {**self.assessment.forecast.skipped, **self.stale}

    @property
    def served_by(self) -> dict[str, str]:
        return self.assessment.forecast.served_by

    @property
    def forecast_by(self) -> dict[str, str]:
        return self.assessment.forecast.forecast_by

    def meta(self) -> dict:
        a = self.assessment
        return {
            "generation": self.generation, "data_end": self.data_end, "created": self.created,
            "cycle_seconds": self.cycle_seconds, "last_sample": self.last_sample, "stale": self.stale,
            "model_error": self.model_error, "accepted": self.accepted, "every_seconds": self.every_seconds,
            "history_steps": self.history_steps, "data_arrived": self.data_arrived,
            # the assessment's own meta; the frames hold the rest
            "model_id": a.model_id, "as_of": self.as_of, "step": str(a.step), "horizon": a.horizon,
            "horizon_seconds": self.horizon_seconds, "levels": self.levels, "previous_levels": a.previous_levels,
            "profiles": a.profiles, "skipped": a.forecast.skipped, "unseen": list(a.forecast.unseen_servers),
            "served_by": a.forecast.served_by, "forecast_by": a.forecast.forecast_by,
            "thresholds": {m: [t.warning, t.critical] for m, t in a.thresholds.by_metric.items()},
            "overrides": [[s, m, t.warning, t.critical] for (s, m), t in a.thresholds.overrides.items()],
        }


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
        folder = state / meta["frames"]
        frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
        frames.update({name: pd.read_parquet(folder / f"{name}.parquet") for name in OPTIONAL
                       if (folder / f"{name}.parquet").exists()})
        return _snapshot(meta, frames)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"the live snapshot in {state} is unreadable ({exc}); move it aside and the next "
                           "cycle writes a new one") from exc


def _snapshot(meta: dict, frames: dict[str, pd.DataFrame]) -> Snapshot:
    # a snapshot written before it held a whole assessment has no step, horizon, thresholds or
    # profiles: the step is the contract's default and the thresholds those its rows were scored with
    step = pd.Timedelta(meta.get("step") or schema.DEFAULT_STEP)
    horizon = int(meta.get("horizon") or round(float(meta.get("horizon_seconds", 0)) / step.total_seconds()))
    per_metric = frames["per_metric"]
    recorded = meta.get("thresholds")
    if recorded is None and {"warning", "critical"} <= set(per_metric.columns):
        recorded = {m: [float(r["warning"]), float(r["critical"])]
                    for m, r in per_metric.groupby("metric", sort=False).first().iterrows()}
    thresholds = Thresholds({m: schema.Threshold(float(w), float(c)) for m, (w, c) in (recorded or {}).items()},
                            {(str(s), str(m)): schema.Threshold(float(w), float(c))
                             for s, m, w, c in meta.get("overrides", [])})
    as_of = pd.Timestamp(meta["as_of"])
    forecast = FleetForecast(meta["model_id"], as_of, frames["quantiles"], frames["importance"],
                             dict(meta.get("skipped", {})), list(meta.get("unseen", [])),
                             dict(meta.get("served_by", {})), dict(meta.get("forecast_by", {})))
    ranking = frames["ranking"]
    profiles = meta.get("profiles")
    if profiles is None:
        profiles = dict(zip(ranking[schema.SERVER].astype(str), ranking[schema.PROFILE].astype(str), strict=True)) \
            if schema.PROFILE in ranking else {}
    abnormal = frames.get("abnormal")
    assessment = Assessment(meta["model_id"], as_of, step, horizon, forecast, thresholds, profiles, per_metric,
                            ranking, abnormal if abnormal is not None and len(abnormal) else None, None,
                            dict(meta.get("previous_levels", {})))
    return Snapshot(meta["generation"], assessment, meta.get("data_end"), meta["created"],
                    float(meta.get("cycle_seconds", 0.0)), dict(meta.get("last_sample", {})),
                    dict(meta.get("stale", {})), meta.get("model_error"), int(meta.get("accepted", 0)),
                    float(meta.get("every_seconds", 300.0)),
                    int(meta.get("history_steps") or round(pd.Timedelta("1D") / step) + 1),
                    meta.get("data_arrived"))
