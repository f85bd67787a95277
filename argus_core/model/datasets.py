"""The only pytorch-forecasting wiring: ``TimeSeriesDataSet`` arguments, datasets, the loss.

Every function imports pytorch-forecasting when called, so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.errors import DatasetError
from argus_core.model.layout import CALENDAR, TIME_IDX
from argus_core.model.spec import ModelSpec


def target_normalizers(parameters: dict) -> list:
    """The fitted target normaliser of each target (one target has no MultiNormalizer around it)."""
    normalizer = parameters["target_normalizer"]
    return list(getattr(normalizer, "normalizers", [normalizer]))


def dataset_kwargs(spec: ModelSpec) -> dict:
    """The TimeSeriesDataSet arguments that follow from a spec (pytorch-forecasting types inside)."""
    from pytorch_forecasting.data import MultiNormalizer, NaNLabelEncoder, TorchNormalizer

    if spec.normalization == "encoder":
        from argus_core.model.normalizers import FlooredEncoderNormalizer

        spreads = spec.target_spreads or (1.0,) * len(spec.targets)
        children = [FlooredEncoderNormalizer(min_scale=0.02 * spread, center_on=spec.center) for spread in spreads]
    else:
        children = [TorchNormalizer(method="standard") for _ in spec.targets]
    # pytorch-forecasting treats a one-element target list as one target with a multi-target
    # output: a single target must be a plain name with a plain normaliser
    single = len(spec.targets) == 1
    normalizer = children[0] if single else MultiNormalizer(children)
    return dict(
        time_idx=TIME_IDX,
        target=spec.targets[0] if single else list(spec.targets),
        group_ids=[schema.SERVER],
        max_encoder_length=spec.encoder_length,
        min_encoder_length=spec.encoder_length,
        max_prediction_length=spec.horizon,
        min_prediction_length=spec.horizon,
        static_categoricals=[schema.PROFILE],
        time_varying_known_reals=list(CALENDAR) + list(spec.lag_inputs),
        time_varying_unknown_reals=list(spec.unknown_reals),
        target_normalizer=normalizer,
        categorical_encoders={
            schema.PROFILE: NaNLabelEncoder(add_nan=True).fit(pd.Series(list(spec.profiles))),
            schema.SERVER: NaNLabelEncoder(add_nan=True),
        },
        add_relative_time_idx=True,
        add_target_scales=spec.normalization == "encoder",
        add_encoder_length=False,
        allow_missing_timesteps=True,
    )


def training_datasets(prepared: pd.DataFrame, spec: ModelSpec, validation_fraction: float = 0.15,
                      parameters: dict | None = None):
    """(train, validation) datasets split in time: validation forecasts start after the cut.

    With ``parameters`` (a champion's), its fitted normalisers and encoders are reused, so
    weights trained before keep their meaning."""
    from pytorch_forecasting import TimeSeriesDataSet

    first, last = prepared[TIME_IDX].min(), prepared[TIME_IDX].max()
    span = last - first + 1
    needed = spec.encoder_length + spec.horizon
    cut = last - max(spec.horizon, int(span * validation_fraction))
    if cut - first + 1 < needed:
        raise DatasetError(
            f"not enough history to train: each server needs at least {needed} steps "
            f"({pd.Timedelta(spec.step) * needed}) before the validation cut plus a horizon after it"
        )
    history = prepared[prepared[TIME_IDX] <= cut]
    train = stock_dataset(history, spec, parameters)
    validation = TimeSeriesDataSet.from_dataset(train, prepared, min_prediction_idx=cut + 1,
                                                stop_randomization=True)
    return train, validation


def stock_dataset(frame: pd.DataFrame, spec: ModelSpec, parameters: dict | None = None):
    """pytorch-forecasting's ``TimeSeriesDataSet`` over ``frame`` (fitted anew, or with a model's
    ``parameters``), with its bare assertion for data it cannot cut a single window from turned
    into a DatasetError that says why.

    Its index counts rows, not steps: a series that is mostly gaps (data sampled every 15 minutes in
    a 5-minute dataset) yields no window at all, whatever its span."""
    from pytorch_forecasting import TimeSeriesDataSet

    try:
        if parameters is None:
            return TimeSeriesDataSet(frame, **dataset_kwargs(spec))
        return TimeSeriesDataSet.from_parameters(reusable(parameters), frame)
    except AssertionError as exc:
        if "filters should not remove" not in str(exc):
            raise
        raise DatasetError(no_window_message(frame, spec)) from exc


def no_window_message(frame: pd.DataFrame, spec: ModelSpec) -> str:
    """Why no training window could be cut from ``frame``: how much of each series' span is gaps,
    and the cadence its values arrive at."""
    needed = spec.encoder_length + spec.horizon
    grouped = frame.groupby(schema.SERVER, observed=True)[TIME_IDX]
    span = (grouped.max() - grouped.min() + 1).clip(lower=1)
    missing = 1.0 - float(grouped.count().sum()) / float(span.sum())
    steps = [np.diff(np.sort(t.to_numpy())) for _, t in grouped if len(t) > 1]
    cadence = int(np.median(np.concatenate(steps))) if steps else 1
    step = pd.Timedelta(spec.step)
    line = (f"no training window of {needed} steps ({schema.duration_text(step * needed)}) could be cut from "
            f"{len(span)} series: {missing:.0%} of the steps between each series' first and last time have no value")
    if cadence > 1:
        every = schema.duration_text(step * cadence)
        line += (f"; values arrive every {cadence} steps ({every}), not every {spec.step}: "
                 f"import the data again with --step {every} into a new dataset")
    return line + ". Nothing was trained or saved."


def reusable(parameters: dict) -> dict:
    """Dataset parameters for new data: the server-name encoder is refitted on that data,
    so servers the model never saw are split into their own series (never merged or refused)."""
    from pytorch_forecasting.data import NaNLabelEncoder

    fresh = dict(parameters)
    fresh["min_prediction_idx"] = None  # the training data's cut means nothing for other data
    normalizer = parameters["target_normalizer"]
    children = target_normalizers(parameters)
    if children and all(hasattr(n, "min_scale") for n in children):
        # per-window normalisers are refitted on every window anyway; unfitted copies make the
        # dataset fit them to the new data instead of reusing the last window's numbers
        from pytorch_forecasting.data import MultiNormalizer

        from argus_core.model.normalizers import FlooredEncoderNormalizer

        unfitted = [FlooredEncoderNormalizer(min_scale=n.min_scale, center_on=n.center_on) for n in children]
        fresh["target_normalizer"] = MultiNormalizer(unfitted) if hasattr(normalizer, "normalizers") else unfitted[0]
    fresh["categorical_encoders"] = {**parameters["categorical_encoders"],
                                     schema.SERVER: NaNLabelEncoder(add_nan=True)}
    return fresh


def quantile_loss(spec: ModelSpec, parameters: dict):
    """One QuantileLoss per target, weighted by 1 / the target's global scale.

    The TFT computes its loss on predictions in the metrics' own units; unweighted, MB/s and
    socket counts would drown the percentages. Dividing by each target's standard deviation
    makes every target count alike. With ``spec.loss_scale == "window"`` the training batches
    carry one weight per window and target instead (``argus_core.losses``); these fixed weights
    then apply only to batches without them."""
    from pytorch_forecasting.metrics import MultiLoss, QuantileLoss

    if len(spec.targets) == 1:
        return QuantileLoss(list(spec.quantiles))
    scales = list(spec.target_spreads) or [float(np.mean(getattr(n, "scale_", 1.0))) for n in
                                           target_normalizers(parameters)]
    weights = [1.0 / max(scale, 1e-6) / len(scales) for scale in scales]
    if spec.loss_scale == "window":
        from argus_core.model.losses import PerTargetWeights

        return PerTargetWeights([QuantileLoss(list(spec.quantiles)) for _ in spec.targets], weights=weights)
    return MultiLoss([QuantileLoss(list(spec.quantiles)) for _ in spec.targets], weights=weights)
