"""Glue for the training console: the run store of the selected models directory, run tables,
settings side by side, and the toasts for runs that finished since the last look."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from argus_core.model import forecast, registry
from argus_core.runs import jobs
from argus_core.runs.store import Run, RunStore, default_path

KEY_SEEN = "argus.console.seen_status"


def run_store(models) -> RunStore:
    runs = RunStore(default_path(models))
    runs.mark_dead_runs()
    jobs.reap()
    return runs


def history_table(runs: RunStore, items: list[Run]) -> pd.DataFrame:
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
    table = pd.DataFrame({f"run {r.id}": {**r.settings, "dataset": r.dataset} for r in items}).astype(str)
    table["differs"] = table.nunique(axis=1) > 1
    return table.sort_values("differs", ascending=False, kind="stable")


def announce_finished(items: list[Run]) -> None:
    """A toast for each run that completed or failed since this session last looked."""
    seen = st.session_state.setdefault(KEY_SEEN, {})
    for run in items:
        before = seen.get(run.id)
        if before in ("queued", "running") and run.status in ("completed", "failed"):
            icon = ":material/check_circle:" if run.status == "completed" else ":material/error:"
            st.toast(f"Run {run.id} ({run.name}) {run.status}", icon=icon)
        seen[run.id] = run.status


def promote(models, model_id: str) -> None:
    registry.promote(models, model_id)
    _forget_forecasts()


def rollback(models) -> str:
    champion = registry.rollback(models)["champion"]
    _forget_forecasts()
    return champion


def _forget_forecasts() -> None:
    # the pages key their views on the resolved champion, so they follow at once; this frees memory
    forecast.clear_caches()
    st.cache_resource.clear()
