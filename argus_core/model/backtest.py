"""Rolling-origin backtests: the TFT beside naive, seasonal naive and a classical model.

``run(dataset, model_root, model_id)`` scores the data a model never trained on: after each
series' hold-out start (``train --holdout``) or, for a model trained without one, after the end
of its training data. Forecast origins are spaced ``every`` steps (default: one horizon); each
forecasts ``horizon`` steps with p10/p50/p90. In the same run:

- naive: the last value, its band from the in-sample spread of h-step changes;
- seasonal naive: the value one day earlier, its band from the in-sample seasonal errors;
- served: what the product forecasts each series with (``model.serving``: the TFT, a simple
  method or a blend, chosen per series on the validation window before the hold-out, when the
  model has a serving table; then ``model.climb``: the climb a series is caught in, where the
  network does not follow it);
- a classical model from statsforecast (AutoARIMA or AutoETS, non-seasonal, or MSTL with a
  one-day season and an AutoETS trend; 80 % interval as p10-p90), each fitted on the last 7 days
  before every origin, the fits spread over the machine's cores, when the optional extra is
  installed (``requirements-extras.txt``).

Scores per series: MASE (mean absolute error of p50, scaled by the in-sample mean absolute
seasonal-naive error, one-day season), pinball loss per quantile (scaled the same way), and the
share of actuals inside p10-p90; then mean and median over series, per metric and per profile,
the geometric mean over series of each model's MASE relative to seasonal naive's (the BOOM
benchmark's aggregate, which one series with a tiny in-sample error cannot swamp) and the share
of series each model forecasts best.
Where the dataset has labelled anomaly windows, error and coverage inside and outside them.

Results are saved with the model (``backtest.json`` and the forecasts in ``backtest.parquet``),
so the dashboard shows them without recomputing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core import atomic
from argus_core.data import schema, store
from argus_core.errors import ArgusError, DatasetError, SettingsError
from argus_core.model import climb, datasets, forecast, layout, serving
from argus_core.model.config import CLASSICAL_FIT_BUDGET
from argus_core.model.guard import SUMMARY  # one name for the file, read by the torch-free guard too
from argus_core.model.serving import change_quantiles
from argus_core.model.spec import ModelSpec
from argus_core.model.threads import use_threads

FORECASTS = "backtest.parquet"
TFT = "tft"
NAIVE = "naive"
SEASONAL = "seasonal_naive"
SERVED = "served"  # the TFT, a simple method or a blend, per series, as the model serves it (model.serving)
CLASSICAL = ("autoarima", "autoets", "mstl")
SEASON = pd.Timedelta("1D")
FOREIGN_SHARE = 0.3  # share of each series scored when the model never trained on the dataset
CLASSICAL_HISTORY = 2016  # steps the classical model is fitted on before each origin (7 days at 5 min)


@dataclass
class Backtest:
    summary: dict
    forecasts: pd.DataFrame


def classical_available() -> bool:
    try:
        import statsforecast  # noqa: F401
    except ImportError:
        return False
    return True


def run(dataset: str | Path, model_root: str | Path, model_id: str | None = None, origins: int | None = None,
        every: int | None = None, classical: str = "autoarima", batch_size: int = 128,
        log: Callable[[str], None] = lambda line: None, classical_origins: int | None = None) -> Backtest:
    """Score model ``model_id`` (default: the champion) on ``dataset``: see the module's docstring.
    ``classical_origins``: the classical model is fitted at the last N origins of each series (default:
    as many as keep the fits within ``CLASSICAL_FIT_BUDGET``, at least one); where that is fewer than
    every origin, it is scored beside every other model on those origins (``summary["classical_origins"]``)
    and left out of the main scoreboard, whose origins it did not see."""
    import torch

    from argus_core.model.batches import WindowBatches

    for name, value in (("origins", origins), ("every", every), ("classical_origins", classical_origins)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SettingsError(f"{name} must be a positive whole number (or left out for the default), not {value!r}")
    started = time.perf_counter()
    model = forecast.load_model(model_root, model_id)
    spec, network = model.spec, model.network
    manifest = store.read_manifest(dataset)
    if classical != "none" and classical not in CLASSICAL:
        raise ArgusError(f"unknown classical model {classical!r}; use {', '.join(CLASSICAL)} or none")
    if classical != "none" and not classical_available():
        log("statsforecast is not installed: no classical baseline (pip install -r requirements-extras.txt)")
        classical = "none"
    frame = store.read(dataset)
    try:
        prepared = layout.prepare(frame, spec)
    except DatasetError as exc:
        raise ArgusError(f"model {model.model_id} does not fit {dataset}: {exc}") from exc
    starts, evaluation = _evaluation_starts(model, prepared, spec, dataset, manifest)
    every = every or spec.horizon
    try:
        windows = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters),
                                list(network.hparams.x_reals), list(network.hparams.x_categoricals), batch_size,
                                complete=False, first_start=starts, shuffle=False)
    except DatasetError as exc:
        raise ArgusError(f"nothing to backtest in {dataset}: {exc}") from exc
    chosen = origin_windows(windows, spec, starts, every, origins)
    if not len(chosen):
        raise ArgusError("no forecast origin fits after the evaluation start: the hold-out is shorter than "
                         f"one horizon ({spec.horizon} steps); train with a larger --holdout")
    enc, horizon = spec.encoder_length, spec.horizon
    season = int(SEASON / pd.Timedelta(spec.step))
    log(f"backtest of {model.model_id} on {dataset}: {len(chosen)} origins over {len(np.unique(chosen[:, 0]))} "
        f"series, {horizon} steps ahead, every {every} steps")

    use_threads()
    pieces = []
    with torch.inference_mode():
        for first in range(0, len(chosen), batch_size):
            batch = chosen[first:first + batch_size]
            x, _, scales = windows.window_inputs(batch)
            out = network(x)
            pieces.append(forecast.sorted_prediction(out) * scales[:, None, None, None])
    tft = np.concatenate(pieces)  # (B, targets, H, Q)

    rows = []
    rule = climb.for_step(spec.step)
    climb_reads = rule.day_steps  # the day the climb must exceed
    targets = list(spec.targets)
    unknown = list(spec.unknown_reals)
    for target_index, target in enumerate(targets):
        series_values = windows.values[:, :, unknown.index(target)]  # raw units (S, T)
        # what the served forecast's simple methods read, once per series (model.serving)
        paths = serving.series_paths(series_values, model.serving.season) if model.serving is not None else None
        bands: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for b, (s, w) in enumerate(chosen):
            origin = w + enc  # array position of the first forecast step
            name = str(windows.names[s])
            if s not in bands:  # baseline bands come from each series' in-sample part, once
                sample = series_values[s, :starts_at(starts, name, windows)]
                bands[s] = (change_quantiles(sample, horizon), change_quantiles(sample, season, only=True))
            server, metric = series_of(name, target, spec)
            base = dict(server_name=server, metric=metric, profile=windows.profiles[s],
                        origin=windows.t0 + origin, step=np.arange(1, horizon + 1),
                        actual=series_values[s, origin:origin + horizon])
            rows.append({**base, "model": TFT, "q": tft[b, target_index]})
            rows.append({**base, "model": NAIVE, "q": naive_forecast(series_values[s, :origin], bands[s][0])})
            rows.append({**base, "model": SEASONAL,
                         "q": seasonal_forecast(series_values[s], origin, horizon, season, bands[s][1])})
            # what the product serves for this series: the serving table's choice (when the model
            # has one), then the climb rule, as forecast.forecast_fleet does
            served = tft[b, target_index] if paths is None else _served_forecast(
                model.serving, name, target, spec, tft[b, target_index],
                paths[0][s, origin:origin + horizon], float(paths[1][s, origin]),
                (bands[s][1][0].tolist(), bands[s][0].tolist()), series_values[s, :origin])
            served, _ = climb.apply(served[None], series_values[s, max(0, origin - climb_reads):origin][None], rule)
            rows.append({**base, "model": SERVED, "q": served[0]})
    keep = np.ones(len(chosen), dtype=bool)
    if classical != "none":
        per_series = classical_origins or max(1, CLASSICAL_FIT_BUDGET // (len(np.unique(chosen[:, 0])) * len(targets)))
        keep = last_origins(chosen, per_series)
        where, more = (("every origin", "") if keep.all() else
                       (f"the last {per_series} origin(s) of each series",
                        f" of {len(chosen) * len(targets)}: --classical-origins sets more"))
        log(f"fitting {classical} at {where} ({int(keep.sum()) * len(targets)} fits{more}) ...")
        tft_rows = [r for r in rows if r["model"] == TFT]  # target by target, in ``chosen`` order
        picked = [r for i, r in enumerate(tft_rows) if keep[i % len(chosen)]]
        rows += _classical_rows(picked, windows, chosen[keep], spec, classical, log)

    forecasts = _forecast_frame(rows, spec)
    scales = mase_scales(windows, spec, starts, season)
    labels = pd.concat([incident_labels(manifest), incident_windows(store.read_incidents(dataset))],
                       ignore_index=True)
    hour = max(1, int(pd.Timedelta("1h") / pd.Timedelta(spec.step)))
    if classical == "none" or keep.all():
        summary = summarise(forecasts, scales, labels, hour)
    else:  # the classical model saw fewer origins: scored beside the others on those, kept off the main board
        summary = summarise(forecasts[forecasts["model"] != classical], scales, labels, hour)
        fitted = forecasts.loc[forecasts["model"] == classical, ["server_name", "metric", "origin"]].drop_duplicates()
        paired = forecasts.merge(fitted, on=["server_name", "metric", "origin"])
        summary["classical_origins"] = {
            "model": classical, "per_series": int(per_series), "origins": int(keep.sum()),
            "overall": summarise(paired, scales, labels, hour)["overall"]}
    summary.update(
        model_id=model.model_id, dataset=_shown_path(dataset), created=pd.Timestamp.now(tz="UTC").isoformat(),
        horizon=horizon, every=every, origins=int(len(chosen)), series=int(len(np.unique(chosen[:, 0]))),
        classical=classical, seconds=round(time.perf_counter() - started, 1),
        evaluation=evaluation,
    )
    scored = forecasts[(forecasts["model"] == TFT) & forecasts["actual"].notna()]
    tft_mase = (summary.get("overall") or {}).get(TFT, {}).get("mean_mase")
    if scored.empty or tft_mase is None or not math.isfinite(float(tft_mase)):
        raise DatasetError(f"nothing could be scored in {dataset}: no forecast origin has actual values after "
                           f"{spec.encoder_length} steps of history (the data is too short for model "
                           f"{model.model_id}); the model's previous backtest is kept")
    result = Backtest(summary, forecasts)
    save(model.path, result)
    return result


def _served_forecast(table, name: str, target: str, spec: ModelSpec, tft: np.ndarray, seasonal: np.ndarray,
                     last: float, in_sample_bands: tuple[list, list], history: np.ndarray) -> np.ndarray:
    """What the product serves at one origin; a series the table does not hold (a dataset the model
    never saw) is served by its target's default, with bands from its own in-sample part."""
    key = name if spec.layout == "series" else layout.series_key(name, target)
    choice = table.choice_at(key, target, history)
    tft = serving.widen(tft, table.tft_band(target))
    if choice.tft_weight >= 1.0:
        return tft
    entry = table.series.get(key)
    seasonal_band, naive_band = ((entry["seasonal_band"], entry["naive_band"]) if entry is not None
                                 else in_sample_bands)
    return serving.served(choice, tft, seasonal, last, seasonal_band, naive_band)


