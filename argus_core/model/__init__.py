"""The forecaster: the only wing that imports torch, Lightning or pytorch-forecasting.

Torch-free parts (safe to import from the CLI, the pages and the run store):
    config      TrainConfig: every training setting, one set of defaults
    spec        ModelSpec: what a model reads and writes, kept in its directory
    layout      long frame -> model rows (time index, calendar, series keys)
    registry    models/registry.json: champion, history, promote and roll back
    threads     the torch thread count, chosen once for training, serving and tests
    serving     what forecasts each series (the TFT, a simple method or a blend), chosen on validation
    guard       the promotion guard: a candidate's backtest against the champion's, same windows

Torch parts (imported when a model is trained or loaded):
    datasets    the pytorch-forecasting wiring (TimeSeriesDataSet arguments, the loss)
    normalizers, losses, fast_tft (faster TFT modules, same weights)
    inputs, batches, streaming    tensors for forecasts, training windows, day-by-day training
    callbacks, recorder           Lightning callbacks (progress, threads, checkpoints, run store)
    train, artifacts, forecast, backtest

The front, for every other wing (nothing outside this package imports its other modules):

    Forecaster, FleetForecast, resolve_model_id, ModelSpec, series_key     load and forecast
    promote                                                                the champion, once it loads
    served_labels, serving_rule, serving_defaults, serving_table           the serving table in words
    fit, fit_server, accelerator_problem, global_rank, RunRecorder         training
    run_backtest, backtest_table, load_backtest, json_safe, BACKTEST_SUMMARY   backtests
    judge                                   the promotion guard: does a candidate beat the champion
    registry, config, threads (public modules, torch-free)                 the champion, settings, threads

The names are looked up on first use, so importing this package (or a torch-free part) stays
cheap: torch arrives with the first model loaded or trained.

May import: ``argus_core.data``, ``argus_core.anomaly`` (train fits the detector beside the
model), ``argus_core.errors``, ``argus_core.atomic``. Never ``fleet``, ``views``, ``runs``,
``live`` or ``cli``.
"""

from __future__ import annotations

# front name -> (module of this package, its name there)
_FRONT = {
    "Forecaster": ("forecaster", "Forecaster"),
    "FleetForecast": ("forecast", "FleetForecast"),
    "resolve_model_id": ("forecast", "resolve_model_id"),
    "promote": ("forecaster", "promote"),
    "ModelSpec": ("spec", "ModelSpec"),
    "series_key": ("layout", "series_key"),
    "served_labels": ("describe", "served_labels"),
    "serving_rule": ("describe", "serving_rule"),
    "serving_defaults": ("describe", "serving_defaults"),
    "serving_table": ("describe", "serving_table"),
    "fit": ("train", "train"),
    "accelerator_problem": ("train", "accelerator_problem"),
    "fit_server": ("specialise", "specialise"),
    "global_rank": ("distributed", "global_rank"),
    "RunRecorder": ("recorder", "RunRecorder"),
    "run_backtest": ("backtest", "run"),
    "backtest_table": ("backtest", "table"),
    "load_backtest": ("backtest", "load"),
    "json_safe": ("backtest", "json_safe"),
    "BACKTEST_SUMMARY": ("backtest", "SUMMARY"),
    "judge": ("guard", "judge"),
}
PUBLIC_MODULES = ("registry", "config", "threads")  # imported as modules by other wings
__all__ = [*_FRONT, *PUBLIC_MODULES]


def __getattr__(name: str):
    # the front's names, imported when first asked for (PEP 562)
    if name in _FRONT:
        import importlib

        module, attribute = _FRONT[name]
        return getattr(importlib.import_module(f"argus_core.model.{module}"), attribute)
    if name in PUBLIC_MODULES:
        import importlib

        return importlib.import_module(f"argus_core.model.{name}")
    raise AttributeError(f"module 'argus_core.model' has no attribute {name!r}")
