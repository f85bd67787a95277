"""Training console: start a training in the background, watch it learn live, compare runs,
promote a model or roll back. The training runs in its own process; this page only reads the
run store, so the other pages stay usable and closing the browser stops nothing."""

import streamlit as st

import ui
from argus_core.errors import ArgusError
from argus_core.model import registry
from argus_core.runs import jobs
from argus_core.runs.store import ENDED
from argus_core.views import console
from ui import training
from ui.state import available_datasets

st.title("Training console")
selection = ui.current()
with ui.guard("the training console"):
    runs = training.run_store(selection.models)
start = console.FORM_DEFAULTS

if not ui.may("train.start"):
    st.caption(f"Signed in as {ui.me().name} ({ui.me().role}): you may follow trainings and compare runs; starting, "
               "cancelling and promoting need the operator or admin role.")
else:
    with st.expander("Start a training", expanded=runs.active() is None, icon=":material/model_training:"):
        with st.form("train-form"):
            dataset = st.selectbox("Dataset", available_datasets(), format_func=str, key="console-dataset")
            left, middle, right = st.columns(3)
            epochs = left.number_input("Epochs", 1, 500, start.epochs, key="console-epochs")
            batch = middle.number_input("Batch size", 1, 4096, start.batch_size, key="console-batch")
            hidden = right.number_input("Hidden size", 2, 512, start.hidden_size, step=2, key="console-hidden",
                                        help="a multiple of the 2 attention heads")
            rate = left.number_input("Learning rate", 1e-6, 1.0, start.learning_rate, format="%.5f", key="console-lr")
            limit = middle.number_input("Time limit (minutes, 0: none)", 0.0, 10_000.0, 0.0, key="console-limit")
            batches = right.number_input("Batches per epoch", 1, 100_000, start.batches_per_epoch,
                                         key="console-batches")
            mode = left.radio("Data", ["standard", "streaming"], horizontal=True, key="console-mode")
            start_from = middle.radio("Start from", ["champion", "scratch"], horizontal=True, key="console-fresh")
            name = right.text_input("Run name (optional)", key="console-name")
            recipe = left.radio("Recipe", ["these settings", "chosen by validation"], horizontal=True,
                                key="console-recipe",
                                help="chosen by validation: trains three recipes (encoder length, centre, hidden "
                                "size) from scratch and keeps the one with the lowest validation MASE")
            accumulate = middle.number_input("Accumulate gradients over (batches)", 1, 64, start.accumulate,
                                             key="console-accumulate")
            find_lr = right.checkbox("Learning rate: the finder's suggestion", key="console-find-lr",
                                     help="Lightning's learning-rate finder sweeps 1e-5 to 1e-1 over 100 batches "
                                     "first; the run then trains at its suggestion (the number above is ignored)")
            devices = left.number_input("Devices", 1, 64, start.devices, key="console-devices",
                                        help="train on this many GPUs (or CPU processes) at once through Lightning's "
                                        "DDP: each takes its share of the windows; the run is still one run")
            webhook = st.text_input("Webhook URL on completion or failure (optional)", key="console-webhook")
            if st.form_submit_button("Start training", icon=":material/play_arrow:"):
                try:
                    config = console.form_config(epochs=epochs, batch_size=batch, hidden_size=hidden,
                                                 learning_rate=rate, batches_per_epoch=batches,
                                                 streaming=mode == "streaming",
                                                 fresh=start_from == "scratch", time_limit_minutes=limit,
                                                 recipe="auto" if recipe == "chosen by validation" else "given",
                                                 accumulate=accumulate, find_lr="use" if find_lr else "off",
                                                 devices=devices)
                    run_id = training.start(dataset, selection.models, config, name.strip() or None,
                                            webhook.strip() or None)
                    st.success(f"Run {run_id} started in the background.")
                except ArgusError as exc:
                    st.error(str(exc))


@st.fragment(run_every=2)
def live() -> None:
    with ui.guard("the live run"):
        items = runs.list()
        training.announce_finished(items)
        current = console.current_run(items)
        if current is None:
            st.info("No training yet: start one above, or from a shell with `python -m argus_core train "
                    "--dataset DIR`.")
            return
        training.live_panel(console.live_status(runs, current))
    if current.status in console.ACTIVE and ui.may("train.cancel") and \
            st.button("Cancel run", icon=":material/stop:", key="cancel"):
        with ui.guard("cancelling the run"):
            training.cancel(selection.models, current.id)
            st.rerun()


live()

@st.fragment(run_every=3)
def history_and_champion() -> None:
    """The run history, Resume and the champion, kept current while runs start and finish (a
    finished run shows as finished, and its model can be promoted, without a reload)."""
    st.subheader("Run history")
    with ui.guard("the run history"):
        items = runs.list()
        history = console.history_table(runs, items)
        champion = registry.champion_model_id(selection.models)
    st.dataframe(history, hide_index=True, key="console-history", column_config={
        "started": st.column_config.DatetimeColumn("started", format="MM-DD HH:mm"),
        "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f")})
    if ui.may("train.resume") and (resumable := console.resumable(
            items, lambda run: jobs.checkpoint_of(selection.models, run) is not None)):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.selectbox("Resume a stopped run from its last checkpoint", resumable, key="console-resume")
        if right.button("Resume", icon=":material/replay:", key="resume"):
            with ui.guard("resuming the run"):
                st.success(f"Run {training.resume(selection.models, chosen)} resumes run {chosen}.")

    if ui.may("run.delete") and (ended := [r.id for r in items if r.status in ENDED]):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        doomed = left.selectbox("Delete an ended run (its model stays registered)", ended, key="console-delete-id",
                                format_func=lambda i: f"{i}: {next(r.name for r in items if r.id == i)}")
        if right.button("Delete run", icon=":material/delete:", key="delete-run"):
            with ui.guard("deleting the run"):
                training.delete(selection.models, runs, doomed)
                st.session_state[KEY_SAID] = f"Run {doomed} deleted."
                st.rerun()

    st.subheader("Champion")
    if said := st.session_state.pop(KEY_SAID, None):
        st.success(said)
    st.text(f"champion: {champion or 'none yet'}")
    left, right = st.columns(2, vertical_alignment="bottom")
    if ui.may("model.promote") and (finished := console.promotable(items, champion)):
        model_id = left.selectbox("Model of a finished run", finished, key="console-promote-id")
        trained_on = next((r.dataset for r in items if r.model_id == model_id), None)
        with left, ui.guard("promoting the model"):
            if training.guarded_promote(selection.models, model_id, trained_on):  # the guard, then the button
                st.session_state[KEY_SAID] = f"{model_id} is now the champion."
                st.rerun()
    if ui.may("model.rollback") and \
            right.button("Roll back to the previous champion", icon=":material/undo:", key="rollback"):
        with ui.guard("rolling back"):
            st.session_state[KEY_SAID] = f"Rolled back: {training.rollback(selection.models)} is the champion again."
            st.rerun()


KEY_SAID = "argus.console.said"  # what the last promote or roll back did, said once after the page redraws
history_and_champion()

st.subheader("Compare runs")
with ui.guard("the run history"):
    items = runs.list()
    history = console.history_table(runs, items)
picked = st.multiselect("Runs", [r.id for r in items], default=[r.id for r in items[:2]], key="console-compare",
                        format_func=lambda i: f"{i}: {next(r.name for r in items if r.id == i)}")
if len(picked) >= 2:
    training.comparison(runs, [r for r in items if r.id in picked], history)

st.subheader("Audit trail")
with ui.guard("the audit trail"):
    training.audit_panel(selection.models)
