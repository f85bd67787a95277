"""The live service (``python -m argus_core serve``): one process that owns a live dataset.

    sources      where samples come from: pushed batches (``POST /api/v1/samples``, spooled to
                 disk the moment they are accepted) and, as plug-ins, pulls from elsewhere
    ingest       request bodies (JSON records or CSV) -> validated rows, with the import rules
    snapshot     what one cycle found: a saved ``fleet.Assessment`` and the cycle's meta, kept on
                 disk so levels and the last snapshot survive a restart
    service      the cycle: take what arrived, append it atomically, ``fleet.assess`` it with the
                 champion (hot-reloaded after a promote), publish the snapshot, advance the alerts
    view         the last snapshot as the dashboard's fleet view (the pages read, never forecast)
    exporter     the snapshot as Prometheus metrics (current gauges with a ``horizon`` label)
    events       cycle and level-change messages for ``GET /api/v1/events`` (server-sent events)
    api          the FastAPI application: REST under ``/api/v1/``, ``/metrics``, health

May import every wing below it (``data``, ``anomaly``, ``model``'s front, ``fleet``, ``views``,
``runs``); nothing but ``cli`` imports it. It never imports torch itself: forecasting goes
through ``model.Forecaster``. Its state folder is read by others through ``fleet.live_state``.
"""
