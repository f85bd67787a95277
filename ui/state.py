"""Session keys and the sidebar every page shares (dataset, model, "as of" cursor, refresh)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from argus_core.errors import ArgusError
from argus_core.live import view as live_view
from argus_core.model import registry
from argus_core.views import dashboard
from ui import access, errors, live

ROOT = Path(__file__).resolve().parents[1]
DETAIL_PAGE = "app_pages/server_detail.py"

KEY_SELECTION = "argus.selection"
KEY_DATASET = "argus.dataset"
KEY_MODEL = "argus.model"
KEY_FOLLOW = "argus.follow_latest"
KEY_DATASET_KEPT = "argus.dataset_kept"  # the dataset chosen, kept while a page does not show the picker
KEY_CURSOR = "argus.cursor"  # dataset -> the chosen moment (ISO) or None (the last sample), kept across pages
KEY_LINK_READ = "argus.link_read"  # the ?as_of= of the URL already taken in
KEY_SERVER = "argus.server"  # the server the detail page opens on


@dataclass(frozen=True)
class Selection:
    dataset: Path | None
    models: Path
    model_id: str | None  # None: the champion
    as_of: pd.Timestamp | None  # None: the dataset's last timestamp
    problem: str | None = None  # why there is nothing to show (no dataset, unreadable dataset)


def models_root() -> Path:
    return Path(os.environ.get("ARGUS_MODELS", ROOT / "models"))


def available_datasets() -> list[Path]:
    """demo_data/* and data/* of the checkout, then any in ARGUS_DATASETS (os.pathsep-separated)."""
    found = dashboard.find_datasets(Path(os.environ.get("ARGUS_ROOT", ROOT)))
    extra = [Path(p).resolve() for p in os.environ.get("ARGUS_DATASETS", "").split(os.pathsep) if p]
    # a dataset named both ways (data/live-demo in ARGUS_DATASETS and found under data/) is listed once
    extra = [p for i, p in enumerate(extra) if p.is_dir() and p not in extra[:i]]
    return extra + [p for p in found if p.resolve() not in extra]


def _label(path: Path) -> str:
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = str(path)
    return f"{name} · live" if live_view.is_live(path) else name


def sidebar(demo: bool = False) -> Selection:
    """Draw the shared sidebar and remember the selection for the pages (``current()``). On the
    Incident demo (``demo``) the dataset and the time cursor are not shown: the demo plays its own
    scripted fleet in its own fleet time, and they would describe something else."""
    errors.new_run()
    models = models_root()
    datasets = available_datasets()
    with st.sidebar:
        st.markdown("### Argus")
        access.who_panel()
        if not datasets:
            selection = Selection(None, models, None, None, "No dataset found. Write the demo data with "
                                  "`make demo-data`, or simulate a fleet with `python -m argus_core generate "
                                  "--output data/fleet`.")
            st.warning(selection.problem)
            st.session_state[KEY_SELECTION] = selection
            return selection
        kept = st.session_state.get(KEY_DATASET_KEPT)
        if demo:
            st.caption("The Incident demo plays its own scripted fleet in its own fleet time (on the page); the "
                       "dataset and the time cursor of the other pages are kept for them.")
            model_id = _model_picker(models)
            selection = Selection(kept if kept in datasets else datasets[0], models, model_id, None, None)
            st.session_state[KEY_SELECTION] = selection
            return selection
        if KEY_DATASET not in st.session_state and kept in datasets:  # dropped by a page without it
            st.session_state[KEY_DATASET] = kept
        dataset = st.selectbox("Dataset", datasets, format_func=_label, key=KEY_DATASET)
        st.session_state[KEY_DATASET_KEPT] = dataset
        model_id = _model_picker(models)
        as_of, problem = _cursor(dataset)
        # a dataset a service runs on, or is about to (its state folder exists before the first
        # snapshot): the page follows it, and picks up the first snapshot without a reload
        if as_of is None and (live_view.is_live(dataset) or live_view.state_of(dataset).is_dir()):
            live.watch(str(dataset))
        st.button("Refresh", icon=":material/refresh:", help="Re-read the dataset and the models directory",
                  width="stretch")
    selection = Selection(dataset, models, model_id, as_of, problem)
    st.session_state[KEY_SELECTION] = selection
    return selection


def _model_picker(models: Path) -> str | None:
    try:
        entries = registry.read(models)
    except ArgusError as exc:
        errors.show_error(str(exc))
        return None
    champion = entries.get("champion")
    others = sorted((m for m in entries.get("models", {}) if m != champion), reverse=True)
    return st.selectbox("Model", [None, *others], key=KEY_MODEL,
                        format_func=lambda m: f"champion: {champion}" if m is None else m,
                        help="Forecasts use the champion unless you pick another registered model")


def _cursor(dataset: Path) -> tuple[pd.Timestamp | None, str | None]:
    """The "as of" cursor: the last sample (following the data) or a chosen moment. It is kept in
    its own session key, not only in the widgets' (Streamlit drops a widget's state on a page
    switch), put back into the widgets on every page, and mirrored in the URL (``?as_of=``), so a
    Details link, a table row, a reload and a shared link all open at the moment being looked at."""
    try:
        start, end, step = dashboard.data_span(dataset)
    except ArgusError as exc:
        return None, str(exc)
    cursors = st.session_state.setdefault(KEY_CURSOR, {})
    _seed_from_link(dataset, start, end, step, cursors)
    chosen = cursors.get(str(dataset))
    earliest = min(start + pd.Timedelta(hours=24), end)
    slider_key = f"argus.as_of.{dataset}"
    if KEY_FOLLOW not in st.session_state:  # dropped by a page switch (or a new session): put it back
        st.session_state[KEY_FOLLOW] = chosen is None
    if st.toggle("Follow the latest data", key=KEY_FOLLOW):
        cursors[str(dataset)] = None
        _mirror(None)
        st.caption(f"As of {end:%Y-%m-%d %H:%M} UTC (the last sample)")
        return None, None
    if slider_key not in st.session_state:
        stamp = pd.Timestamp(chosen) if chosen is not None else end
        st.session_state[slider_key] = _naive(min(max(stamp, earliest), end))
    picked = st.slider("As of (UTC)", min_value=_naive(earliest), max_value=_naive(end),
                       step=timedelta(seconds=step.total_seconds()), format="MM-DD HH:mm", key=slider_key)
    as_of = pd.Timestamp(picked).tz_localize("UTC")
    cursors[str(dataset)] = as_of.isoformat()
    _mirror(as_of)
    return as_of, None


def _mirror(as_of: pd.Timestamp | None) -> None:
    """The cursor in the URL (taken as read, so it is not read back as a new link)."""
    if as_of is None:
        st.query_params.pop("as_of", None)
        st.session_state[KEY_LINK_READ] = None
        return
    text = f"{as_of:%Y-%m-%dT%H:%M}"
    st.query_params["as_of"] = text
    st.session_state[KEY_LINK_READ] = text


def _seed_from_link(dataset: Path, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta,
                    cursors: dict) -> None:
    """A link with ``?as_of=2026-01-06T22:00`` (UTC) opens at that moment: SREs share links to
    what they saw. A time the session does not hold yet wins (a new link, a reload); an
    unreadable one is ignored with a warning."""
    wanted = st.query_params.get("as_of")
    if not wanted or st.session_state.get(KEY_LINK_READ) == wanted:
        return
    st.session_state[KEY_LINK_READ] = wanted
    try:
        stamp = pd.Timestamp(wanted)
    except ValueError:
        st.warning(f"ignored as_of={wanted!r} in the link: not a time")
        return
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    stamp = min(max(stamp, min(start + pd.Timedelta(hours=24), end)), end)
    cursors[str(dataset)] = stamp.floor(step).isoformat()
    for key in (KEY_FOLLOW, f"argus.as_of.{dataset}"):  # the link wins over what the widgets held
        st.session_state.pop(key, None)


def _naive(stamp: pd.Timestamp) -> datetime:
    return stamp.tz_convert("UTC").tz_localize(None).to_pydatetime()


def current() -> Selection:
    """The sidebar's selection (drawn by app.py before every page)."""
    selection = st.session_state.get(KEY_SELECTION)
    return selection if selection is not None else sidebar()


def open_server(server: str) -> None:
    """Go to the server detail page, opened on ``server`` at the moment being looked at."""
    st.session_state[KEY_SERVER] = server
    st.switch_page(DETAIL_PAGE, query_params={k: v for k, v in st.query_params.to_dict().items() if k == "as_of"})
