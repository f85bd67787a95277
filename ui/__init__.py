"""Streamlit glue for the Argus pages: the shared sidebar, cached data, errors and navigation.

The only ``st.cache_*`` decorators and session keys live here; pages import this package and
``argus_core``, never the other way round.
"""

from ui.access import may, me, sign_in
from ui.alerts import alerts_panel
from ui.data import backtest_of, demo_inputs, fleet_view, ranking_with_memory
from ui.errors import guard
from ui.live import DRAWN, freshness
from ui.state import Selection, current, open_server, sidebar

__all__ = ["DRAWN", "Selection", "alerts_panel", "backtest_of", "current", "demo_inputs", "fleet_view", "freshness",
           "guard", "may", "me", "open_server", "ranking_with_memory", "sidebar", "sign_in"]
