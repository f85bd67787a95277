"""A live dataset's last snapshot as the dashboard's ``FleetView``: the pages read what the
service published instead of forecasting again, and show how fresh it is."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from argus_core import dashboard
from argus_core.data import schema, store
from argus_core.errors import DatasetError
from argus_core.live import snapshot
from argus_core.model import forecast
from argus_core.model.spec import ModelSpec

STATE = dashboard.LIVE_STATE
STALE_STEPS = 3  # a server this many steps behind the fleet's newest sample is stale


def state_of(dataset: str | Path) -> Path:
    return Path(dataset) / STATE


def generation(dataset: str | Path) -> int | None:
    """The published snapshot's number, from its small pointer file (None: not a live dataset)."""
    pointer = state_of(dataset) / snapshot.POINTER
    try:
        return int(json.loads(pointer.read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_live(dataset: str | Path) -> bool:
    return generation(dataset) is not None


def late_by(status: dashboard.LiveStatus, now: pd.Timestamp | None = None) -> pd.Timedelta:
    """How far past due the service's next snapshot is: zero within two cycle periods."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    return max(pd.Timedelta(0), now - status.created - 2 * status.every)


def fleet_view(dataset: str | Path, model_root: str | Path, now: pd.Timestamp | None = None) -> dashboard.FleetView:
    """The last snapshot of a live dataset as a FleetView; DatasetError when there is none."""
    dataset = Path(dataset)
    snap = snapshot.load(state_of(dataset))
    if snap is None:
        raise DatasetError(f"{dataset} has no live snapshot yet: is `python -m argus_core serve` running on it?")
    manifest = store.read_manifest(dataset)
    config = Path(model_root) / snap.model_id / "config.json"
    try:
        spec = ModelSpec.from_json(json.loads(config.read_text())["spec"])
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"the snapshot's model {snap.model_id} is not readable in {model_root}: {exc}") from exc
    step = pd.Timedelta(manifest.get("step", schema.DEFAULT_STEP))
    as_of = pd.Timestamp(snap.as_of)
    history = store.read_recent(dataset, spec.history_steps + store.LATE_SLACK, as_of, manifest)
    result = forecast.FleetForecast(snap.model_id, as_of, snap.quantiles, snap.importance, dict(snap.skipped))
    profiles = history.groupby(schema.SERVER, observed=True)[schema.PROFILE].last().astype(str).to_dict()
    last = {server: pd.Timestamp(stamp) for server, stamp in snap.last_sample.items()}
    newest = max(last.values()) if last else as_of
    stale = sorted(s for s, t in last.items() if t < newest - STALE_STEPS * step)
    created = pd.Timestamp(snap.created)
    every = pd.Timedelta(seconds=snap.every_seconds)
    status = dashboard.LiveStatus(snap.generation, created, every, pd.Timedelta(0), dict(snap.levels), last, stale,
                                  snap.model_error)
    status = replace(status, late_by=late_by(status, now))
    return dashboard.FleetView(dataset, snap.model_id, as_of, step, spec.horizon, history, result, snap.per_metric,
                               dashboard.spec_thresholds(spec), profiles, status,
                               abnormal=snap.abnormal if len(snap.abnormal) else None)
