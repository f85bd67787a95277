"""Long frame -> the rows a model reads: time index, calendar features, known profiles, and the
series layout (one series per "server | metric" key).

Each window is normalised by its own encoder (centre and spread with a floor:
``argus_core.model.normalizers.FlooredEncoderNormalizer``), so a server never seen in training
is read on its own scale. The server name only splits the series; its encoder is refitted on
whatever fleet is being forecast, so new names need no retraining. Torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.data.profiles import GENERIC
from argus_core.errors import DatasetError
from argus_core.model.spec import VALUE, ModelSpec, lag_input  # noqa: F401 - lag_input: one of the layout's names

TIME_IDX = "time_idx"
EPOCH = pd.Timestamp("2000-01-01T00:00:00Z")  # time_idx counts steps since this instant
CALENDAR = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "weekend")
# series layout: one row per (server, metric, time); the network sees one series at a time
KEY_SEPARATOR = " | "


def split_per_series(prepared: pd.DataFrame, spec: ModelSpec, holdout: float,
                     validation_fraction: float) -> tuple[pd.DataFrame, dict[str, int], dict[str, int]]:
    """Cut every series on its own: the last ``holdout`` share is never trained on (backtests
    score there); of the rest, the last ``validation_fraction`` is for validation.

    Returns (rows before each series' hold-out, validation start per series, hold-out start per
    series), starts as time_idx. Series that end at different dates (real data) each keep their
    own share, which one cut in calendar time would not."""
    grouped = prepared.groupby(schema.SERVER, sort=True)[TIME_IDX]
    first, last = grouped.min(), grouped.max()
    span = last - first + 1
    held = (last + 1 - np.floor(span * holdout)).astype("int64")
    kept_span = held - first
    validation = (held - np.maximum(spec.horizon, np.floor(kept_span * validation_fraction))).astype("int64")
    needed = spec.encoder_length + spec.horizon
    usable = (validation - first) >= needed
    if not usable.any():
        raise DatasetError(f"not enough history to train: each series needs at least {needed} steps "
                         f"({pd.Timedelta(spec.step) * needed}) before its validation part plus a horizon after it")
    servers = prepared[schema.SERVER].to_numpy()
    keep = usable.reindex(servers).to_numpy() & (prepared[TIME_IDX].to_numpy() < held.reindex(servers).to_numpy())
    return (prepared[keep].reset_index(drop=True), validation[usable].to_dict(), held.to_dict())


def unit_free(prepared: pd.DataFrame) -> pd.DataFrame:
    """Series layout: each series divided by its spread, for fitting the dataset's scalers on
    numbers like the ones the network sees (windows divided by their own spread)."""
    grouped = prepared.groupby(schema.SERVER, sort=False)[VALUE]
    scale = np.maximum(np.maximum(grouped.transform("std").fillna(0), 0.02 * grouped.transform("mean").abs()), 1e-3)
    return prepared.assign(**{VALUE: (prepared[VALUE] / scale).astype(np.float32)})


def window_scale(encoder_values: np.ndarray) -> np.ndarray:
    """Series layout: one unit-free scale per window, from its encoder part (B, enc) -> (B,).

    Series of one model come in bytes, percent and counts; dividing every window (encoder,
    targets, forecasts) by its own spread before the network sees it keeps the loss from being
    all about the largest unit. The floor (2 % of the level, at least 1e-3) keeps a flat
    window's first movement from turning into thousands of spreads."""
    spread = np.nanstd(encoder_values, axis=1)
    level = np.abs(np.nanmean(encoder_values, axis=1))
    return np.maximum(np.maximum(spread, 0.02 * level), 1e-3).astype(np.float32)


