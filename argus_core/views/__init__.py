"""What each page shows, computed without Streamlit (and usable from a notebook or a test).

Owns:
    dashboard   the fleet view (an ``Assessment`` with its history window) and the frames the Fleet
                overview, Critical servers and Server detail pages draw
    replay      the Incident demo: the scripted scenario replayed in fleet time, one assessment a tick
    charts      plotly figures from those frames
    console     the Training console's comparisons of runs
    quality     the Model quality page's boards (backtest, serving table)

May import: ``argus_core.data``, ``argus_core.anomaly``, ``argus_core.model`` (its front and its
torch-free parts), ``argus_core.fleet``, ``argus_core.runs``, ``argus_core.errors``. Never
``live`` or ``cli``, and never streamlit: the pages (``app_pages/``) and ``ui/`` hold that.
"""
