"""Critical servers: the fleet ranked by risk, filterable, downloadable, one click from detail."""

import streamlit as st

import ui
from argus_core.data.profiles import display_name
from argus_core.fleet import risk
from argus_core.views import dashboard

st.title("Critical servers")
with ui.guard("the critical servers"):
    view = ui.fleet_view(ui.current())
    ui.freshness(view)
    ranked, _, _ = ui.ranking_with_memory(view)
    if ranked.empty:
        st.warning("No server has enough history for a forecast at this time; move the 'As of' cursor later.")
        st.stop()

    left, right = st.columns(2)
    profiles = left.multiselect("Profiles", sorted(ranked["profile"].unique()), placeholder="all profiles",
                                key="critical-profiles", format_func=display_name)
    levels = right.multiselect("Levels", list(risk.LEVELS), placeholder="all levels", key="critical-levels")
    only_abnormal = left.toggle("Abnormal now only", key="critical-abnormal",
                                help="servers far from their profile's nominal behaviour at the latest sample")
    shown = ranked[ranked["abnormal"]] if only_abnormal else ranked
    if profiles:
        shown = shown[shown["profile"].isin(profiles)]
    if levels:
        shown = shown[shown["level"].isin(levels)]
    shown = shown.reset_index(drop=True)

    table = dashboard.risk_table(view, shown)
    st.caption(f"{len(shown)} of {len(ranked)} servers · as of {view.as_of:%Y-%m-%d %H:%M} UTC · "
               "select a row to open its detail")
    event = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="single-row", key="critical-table",
        column_config={
            "server_name": st.column_config.TextColumn("server"),
            "p_critical": st.column_config.ProgressColumn("P(critical)", format="%.0f%%", min_value=0, max_value=100),
            "p_warning": st.column_config.ProgressColumn("P(warning)", format="%.0f%%", min_value=0, max_value=100),
            "breach_p50": st.column_config.TextColumn("breach at p50", help="first critical crossing of the median "
                                                                             "forecast, from the cursor"),
            "breach_p90": st.column_config.TextColumn("breach at p90", help="first critical crossing of the p90 path"),
            "now": st.column_config.TextColumn("now", help="a metric at or over its threshold at the latest sample"),
            "trend": st.column_config.LineChartColumn(
                "driver: last 6 h, then p50", width="small",
                help="the driving metric's recent history followed by its median forecast"),
            "abnormal": st.column_config.CheckboxColumn("abnormal now"),
            "abnormal_metrics": st.column_config.TextColumn("off metrics"),
            "score": st.column_config.NumberColumn("risk", format="%.0f"),
            "drivers": st.column_config.TextColumn("model's main inputs"),
        },
    )
    st.download_button("Download CSV", shown.drop(columns=[c for c in ("trend",) if c in shown]).to_csv(
                           index=False).encode(),
                       file_name=f"argus-risk-{view.as_of:%Y%m%d-%H%M}.csv", mime="text/csv",
                       icon=":material/download:")
    if event and event.selection.rows:
        ui.open_server(str(shown.loc[event.selection.rows[0], "server_name"]))
