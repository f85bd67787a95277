"""The forecaster: the only wing that imports torch, Lightning or pytorch-forecasting.

Torch-free parts (safe to import from the CLI, the pages and the run store):
    config      TrainConfig: every training setting, one set of defaults
    spec        ModelSpec: what a model reads and writes, kept in its directory
    layout      long frame -> model rows (time index, calendar, series keys)
    registry    models/registry.json: champion, history, promote and roll back
    threads     the torch thread count, chosen once for training, serving and tests
    serving     what forecasts each series (the TFT, a simple method or a blend), chosen on validation

Torch parts (imported when a model is trained or loaded):
    datasets    the pytorch-forecasting wiring (TimeSeriesDataSet arguments, the loss)
    normalizers, losses, fast_tft (faster TFT modules, same weights)
    inputs, batches, streaming    tensors for forecasts, training windows, day-by-day training
    callbacks, recorder           Lightning callbacks (progress, threads, checkpoints, run store)
    train, artifacts, forecast, backtest
    anomaly     abnormal now: a k-means model of nominal behaviour per profile (scikit-learn, plain JSON)
    anomaly_running   the same scores kept up to date row by row (the live service's cycles)

May import: ``argus_core.data``, ``argus_core.errors``, ``argus_core.paths``. Never ``runs``,
``cli`` or the top-level views; this package's ``__init__`` imports nothing, so importing a
torch-free part stays cheap.
"""
