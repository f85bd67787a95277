"""The dashboard in live mode: a watcher that reruns the app when the service publishes a new
snapshot, and the freshness banner the SRE pages show."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from argus_core.live import view as live_view
from argus_core.views import dashboard

KEY_SEEN = "argus.live.seen"
DRAWN = "argus.page_drawn"  # False while a full run of the app is drawing the page
POLL_S = 5  # how often the watcher reads the snapshot pointer (a small JSON file)


@st.fragment(run_every=POLL_S)
def watch(dataset: str) -> None:
    """Rerun the whole app once a new snapshot lands, so every page shows it in place; never while
    the page is still being drawn (a service publishing faster than a busy machine draws the page
    would otherwise restart it before its lower half, the alerts, was ever shown)."""
    generation = live_view.generation(dataset)
    seen = st.session_state.get(KEY_SEEN)
    st.session_state[KEY_SEEN] = (dataset, generation)
    st.caption(f"live · snapshot {generation}" if generation is not None else
               "live · waiting for the service's first snapshot")
    drawing = not st.session_state.get(DRAWN, True)  # this poll runs inside a full run: it draws the new one
    if not drawing and seen is not None and seen[0] == dataset and seen[1] != generation:
        st.rerun()


DATA_STOPPED_CYCLES = 3  # cycles without a new stored sample before the page says the data stopped


def freshness(view: dashboard.FleetView) -> None:
    """For a live view: when the snapshot was made, a warning when the service is late, and the
    servers whose samples stopped arriving."""
    status = view.live
    if status is None:
        return
    age = pd.Timestamp.now(tz="UTC") - status.created
    text = (f"Live: snapshot {status.generation} published {status.created:%H:%M:%S} UTC "
            f"({_duration(age)} ago), a cycle every {_duration(status.every)}")
    if status.late_by > pd.Timedelta(0):
        st.warning(f"{text}. The service is late by {_duration(status.late_by)}: is the live service still "
                   "running?", icon=":material/schedule:")
    else:
        st.caption(text)
    quiet = status.created - status.data_arrived if status.data_arrived is not None else pd.Timedelta(0)
    if quiet > DATA_STOPPED_CYCLES * status.every:
        st.warning(f"The data stopped: no new sample has been stored since {status.data_arrived:%H:%M:%S} UTC "
                   f"({_duration(quiet)} before this snapshot). The service still runs"
                   + (f", on data up to {max(status.last_sample.values()):%Y-%m-%d %H:%M} UTC"
                      if status.last_sample else "") + ": are the agents or the source still sending?",
                   icon=":material/signal_disconnected:")
    if status.model_error:
        st.warning(status.model_error)
    if status.stale:
        shown = ", ".join(status.stale[:8]) + (f" and {len(status.stale) - 8} more" if len(status.stale) > 8 else "")
        st.warning(f"{len(status.stale)} server(s) stopped sending samples: {shown} "
                   "(their forecast is from their last sample)", icon=":material/signal_disconnected:")


def _duration(delta: pd.Timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
