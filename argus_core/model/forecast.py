"""Batched quantile forecasts for a whole fleet, cached per model and data.

``forecast_fleet(model, history)`` returns a ``FleetForecast``:

- ``quantiles``: long frame ``server_name, metric, timestamp, q10, q50, q90`` with
  q10 <= q50 <= q90 guaranteed (raw TFT quantiles can cross early in training: sorted here);
- ``importance``: ``server_name, variable, importance`` from the TFT's encoder variable
  selection weights, averaged over the encoder window (the "why" column);
- ``skipped``: servers without enough history, with the reason.

Models are loaded once per directory (``load_model``) and forecasts are reused while the model
and the last timestamp of the data are the same (``cached_forecast``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.errors import ArgusError, DatasetError, ModelNotFound
from argus_core.model import artifacts, datasets, layout, registry
from argus_core.model import inputs as forecast_inputs
from argus_core.model.spec import ModelSpec

MODEL_ID = registry.MODEL_ID
_log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_MODELS: OrderedDict[tuple, artifacts.LoadedModel] = OrderedDict()
_FORECASTS: OrderedDict[tuple, FleetForecast] = OrderedDict()
_MAX_MODELS, _MAX_FORECASTS = 3, 16


@dataclass
class FleetForecast:
    model_id: str
    as_of: pd.Timestamp
    quantiles: pd.DataFrame
    importance: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    unseen_servers: list[str] = field(default_factory=list)  # forecast from their profile alone
    # "server | metric" -> what forecast it (argus_core.model.serving), where not the TFT alone
    served_by: dict[str, str] = field(default_factory=dict)
    # server -> its own fine-tuned model (``train --server``), where one forecast it instead of the fleet model
    forecast_by: dict[str, str] = field(default_factory=dict)


def resolve_model_id(model_root: str | Path, model_id: str | None = None) -> str:
    """``model_id`` or the champion; ModelNotFound with the command to fix it otherwise. A model id
    is a name inside ``model_root``, never a path out of it."""
    if model_id is not None and (not MODEL_ID.fullmatch(str(model_id)) or model_id in (".", "..")):
        raise ModelNotFound(f"{model_id!r} is not a model id (a name such as tft-20261123-210642-7e2bd1 inside "
                            f"{model_root}); see `python -m argus_core models list`")
    if model_id:
        if not (Path(model_root) / model_id).is_dir():
            raise ModelNotFound(f"no model {model_id!r} in {model_root}; see `python -m argus_core models list`")
        return model_id
    champion = registry.champion_model_id(model_root)
    if not champion:
        raise ModelNotFound(f"no model in {model_root} yet; train one with "
                            "`python -m argus_core train --dataset demo_data/fleet`")
    return champion


def load_model(model_root: str | Path, model_id: str | None = None) -> artifacts.LoadedModel:
    """The model (champion by default), loaded once per directory and weight file."""
    return load_model_dir(Path(model_root) / resolve_model_id(model_root, model_id))


def load_model_dir(path: str | Path) -> artifacts.LoadedModel:
    """The model in directory ``path``, loaded once per directory and weight file."""
    path = Path(path)
    weights = path / "model.safetensors"
    key = (str(path.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0)
    with _LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    model = artifacts.load(path)
    with _LOCK:
        _MODELS[key] = model
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)
    return model


def cached_forecast(model: artifacts.LoadedModel, history: pd.DataFrame,
                    as_of: pd.Timestamp | None = None) -> FleetForecast:
    """``forecast_fleet``, reused while the model and the rows are the same: the key holds the
    window's columns and a hash of every value in it, so a late row, a corrected value or a
    dataset of other metrics with the same servers and times is forecast again."""
    window = _until(history, as_of)
    last = window[schema.TIMESTAMP].max() if len(window) else None
    content = int(pd.util.hash_pandas_object(window, index=False).to_numpy().sum(dtype=np.uint64))
    routes = tuple(sorted(specialists_of(model).items()))  # a server given its own model: forecast again
    key = (str(model.path), model.model_id, str(last), tuple(map(str, window.columns)), len(window), content, routes)
    with _LOCK:
        if key in _FORECASTS:
            _FORECASTS.move_to_end(key)
            return _FORECASTS[key]
    result = forecast_fleet(model, window)
    with _LOCK:
        _FORECASTS[key] = result
        while len(_FORECASTS) > _MAX_FORECASTS:
            _FORECASTS.popitem(last=False)
    return result


def cache_info() -> dict[str, int]:
    """How many loaded models and fleet forecasts this process keeps (``make run``'s warm-up fills both)."""
    with _LOCK:
        return {"models": len(_MODELS), "forecasts": len(_FORECASTS)}


def clear_caches() -> None:
    with _LOCK:
        _MODELS.clear()
        _FORECASTS.clear()


def forecast_fleet(model: artifacts.LoadedModel, history: pd.DataFrame, as_of: pd.Timestamp | None = None,
                   batch_size: int = 64, engine: str = "fast") -> FleetForecast:
    """Forecast every server of ``history`` for the model's horizon after its last timestamp.

    A server with its own fine-tuned copy of this model (``train --server``, registered beside it)
    is forecast by that copy; the others by this model (``FleetForecast.forecast_by`` says which).
    ``engine="stock"`` goes through pytorch-forecasting's TimeSeriesDataSet (the reference the
    fast route is tested and benchmarked against). Batches of 64 servers: the network's
    per-step tensors of a 256-server batch no longer fit the CPU caches (1,000 servers: 3.9 s
    at 256, 2.9 s at 64, one thread)."""
    window = _until(history, as_of)
    if window.empty:
        raise ArgusError("there is no data to forecast from (is the time cursor before the data starts?)")
    present = set(window[schema.SERVER].astype(str).unique())
    routes = {server: path for server, path in specialists_of(model).items() if server in present}
    if not routes:
        return _forecast_one(model, window, batch_size, engine)
    names = window[schema.SERVER].astype(str)
    parts, forecast_by = [], {}
    if present - set(routes):
        parts.append(_forecast_one(model, window[~names.isin(list(routes))], batch_size, engine))
    for server, path in sorted(routes.items()):
        try:
            own = load_model_dir(path)
            parts.append(_forecast_one(own, window[names == server], batch_size, engine))
        except ArgusError as exc:  # a damaged or removed specialist: the fleet model forecasts the server
            _log.warning("server %s: its own model %s cannot forecast (%s); the fleet model does", server,
                         path.name, exc)
            parts.append(_forecast_one(model, window[names == server], batch_size, engine))
            continue
        forecast_by[server] = own.model_id
    return FleetForecast(
        model.model_id, max(p.as_of for p in parts),
        pd.concat([p.quantiles for p in parts], ignore_index=True),
        pd.concat([p.importance for p in parts], ignore_index=True),
        {k: v for p in parts for k, v in p.skipped.items()},
        sorted({s for p in parts for s in p.unseen_servers}),
        {k: v for p in parts for k, v in p.served_by.items()}, forecast_by)


def specialists_of(model: artifacts.LoadedModel) -> dict[str, Path]:
    """server -> directory of its own fine-tuned copy of ``model``, from the registry beside it."""
    root = model.path.parent
    try:
        routes = registry.specialists(root, model.model_id) if (root / registry.REGISTRY).exists() else {}
    except ArgusError:
        return {}
    return {str(server): root / model_id for server, model_id in routes.items() if (root / model_id).is_dir()}


def _forecast_one(model: artifacts.LoadedModel, window: pd.DataFrame, batch_size: int,
                  engine: str) -> FleetForecast:
    spec = model.spec
    as_of_ts = window[schema.TIMESTAMP].max()
    if spec.layout == "series":
        try:
            window = layout.to_series(window, spec.metrics)
        except DatasetError as exc:
            raise ArgusError(f"model {model.model_id} does not fit this data: {exc}") from exc
    encoder, skipped = encoder_windows(window, spec)
    if encoder.empty:
        raise ArgusError(f"no server has the {schema.span_words(pd.Timedelta(spec.step) * spec.encoder_length)} of "
                         f"history the model needs ({spec.encoder_length} steps of {spec.step})")
    network = model.network
    # seasonal paths are cut from the history by the fast route only
    served_by: dict[str, str] = {}
    if (spec.layout == "series" or spec.seasonal_lags or model.serving is not None
            or (engine == "fast" and forecast_inputs.supported(model.dataset_parameters))):
        values, importances, servers, last, raw = _predict_fast(model, encoder, batch_size)
        if model.serving is not None:
            values, served_by = _served(model, values, servers, raw)
        values, climbing = _climbs(model, values, servers, raw)
        served_by.update(climbing)
    else:
        values, importances, servers, last = _predict_stock(model, encoder, batch_size)
    quantiles = _long_quantiles(values, servers, last, spec)
    importance = _importance_frame(importances, servers, list(network.encoder_variables))
    if spec.layout == "series":
        quantiles, importance, servers = _from_series(quantiles, importance)
        skipped = _skipped_per_server(skipped)
    seen = set(model.training_info.get("servers", []))
    unseen = sorted(s for s in set(servers) if seen and s not in seen)
    return FleetForecast(model.model_id, as_of_ts, quantiles, importance, skipped, unseen, served_by)


def _served(model: artifacts.LoadedModel, values: np.ndarray, names: np.ndarray,
            history: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """The TFT's quantiles (S, targets, H, Q) replaced, series by series, by what serves each one."""
    from argus_core.model import serving

    spec = model.spec
    unknown = list(spec.unknown_reals)
    out = values.copy()
    served_by = {}
    for t, target in enumerate(spec.targets):
        keys = [str(n) if spec.layout == "series" else layout.series_key(str(n), target) for n in names]
        out[:, t], by = serving.apply(model.serving, values[:, t], keys, history[:, :, unknown.index(target)], target)
        served_by.update({k: v for k, v in by.items() if v != serving.TFT})
    return out, served_by


def _climbs(model: artifacts.LoadedModel, values: np.ndarray, names: np.ndarray,
            history: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """The paths of series caught in a climb the network does not follow, served as the climb
    (``model.climb``); "server | metric" -> "climb" for those."""
    from argus_core.model import climb

    spec = model.spec
    rule = climb.for_step(spec.step)
    unknown = list(spec.unknown_reals)
    out = values.copy()
    found = {}
    for t, target in enumerate(spec.targets):
        out[:, t], climbing = climb.apply(values[:, t], history[:, :, unknown.index(target)], rule)
        for name in np.asarray(names)[climbing]:
            found[str(name) if spec.layout == "series" else layout.series_key(str(name), target)] = climb.NAME
    return out, found


def _skipped_per_server(skipped: dict[str, str]) -> dict[str, str]:
    """Series-layout reasons ("server | metric" -> reason) as one line per server."""
    out: dict[str, str] = {}
    for key, reason in skipped.items():
        server, metric = layout.split_keys([key])
        line = f"{metric[0]}: {reason}"
        out[str(server[0])] = f"{out[str(server[0])]}; {line}" if str(server[0]) in out else line
    return out


def _from_series(quantiles: pd.DataFrame, importance: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Series-layout frames back to server and metric names; importance averaged per server."""
    servers, metrics = layout.split_keys(quantiles[schema.SERVER].to_numpy())
    quantiles = quantiles.assign(**{schema.SERVER: servers, "metric": metrics})
    owners, _ = layout.split_keys(importance[schema.SERVER].to_numpy())
    importance = (importance.assign(**{schema.SERVER: owners})
                  .groupby([schema.SERVER, "variable"], as_index=False, sort=False)["importance"].mean()
                  .sort_values([schema.SERVER, "importance"], ascending=[True, False]).reset_index(drop=True))
    return quantiles, importance, np.unique(servers)


def network_paths(model: artifacts.LoadedModel, window: pd.DataFrame,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's own paths, before the serving table and the climb rule: (series names,
    quantiles (S, targets, H, 3) in raw units, each series' raw history (S, T, unknown inputs)).
    What benches compare the served forecast against."""
    encoder, _ = encoder_windows(window, model.spec)
    values, _, names, _, history = _predict_fast(model, encoder, batch_size)
    return np.asarray(names).astype(str), values, history


def _predict_fast(model: artifacts.LoadedModel, encoder: pd.DataFrame, batch_size: int):
    import torch

    network = model.network
    x, servers, last, scales, history = forecast_inputs.build(encoder, model.spec, model.dataset_parameters,
                                                     list(network.hparams.x_reals),
                                                     list(network.hparams.x_categoricals))
    pieces, importances = [], []
    with torch.inference_mode():
        for start in range(0, len(servers), batch_size):
            out = network(forecast_inputs.slice_batch(x, start, start + batch_size))
            pieces.append(sorted_prediction(out))
            importances.append(out["encoder_variables"].float().squeeze(-2).mean(dim=1).numpy())
    last_series = pd.Series(pd.to_datetime(last).tz_localize("UTC"), index=servers)
    values = np.concatenate(pieces) * scales[:, None, None, None]
    return values, np.concatenate(importances), np.array(servers), last_series, history


def _predict_stock(model: artifacts.LoadedModel, encoder: pd.DataFrame, batch_size: int):
    import torch
    from pytorch_forecasting import TimeSeriesDataSet

    spec, network = model.spec, model.network
    frame = pd.concat([encoder, future_rows(encoder, spec)], ignore_index=True)
    prepared = layout.prepare(frame, spec)
    dataset = TimeSeriesDataSet.from_parameters(datasets.reusable(model.dataset_parameters), prepared,
                                                predict=True, stop_randomization=True)
    loader = dataset.to_dataloader(train=False, batch_size=batch_size, num_workers=0)
    pieces, importances, names = [], [], []
    with torch.inference_mode():
        for x, _ in loader:
            out = network(x)
            pieces.append(sorted_prediction(out))
            importances.append(out["encoder_variables"].float().squeeze(-2).mean(dim=1).numpy())
            names.append(dataset.x_to_index(x)[schema.SERVER].astype(str).to_numpy())
    last = encoder.groupby(schema.SERVER, observed=True)[schema.TIMESTAMP].max()
    last.index = last.index.astype(str)
    return np.concatenate(pieces), np.concatenate(importances), np.concatenate(names), last


def sorted_prediction(out: dict) -> np.ndarray:
    """(B, targets, H, Q) with quantiles sorted: raw TFT quantiles can cross early in training."""
    import torch

    raw = out["prediction"]
    prediction = raw.float().unsqueeze(1) if torch.is_tensor(raw) else torch.stack([p.float() for p in raw], dim=1)
    return torch.sort(prediction, dim=-1).values.numpy()


def _until(history: pd.DataFrame, as_of: pd.Timestamp | None) -> pd.DataFrame:
    if as_of is None:
        return history
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    return history[history[schema.TIMESTAMP] <= as_of]


def encoder_windows(history: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """The last ``spec.history_steps`` of every server that has at least half an encoder of real
    data in its last encoder_length steps; the others, with a reason."""
    step = pd.Timedelta(spec.step)
    last = history.groupby(schema.SERVER, observed=True)[schema.TIMESTAMP].transform("max")
    in_encoder = history[schema.TIMESTAMP] > last - step * spec.encoder_length
    counts = history[in_encoder].groupby(schema.SERVER, observed=True)[schema.TIMESTAMP].count()
    recent = (history[history[schema.TIMESTAMP] > last - step * spec.history_steps]
              if spec.history_steps > spec.encoder_length else history[in_encoder])
    # gaps are allowed (filled for model input), but at least half the window must be real data
    enough = counts[counts >= spec.encoder_length // 2].index
    first = history.groupby(schema.SERVER, observed=True)[schema.TIMESTAMP].min()
    span_ok = first[(last.groupby(history[schema.SERVER], observed=True).max() - first) >=
                    step * (spec.encoder_length - 1)].index
    keep = set(enough) & set(span_ok)
    skipped = {str(s): f"{int(counts.get(s, 0))} of {spec.encoder_length} steps of history"
               for s in counts.index if s not in keep}
    window = recent[recent[schema.SERVER].isin(list(keep))]
    if isinstance(window[schema.SERVER].dtype, pd.CategoricalDtype):
        window = window.assign(**{schema.SERVER: window[schema.SERVER].cat.remove_unused_categories()})
    return window, skipped


def future_rows(encoder: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Decoder rows: known calendar inputs; unknown metrics carry the last value (never read)."""
    step = pd.Timedelta(spec.step)
    last_rows = encoder.sort_values(schema.TIMESTAMP).groupby(schema.SERVER, observed=True).tail(1)
    offsets = np.arange(1, spec.horizon + 1)
    future = last_rows.loc[last_rows.index.repeat(spec.horizon)].reset_index(drop=True)
    future[schema.TIMESTAMP] = future[schema.TIMESTAMP] + pd.to_timedelta(np.tile(offsets, len(last_rows)) * step)
    return future


def _long_quantiles(values: np.ndarray, servers: np.ndarray, last: pd.Series,
                    spec: ModelSpec) -> pd.DataFrame:
    n_servers, n_targets, horizon, _ = values.shape
    step = pd.Timedelta(spec.step)
    starts = pd.DatetimeIndex(last.reindex(servers)).tz_convert(None).to_numpy().astype("datetime64[ns]")
    offsets = (np.arange(1, horizon + 1) * step.value).astype("timedelta64[ns]")
    stamps = starts[:, None] + offsets[None, :]  # (S, H)
    q10, q50, q90 = (values[..., i] for i in range(3))
    # name columns gathered from their few distinct strings: converting 768,000 Python strings
    # (1,000 servers) to pandas' string type took longer than the rest of this function
    names = pd.array(np.asarray(servers, dtype=object).astype(str), dtype="str")
    metrics = pd.array(list(spec.targets), dtype="str")
    frame = pd.DataFrame({
        schema.SERVER: names.take(np.repeat(np.arange(n_servers), n_targets * horizon)),
        "metric": metrics.take(np.tile(np.repeat(np.arange(n_targets), horizon), n_servers)),
        schema.TIMESTAMP: np.repeat(stamps[:, None, :], n_targets, axis=1).reshape(-1),
        schema.QUANTILE_COLUMNS[0]: q10.reshape(-1),
        schema.QUANTILE_COLUMNS[1]: q50.reshape(-1),
        schema.QUANTILE_COLUMNS[2]: q90.reshape(-1),
    })
    frame[schema.TIMESTAMP] = pd.to_datetime(frame[schema.TIMESTAMP], utc=True)
    return frame


def _importance_frame(weights: np.ndarray, servers: np.ndarray, variables: list[str]) -> pd.DataFrame:
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    frame = pd.DataFrame({
        schema.SERVER: np.repeat(servers, len(variables)),
        "variable": np.tile(np.array(variables, dtype=object), len(servers)),
        "importance": weights.reshape(-1).astype(np.float32),
    })
    return frame.sort_values([schema.SERVER, "importance"], ascending=[True, False]).reset_index(drop=True)
