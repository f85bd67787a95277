"""Argus: predictive monitoring for a server fleet. Serve with `make run` (streamlit run app.py).

A router and the sidebar every page shares; the pages live in pages/, the Streamlit glue in ui/,
everything else in argus_core.
"""

import streamlit as st

import ui

st.set_page_config(page_title="Argus", page_icon=":material/monitoring:", layout="wide")

navigation = st.navigation([
    st.Page("pages/fleet_overview.py", title="Fleet overview", icon=":material/dashboard:", default=True),
    st.Page("pages/critical_servers.py", title="Critical servers", icon=":material/warning:"),
    st.Page("pages/server_detail.py", title="Server detail", icon=":material/dns:"),
    st.Page("pages/incident_demo.py", title="Incident demo", icon=":material/slideshow:"),
    st.Page("pages/training_console.py", title="Training console", icon=":material/model_training:"),
])
ui.sidebar()
navigation.run()