def _shown_path(dataset: str | Path) -> str:
    """The dataset's path relative to the working directory when it lies inside it (a shipped
    backtest then names ``demo_data/fleet`` on every checkout), absolute otherwise."""
    where = Path(dataset).resolve()
    try:
        return str(where.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(where)


def starts_at(starts: dict[str, int], name: str, windows) -> int:
    """The evaluation start of a series as an array position (its in-sample part ends there)."""
    return int(starts[name] - windows.t0)


def save(model_dir: Path, result: Backtest) -> None:
    """Write the summary and forecasts beside the model, each atomically."""
    atomic.write_json(model_dir / SUMMARY, json_safe(result.summary), compact=True)
    compact = result.forecasts.astype({c: "float32" for c in ("actual", "q10", "q50", "q90")})
    compact = compact.astype({c: "category" for c in ("server_name", "metric", "profile", "model")})
    with atomic.staged(model_dir / FORECASTS) as tmp:
        compact.drop(columns=["step"]).to_parquet(tmp, index=False, compression="zstd")


def load(model_dir: str | Path) -> Backtest | None:
    """A model's saved backtest, or None when it has none (or an unreadable one)."""
    model_dir = Path(model_dir)
    try:
        summary = json.loads((model_dir / SUMMARY).read_text())
        forecasts = pd.read_parquet(model_dir / FORECASTS)
    except (OSError, ValueError):
        return None
    for column in ("server_name", "metric", "profile", "model"):
        forecasts[column] = forecasts[column].astype(str)
    return Backtest(summary, forecasts)


# --- origins and baselines ------------------------------------------------------------------------------

def _evaluation_starts(model, prepared: pd.DataFrame, spec: ModelSpec, dataset: str | Path,
                       manifest: dict) -> tuple[dict[str, int], str]:
    """time_idx where each series' evaluation starts, and how it was chosen:

    - the model's own hold-out (``train --holdout``), recorded per series, on the data it trained on;
    - a dataset the model never trained on (whether or not it kept a hold-out): the last
      ``FOREIGN_SHARE`` of every series (the rest is the in-sample part that scales MASE and
      widens the baselines);
    - the model's training dataset: what came after the training data, if anything."""
    recorded = model.training_info.get("evaluation_start") or {}
    step = pd.Timedelta(spec.step)
    names = prepared[schema.SERVER].unique()
    same_data = (model.training_info.get("dataset") == str(Path(dataset).resolve())
                 or model.training_info.get("data_fingerprint") == store.fingerprint(manifest))
    if recorded and same_data:  # another dataset's series have no hold-out of this model's: the branch below
        return ({name: int((pd.Timestamp(recorded[name]) - layout.EPOCH) // step) for name in names
                 if name in recorded}, "per-series hold-out")
    if not same_data:
        grouped = prepared.groupby(schema.SERVER)[layout.TIME_IDX]
        first, last = grouped.min(), grouped.max()
        starts = (last + 1 - np.floor((last - first + 1) * FOREIGN_SHARE)).astype("int64")
        return starts.to_dict(), f"last {FOREIGN_SHARE:.0%} of each series of data the model never trained on"
    span = model.training_info.get("data_span") or []
    if len(span) != 2:
        raise ArgusError(f"model {model.model_id} does not record what it trained on: cannot tell its unseen data")
    after = int((pd.Timestamp(span[1]) - layout.EPOCH) // step) + 1
    if prepared[layout.TIME_IDX].max() < after + spec.horizon:
        raise ArgusError(f"model {model.model_id} trained on all of this data (up to {span[1]}): backtest it on "
                         "newer data, or train with --holdout 0.3 to keep the end of every series out of training")
    return {name: after for name in names}, "after the training data"


def origin_windows(windows, spec: ModelSpec, starts: dict[str, int], every: int, limit: int | None) -> np.ndarray:
    """(series, window start) of every origin: from each series' evaluation start, every ``every``
    steps, while a whole horizon fits; with ``limit``, the last ``limit`` of each series."""
    available = {(int(s), int(w)) for s, w in windows.windows}
    chosen = []
    length = windows.values.shape[1]
    for s, name in enumerate(windows.names):
        if str(name) not in starts:
            continue
        first = starts_at(starts, str(name), windows)
        mine = [origin - spec.encoder_length for origin in range(first, length - spec.horizon + 1, every)
                if (s, origin - spec.encoder_length) in available]
        if limit:
            mine = mine[-limit:]
        chosen += [(s, w) for w in mine]
    return np.array(chosen, dtype=np.int64).reshape(-1, 2)


def naive_forecast(history: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """(H, 3): the last real value, widened by the in-sample quantiles of h-step changes."""
    real = history[~np.isnan(history)]
    last = real[-1] if len(real) else np.nan
    return np.stack([last + bands[:, 0], np.full(len(bands), last), last + bands[:, 1]], axis=1)


def seasonal_forecast(values: np.ndarray, origin: int, horizon: int, season: int, band: np.ndarray) -> np.ndarray:
    """(H, 3): the value one season earlier, widened by the in-sample seasonal errors."""
    index = origin + np.arange(horizon) - season
    center = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return np.stack([center + band[0, 0], center, center + band[0, 1]], axis=1)


def fit_classical(kind: str, history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(H, 3) p10/p50/p90 of one classical fit; the last value when the fit fails."""
    import warnings

    from statsforecast.models import MSTL, AutoARIMA, AutoETS

    if kind == "mstl" and len(history) >= 2 * season:
        model = MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN"))
    elif kind == "autoets":
        model = AutoETS(season_length=1)
    else:  # autoarima, and MSTL on less than two seasons of history
        model = AutoARIMA(season_length=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fitted = model.forecast(y=history.astype(np.float64), h=horizon, level=[80])
            return np.stack([fitted["lo-80"], fitted["mean"], fitted["hi-80"]], axis=1)
        except Exception:  # noqa: BLE001 - a fit that fails is scored as the last value
            return np.repeat(history[-1:], 3)[None, :].repeat(horizon, axis=0)


def _fit_batch(tasks: list[tuple]) -> list[np.ndarray]:
    return [fit_classical(*task) for task in tasks]


def last_origins(chosen: np.ndarray, per_series: int) -> np.ndarray:
    """Mask over ``chosen`` (series, window start) keeping the last ``per_series`` origins of each series."""
    keep = np.zeros(len(chosen), dtype=bool)
    for s in np.unique(chosen[:, 0]):
        mine = np.flatnonzero(chosen[:, 0] == s)
        keep[mine[np.argsort(chosen[mine, 1])[-per_series:]]] = True
    return keep


def _classical_rows(tft_rows: list[dict], windows, chosen: np.ndarray, spec: ModelSpec, kind: str,
                    log: Callable[[str], None]) -> list[dict]:
    """The classical model's rows at ``chosen``, one per row of ``tft_rows`` (the TFT's rows at the
    same origins, target by target)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    season = int(SEASON / pd.Timedelta(spec.step))
    unknown = list(spec.unknown_reals)
    tasks = []
    for target in spec.targets:
        values = windows.values[:, :, unknown.index(target)]
        for s, w in chosen:
            origin = w + spec.encoder_length
            history = values[s, max(0, origin - CLASSICAL_HISTORY):origin]
            tasks.append((kind, pd.Series(history).interpolate(limit_direction="both").to_numpy(), spec.horizon,
                          season))
    started = time.perf_counter()
    workers = max(1, min(os.cpu_count() or 1, len(tasks) // 20))  # each worker compiles statsforecast once
    if workers == 1:
        results = _fit_batch(tasks)
    else:
        chunks = [tasks[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_fit_batch, chunks))
        results = [None] * len(tasks)
        for i, part in enumerate(parts):
            results[i::workers] = part
    log(f"  {len(tasks)} {kind} fits in {time.perf_counter() - started:.0f} s on {workers} process(es)")
    return [{**base, "model": kind, "q": q} for base, q in zip(tft_rows, results, strict=True)]


def _forecast_frame(rows: list[dict], spec: ModelSpec) -> pd.DataFrame:
    horizon = spec.horizon
    step = pd.Timedelta(spec.step)
    columns = {key: [] for key in ("server_name", "metric", "profile", "model", "origin")}
    arrays = {key: [] for key in ("step", "actual", "q10", "q50", "q90")}
    for row in rows:
        for key in columns:
            columns[key].append(row[key])
        q = np.sort(np.asarray(row["q"], dtype=np.float64), axis=1)
        arrays["step"].append(row["step"])
        arrays["actual"].append(row["actual"])
        for i, name in enumerate(schema.QUANTILE_COLUMNS):
            arrays[name].append(q[:, i])
    frame = pd.DataFrame({key: np.repeat(np.array(values, dtype=object), horizon) for key, values in columns.items()})
    for key, values in arrays.items():
        frame[key] = np.concatenate(values)
    origin = layout.EPOCH + step * frame["origin"].astype("int64")
    frame["origin"] = origin
    frame["timestamp"] = origin + step * (frame["step"] - 1)
    for key in ("server_name", "metric", "profile", "model"):
        frame[key] = frame[key].astype(str)
    return frame


def mase_scales(windows, spec: ModelSpec, starts: dict[str, int], season: int) -> dict[tuple, float]:
    """Per (server, metric): the in-sample mean absolute seasonal-naive error (the MASE scale)."""
    scales = {}
    unknown = list(spec.unknown_reals)
    for target in spec.targets:
        values = windows.values[:, :, unknown.index(target)]
        for s, name in enumerate(windows.names):
            if str(name) not in starts:
                continue
            sample = values[s, :starts_at(starts, str(name), windows)]
            errors = np.abs(sample[season:] - sample[:-season])
            errors = errors[~np.isnan(errors)]
            key = series_of(str(name), target, spec)
            scales[key] = float(errors.mean()) if len(errors) else math.nan
    return scales


def series_of(name: str, target: str, spec: ModelSpec) -> tuple[str, str]:
    if spec.layout == "series":
        servers, metrics = layout.split_keys([name])
        return str(servers[0]), str(metrics[0])
    return name, target


def incident_labels(manifest: dict) -> pd.DataFrame:
    labels = pd.DataFrame(manifest.get("labels") or [], columns=["server_name", "metric", "start", "end"])
    labels["start"] = pd.to_datetime(labels["start"], utc=True)
    labels["end"] = pd.to_datetime(labels["end"], utc=True)
    return labels


# --- scores -----------------------------------------------------------------------------------------------

def incident_windows(incidents: pd.DataFrame) -> pd.DataFrame:
    """A simulated dataset's incidents as labelled windows of their metric: from the precursor's
    start to the breach, the climb a forecast should follow."""
    if incidents.empty:
        return pd.DataFrame(columns=["server_name", "metric", "start", "end"])
    return pd.DataFrame({"server_name": incidents["server_name"].astype(str), "metric": incidents["metric"].astype(str),
                         "start": pd.to_datetime(incidents["precursor_start"], utc=True),
                         "end": pd.to_datetime(incidents["breach_time"], utc=True)})


def summarise(forecasts: pd.DataFrame, scales: dict[tuple, float], labels: pd.DataFrame,
              first_hour_steps: int = 12) -> dict:
    """The boards of a backtest's forecasts: overall and per metric, profile and series; the
    calibration; continuity (the first step's and the first hour's error, against naive's, the
    last value); inside against outside labelled (and simulated incident) windows.
    ``first_hour_steps``: the steps an hour holds at the model's step."""
    scored = forecasts[forecasts["actual"].notna()].copy()
    scale = np.array([scales.get((s, m), math.nan) for s, m in zip(scored["server_name"], scored["metric"],
                                                                      strict=True)])
    scale = np.where(scale > 0, scale, np.nan)
    actual = scored["actual"].to_numpy()
    scored["abs_error"] = np.abs(actual - scored["q50"].to_numpy()) / scale
    for q, name in zip(schema.QUANTILES, schema.QUANTILE_COLUMNS, strict=True):
        diff = actual - scored[name].to_numpy()
        loss = np.maximum(q * diff, (q - 1) * diff) / scale
        # a classical fit can return an infinite interval: its pinball loss is left out (NaN), its
        # coverage counts (an infinite band holds every actual), and `infinite_bands` says how often
        scored[f"pinball_{name}"] = np.where(np.isfinite(loss), loss, np.nan)
    scored["inside"] = ((actual >= scored["q10"].to_numpy()) & (actual <= scored["q90"].to_numpy())).astype(float)
    scored["in_anomaly"] = _in_windows(scored, labels)

    keys = ["model", "server_name", "metric", "profile"]
    per_series = scored.groupby(keys, as_index=False).agg(
        mase=("abs_error", "mean"), pinball_q10=("pinball_q10", "mean"), pinball_q50=("pinball_q50", "mean"),
        pinball_q90=("pinball_q90", "mean"), coverage=("inside", "mean"), points=("inside", "size"))
    every_series = per_series[["server_name", "metric"]].drop_duplicates()
    per_series = per_series[np.isfinite(per_series["mase"])]
    unscored = len(every_series) - len(per_series[["server_name", "metric"]].drop_duplicates())
    models = list(dict.fromkeys(scored["model"]))
    relative, best, left_out = relative_scores(per_series, models)
    overall = {}
    for model in models:
        mine = per_series[per_series["model"] == model]
        overall[model] = {
            "mean_mase": float(mine["mase"].mean()), "median_mase": float(mine["mase"].median()),
            "geo_mean_relative": relative.get(model, math.nan), "share_best": best.get(model, math.nan),
            "pinball_q10": float(mine["pinball_q10"].mean()), "pinball_q50": float(mine["pinball_q50"].mean()),
            "pinball_q90": float(mine["pinball_q90"].mean()), "coverage": float(mine["coverage"].mean()),
            "series": int(len(mine)),
        }
    calibration = {}
    for model in models:
        mine = scored[scored["model"] == model]
        calibration[model] = {
            "p10": float((mine["actual"] <= mine["q10"]).mean()), "p50": float((mine["actual"] <= mine["q50"]).mean()),
            "p90": float((mine["actual"] <= mine["q90"]).mean())}
    anomaly = {}
    if scored["in_anomaly"].any():
        pinball = scored[["pinball_q10", "pinball_q50", "pinball_q90"]].mean(axis=1)
        for model in models:
            mine = scored["model"] == model
            anomaly[model] = {
                where: {"mase": _mean(scored.loc[part, "abs_error"]),
                        "coverage": float(scored.loc[part, "inside"].mean()),
                        "pinball": _mean(pinball[part]), "points": int(part.sum()),
                        "series": int(len(scored.loc[part, ["server_name", "metric"]].drop_duplicates()))}
                for where, part in (("inside", mine & scored["in_anomaly"]), ("outside", mine & ~scored["in_anomaly"]))}

    def grouped(by: str) -> list[dict]:
        table = per_series.groupby(["model", by], as_index=False).agg(mase=("mase", "mean"),
                                                                      coverage=("coverage", "mean"),
                                                                      series=("mase", "size"))
        return table.to_dict(orient="records")

    return {
        "models": models, "overall": overall, "per_series": per_series.to_dict(orient="records"),
        "continuity": continuity(scored, models, first_hour_steps), "unscored_series": int(unscored),
        "server_metric_series": int(len(every_series)),
        "per_metric": grouped("metric"), "per_profile": grouped("profile"), "calibration": calibration,
        "relative_left_out": left_out, "outliers": outliers(per_series),
        "anomaly_windows": anomaly, "labelled_series": _labelled_series(per_series, labels),
    }


OUTLIER_FACTOR, OUTLIERS_SHOWN = 10.0, 5  # a series at 10x the typical series' MASE or more, for every model


def outliers(per_series: pd.DataFrame) -> dict:
    """The series that make the mean MASE meaningless: those whose MASE is at least
    ``OUTLIER_FACTOR`` times the median series' for every model (a series whose in-sample scale is
    tiny scores thousands whatever forecasts it), named, with each model's mean MASE without them."""
    if per_series.empty:
        return {"series": [], "mean_without": {}}
    wide = per_series.pivot_table(index=["server_name", "metric"], columns="model", values="mase")
    typical = wide.median()
    far = (wide >= OUTLIER_FACTOR * typical).all(axis=1) & (wide.min(axis=1) > 1.0)
    if not far.any():
        return {"series": [], "mean_without": {}}
    named = wide[far].median(axis=1).sort_values(ascending=False)
    return {"series": [{"server_name": str(s), "metric": str(m), "mase": float(v)}
                       for (s, m), v in named.head(OUTLIERS_SHOWN).items()],
            "count": int(far.sum()), "mean_without": {str(k): float(v) for k, v in wide[~far].mean().items()}}


def _mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def continuity(scored: pd.DataFrame, models: list[str], first_hour_steps: int) -> dict:
    """Per model: the MASE-scaled error of the first step and of the first hour, and each against
    naive's (the last value) on the same points: a forecast that starts where the series is scores
    about 1 there; one that jumps back to the usual level at "now" scores far above it."""
    out = {}
    if "step" not in scored:  # forecasts without their step ahead: nothing to say about the first steps
        return out
    for model in models:
        mine = scored[scored["model"] == model]
        out[model] = {"first_step": _mean(mine.loc[mine["step"] == 1, "abs_error"]),
                      "first_hour": _mean(mine.loc[mine["step"] <= first_hour_steps, "abs_error"]),
                      "points": int((mine["step"] <= first_hour_steps).sum())}
    base = out.get(NAIVE)
    for scores in out.values():
        for key in ("first_step", "first_hour"):
            ratio = scores[key] / base[key] if base and base[key] > 0 else math.nan
            scores[f"{key}_vs_naive"] = ratio
    return out


def relative_scores(per_series: pd.DataFrame, models: list[str]) -> tuple[dict, dict, int]:
    """BOOM's aggregate and who wins where: per model, the geometric mean over series of its MASE
    divided by seasonal naive's on the same series (1.0 = seasonal naive; a series where seasonal
    naive's hold-out error is zero is left out and counted, a ratio is clipped to ``serving.RATIO_CLIP``),
    and the share of series on which it has the lowest MASE (ties count for each)."""
    wide = per_series.pivot_table(index=["server_name", "metric"], columns="model", values="mase", aggfunc="first")
    wide = wide.dropna(how="any")
    relative, left_out = {}, 0
    if SEASONAL in wide:
        usable = wide[wide[SEASONAL] > 0]
        left_out = int(len(wide) - len(usable))
        for model in models:
            if model in usable and len(usable):
                relative[model] = serving.geometric_mean(usable[model].to_numpy() / usable[SEASONAL].to_numpy())
    lowest = wide.min(axis=1)
    best = {model: float((np.abs(wide[model] - lowest) <= 1e-12).mean()) for model in models
            if model in wide and len(wide)}
    return relative, best, left_out


def _in_windows(scored: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    inside = np.zeros(len(scored), dtype=bool)
    if labels.empty:
        return inside
    servers, metrics = scored["server_name"].to_numpy(), scored["metric"].to_numpy()
    stamps = pd.DatetimeIndex(scored["timestamp"]).tz_convert(None).to_numpy()
    for row in labels.itertuples(index=False):
        mask = servers == row.server_name
        if isinstance(row.metric, str):  # no metric: the window labels every metric of the server
            mask &= metrics == row.metric
        if mask.any():
            start, end = row.start.tz_convert(None).to_datetime64(), row.end.tz_convert(None).to_datetime64()
            inside |= mask & (stamps >= start) & (stamps <= end)
    return inside


def _labelled_series(per_series: pd.DataFrame, labels: pd.DataFrame) -> int:
    """How many scored series have a labelled window (a window with no metric labels all of its server's)."""
    if labels.empty:
        return 0
    whole = set(labels.loc[labels["metric"].isna(), "server_name"])
    named = set(zip(labels["server_name"], labels["metric"], strict=True))
    series = per_series[["server_name", "metric"]].drop_duplicates()
    return int(sum(s in whole or (s, m) in named for s, m in zip(series["server_name"], series["metric"],
                                                                 strict=True)))


def json_safe(value):
    """JSON-safe: NaN becomes null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table(summary: dict) -> list[str]:
    """The scoreboard as text lines: one row per model, best per column marked with *; where the
    classical model saw only the last origins of each series, a second board on those."""
    lines = _board(summary["overall"])
    lines.append(f"{summary['series']} series, {summary['origins']} origins, {summary['horizon']} steps ahead "
                 f"({summary['evaluation']}); * best; coverage goal 0.80 (p10-p90); 'vs seasonal (geo)': geometric "
                 "mean over series of MASE / seasonal naive's" + (f" ({summary['relative_left_out']} series where "
                 "seasonal naive was exact left out)" if summary.get("relative_left_out") else ""))
    paired = summary.get("classical_origins")
    if paired:
        lines.append(f"on the last {paired['per_series']} origin(s) of each series ({paired['origins']} origins), "
                     f"where {paired['model']} was fitted:")
        lines += _board(paired["overall"])
    if summary.get("unscored_series"):
        total = summary.get("server_metric_series")
        lines.append(f"{summary['unscored_series']}{f' of {total}' if total else ''} (server, metric) series left out "
                     "of every board: flat before the evaluation window, so they have no MASE scale (the in-sample "
                     "seasonal-naive error is 0)")
    far = summary.get("outliers") or {}
    if far.get("series"):
        named = ", ".join(f"{o['server_name']}|{o['metric']} ({o['mase']:,.0f})" for o in far["series"])
        without = ", ".join(f"{m} {v:.3f}" for m, v in far["mean_without"].items())
        lines.append(f"the mean MASE is pulled up by {far['count']} series at {OUTLIER_FACTOR:g}x the median "
                     f"series' or more for every model: {named}; without them the mean MASE is {without} (the "
                     "median and 'vs seasonal (geo)' are not moved by them)")
    if summary.get("continuity"):
        lines.append("continuity, MASE-scaled error of the first step / the first hour, and against naive's:")
        for model, c in summary["continuity"].items():
            lines.append(f"  {model:<16} {c['first_step']:.3f} / {c['first_hour']:.3f}   vs naive "
                         f"{c['first_step_vs_naive']:.2f}x / {c['first_hour_vs_naive']:.2f}x")
    if summary.get("anomaly_windows"):
        lines.append("inside vs outside labelled anomaly and simulated incident windows (MASE-scaled error / "
                     "coverage / mean pinball, points):")
        for model, parts in summary["anomaly_windows"].items():
            inside, outside = parts["inside"], parts["outside"]
            lines.append(f"  {model:<16} inside {inside['mase']:.3f} / {inside['coverage']:.2f} / "
                         f"{inside.get('pinball', math.nan):.3f} ({inside['points']} points)   outside "
                         f"{outside['mase']:.3f} / {outside['coverage']:.2f} / {outside.get('pinball', math.nan):.3f}")
    return lines


def _board(overall: dict) -> list[str]:
    columns = [("mean_mase", "mean MASE", min), ("median_mase", "median MASE", min),
               ("geo_mean_relative", "vs seasonal (geo)", min), ("share_best", "best on", max),
               ("pinball_q10", "pinball p10", min), ("pinball_q50", "pinball p50", min),
               ("pinball_q90", "pinball p90", min), ("coverage", "p10-p90 coverage", None)]
    def finite(key):
        return [v[key] for v in overall.values() if v.get(key) is not None and math.isfinite(v[key])]

    best = {key: pick(finite(key)) for key, _, pick in columns if pick and finite(key)}
    lines = [f"{'model':<16}" + "".join(f"{title:>18}" for _, title, _ in columns)]
    for model, scores in overall.items():
        cells = []
        for key, _, _ in columns:
            value = scores.get(key, math.nan)  # summaries saved before a column existed lack it
            value = math.nan if value is None else value
            mark = "*" if key in best and value == best[key] else " "
            cells.append(f"{value:>17.3f}{mark}")
        lines.append(f"{model:<16}" + "".join(cells))
    return lines
