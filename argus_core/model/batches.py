"""Training batches cut straight from (servers, time, metrics) arrays.

pytorch-forecasting's TimeSeriesDataSet builds each sample in Python (slicing, refitting the
per-window normalisers, collating), which on this machine costs as much as the network's own
forward and backward pass. Here a batch is one fancy-indexing gather over arrays built once,
then ``forecast_inputs.assemble``: the same scaling code the fleet forecast uses, checked
against the stock dataset in ``tests/test_forecaster.py``.

Only windows with real data at every step are used (gaps are never trained on as if measured).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from argus_core.data import schema
from argus_core.errors import DatasetError
from argus_core.model import distributed, layout
from argus_core.model import inputs as forecast_inputs
from argus_core.model.spec import ModelSpec

CLIP = 20.0  # series layout: training targets at most this many window spreads from the window's level


class WindowBatches(torch.utils.data.IterableDataset):
    """Batches of (x, y) windows whose forecasts start within [first_start, last_start] (time_idx).

    ``shuffle``: True for a fresh random order each pass (training); "once" for one fixed random
    order (validation: every epoch scores the same windows, so losses compare); False for time order."""

    def __init__(self, prepared: pd.DataFrame, spec: ModelSpec, parameters: dict, x_reals: list[str],
                 categoricals: list[str], batch_size: int, complete: bool = True,
                 first_start: int | dict[str, int] | None = None,
                 last_start: int | dict[str, int] | None = None, shuffle: bool | str = True, seed: int = 0,
                 incidents: pd.DataFrame | None = None, incident_share: float = 0.0, shard: bool = False,
                 device: str | None = None, level_shifts: float = 0.0) -> None:
        self.spec, self.parameters = spec, parameters
        self.level_shifts = level_shifts
        self.shift_rng = np.random.default_rng([seed, 7])  # its own draws: the windows' order does not change
        # shard: in a multi-process training, each rank takes every world-th window of one order
        # that all ranks draw alike (same seed), so the ranks' windows never overlap
        self.shard, self.seed = shard, seed
        self.x_reals, self.categoricals = list(x_reals), list(categoricals)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        names, codes = np.unique(prepared[schema.SERVER].to_numpy(dtype=str), return_inverse=True)
        time_idx = prepared[layout.TIME_IDX].to_numpy()
        self.t0 = int(time_idx.min())
        length = int(time_idx.max()) - self.t0 + 1
        unknown = list(spec.unknown_reals)
        self.values = np.full((len(names), length, len(unknown)), np.nan, dtype=np.float32)
        self.values[codes, time_idx - self.t0] = prepared[unknown].to_numpy(np.float32)
        real = ~np.isnan(self.values[:, :, 0])
        # the seasonal paths (spec.lag_inputs order), known at every step of a window
        self.lagged = np.concatenate(
            [layout.seasonal_paths(self.values[:, :, unknown.index(t)], spec.seasonal_lags)
             for t in spec.targets], axis=2)[:, :, _lag_order(spec)] if spec.seasonal_lags else None
        self.profiles = np.empty(len(names), dtype=object)
        self.profiles[codes] = prepared[schema.PROFILE].to_numpy()
        grid = pd.Series(layout.EPOCH + pd.Timedelta(spec.step) * (self.t0 + np.arange(length)))
        self.calendar = layout.calendar_features(grid)  # name -> (T,)

        span = spec.encoder_length + spec.horizon
        # window w starts at step w; its forecast starts at w + encoder_length
        counts = np.cumsum(np.pad(real, ((0, 0), (1, 0))), axis=1)
        present = counts[:, span:] - counts[:, :-span]  # real steps per window, (S, T - span + 1)
        # training uses complete windows only; a backtest (complete=False) takes any window whose
        # encoder is at least half real data and scores the real steps of its horizon
        if complete:
            whole = present == span
        else:
            enc = spec.encoder_length
            in_encoder = (counts[:, enc:] - counts[:, :-enc])[:, :present.shape[1]]
            whole = (in_encoder >= enc // 2) & (present - in_encoder >= 1)
        starts = np.arange(whole.shape[1]) + spec.encoder_length + self.t0
        # bounds per series (a dict: series cut on their own), or one for all
        lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        first = _bounds(first_start, names, lowest, highest)
        last = _bounds(last_start, names, highest, lowest)
        allowed = (starts[None, :] >= first[:, None]) & (starts[None, :] <= last[:, None])
        servers, windows = np.nonzero(whole & allowed)
        self.names = names
        self.windows = np.stack([servers, windows], axis=1)
        if len(self.windows) == 0:
            raise DatasetError("no complete window of encoder + horizon steps in this data")
        if shuffle == "once":
            self.windows = self.windows[self.rng.permutation(len(self.windows))]
        self.incident_share = incident_share
        self.hot = self._incident_windows(incidents, list(names)) if incident_share > 0 else np.empty(0, int)
        self.device = None
        if device is not None:
            self._to_device(device, complete)

    def _to_device(self, device: str, complete: bool) -> None:
        """Keep every array a batch reads on ``device`` (the whole 90-server x 30-day fleet is a few
        tens of MB), so a batch is gathered there by indexing, with no per-batch host work."""
        if not complete:
            raise ValueError("batches are gathered on a device for complete windows only (training, validation)")
        self.device = torch.device(device)
        put = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        self._values = put(self.values)
        self._lagged = put(self.lagged) if self.lagged is not None else None
        self._calendar = {name: put(column.astype(np.float32)) for name, column in self.calendar.items()}
        self._codes = forecast_inputs.profile_codes(self.profiles, self.parameters).to(self.device)
        self._windows = put(self.windows.astype(np.int64))
        self._span = torch.arange(self.spec.encoder_length + self.spec.horizon, device=self.device)

    def __len__(self) -> int:
        rank, world = distributed.shard() if self.shard else (0, 1)
        return int(np.ceil(len(self.windows) // world / self.batch_size))

    def __iter__(self):
        order = self.rng.permutation(len(self.windows)) if self.shuffle is True else np.arange(len(self.windows))
        rank, world = distributed.shard() if self.shard else (0, 1)
        hot_rng = self.rng
        if world > 1:
            # every rank the same number of windows (a rank with one batch more would wait forever
            # for the others at its gradient exchange), and its own draw of the incident windows
            order = order[:len(order) - len(order) % world][rank::world]
            if not hasattr(self, "_hot_rng"):
                self._hot_rng = np.random.default_rng([self.seed, rank])
            hot_rng = self._hot_rng
        hot_per_batch = int(round(self.incident_share * self.batch_size)) if len(self.hot) else 0
        if self.device is not None:  # the epoch's order goes to the device once; batches are cut there
            order = order.copy()
            for start in range(0, len(order), self.batch_size) if hot_per_batch else ():
                size = min(hot_per_batch, len(order) - start)
                order[start:start + size] = hot_rng.choice(self.hot, size=size)
            on_device = torch.from_numpy(order.astype(np.int64)).to(self.device)
            for start in range(0, len(order), self.batch_size):
                yield self.batch(self._windows[on_device[start:start + self.batch_size]])
            return
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size].copy()
            if hot_per_batch:
                chosen[:hot_per_batch] = hot_rng.choice(self.hot, size=min(hot_per_batch, len(chosen)))
            yield self.batch(self.windows[chosen])

    def _incident_windows(self, incidents: pd.DataFrame | None, names: list[str]) -> np.ndarray:
        """Windows whose forecast overlaps an incident's precursor, breach or peak.

        Incidents are rare (a few per server-month), so a uniform sampler shows the network
        almost only quiet windows and it learns that high values revert; training on them at
        a fixed share teaches the climb that precedes a breach."""
        if incidents is None or incidents.empty:
            return np.empty(0, dtype=int)
        step = pd.Timedelta(self.spec.step)
        starts = self.windows[:, 1] + self.spec.encoder_length + self.t0  # forecast start, time_idx
        ends = starts + self.spec.horizon - 1
        hot = np.zeros(len(self.windows), dtype=bool)
        for row in incidents.itertuples(index=False):
            if row.server_name not in names:
                continue
            first = int((pd.Timestamp(row.precursor_start) - layout.EPOCH) // step)
            last = int((pd.Timestamp(row.end_time) - layout.EPOCH) // step)
            hot |= (self.windows[:, 0] == names.index(row.server_name)) & (starts <= last) & (ends >= first)
        return np.flatnonzero(hot)

    def window_inputs(self, chosen: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        """(network x, windows (B, span, U) as the network sees them, scale per window).

        ``chosen`` rows are (series index, window start). In series layout each window is
        divided by its own spread (``layout.window_scale``); otherwise the scale is 1."""
        spec = self.spec
        span = spec.encoder_length + spec.horizon
        steps = chosen[:, 1:2] + np.arange(span)[None, :]  # (B, span)
        values = self.values[chosen[:, :1], steps]  # (B, span, U)
        if self.level_shifts > 0 and spec.layout == "series":
            values = self.shifted(values)
        encoder = forecast_inputs.fill_gaps(values[:, :spec.encoder_length])  # model input only
        scales = np.ones(len(chosen), dtype=np.float32)
        if spec.layout == "series":
            scales = layout.window_scale(encoder[:, :, 0])
            values = values / scales[:, None, None]
            encoder = encoder / scales[:, None, None]
        calendar = {name: column[steps] for name, column in self.calendar.items()}
        if self.lagged is not None:
            lagged = self.lagged[chosen[:, :1], steps] / scales[:, None, None]
            calendar.update({name: lagged[:, :, i] for i, name in enumerate(spec.lag_inputs)})
        filled = np.concatenate([encoder, values[:, spec.encoder_length:]], axis=1)
        x = forecast_inputs.assemble(filled, calendar, self.profiles[chosen[:, 0]], spec, self.parameters,
                                     self.x_reals, self.categoricals)
        return x, values, scales

    def shifted(self, values: np.ndarray) -> np.ndarray:
        """Windows (B, span, U) where a ``level_shifts`` share of them steps, at a random point in
        the second half of the encoder, by 3 to 10 of the encoder's spreads up or down, and stays
        there to the end of the horizon (the day-old seasonal inputs keep the old level, as they would).

        Real server metrics spike and fall back far more often than they step and stay, so a network
        trained on them alone reads a fresh step as a spike: on nab-aws two origins just after a
        lasting step (ec2-ac20cd, rds-cc0c53) held most of the gap to AutoARIMA's mean MASE."""
        picked, start, size = self._shift_draws(len(values))
        if not picked.any():
            return values
        enc = self.spec.encoder_length
        with np.errstate(invalid="ignore"):
            spread = np.nan_to_num(np.nanstd(values[:, :enc, 0], axis=1))
        step = np.where(picked, size * np.maximum(spread, 1e-3), 0.0).astype(np.float32)
        after = np.arange(values.shape[1])[None, :] >= start[:, None]
        out = values.copy()
        out[:, :, 0] += np.where(after, step[:, None], np.float32(0))
        return out

    def _shift_draws(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which of ``count`` windows step, where and by how many spreads: drawn on the host for
        both paths, so a batch gathered on a device steps exactly as the same batch on the host."""
        rng = self.shift_rng
        picked = rng.random(count) < self.level_shifts
        start = rng.integers(self.spec.encoder_length // 2, self.spec.encoder_length, count)
        size = rng.uniform(3.0, 10.0, count) * rng.choice((-1.0, 1.0), count)
        return picked, start, size

    def _shifted_on_device(self, values: torch.Tensor) -> torch.Tensor:
        """``shifted`` for complete windows already on the device (no gaps: a plain spread)."""
        picked, start, size = self._shift_draws(len(values))
        if not picked.any():
            return values
        enc = self.spec.encoder_length
        spread = torch.std(values[:, :enc, 0], dim=1, unbiased=False).clamp(min=1e-3)
        size = torch.from_numpy(np.where(picked, size, 0.0).astype(np.float32)).to(values.device)
        after = self._span[None, :] >= torch.from_numpy(start).to(values.device)[:, None]
        out = values.clone()
        out[:, :, 0] += after * (size * spread)[:, None]
        return out

    def device_inputs(self, chosen: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """``window_inputs`` gathered on the device from (series, window start) rows already there.
        Complete windows only: they have no gaps to fill."""
        spec = self.spec
        steps = chosen[:, 1:2] + self._span[None, :]  # (B, span)
        series = chosen[:, :1]
        values = self._values[series, steps]  # (B, span, U)
        if self.level_shifts > 0 and spec.layout == "series":
            values = self._shifted_on_device(values)
        scales = torch.ones(len(chosen), dtype=torch.float32, device=self.device)
        if spec.layout == "series":  # layout.window_scale, in torch
            encoder = values[:, :spec.encoder_length, 0]
            spread = torch.std(encoder, dim=1, unbiased=False)
            scales = torch.clamp(torch.maximum(spread, 0.02 * encoder.mean(dim=1).abs()), min=1e-3)
            values = values / scales[:, None, None]
        calendar = {name: column[steps] for name, column in self._calendar.items()}
        if self._lagged is not None:
            lagged = self._lagged[series, steps] / scales[:, None, None]
            calendar.update({name: lagged[:, :, i] for i, name in enumerate(spec.lag_inputs)})
        x = forecast_inputs.assemble(values, calendar, self._codes[chosen[:, 0]], spec, self.parameters,
                                     self.x_reals, self.categoricals)
        return x, values, scales

    def batch(self, chosen) -> tuple[dict, tuple[list[torch.Tensor], list[torch.Tensor] | None]]:
        """One training batch from (series, window start) rows: a numpy array (gathered on the host),
        or a tensor on the batches' device (gathered there)."""
        spec = self.spec
        enc = spec.encoder_length
        x, values, _ = self.device_inputs(chosen) if torch.is_tensor(chosen) else self.window_inputs(chosen)
        values = torch.as_tensor(values)
        if spec.layout == "series":
            # a flat window followed by a spike is thousands of its own spreads away: one such
            # window would swamp a batch's loss, so targets are limited to +-CLIP spreads of the level
            level = values[:, :enc, :].mean(dim=1, keepdim=True)
            values[:, enc:] = torch.clamp(values[:, enc:], level - CLIP, level + CLIP)
        unknown = list(spec.unknown_reals)
        y = [values[:, enc:, unknown.index(t)].contiguous() for t in spec.targets]
        # what the model's training step logs from (encoder targets feed its MASE-style metrics)
        x["encoder_target"] = [values[:, :enc, unknown.index(t)].contiguous() for t in spec.targets]
        if len(spec.targets) == 1:  # one target: tensors, not lists of one
            y, x["encoder_target"] = y[0], x["encoder_target"][0]
        x["decoder_target"] = y
        chosen = torch.as_tensor(chosen, device=values.device)
        x["decoder_time_idx"] = self.t0 + chosen[:, 1:2] + torch.arange(enc, enc + spec.horizon, device=values.device)
        x["groups"] = chosen[:, :1].to(torch.int64)
        weight = None
        if spec.loss_scale == "window" and len(spec.targets) > 1:
            # each window's errors in units of the scale its normaliser used (argus_core.losses)
            weight = [1.0 / pair[:, 1] for pair in x["target_scale"]]
        return x, (y, weight)


def _lag_order(spec: ModelSpec) -> list[int]:
    """Columns of the per-target seasonal paths (target-major) in ``spec.lag_inputs`` order (lag-major)."""
    n_lags = len(spec.seasonal_lags)
    return [t * n_lags + i for i in range(n_lags) for t in range(len(spec.targets))]


def _bounds(bound: int | dict[str, int] | None, names: np.ndarray, open_end: int, excluded: int) -> np.ndarray:
    """One bound per series: ``open_end`` when there is none, ``excluded`` for a series a dict leaves out."""
    if bound is None:
        return np.full(len(names), open_end, dtype=np.int64)
    if isinstance(bound, dict):
        return np.array([bound.get(str(n), excluded) for n in names], dtype=np.int64)
    return np.full(len(names), bound, dtype=np.int64)
