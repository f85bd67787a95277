"""The TFT's input tensors for a fleet, built with numpy in one pass.

pytorch-forecasting's own route (``TimeSeriesDataSet`` in predict mode, then its dataloader)
rebuilds indices and encodes every row through pandas; for a fleet forecast that costs several
times the network itself. Here every server's last ``encoder_length`` steps go into one
(servers, time, variables) array, scaled with the model's own fitted scalers, in the layout
the network expects (``hparams.x_reals``). ``tests/test_forecaster.py`` checks the forecasts
against the stock route; ``supported`` says when this route applies (otherwise the caller
falls back to the stock route).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.model import datasets, layout
from argus_core.model.spec import ModelSpec


def supported(parameters: dict) -> bool:
    from pytorch_forecasting.data import MultiNormalizer, TorchNormalizer
    from sklearn.preprocessing import StandardScaler

    from argus_core.model.normalizers import FlooredEncoderNormalizer

    normalizer = parameters.get("target_normalizer")
    if normalizer is None:
        return False
    children = datasets.target_normalizers(parameters)
    if not isinstance(normalizer, MultiNormalizer) and len(children) != 1:
        return False
    kinds = {type(n) for n in children}
    per_window = kinds == {FlooredEncoderNormalizer}
    return (
        (kinds == {TorchNormalizer} or per_window)
        and all(n.transformation is None and n.method == "standard" and n.center for n in children)
        and all(getattr(n, "max_length", None) is None for n in children)
        and all(isinstance(s, StandardScaler) for s in parameters.get("scalers", {}).values())
        and not parameters.get("lags")
        and bool(parameters.get("add_target_scales")) == per_window
        and not parameters.get("add_encoder_length")
    )


def build(encoder: pd.DataFrame, spec: ModelSpec, parameters: dict, x_reals: list[str],
          categoricals: list[str]) -> tuple[dict, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(x, server names, last timestamp per server as datetime64[ns], scale per server, raw history
    (servers, ``spec.history_steps``, unknown reals) with NaN gaps) for ``network(x)``; multiply
    the network's outputs by the scale (1 except in series layout)."""
    step = pd.Timedelta(spec.step)
    enc, horizon = spec.encoder_length, spec.horizon
    rows = layout.model_rows(encoder, spec)
    unknown = list(spec.unknown_reals)
    # factorize, not string conversions: a 1,000-server window is 288,000 rows
    codes, uniques = pd.factorize(rows[schema.SERVER])
    names, rank = np.unique(np.asarray(uniques, dtype=object).astype(str), return_inverse=True)
    codes = rank[codes]  # servers in name order, whatever the column's type or category order
    names = names.astype(object)
    time_idx = layout.time_index(rows[schema.TIMESTAMP], spec.step)
    last_idx = np.full(len(names), np.iinfo(np.int64).min)
    np.maximum.at(last_idx, codes, time_idx)
    reach = spec.history_steps  # the encoder, and as far back as the seasonal paths look
    position = time_idx - (last_idx[codes] - reach + 1)
    inside = position >= 0
    n_servers = len(names)

    history = np.full((n_servers, reach, len(unknown)), np.nan, dtype=np.float32)
    history[codes[inside], position[inside]] = rows[unknown].to_numpy(np.float32)[inside]
    values = fill_gaps(history[:, reach - enc:])
    scales = np.ones(n_servers, dtype=np.float32)
    if spec.layout == "series":
        scales = layout.window_scale(values[:, :, 0])
        values = values / scales[:, None, None]
    values = np.concatenate([values, np.repeat(values[:, -1:], horizon, axis=1)], axis=1)  # decoder: never read

    first_rows = rows.iloc[np.unique(codes, return_index=True)[1]]  # one row per server, in name order
    profiles = layout.known_profiles(first_rows, spec)
    last_stamp = layout.EPOCH.tz_convert(None).to_datetime64() + (last_idx * step.value).astype("timedelta64[ns]")
    offsets = np.arange(-enc + 1, horizon + 1)
    stamps = last_stamp[:, None] + (offsets * step.value).astype("timedelta64[ns]")[None, :]  # (S, enc + H)
    calendar = layout.calendar_features(pd.Series(stamps.ravel()).dt.tz_localize("UTC"))
    calendar = {name: column.reshape(n_servers, enc + horizon) for name, column in calendar.items()}
    if spec.seasonal_lags:
        ahead = np.full((n_servers, horizon), np.nan, dtype=np.float32)
        for target in spec.targets:
            grid = np.concatenate([history[:, :, unknown.index(target)], ahead], axis=1)
            paths = layout.seasonal_paths(grid, spec.seasonal_lags)[:, -(enc + horizon):] / scales[:, None, None]
            calendar.update({layout.lag_input(target, lag): paths[:, :, i]
                             for i, lag in enumerate(spec.seasonal_lags)})
    x = assemble(values, calendar, profiles, spec, parameters, x_reals, categoricals)
    return x, list(names), last_stamp, scales, history


