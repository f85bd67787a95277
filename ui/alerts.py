"""The alerts panel: firing and recently resolved alerts of the dataset's live service (``serve
--rules``), with the rule, the server, the metric, when it fired and the lead time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from argus_core import access
from argus_core.errors import ArgusError
from argus_core.fleet import live_state
from argus_core.views import dashboard
from ui import access as ui_access
from ui.state import models_root


def _lead(value) -> str:
    if pd.isna(value):
        return "-"
    minutes = value / pd.Timedelta("1min")
    return f"{minutes / 60:.1f} h" if abs(minutes) >= 90 else f"{minutes:.0f} min"


def alerts_panel(view: dashboard.FleetView, server: str | None = None, key: str = "alerts") -> None:
    """Draw the alerts (one server's when ``server``); nothing when no alerting runs on the data."""
    alerts = live_state.alerts_of(view.dataset)
    if alerts is None:
        if server is None:
            st.caption("No alerting runs on this dataset: alerts come from Argus's live service (see the "
                       "documentation's Live service page).")
        return
    if server is None:
        silences_panel(view.dataset)
    if server is not None:
        alerts = alerts[alerts["server_name"] == server]
    firing = alerts[alerts["state"] == "firing"]
    resolved = alerts[alerts["state"] == "resolved"]
    st.subheader("Alerts" if server is None else "Alerts on this server")
    if firing.empty and resolved.empty:
        st.success("No alert is firing, and none resolved in the last 24 h.")
        return
    st.markdown(f"**{len(firing)} firing**, {len(resolved)} resolved in the last 24 h"
                + (f" ({int(firing['silenced'].sum())} silenced)" if firing["silenced"].any() else ""))
    table = alerts.assign(
        lead=alerts["lead"].map(_lead),
        fired=alerts["starts_at"].map(lambda t: f"{t:%m-%d %H:%M}"),
        ended=alerts["ends_at"].map(lambda t: "" if pd.isna(t) else f"{t:%m-%d %H:%M}"),
        metric=alerts["metric"].replace("", "(server)"))
    columns = ["state", "rule", "server_name", "metric", "fired", "lead", "ended", "summary"]
    if server is not None:
        columns.remove("server_name")
    st.dataframe(table[columns], key=key, hide_index=True, column_config={
        "server_name": st.column_config.TextColumn("server"),
        "fired": st.column_config.TextColumn("fired (UTC)"),
        "lead": st.column_config.TextColumn("lead time", help="from firing to the breach: the actual one when it "
                                                              "happened, else the p50 forecast's"),
        "ended": st.column_config.TextColumn("resolved (UTC)"),
    })


def silences_panel(dataset) -> None:
    """The silences sent to the dataset's live service, each with its end, and Expire: the
    service ends it now (through its API, with ``ARGUS_TOKEN`` when the service has a token)."""
    saved = live_state.read_alerts(live_state.state_dir(dataset)) or {}
    silences = [s for s in saved.get("silences", []) if s.get("id")]
    if not silences:
        return
    with st.expander(f"{len(silences)} silence(s)", icon=":material/notifications_off:"):
        table = pd.DataFrame([{"id": s["id"], "rule": s.get("rule", "*"), "server": s.get("server", "*"),
                               "metric": s.get("metric", "*"), "until (UTC)": _until(s.get("until")),
                               "comment": s.get("comment", "")} for s in silences])
        st.dataframe(table, hide_index=True, key="silences-table")
        url = live_state.service_url(dataset)
        if url is None:
            st.caption("The live service is not running: a silence can be expired while it runs.")
            return
        if not ui_access.may("silence.expire"):
            return
        left, right = st.columns([3, 1])
        chosen = left.selectbox("Silence", table["id"], key="silence-expire-choice",
                                format_func=lambda i: _silence_label(table, i))
        if right.button("Expire now", icon=":material/notifications_active:", key="silence-expire"):
            try:
                access.perform(models_root(), ui_access.me(), "silence.expire", chosen,
                               lambda: live_state.expire_silence(url, chosen))
            except ArgusError as exc:
                st.error(str(exc))
            else:
                st.success(f"Silence {chosen} expired: its alerts notify again.")


def _until(value) -> str:
    return "no end" if not value else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"


def _silence_label(table: pd.DataFrame, silence_id: str) -> str:
    row = table[table["id"] == silence_id].iloc[0]
    what = ", ".join(f"{k} {row[k]}" for k in ("rule", "server", "metric") if row[k] != "*")
    return f"{what} until {row['until (UTC)']}" + (f" ({row['comment'][:40]})" if row["comment"] else "")
