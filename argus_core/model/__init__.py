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

The front, for every other wing: ``Forecaster`` (load a model, forecast a fleet) and the
``FleetForecast`` it returns, importable from ``argus_core.model`` itself. They are looked up on
first use, so importing this package (or a torch-free part) stays cheap.

May import: ``argus_core.data``, ``argus_core.anomaly`` (train fits the detector beside the
model), ``argus_core.errors``, ``argus_core.atomic``. Never ``fleet``, ``views``, ``runs``,
``live`` or ``cli``.
"""

from __future__ import annotations

_FRONT = {"Forecaster": "argus_core.model.forecaster", "FleetForecast": "argus_core.model.forecast",
          "resolve_model_id": "argus_core.model.forecast"}


def __getattr__(name: str):
    # the front's names, imported when first asked for (PEP 562)
    if name in _FRONT:
        import importlib

        return getattr(importlib.import_module(_FRONT[name]), name)
    raise AttributeError(f"module 'argus_core.model' has no attribute {name!r}")
