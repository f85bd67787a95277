"""Server detail: one server's forecast per metric (history, p10-p90 band, p50, thresholds, first
predicted breach) and the inputs the model weighed most."""

import pandas as pd
import streamlit as st

import ui
from argus_core.data.profiles import display_name
from argus_core.views import charts, dashboard
from ui.state import KEY_SERVER

st.title("Server detail")
with ui.guard("the server detail"):
    view = ui.fleet_view(ui.current())
    ui.freshness(view)
    servers = sorted(view.profiles)
    wanted = st.session_state.get(KEY_SERVER)
    if wanted not in servers:
        ranked, _, _ = ui.ranking_with_memory(view)
        wanted = ranked["server_name"].iloc[0] if len(ranked) else servers[0]
    server = st.selectbox("Server", servers, index=servers.index(wanted), key="detail-server",
                          help="type to search")
    st.session_state[KEY_SERVER] = server
    detail = dashboard.server_detail(view, server)

    st.text(f"{detail.server} · {display_name(detail.profile)} · as of {view.as_of:%Y-%m-%d %H:%M} UTC")
    if detail.skipped_reason:
        st.warning(f"No forecast for this server: {detail.skipped_reason}")
        st.stop()
    if detail.unseen:
        st.info(f"This server was never seen in training: its forecast comes from its profile "
                f"({display_name(detail.profile)}) and its own last 24 h.")

    summary = detail.risk[["p_warning", "p_critical", "breach_p50", "breach_p90", "peak_p90", "score"]].copy()
    for column in ("breach_p50", "breach_p90"):  # a time, or a plain "no breach" rather than an empty cell
        summary[column] = summary[column].map(lambda t: "no breach" if pd.isna(t) else f"{t:%m-%d %H:%M}")
    st.dataframe(summary.sort_values("score", ascending=False), key="detail-risk", column_config={
        "p_warning": st.column_config.ProgressColumn("P(warning)", format="percent", min_value=0, max_value=1),
        "p_critical": st.column_config.ProgressColumn("P(critical)", format="percent", min_value=0, max_value=1),
        "breach_p50": st.column_config.TextColumn("critical at p50 (UTC)"),
        "breach_p90": st.column_config.TextColumn("critical at p90 (UTC)"),
        "peak_p90": st.column_config.NumberColumn("peak p90", format="%.1f"),
        "score": st.column_config.NumberColumn("risk", format="%.0f"),
    })

    ui.alerts_panel(view, server, key="detail-alerts")

    st.subheader("Forecast per metric")
    st.caption("Last 24 h, then the p10-p90 band and p50 for the horizon; dotted: warning, dashed: critical; "
               "x: first predicted critical breach. Riskiest metric first.")
    metrics = list(summary.sort_values("score", ascending=False).index)
    simple = {m: by for m, by in detail.served_by.items() if by != "TFT"}
    st.caption("Forecast by: " + (", ".join(f"{m} {by}" for m, by in simple.items()) + "; the TFT for the rest"
                                  if simple else "the TFT for every metric")
               + (" (a server training never saw: served as the model's series are, taken together)"
                  if detail.unseen else " (chosen per series on the validation window before the hold-out)")
               + ". Model: "
               + (f"{detail.own_model}, this server's own (fine-tuned from {view.model_id} on its history; "
                  "it beat the fleet model on the server's hold-out)." if detail.own_model
                  else f"the fleet model {view.model_id}."))
    if len(detail.labelled):
        st.caption(f"Shaded grey: {len(detail.labelled)} labelled anomaly window(s) of this server in this span "
                   "(from the dataset's import).")
    st.plotly_chart(charts.metric_grid(detail.history, detail.quantiles, detail.risk, metrics,
                                       dashboard.server_thresholds(view, server), detail.labelled),
                    key="detail-metrics")

    if detail.deviation is not None and len(detail.deviation):
        st.subheader("Abnormal now?")
        st.caption("Distance of the server's behaviour from its profile's nominal clusters; abnormal after 3 steps "
                   "over the fast threshold or one over the persistent one (shaded), normal after 6 steps under.")
        st.plotly_chart(charts.deviation_chart(detail.deviation), key="detail-deviation")

    st.subheader("What the model looked at")
    st.caption("The TFT's variable selection weights over the last 24 h, for this server.")
    st.plotly_chart(charts.importance_bar(detail.importance), key="detail-importance")
