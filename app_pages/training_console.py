"""Training console: start a training in the background, watch it learn live, compare runs,
promote a model or roll back. The training runs in its own process; this page only reads the
run store, so the other pages stay usable and closing the browser stops nothing."""

import time

import pandas as pd
import streamlit as st

import ui
from argus_core import charts
from argus_core.errors import ArgusError
from argus_core.model import registry
from argus_core.model.config import TrainConfig
from argus_core.runs import jobs
from ui import training
from ui.state import available_datasets

st.title("Training console")
selection = ui.current()
with ui.guard("the training console"):
    runs = training.run_store(selection.models)

with st.expander("Start a training", expanded=runs.active() is None, icon=":material/model_training:"):
    with st.form("train-form"):
        datasets = available_datasets()
        dataset = st.selectbox("Dataset", datasets, format_func=str, key="console-dataset")
        left, middle, right = st.columns(3)
        epochs = left.number_input("Epochs", 1, 500, 12, key="console-epochs")
        batch = middle.number_input("Batch size", 1, 4096, 64, key="console-batch")
        hidden = right.number_input("Hidden size", 1, 512, 32, key="console-hidden")
        rate = left.number_input("Learning rate", 1e-6, 1.0, 3e-3, format="%.5f", key="console-lr")
        limit = middle.number_input("Time limit (minutes, 0: none)", 0.0, 10_000.0, 0.0, key="console-limit")
        batches = right.number_input("Batches per epoch", 1, 100_000, 100, key="console-batches")
        mode = left.radio("Data", ["standard", "streaming"], horizontal=True, key="console-mode")
        start_from = middle.radio("Start from", ["champion", "scratch"], horizontal=True, key="console-fresh")
        name = right.text_input("Run name (optional)", key="console-name")
        webhook = st.text_input("Webhook URL on completion or failure (optional)", key="console-webhook")
        if st.form_submit_button("Start training", icon=":material/play_arrow:"):
            try:
                config = TrainConfig(epochs=int(epochs), batch_size=int(batch), hidden_size=int(hidden),
                                     learning_rate=float(rate), batches_per_epoch=int(batches),
                                     streaming=mode == "streaming", fresh=start_from == "scratch",
                                     time_limit_minutes=float(limit) or None)
                run_id = jobs.start(dataset, selection.models, config, name=name.strip() or None,
                                    webhook=webhook.strip() or None)
                st.success(f"Run {run_id} started in the background.")
            except ArgusError as exc:
                st.error(str(exc))


@st.fragment(run_every=2)
def live() -> None:
    with ui.guard("the live run"):
        items = runs.list()
        training.announce_finished(items)
        current = next((r for r in items if r.status in ("queued", "running")), items[0] if items else None)
    if current is None:
        st.info("No training yet: start one above, or from a shell with `python -m argus_core train --dataset DIR`.")
        return
    metrics = runs.metrics(current.id)
    latest = metrics.groupby("name")["value"].last() if len(metrics) else pd.Series(dtype=float)
    step = int(metrics["step"].max()) if len(metrics) else 0
    epoch = int(metrics["epoch"].max()) + 1 if len(metrics) else 0
    st.subheader(f"Run {current.id}: {current.name}")
    st.progress(float(latest.get("progress", 0.0)), text=f"{current.status} · epoch {epoch} · step {step}")
    cols = st.columns(5)
    eta = latest.get("eta_s")
    cols[0].metric("ETA", f"{eta / 60:.1f} min" if eta is not None and current.status == "running" else "-")
    cols[1].metric("Validation loss", f"{latest['val_loss']:.4f}" if "val_loss" in latest else "-")
    cols[2].metric("Learning rate", f"{latest['learning_rate']:.1e}" if "learning_rate" in latest else "-")
    sample = runs.resources(current.id).tail(1)
    if len(sample):
        cols[3].metric("CPU", f"{sample['cpu_pct'].iloc[0]:.0f} %")
        gpu = sample["gpu_mem_mb"].iloc[0]
        cols[4].metric("RAM" if pd.isna(gpu) else "GPU memory",
                       f"{sample['rss_mb'].iloc[0]:.0f} MB" if pd.isna(gpu) else f"{gpu:.0f} MB")
    written = metrics["time"].max() if len(metrics) else None
    st.caption(f"last metric written {time.strftime('%H:%M:%S', time.gmtime(written))} UTC" if written else
               "waiting for the first step (the training process is importing its libraries)")
    if current.error:
        st.error(f"Run {current.id} {current.status}: {current.error.splitlines()[0]}")
        with st.expander("Details"):
            st.code(current.error)
    st.plotly_chart(charts.training_curves(metrics), key="console-curves")
    if current.status in ("queued", "running") and st.button("Cancel run", icon=":material/stop:", key="cancel"):
        with ui.guard("cancelling the run"):
            jobs.cancel(selection.models, current.id)
            st.rerun()


live()

st.subheader("Run history")
items = runs.list()
history = training.history_table(runs, items)
st.dataframe(history, hide_index=True, key="console-history", column_config={
    "started": st.column_config.DatetimeColumn("started", format="MM-DD HH:mm"),
    "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f")})
resumable = [r.id for r in items if r.status in ("interrupted", "failed", "cancelled")]
if resumable:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Resume a stopped run from its last checkpoint", resumable, key="console-resume")
    if right.button("Resume", icon=":material/replay:", key="resume"):
        with ui.guard("resuming the run"):
            st.success(f"Run {jobs.resume(selection.models, chosen)} resumes run {chosen}.")

st.subheader("Compare runs")
picked = st.multiselect("Runs", [r.id for r in items], default=[r.id for r in items[:2]], key="console-compare",
                        format_func=lambda i: f"{i}: {next(r.name for r in items if r.id == i)}")
if len(picked) >= 2:
    chosen_runs = [r for r in items if r.id in picked]
    st.plotly_chart(charts.compare_curves(runs.metrics(picked), {r.id: f"run {r.id}" for r in chosen_runs}),
                    key="console-compare-chart")
    st.dataframe(history[history["id"].isin(picked)], hide_index=True, key="console-compare-final")
    side = training.settings_side_by_side(chosen_runs)
    st.dataframe(side.style.apply(lambda row: ["background-color: #fff3cd" if row["differs"] else ""] * len(row),
                                  axis=1), key="console-compare-settings")

st.subheader("Champion")
champion = registry.champion_model_id(selection.models)
st.text(f"champion: {champion or 'none yet'}")
finished = [r.model_id for r in items if r.status == "completed" and r.model_id and r.model_id != champion]
left, right = st.columns(2, vertical_alignment="bottom")
if finished:
    model_id = left.selectbox("Model of a finished run", finished, key="console-promote-id")
    if left.button("Promote to champion", icon=":material/military_tech:", key="promote"):
        with ui.guard("promoting the model"):
            training.promote(selection.models, model_id)
            st.rerun()
if right.button("Roll back to the previous champion", icon=":material/undo:", key="rollback"):
    with ui.guard("rolling back"):
        st.success(f"champion is now {training.rollback(selection.models)}")
