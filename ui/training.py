"""Glue for the training console: the run store of the selected models directory, the live panel
and the comparison (drawn from ``argus_core.views.console``), promote and roll back, and the toasts for
runs that finished since the last look."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from argus_core import access, model
from argus_core.access import audit
from argus_core.model import registry
from argus_core.runs import jobs
from argus_core.runs.store import Run, RunStore, default_path
from argus_core.views import charts, console
from ui import access as ui_access

KEY_SEEN = "argus.console.seen_status"


def run_store(models) -> RunStore:
    runs = RunStore(default_path(models), create=False)  # looking creates nothing; starting a run does
    runs.mark_dead_runs()
    jobs.reap()
    return runs


def announce_finished(items: list[Run]) -> None:
    """A toast for each run that completed or failed since this session last looked."""
    seen = st.session_state.setdefault(KEY_SEEN, {})
    for run in items:
        before = seen.get(run.id)
        if before in ("queued", "running") and run.status in ("completed", "failed"):
            icon = ":material/check_circle:" if run.status == "completed" else ":material/error:"
            st.toast(f"Run {run.id} ({run.name}) {run.status}", icon=icon)
        seen[run.id] = run.status


def live_panel(status: console.LiveStatus) -> None:
    """Progress, the latest figures, the error if any, and the curves of one run."""
    run = status.run
    st.subheader(f"Run {run.id}: {run.name}" + (" (recorded over the API by another training loop)"
                                                 if run.external else ""))
    done = 1.0 if run.status == "completed" else status.progress  # the last report may predate the end
    st.progress(min(max(done, 0.0), 1.0), text=f"{run.status} · epoch {status.epoch} · step {status.step}")
    cols = st.columns(5)
    cols[0].metric("ETA", f"{status.eta_min:.1f} min" if status.eta_min is not None else "-")
    cols[1].metric("Validation loss", f"{status.val_loss:.4f}" if status.val_loss is not None else "-")
    cols[2].metric("Learning rate", f"{status.learning_rate:.1e}" if status.learning_rate is not None else "-")
    if status.cpu_pct is not None:
        cols[3].metric("CPU", f"{status.cpu_pct:.0f} %")
    if status.memory is not None:
        cols[4].metric(status.memory[0], f"{status.memory[1]:.0f} MB")
    st.caption(status.last_written)
    if run.error:
        st.error(f"Run {run.id} {run.status}: {run.error.splitlines()[0]}")
        with st.expander("Details"):
            st.code(run.error)
    if status.metrics.empty:
        st.caption("No loss was recorded: the run stopped before its first step." if not status.active else
                   "The curves appear after the first steps.")
        return
    st.plotly_chart(charts.training_curves(status.metrics), key="console-curves")


def comparison(runs: RunStore, chosen: list[Run], history) -> None:
    """Curves, final figures and settings of two or more runs side by side."""
    ids = [r.id for r in chosen]
    st.plotly_chart(charts.compare_curves(runs.metrics(ids), {r.id: f"run {r.id}" for r in chosen}),
                    key="console-compare-chart")
    st.dataframe(history[history["id"].isin(ids)], hide_index=True, key="console-compare-final")
    side = console.settings_side_by_side(chosen)
    st.dataframe(side.style.apply(lambda row: ["background-color: #fff3cd" if row["differs"] else ""] * len(row),
                                  axis=1), key="console-compare-settings")


def promote(models, model_id: str) -> None:
    """Promote as the signed-in user (refused in the core for a role below admin; refused, the
    registry unchanged, when the model does not load); recorded in the audit trail."""
    access.perform(models, ui_access.me(), "model.promote", model_id, lambda: model.promote(models, model_id))
    _forget_forecasts()


def guarded_promote(models, model_id: str, trained_on: str | None = None, key: str = "promote") -> bool:
    """The candidate's backtest against the champion's on the same windows, what gets worse, and
    Promote only when the guard passes (``argus_core.model.guard``), after a confirmation when
    anything gets worse; an unscored pair gets "Score both" (a backtest of each on the same data).
    True when it promoted."""
    from argus_core.model import judge

    verdict = judge(models, model_id)
    if verdict.rows:
        table = pd.DataFrame(verdict.rows).set_index("figure")
        st.dataframe(table.style.format(precision=3, na_rep="-"), key=f"{key}-verdict",
                     column_config={"champion": st.column_config.NumberColumn(f"champion {verdict.champion}"),
                                    "candidate": st.column_config.NumberColumn(f"candidate {model_id}")})
    if not verdict.ok:
        st.warning(verdict.summary())
        dataset = verdict.dataset or trained_on
        if not verdict.scored and dataset and st.button(f"Score both on {dataset}", icon=":material/fact_check:",
                                                        key=f"{key}-score"):
            with st.spinner(f"Backtesting {model_id} and the champion on {dataset} ..."):
                score_both(models, model_id, verdict.champion, dataset)
            st.rerun()
        return False
    confirmed = True
    if verdict.worse:
        st.warning("What gets worse: " + "; ".join(verdict.worse))
        confirmed = st.checkbox("Promote although these get worse", key=f"{key}-confirm")
    if st.button("Promote to champion", icon=":material/military_tech:", key=key, disabled=not confirmed):
        promote(models, model_id)
        return True
    return False


def score_both(models, candidate: str, champion: str | None, dataset: str) -> None:
    """A backtest of the candidate and of the champion on the same data and windows (one origin
    per series, no classical baseline: what `make demo-data` runs), so the guard can judge."""
    from argus_core.model import run_backtest

    for model_id in (candidate, champion):
        if model_id:
            run_backtest(dataset, models, model_id, origins=1, classical="none", log=lambda line: None)
    st.cache_resource.clear()  # Model quality reads the new backtests


def rollback(models) -> str:
    reg = access.perform(models, ui_access.me(), "model.rollback", registry.champion_model_id(models) or "",
                         lambda: registry.rollback(models))
    _forget_forecasts()
    return reg["champion"]


def start(dataset, models, config, name: str | None, webhook: str | None) -> int:
    return access.perform(models, ui_access.me(), "train.start", str(dataset),
                          lambda: jobs.start(dataset, models, config, name=name, webhook=webhook))


def cancel(models, run_id: int) -> None:
    access.perform(models, ui_access.me(), "train.cancel", f"run {run_id}", lambda: jobs.cancel(models, run_id))


def resume(models, run_id: int) -> int:
    return access.perform(models, ui_access.me(), "train.resume", f"run {run_id}", lambda: jobs.resume(models, run_id))


def delete(models, runs: RunStore, run_id: int) -> Run:
    return access.perform(models, ui_access.me(), "run.delete", f"run {run_id}", lambda: runs.delete(run_id))


def audit_panel(models) -> None:
    """The audit trail: who promoted, rolled back, trained, silenced, changed rules or tokens."""
    trail = audit.trail(models, 200)
    if trail.empty:
        st.caption("Nothing recorded yet: promotes, roll backs, trainings, silences, rules and token changes "
                   "appear here with who did them.")
        return
    shown = trail.assign(time=pd.to_datetime(trail["time"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"))
    st.dataframe(shown[["time", "actor", "role", "via", "source", "action", "target", "outcome", "detail"]],
                 hide_index=True, key="console-audit",
                 column_config={"time": st.column_config.TextColumn("time (UTC)")})


def _forget_forecasts() -> None:
    # the pages key their views on the resolved champion, so they follow at once; this frees memory
    st.cache_resource.clear()
