"""Argus: predictive monitoring for a server fleet. Serve with `make run` (streamlit run app.py).

A router and the sidebar every page shares; the pages live in app_pages/, the Streamlit glue in
ui/, everything else in argus_core. (Not pages/: Streamlit still serves a pages/ folder's
scripts on their own, without this router, to a fresh server's first direct visit of a page URL.)
"""

import streamlit as st

import ui

st.set_page_config(page_title="Argus", page_icon=":material/monitoring:", layout="wide")

navigation = st.navigation([
    st.Page("app_pages/fleet_overview.py", title="Fleet overview", icon=":material/dashboard:", default=True),
    st.Page("app_pages/critical_servers.py", title="Critical servers", icon=":material/warning:"),
    st.Page("app_pages/server_detail.py", title="Server detail", icon=":material/dns:"),
    st.Page("app_pages/incident_demo.py", title="Incident demo", icon=":material/slideshow:"),
    st.Page("app_pages/training_console.py", title="Training console", icon=":material/model_training:"),
    st.Page("app_pages/model_quality.py", title="Model quality", icon=":material/fact_check:"),
])
st.session_state[ui.DRAWN] = False  # the live watcher waits for this run to finish before it asks for the next
try:
    ui.sign_in()  # with [auth] in .streamlit/secrets.toml: the sign-in screen until someone with a role is here
    ui.sidebar(demo=navigation.title == "Incident demo")
    navigation.run()
finally:
    st.session_state[ui.DRAWN] = True
