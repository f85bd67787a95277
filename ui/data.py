"""Cached data for the pages: one fleet view per (dataset state, model, as of), shared by all
sessions; per-session memory of the last levels for hysteresis and "changed since"."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from argus_core import anomaly, fleet
from argus_core.data import store
from argus_core.errors import ArgusError, DatasetError
from argus_core.live import view as live_view
from argus_core.model import BACKTEST_SUMMARY, Forecaster, load_backtest, threads
from argus_core.views import dashboard, replay

KEY_MEMORY = "argus.level_memory"


@st.cache_resource(max_entries=8, show_spinner="Forecasting the fleet...")
def _view(key: tuple, as_of: str | None, _source: dashboard.ViewSource) -> dashboard.FleetView:
    # the one cache of a fleet view: ``key`` (dataset rows and end, model directory and weights)
    # changes with new data, a promote or a retrained model. The view is shared: pages never mutate it.
    _set_threads()
    return dashboard.view_of(_source, pd.Timestamp(as_of) if as_of else None)


def _set_threads() -> None:
    # torch's one-thread-per-core default collapses when a training run holds a core (DESIGN.md)
    threads.use_threads(threads.from_environment())


@st.cache_resource(max_entries=4, show_spinner=False)
def _live_view(dataset: str, models: str, generation: int) -> dashboard.FleetView:
    # keyed on the snapshot's generation: a new cycle's snapshot is read once, then shared
    return live_view.fleet_view(dataset, models)


def fleet_view(selection) -> dashboard.FleetView:
    """The fleet forecast for the sidebar's selection; ArgusError says what is missing. A live
    dataset followed at its latest data with the champion shows the service's last snapshot."""
    if selection.problem:
        raise DatasetError(selection.problem)
    if selection.dataset is None:
        raise DatasetError("no dataset selected; write the demo data with `make demo-data`")
    generation = live_view.generation(selection.dataset)
    if generation is not None and selection.as_of is None and selection.model_id is None:
        view = _live_view(str(selection.dataset), str(selection.models), generation)
        return replace(view, live=replace(view.live, late_by=live_view.late_by(view.live)))
    source = dashboard.view_source(selection.dataset, selection.models, selection.model_id)
    as_of = selection.as_of.isoformat() if selection.as_of is not None else None
    return _view(source.key, as_of, source)


def ranking_with_memory(view: dashboard.FleetView) -> tuple[pd.DataFrame, dict[str, int], dict[str, int] | None]:
    """The ranking with hysteresis against this session's previous view of the same dataset, the
    level counts, and the counts of that previous view (None on the first view)."""
    memory = st.session_state.setdefault(KEY_MEMORY, {})
    key = (view.model_id, str(view.as_of))
    if view.live is not None:  # the service's levels, with its hysteresis over every cycle
        ranked = dashboard.ranking(view, view.live.levels)
        counts = fleet.level_counts(ranked)
        entry = memory.get(str(view.dataset))
        before = entry["counts"] if entry and entry["key"] != key else (entry or {}).get("before")
        memory[str(view.dataset)] = {"key": key, "levels": view.live.levels, "counts": counts,
                                     "previous_levels": None, "before": before}
        return ranked, counts, before
    entry = memory.get(str(view.dataset))
    if entry is None:
        previous_levels, before = None, None
    elif entry["key"] == key:  # a rerun of the same view: keep what it was compared with
        previous_levels, before = entry["previous_levels"], entry["before"]
    else:
        previous_levels, before = entry["levels"], entry["counts"]
    ranked = dashboard.ranking(view, previous_levels)
    counts = fleet.level_counts(ranked)
    levels = dict(zip(ranked["server_name"], ranked["level"], strict=True)) if len(ranked) else {}
    memory[str(view.dataset)] = {"key": key, "levels": levels, "counts": counts,
                                 "previous_levels": previous_levels, "before": before}
    return ranked, counts, before


@st.cache_resource(max_entries=2, show_spinner="Loading the scenario...")
def _scenario(dataset: str, stamp: tuple):
    return replay.load_scenario(dataset), store.read(dataset)


def demo_inputs(selection):
    """The scripted scenario (demo_data/incident, or ARGUS_DEMO), its data, the model and the
    anomaly detector beside it (None when it has none)."""
    dataset = Path(os.environ.get("ARGUS_DEMO", Path(__file__).resolve().parents[1] / "demo_data" / "incident"))
    if not store.looks_like_dataset(dataset):
        raise DatasetError(f"the incident demo needs its scenario at {dataset}; write it with `make demo-data`")
    manifest = store.read_manifest(dataset)
    scenario, frame = _scenario(str(dataset), (manifest.get("end"), manifest.get("rows")))
    _set_threads()
    model = Forecaster.champion(selection.models, selection.model_id)
    return scenario, frame, model, _detector(str(model.path), _mtime(model.path / anomaly.FILE))


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def _detector(model_dir: str, stamp: float):
    try:
        return anomaly.AnomalyModel.load(model_dir)
    except ArgusError:
        return None


@st.cache_resource(show_spinner=False, max_entries=32)
def _backtest(model_dir: str, stamp: float):
    return load_backtest(model_dir)


def backtest_of(models, model_id: str):
    """A model's saved backtest (None when it has none), re-read when the files change."""
    summary = Path(models) / model_id / BACKTEST_SUMMARY
    if not summary.is_file():
        return None
    return _backtest(str(summary.parent), summary.stat().st_mtime)
