"""A live dataset's last snapshot as the dashboard's ``FleetView``: the pages read the assessment
the service published (a saved ``fleet.Assessment``, not a copy converted field by field) instead
of forecasting again, and show how fresh it is."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from argus_core.data import schema, store
from argus_core.errors import DatasetError
from argus_core.fleet import live_state
from argus_core.live import snapshot
from argus_core.views import dashboard

STALE_STEPS = 3  # a server this many steps behind the fleet's newest sample is stale


def state_of(dataset: str | Path) -> Path:
    return live_state.state_dir(dataset)


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
    assessment = snap.assessment
    step = pd.Timedelta(manifest.get("step", schema.DEFAULT_STEP))
    # the charts' past: the window the cycle assessed
    history = store.read_recent(dataset, snap.history_steps + store.LATE_SLACK, assessment.as_of, manifest)
    last = {server: pd.Timestamp(stamp) for server, stamp in snap.last_sample.items()}
    newest = max(last.values()) if last else assessment.as_of
    stale = sorted(s for s, t in last.items() if t < newest - STALE_STEPS * step)
    created = pd.Timestamp(snap.created)
    every = pd.Timedelta(seconds=snap.every_seconds)
    arrived = pd.Timestamp(snap.data_arrived) if snap.data_arrived else None
    status = dashboard.LiveStatus(snap.generation, created, every, pd.Timedelta(0), dict(snap.levels), last, stale,
                                  snap.model_error, arrived)
    status = replace(status, late_by=late_by(status, now))
    return dashboard.FleetView(dataset, history, assessment, status)
