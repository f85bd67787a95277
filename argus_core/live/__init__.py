"""The live service (``python -m argus_core serve``): one process that owns a live dataset.

    sources      where samples come from: pushed batches (``POST /api/v1/samples``, spooled to
                 disk the moment they are accepted) and, as plug-ins, pulls from elsewhere
    ingest       request bodies (JSON records or CSV) -> validated rows, with the import rules
    snapshot     what one cycle found (ranking, risk per metric, forecast paths), kept on disk so
                 levels and the last snapshot survive a restart
    service      the cycle: take what arrived, append it atomically, forecast with the champion
                 (hot-reloaded after a promote), score risk and levels, publish the snapshot
    exporter     the snapshot as Prometheus metrics (current gauges with a ``horizon`` label)
    events       cycle and level-change messages for ``GET /api/v1/events`` (server-sent events)
    api          the FastAPI application: REST under ``/api/v1/``, ``/metrics``, health

May import every wing below it (``data``, ``model``, ``runs``, ``risk``, ``dashboard``); nothing
but ``cli`` imports it. It never imports torch itself: forecasting goes through ``model``.
"""
