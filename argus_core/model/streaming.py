"""Streaming training data: one day partition (plus its encoder context) at a time, so memory is
bounded by a few days of the fleet whatever the dataset's size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from argus_core.data import store
from argus_core.errors import DatasetError
from argus_core.model import datasets, layout
from argus_core.model.spec import ModelSpec, with_spreads


def streaming_loaders(dataset_dir, manifest: dict, spec: ModelSpec, config, parameters: dict | None):
    """Train on one day partition (plus its encoder context) at a time: memory is bounded by a
    few days of the fleet whatever the dataset's size. Validation is the last days."""
    from pytorch_forecasting import TimeSeriesDataSet

    days = sorted(manifest["partitions"])
    step = pd.Timedelta(spec.step)
    context = step * spec.encoder_length
    val_days = max(1, round(len(days) * config.validation_fraction))
    train_days, held_out = days[:-val_days], days[-val_days:]
    if not train_days:
        raise DatasetError("streaming needs at least two day partitions")
    cut = pd.Timestamp(held_out[0], tz="UTC")
    if parameters is None:
        first = layout.prepare(store.read(dataset_dir, end=cut - step), spec) if len(train_days) < 3 else \
            layout.prepare(store.read(dataset_dir, end=pd.Timestamp(train_days[2], tz="UTC") + pd.Timedelta("1D")
                                        - step), spec)
        if not spec.target_spreads:
            spec = with_spreads(spec, first)
        parameters = TimeSeriesDataSet(first, **datasets.dataset_kwargs(spec)).get_parameters()
    tail = layout.prepare(store.read(dataset_dir, start=cut - context), spec)
    cut_idx = int((cut - layout.EPOCH) // step)
    validation = TimeSeriesDataSet.from_parameters(datasets.reusable(parameters), tail, min_prediction_idx=cut_idx,
                                                   stop_randomization=True)
    batches = _DayBatches(dataset_dir, spec, datasets.reusable(parameters), train_days, cut, config)
    train_loader = torch.utils.data.DataLoader(batches, batch_size=None)
    val_loader = validation.to_dataloader(train=False, batch_size=config.batch_size, num_workers=0)
    return train_loader, val_loader, parameters, (manifest["start"], manifest["end"]), spec


class _DayBatches(torch.utils.data.IterableDataset):
    def __init__(self, dataset_dir, spec, parameters, days: list[str], cut: pd.Timestamp, config) -> None:
        self.dataset_dir, self.spec, self.parameters, self.days, self.cut = dataset_dir, spec, parameters, days, cut
        self.batch_size = config.batch_size
        self.per_day = max(1, math.ceil(config.batches_per_epoch / len(days)))
        self.rng = np.random.default_rng(config.seed)

    def __iter__(self):
        from pytorch_forecasting import TimeSeriesDataSet

        step = pd.Timedelta(self.spec.step)
        for day in map(str, self.rng.permutation(self.days)):
            start = pd.Timestamp(day, tz="UTC")
            end = min(start + pd.Timedelta("1D") + step * self.spec.horizon, self.cut) - step
            frame = store.read(self.dataset_dir, start=start - step * self.spec.encoder_length, end=end)
            if frame.empty:
                continue
            prepared = layout.prepare(frame, self.spec)
            try:
                dataset = TimeSeriesDataSet.from_parameters(
                    self.parameters, prepared, min_prediction_idx=int((start - layout.EPOCH) // step))
            except (AssertionError, ValueError):  # a day too short for one full window
                continue
            loader = dataset.to_dataloader(train=True, batch_size=self.batch_size, num_workers=0)
            for index, batch in enumerate(loader):
                if index >= self.per_day:
                    break
                yield batch
