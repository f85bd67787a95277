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
from ui import errors, live

ROOT = Path(__file__).resolve().parents[1]
DETAIL_PAGE = "app_pages/server_detail.py"

KEY_SELECTION = "argus.selection"
KEY_DATASET = "argus.dataset"
KEY_MODEL = "argus.model"
KEY_FOLLOW = "argus.follow_latest"
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
    extra = [Path(p) for p in os.environ.get("ARGUS_DATASETS", "").split(os.pathsep) if p]
    return [p for p in extra if p.is_dir()] + [p for p in found if p not in extra]


def _label(path: Path) -> str:
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = str(path)
    return f"{name} · live" if live_view.is_live(path) else name


def sidebar() -> Selection:
    """Draw the shared sidebar and remember the selection for the pages (``current()``)."""
    errors.new_run()
    models = models_root()
    datasets = available_datasets()
    with st.sidebar:
        st.markdown("### Argus")
        if not datasets:
            selection = Selection(None, models, None, None, "No dataset found. Write the demo data with "
                                  "`make demo-data`, or simulate a fleet with `python -m argus_core generate "
                                  "--output data/fleet`.")
            st.warning(selection.problem)
            st.session_state[KEY_SELECTION] = selection
            return selection
        dataset = st.selectbox("Dataset", datasets, format_func=_label, key=KEY_DATASET)
        model_id = _model_picker(models)
        as_of, problem = _cursor(dataset)
        if as_of is None and live_view.is_live(dataset):
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
    try:
        start, end, step = dashboard.data_span(dataset)
    except ArgusError as exc:
        return None, str(exc)
    _seed_from_link(dataset, start, end, step)
    if st.toggle("Follow the latest data", value=True, key=KEY_FOLLOW):
        st.caption(f"As of {end:%Y-%m-%d %H:%M} UTC (the last sample)")
        return None, None
    earliest = min(start + pd.Timedelta(hours=24), end)
    chosen = st.slider("As of (UTC)", min_value=_naive(earliest), max_value=_naive(end), value=_naive(end),
                       step=timedelta(seconds=step.total_seconds()), format="MM-DD HH:mm",
                       key=f"argus.as_of.{dataset}")
    return pd.Timestamp(chosen).tz_localize("UTC"), None


def _seed_from_link(dataset: Path, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> None:
    """A link with ``?as_of=2026-01-06T22:00`` (UTC) opens at that moment: SREs share links to
    what they saw. Read once per session; an unreadable time is ignored with a warning."""
    wanted = st.query_params.get("as_of")
    if not wanted or st.session_state.get("argus.link_read"):
        return
    st.session_state["argus.link_read"] = True
    try:
        stamp = pd.Timestamp(wanted)
    except ValueError:
        st.warning(f"ignored as_of={wanted!r} in the link: not a time")
        return
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    stamp = min(max(stamp, min(start + pd.Timedelta(hours=24), end)), end)
    st.session_state[KEY_FOLLOW] = False
    st.session_state[f"argus.as_of.{dataset}"] = _naive(stamp.floor(step))


def _naive(stamp: pd.Timestamp) -> datetime:
    return stamp.tz_convert("UTC").tz_localize(None).to_pydatetime()


def current() -> Selection:
    """The sidebar's selection (drawn by app.py before every page)."""
    selection = st.session_state.get(KEY_SELECTION)
    return selection if selection is not None else sidebar()


def open_server(server: str) -> None:
    """Go to the server detail page, opened on ``server``."""
    st.session_state[KEY_SERVER] = server
    st.switch_page(DETAIL_PAGE)
