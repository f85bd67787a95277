"""Streaming training data: one day partition (plus its encoder context) at a time, so memory is
bounded by a few days of the fleet whatever the dataset's size.

Each day's windows are cut by ``WindowBatches`` (the arrays of one day of the fleet: 1,000 servers
x 2 days x 12 metrics is about 30 MB), as in standard mode; pytorch-forecasting's dataset is built
once, on the first days of at most ``PARAMETER_SERVERS`` servers per profile, for its fitted
encoders and scalers. Validation is the last day(s) before the end (``VALIDATION_DAYS`` at most),
the days before them train.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from argus_core.data import schema, store
from argus_core.errors import ArgusError, DatasetError
from argus_core.model import datasets, layout
from argus_core.model.batches import WindowBatches
from argus_core.model.spec import ModelSpec, with_spreads

# the stock dataset that fits the scalers holds every row it is given (at 1,000 servers, three days
# took gigabytes); a few servers of each profile over three days give the same standardisation
PARAMETER_SERVERS = 20
# validation reads at most this many of the last days: ``val_batches`` batches are a few thousand
# windows, which one day of a fleet holds many times over, and a 9-day tail of 1,000 servers
# (15 % of 60 days) held 2.6 M rows in memory at once
VALIDATION_DAYS = 2


def streaming_parameters(dataset_dir, manifest: dict, spec: ModelSpec, config,
                         parameters: dict | None) -> tuple[dict, ModelSpec, tuple[str, str]]:
    """(dataset parameters, spec with target spreads, data span): fitted on the first days of a
    sample of servers, unless a continued model brings its own parameters."""

    days, cut = _split(manifest, config)
    if parameters is None:
        step = pd.Timedelta(spec.step)
        end = min(pd.Timestamp(days[min(2, len(days) - 1)], tz="UTC") + pd.Timedelta("1D"), cut) - step
        first = store.read(dataset_dir, end=end)
        first = first[first[schema.SERVER].isin(_sample_servers(first))]
        prepared = layout.prepare(first, spec)
        if not spec.target_spreads:
            spec = with_spreads(spec, prepared)
        parameters = datasets.stock_dataset(prepared, spec).get_parameters()
    return parameters, spec, (manifest["start"], manifest["end"])


def streaming_loaders(dataset_dir, manifest: dict, spec: ModelSpec, config, parameters: dict, network):
    """(training loader, validation loader): day partitions in turn, and the last days."""
    from argus_core.model import inputs

    if not inputs.supported(parameters):
        raise ArgusError("this model's dataset parameters cannot be streamed (an older normaliser): train it "
                         "in standard mode, or start a fresh model with --fresh")
    days, cut = _split(manifest, config)
    step = pd.Timedelta(spec.step)
    common = dict(spec=spec, parameters=datasets.reusable(parameters), x_reals=list(network.hparams.x_reals),
                  categoricals=list(network.hparams.x_categoricals), batch_size=config.batch_size)
    tail = layout.prepare(store.read(dataset_dir, start=cut - step * spec.encoder_length), spec)
    try:
        validation = WindowBatches(tail, first_start=int((cut - layout.EPOCH) // step), shuffle="once",
                                   seed=config.seed + 1, **common)
    except DatasetError as exc:
        raise DatasetError(f"streaming: the last {VALIDATION_DAYS} day(s) hold no validation window: {exc}") from exc
    train_days = _DayBatches(dataset_dir, spec, common, days, cut, config)
    return (torch.utils.data.DataLoader(train_days, batch_size=None),
            torch.utils.data.DataLoader(validation, batch_size=None))


def _split(manifest: dict, config) -> tuple[list[str], pd.Timestamp]:
    """(training days, start of validation)."""
    days = sorted(manifest["partitions"])
    val_days = min(VALIDATION_DAYS, max(1, round(len(days) * config.validation_fraction)))
    train_days, held_out = days[:-val_days], days[-val_days:]
    if not train_days:
        raise DatasetError("streaming needs at least two day partitions")
    return train_days, pd.Timestamp(held_out[0], tz="UTC")


def _sample_servers(frame: pd.DataFrame) -> list[str]:
    """At most ``PARAMETER_SERVERS`` servers of each profile, the first by name."""
    names = frame[[schema.SERVER, schema.PROFILE]].drop_duplicates(schema.SERVER)
    names = names.assign(**{schema.SERVER: names[schema.SERVER].astype(str)}).sort_values(schema.SERVER)
    return list(names.groupby(schema.PROFILE, observed=True).head(PARAMETER_SERVERS)[schema.SERVER])


class _DayBatches(torch.utils.data.IterableDataset):
    def __init__(self, dataset_dir, spec: ModelSpec, common: dict, days: list[str], cut: pd.Timestamp,
                 config) -> None:
        self.dataset_dir, self.spec, self.common, self.days, self.cut = dataset_dir, spec, common, days, cut
        self.per_day = max(1, math.ceil(config.batches_per_epoch / len(days)))
        self.rng = np.random.default_rng(config.seed)

    def __iter__(self):
        step = pd.Timedelta(self.spec.step)
        for day in map(str, self.rng.permutation(self.days)):
            start = pd.Timestamp(day, tz="UTC")
            end = min(start + pd.Timedelta("1D") + step * self.spec.horizon, self.cut) - step
            frame = store.read(self.dataset_dir, start=start - step * self.spec.encoder_length, end=end)
            if frame.empty:
                continue
            first = int((start - layout.EPOCH) // step)
            try:  # forecasts starting within this day, their horizons before the validation part
                batches = WindowBatches(layout.prepare(frame, self.spec), first_start=first,
                                        last_start=int((end - layout.EPOCH) // step) - self.spec.horizon + 1,
                                        shuffle=True, seed=int(self.rng.integers(2**31)), **self.common)
            except DatasetError:  # a day too short for one full window
                continue
            for index, batch in enumerate(batches):
                if index >= self.per_day:
                    break
                yield batch
