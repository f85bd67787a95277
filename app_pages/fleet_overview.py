"""Fleet overview: how many servers are at each level, a heat map to scan, per-profile trends
with their forecast bands, and the few servers that most need attention."""

import pandas as pd
import streamlit as st

import ui
from argus_core.data import schema
from argus_core.fleet import risk
from argus_core.views import charts, dashboard

st.title("Fleet overview")
with ui.guard("the fleet overview"):
    view = ui.fleet_view(ui.current())
    ui.freshness(view)
    ranked, counts, before = ui.ranking_with_memory(view)
    if ranked.empty:
        reason = next(iter(view.forecast.skipped.values()), None)
        st.warning("No server in this dataset has the history a forecast needs" + (f" ({reason})" if reason else "")
                   + "; move the 'As of' cursor later or pick another dataset.")
        st.stop()

    st.caption(f"Model {view.model_id} · as of {view.as_of:%Y-%m-%d %H:%M} UTC · next "
               f"{schema.span_words(view.horizon * view.step)} · "
               f"{len(ranked)} servers forecast" + (f", {len(view.forecast.skipped)} without enough history"
                                                    if view.forecast.skipped else ""))
    for column, level in zip(st.columns(4), risk.LEVELS, strict=True):
        delta = None if before is None else counts[level] - before[level]
        column.metric(level.capitalize(), counts[level], delta=delta or None,
                      delta_color="inverse" if level != "healthy" else "normal",
                      help="change since the previous refresh or time cursor position")
    st.markdown(dashboard.abnormal_text(ranked, detector=view.abnormal is not None))

    st.subheader("Fleet heat map")
    st.caption("One row per profile, one cell per server, riskiest on the left; ◆ abnormal now; hover for the "
               "driver, click a cell to open the server.")
    clicked = st.plotly_chart(charts.fleet_heatmap(ranked), key="heatmap", on_select="rerun",
                              selection_mode="points")
    points = clicked.selection.points if clicked and clicked.selection else []
    if points and (server := charts.heatmap_server(ranked, points[0])):
        ui.open_server(server)

    st.subheader("Needs attention")
    attention = ranked[ranked["level"] != "healthy"].head(5)
    if attention.empty:
        st.success("Every server is healthy for the whole horizon. The highest scores:")
        attention = ranked.head(3)
    for row in attention.itertuples(index=False):
        name, level, detail, button = st.columns([2, 1.4, 5, 1.2], vertical_alignment="center")
        name.text(row.server_name)
        level.badge(row.level, color={"healthy": "green", "watch": "yellow", "warning": "orange",
                                      "critical": "red"}[row.level])
        when = "no critical breach at p90" if pd.isna(row.breach_p90) else \
            f"p90 reaches critical in {schema.span_words(pd.Timedelta(hours=row.hours_to_breach_p90))}"
        detail.text(f"{row.now}: {row.driver} at {row.value_now:.1f}" if row.now else
                    f"{row.driver}: P(critical) {row.p_critical:.0%}, {when}")
        if button.button("Details", key=f"open-{row.server_name}"):
            ui.open_server(row.server_name)

    ui.alerts_panel(view)

    st.subheader("By profile")
    metric = st.selectbox("Metric", view.metrics, key="overview-metric")
    past, future = dashboard.profile_aggregates(view, metric)
    st.caption("Mean per profile; after 'now', the mean of the servers' p10-p90 bands and p50 (dotted).")
    st.plotly_chart(charts.profile_bands(past, future, metric, view.thresholds.get(metric)), key="profiles")
