"""The alerts panel: firing and recently resolved alerts of the dataset's live service (``serve
--rules``), with the rule, the server, the metric, when it fired and the lead time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from argus_core.fleet import live_state
from argus_core.views import dashboard


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
            st.caption("No alert rules run on this dataset: `python -m argus_core serve --dataset DIR --rules FILE` "
                       "alerts before a breach.")
        return
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