def seasonal_paths(values: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """(S, T) series on a regular grid -> (S, T, lags): each step's value ``lag`` steps earlier.

    What the seasonal-naive forecast would say at every step, known in advance for any lag of at
    least the horizon. Where the value that far back is missing (a gap, or a series younger than
    the lag) the shorter lag's value stands in, then the last one before it, then the series'
    first real value: always a value from the past, never the step itself."""
    n_series, length = values.shape
    out = np.full((n_series, length, len(lags)), np.nan, dtype=np.float32)
    first = _first_real(values)
    for i, lag in enumerate(lags):
        if lag < length:
            out[:, lag:, i] = values[:, :-lag]
        if i:  # a week-old value that is missing: the day-old one
            out[:, :, i] = np.where(np.isnan(out[:, :, i]), out[:, :, i - 1], out[:, :, i])
        column = out[:, :, i]
        valid = ~np.isnan(column)
        index = np.where(valid, np.arange(length)[None, :], 0)
        np.maximum.accumulate(index, axis=1, out=index)
        column = np.take_along_axis(column, index, axis=1)
        out[:, :, i] = np.where(np.isnan(column), first[:, None], column)
    return out


def _first_real(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    position = np.argmax(valid, axis=1)
    first = values[np.arange(len(values)), position]
    return np.where(valid.any(axis=1), first, 0.0).astype(np.float32)


def series_key(server: str, metric: str) -> str:
    return f"{server}{KEY_SEPARATOR}{metric}"


def split_keys(keys) -> tuple[np.ndarray, np.ndarray]:
    """(servers, metrics) of series keys."""
    parts = pd.Series(np.asarray(keys, dtype=object)).str.rsplit(KEY_SEPARATOR, n=1, expand=True)
    return parts[0].to_numpy(dtype=object), parts[1].to_numpy(dtype=object)


def to_series(frame: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Wide rows -> one row per (server, metric, time), the server column holding the series key.
    Metrics a server does not measure (NaN) are left out: gaps stay gaps."""
    if VALUE in frame.columns:
        return frame
    out = schema.add_derived(frame) if schema.CPU_BUSY in metrics and schema.CPU_BUSY not in frame else frame
    missing = [m for m in metrics if m not in out.columns]
    if missing:
        raise DatasetError(f"the data lacks metric(s) the model needs: {', '.join(missing)}; map them, or train a "
                           "model on this data: python -m argus_core train --dataset DIR")
    servers = out[schema.SERVER].astype(str).to_numpy(dtype=object)
    profiles = (out[schema.PROFILE].astype(str).to_numpy(dtype=object) if schema.PROFILE in out.columns else None)
    pieces = []
    for metric in metrics:
        values = out[metric].to_numpy(dtype=np.float32)
        real = ~np.isnan(values)
        if not real.any():
            continue
        piece = pd.DataFrame({
            schema.TIMESTAMP: out[schema.TIMESTAMP].array[real],
            schema.SERVER: servers[real] + (KEY_SEPARATOR + metric),
            VALUE: values[real],
        })
        if profiles is not None:
            piece[schema.PROFILE] = profiles[real]
        pieces.append(piece)
    if not pieces:
        columns = [schema.TIMESTAMP, schema.SERVER, VALUE] + ([schema.PROFILE] if profiles is not None else [])
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat(pieces, ignore_index=True)


def model_rows(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """``frame`` with the rows and columns the model reads: series rows in series layout, derived
    metrics added; DatasetError when a metric the model needs is missing."""
    if spec.layout == "series":
        frame = to_series(frame, spec.metrics)
    out = schema.add_derived(frame) if schema.CPU_BUSY not in frame.columns and "cpu_idle_pct" in frame else frame
    missing = [m for m in spec.unknown_reals if m not in out.columns]
    if missing:
        raise DatasetError(f"the data lacks metric(s) the model needs: {', '.join(missing)}; map them, or train a "
                           "model on this data: python -m argus_core train --dataset DIR")
    return out


def time_index(stamps: pd.Series, step: str) -> np.ndarray:
    """Steps since ``EPOCH`` (int64) of UTC timestamps."""
    return ((stamps - EPOCH) // pd.Timedelta(step)).to_numpy(dtype=np.int64)


def prepare(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Model-ready columns: derived metrics, time index, calendar, float32 reals, known profiles."""
    out = model_rows(frame, spec)
    stamps = out[schema.TIMESTAMP]
    prepared = pd.DataFrame({
        schema.SERVER: out[schema.SERVER].astype(str).to_numpy(),
        schema.TIMESTAMP: stamps.array,  # keep the datetime array: .to_numpy() of UTC times builds objects
        TIME_IDX: time_index(stamps, spec.step),
        schema.PROFILE: known_profiles(out, spec),
    })
    for name, values in calendar_features(stamps).items():
        prepared[name] = values
    for metric in spec.unknown_reals:
        prepared[metric] = out[metric].to_numpy(dtype=np.float32)
    if spec.seasonal_lags:
        _add_lag_columns(prepared, spec)
    return prepared


def _add_lag_columns(prepared: pd.DataFrame, spec: ModelSpec) -> None:
    """The seasonal paths as columns (the stock dataset must find every known input in its frame);
    the network's own inputs are cut from the same ``seasonal_paths`` in the batch gatherer."""
    codes, _ = pd.factorize(prepared[schema.SERVER])
    time_idx = prepared[TIME_IDX].to_numpy()
    t0 = int(time_idx.min())
    grid = np.full((int(codes.max()) + 1, int(time_idx.max()) - t0 + 1), np.nan, dtype=np.float32)
    for target in spec.targets:
        grid[:] = np.nan
        grid[codes, time_idx - t0] = prepared[target].to_numpy(np.float32)
        paths = seasonal_paths(grid, spec.seasonal_lags)[codes, time_idx - t0]
        for i, lag in enumerate(spec.seasonal_lags):
            prepared[lag_input(target, lag)] = paths[:, i]


def calendar_features(stamps: pd.Series) -> dict[str, np.ndarray]:
    """Known-in-advance inputs for any timestamps (UTC)."""
    hours = (stamps.dt.hour + stamps.dt.minute / 60.0).to_numpy(dtype=np.float64)
    weekday = stamps.dt.weekday.to_numpy()
    days = weekday + hours / 24.0
    return {
        "hour_sin": np.sin(2 * np.pi * hours / 24).astype(np.float32),
        "hour_cos": np.cos(2 * np.pi * hours / 24).astype(np.float32),
        "dow_sin": np.sin(2 * np.pi * days / 7).astype(np.float32),
        "dow_cos": np.cos(2 * np.pi * days / 7).astype(np.float32),
        "weekend": (weekday >= 5).astype(np.float32),
    }


def known_profiles(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    if schema.PROFILE in frame.columns:
        profiles = frame[schema.PROFILE].astype(str).to_numpy()
    else:
        from argus_core.data.profiles import infer_profiles
        profiles = infer_profiles(frame[schema.SERVER].astype(str).to_numpy())
    return np.where(np.isin(profiles, spec.profiles), profiles, GENERIC).astype(object)
