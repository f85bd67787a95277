"""Argus: predictive monitoring for server fleets.

The wings, each a package whose docstring says what it owns and what it may import:

    data/    datasets: the contract, profiles, the simulator, files, import, partitioned store
    model/   the TFT and everything that touches torch, Lightning or pytorch-forecasting
    runs/    the run store (SQLite) and background training jobs
    cli/     ``python -m argus_core ...``: thin, as the pages are

and, at the top level, what turns forecasts into what an SRE reads: ``risk`` (quantiles ->
breach probabilities, levels), ``dashboard`` (page views), ``replay`` (the incident demo),
``charts`` (plotly figures), ``errors`` (the one exception tree) and ``paths`` (shared helpers).

Imports go one way: data <- model <- (risk, dashboard, replay, charts, runs) <- cli. Nothing
outside ``model`` imports torch or pytorch-forecasting, and nothing here imports streamlit
(tests/test_architecture.py checks both).
"""
