"""Argus: predictive monitoring for server fleets.

The wings, each a package whose docstring says what it owns and what it may import:

    data/     datasets: the contract, profiles, the simulator, files, import, partitioned store
    anomaly/  abnormal now: the k-means detector and the live running scorer (scikit-learn, no torch)
    model/    the TFT and everything that touches torch, Lightning or pytorch-forecasting, behind
              its front ``Forecaster`` (load a model, forecast a fleet)
    fleet/    what forecasts mean: thresholds (one resolver), risk, levels, alert rules, and
              ``assess() -> Assessment``, the one path every caller takes
    views/    what each page shows, without Streamlit: dashboard, replay (the incident demo),
              charts, console, quality
    runs/     the run store (SQLite) and background training jobs
    access/   who may do what: roles, the service's scoped tokens, the audit trail (in the run store)
    live/     the service process: sources, ingest, the cycle (calls ``fleet.assess``), snapshot,
              API, exporter, sinks, events
    cli/      ``python -m argus_core ...``: thin, as the pages are

and two small modules every wing may use: ``errors`` (the one exception tree) and ``atomic``
(the one atomic write).

Imports go one way: data -> anomaly -> model -> fleet -> views, runs -> access -> live -> cli. Nothing
outside ``model`` imports torch or pytorch-forecasting, nothing here imports streamlit, and no
module imports another in a circle (tests/test_architecture.py checks all of it).
"""