def assemble(values, calendar: dict, profiles, spec: ModelSpec, parameters: dict, x_reals: list[str],
             categoricals: list[str]) -> dict:
    """The network's ``x`` from raw windows, as torch tensors on the device ``values`` is on.

    values: (B, enc + H, unknown reals) in the metrics' units, gaps already filled (a numpy array,
    or a tensor: the training batches of a GPU run are gathered on the GPU and never leave it);
    calendar: name -> (B, enc + H), arrays or tensors; profiles: (B,) profile names, or their
    codes as a tensor (``profile_codes``)."""
    import torch

    values = torch.as_tensor(values)
    device = values.device
    enc, horizon = spec.encoder_length, spec.horizon
    n_samples, total = values.shape[0], enc + horizon
    unknown = list(spec.unknown_reals)
    normalizers = dict(zip(spec.targets, datasets.target_normalizers(parameters), strict=True))
    centers, scales = _target_scales(values[:, :enc], unknown, spec, normalizers)  # (B, targets) each
    lag_of = {layout.lag_input(t, lag): t for lag in spec.seasonal_lags for t in spec.targets}
    scalers = parameters.get("scalers", {})
    # one contiguous (B, T) plane per input, interleaved into (B, T, inputs) in one pass at the end:
    # writing the inputs one by one into the interleaved tensor is a strided write per input, and
    # stacking strided planes (a metric of the (B, T, metrics) windows) cost 2.5x as much here
    by_input = values.permute(2, 0, 1).contiguous()  # (unknown, B, T)
    planes = torch.empty((len(x_reals), n_samples, total), dtype=torch.float32, device=device)
    for column, name in enumerate(x_reals):
        if name == "relative_time_idx":
            planes[column] = torch.arange(-enc, horizon, dtype=torch.float32, device=device) / \
                parameters["max_encoder_length"]
            continue
        static = _target_statistic(name, spec.targets)
        if static is not None:
            target, kind = static
            stat = (centers if kind == "center" else scales)[:, spec.targets.index(target)]
            planes[column] = _standardise(stat, scalers[name])[:, None]
            continue
        raw = torch.as_tensor(calendar[name], device=device) if name in calendar else by_input[unknown.index(name)]
        if name in normalizers or name in lag_of:  # a seasonal path is read in its target's scale
            index = spec.targets.index(lag_of.get(name, name))
            planes[column] = (raw - centers[:, index, None]) / scales[:, index, None]
        else:
            planes[column] = _standardise(raw, scalers[name])
    if device.type == "cpu":  # numpy's transposing copy took half the time of torch's on this machine
        cont = torch.from_numpy(np.ascontiguousarray(planes.numpy().transpose(1, 2, 0)))
    else:
        cont = planes.permute(1, 2, 0).contiguous()

    codes = profiles if isinstance(profiles, torch.Tensor) else profile_codes(profiles, parameters)
    for name in categoricals:
        if name != schema.PROFILE:
            raise ValueError(f"unexpected categorical input {name}")
    cat = codes.to(device=device, dtype=torch.long)[:, None, None].expand(n_samples, total, len(categoricals))

    target_scale = [torch.stack([centers[:, i], scales[:, i]], dim=1) for i in range(len(spec.targets))]
    if len(spec.targets) == 1:  # one target: tensors, not lists of one
        target_scale = target_scale[0]
    return {
        "encoder_cat": cat[:, :enc],  # views: the network reads them as they are
        "decoder_cat": cat[:, enc:],
        "encoder_cont": cont[:, :enc],
        "decoder_cont": cont[:, enc:],
        "encoder_lengths": torch.full((n_samples,), enc, dtype=torch.long, device=device),
        "decoder_lengths": torch.full((n_samples,), horizon, dtype=torch.long, device=device),
        "target_scale": target_scale,
    }


def profile_codes(profiles, parameters: dict):
    """(B,) profile names -> the model's profile codes as a tensor (an unknown profile: code 0)."""
    import torch

    classes = parameters["categorical_encoders"][schema.PROFILE].classes_
    return torch.tensor([classes.get(p, 0) for p in profiles], dtype=torch.long)


def _target_scales(values, unknown: list[str], spec: ModelSpec, normalizers: dict):
    """Center and scale of every target for every window (tensors (B, targets)), as the model's
    normalisers define them: one global pair, or the encoder window's centre and (unbiased,
    float32, floored) spread."""
    import torch

    from argus_core.model.normalizers import FlooredEncoderNormalizer, window_center

    centers, scales = [], []
    for target in spec.targets:
        normalizer = normalizers[target]
        if isinstance(normalizer, FlooredEncoderNormalizer):
            # contiguous: torch sums a strided row in another order, and the last bits of a centre
            # would differ from what earlier releases forecast
            window = values[:, :, unknown.index(target)].contiguous()
            centers.append(window_center(window, normalizer.center_on))
            spread = torch.std(window, dim=-1) + torch.finfo(window.dtype).eps
            scales.append(torch.clamp(spread, min=normalizer.min_scale))
        else:
            centers.append(torch.full(values.shape[:1], float(normalizer.center_), device=values.device))
            scales.append(torch.full(values.shape[:1], float(normalizer.scale_), device=values.device))
    return torch.stack(centers, dim=1).to(torch.float32), torch.stack(scales, dim=1).to(torch.float32)


def _target_statistic(name: str, targets: tuple[str, ...]) -> tuple[str, str] | None:
    for kind in ("center", "scale"):
        suffix = f"_{kind}"
        if name.endswith(suffix) and name[: -len(suffix)] in targets:
            return name[: -len(suffix)], kind
    return None


def _standardise(raw, scaler):
    center = float(scaler.mean_[0]) if scaler.with_mean else 0.0
    scale = float(scaler.scale_[0]) if scaler.with_std else 1.0
    return (raw - center) / scale


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Carry the last real value over missing steps (model input only; the data keeps its gaps);
    leading gaps take the first real value."""
    n_servers, length, n_vars = values.shape
    valid = ~np.isnan(values)
    if valid.all():
        return values
    index = np.where(valid, np.arange(length)[None, :, None], 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = np.take_along_axis(values, index, axis=1)
    first = np.argmax(valid, axis=1)  # (S, V) first valid step
    lead = np.take_along_axis(values, first[:, None, :], axis=1)
    return np.where(np.isnan(filled), lead, filled)


def slice_batch(x: dict, start: int, stop: int) -> dict:
    return {key: ([t[start:stop] for t in value] if isinstance(value, list) else value[start:stop])
            for key, value in x.items()}
