"""Long frame -> model inputs: targets, calendar features, and pytorch-forecasting datasets.

What the model sees, decided here once and recorded in the model directory (``ModelSpec``):

- targets: the dataset's metrics that carry thresholds (CPU busy, memory, swap, disk, load,
  CLOSE_WAIT, network in for the simulated fleet), each with p10/p50/p90;
- unknown inputs: every metric of the dataset (targets included) except redundant ones;
- known inputs: calendar features (hour of day and day of week as sine/cosine, weekend);
- static input: the server's profile; a profile the model never saw becomes GENERIC.

Normalisation is global per metric (``TorchNormalizer``), not per server: a server never seen
in training gets the same, sensible scale as every other server, and absolute levels, which
thresholds are about, stay visible to the model. The server name only splits the series; its
encoder is refitted on whatever fleet is being forecast, so new names need no retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from argus_core import schema
from argus_core.profiles import GENERIC, PROFILE_NAMES

TIME_IDX = "time_idx"
EPOCH = pd.Timestamp("2000-01-01T00:00:00Z")  # time_idx counts steps since this instant
CALENDAR = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "weekend")
# metrics that say nothing a target does not already say
REDUNDANT = ("cpu_idle_pct", "cpu_user_pct", "cpu_sys_pct")
# series layout: one row per (server, metric, time); the network sees one series at a time
VALUE = "value"
KEY_SEPARATOR = " | "
DEFAULT_TARGETS = (
    schema.CPU_BUSY, "mem_used_pct", "swap_used_pct", "disk_usage_pct",
    "load_average", "back_close_wait", "net_in_mb_s",
)


@dataclass(frozen=True)
class ModelSpec:
    """Everything about inputs and outputs that a model directory must remember."""

    targets: tuple[str, ...]
    unknown_reals: tuple[str, ...]
    encoder_length: int = 288  # 24 h of 5-minute steps: one full daily rhythm
    horizon: int = 96  # 8 h ahead: an on-call shift
    step: str = schema.DEFAULT_STEP
    quantiles: tuple[float, ...] = schema.QUANTILES
    profiles: tuple[str, ...] = PROFILE_NAMES
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    # "encoder": each window standardised by its own encoder (argus_core.normalizers);
    # "global": one mean and spread per metric over the training data
    normalization: str = "encoder"
    target_spreads: tuple[float, ...] = ()  # each target's spread over the training data (loss weights, floors)
    # "wide": one series per server, every target metric at once (the simulated fleet);
    # "series": one series per (server, metric) with a single target, ``value``, for data whose
    # servers carry different metrics in different units (imported real data)
    layout: str = "wide"
    metrics: tuple[str, ...] = ()  # series layout: the dataset metrics it forecasts
    # how the loss weighs targets (argus_core.losses): "global", each by 1 / its spread over the
    # training data; "window", each window's errors by that window's own normaliser scale
    loss_scale: str = "global"
    # per-window normalisation: "mean" of the encoder, its "last" value or "recent" (last hour's) mean
    center: str = "mean"

    @property
    def forecast_metrics(self) -> tuple[str, ...]:
        """The metrics a forecast of this model names."""
        return self.metrics if self.layout == "series" else self.targets

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict) -> ModelSpec:
        fields = dict(payload)
        fields.setdefault("normalization", "global")  # directories written before the choice existed
        fields.setdefault("loss_scale", "global")
        fields.setdefault("center", "mean")
        for key in ("targets", "unknown_reals", "quantiles", "profiles", "target_spreads", "metrics"):
            fields.setdefault(key, ())
            fields[key] = tuple(fields[key])
        return cls(**fields)


def spec_for(metrics: list[str] | tuple[str, ...], encoder_length: int = 288, horizon: int = 96,
             step: str = schema.DEFAULT_STEP,
             thresholds: dict[str, schema.Threshold] | None = None, normalization: str = "encoder",
             layout: str = "wide") -> ModelSpec:
    """The spec for a dataset with these metric columns: thresholded metrics become targets
    (series layout: every metric is forecast, one series at a time)."""
    thresholds = thresholds or schema.THRESHOLDS
    if layout == "series":
        if set(schema.METRIC_COLUMNS) <= set(metrics):  # the simulated fleet: its thresholded metrics
            metrics = tuple(m for m in DEFAULT_TARGETS if m == schema.CPU_BUSY or m in metrics)
        return ModelSpec(
            targets=(VALUE,), unknown_reals=(VALUE,), encoder_length=encoder_length, horizon=horizon, step=step,
            thresholds={m: {"warning": thresholds[m].warning, "critical": thresholds[m].critical}
                        for m in metrics if m in thresholds},
            normalization="encoder", layout="series", metrics=tuple(metrics))
    available = list(metrics)
    if "cpu_idle_pct" in available and schema.CPU_BUSY not in available:
        available.append(schema.CPU_BUSY)
    targets = tuple(m for m in DEFAULT_TARGETS if m in available and m in thresholds)
    targets += tuple(m for m in available if m in thresholds and m not in targets)
    if not targets:
        raise ValueError("the dataset has no metric with a threshold to forecast")
    others = tuple(m for m in available if m not in targets and m not in REDUNDANT)
    return ModelSpec(
        targets=targets,
        unknown_reals=targets + others,
        encoder_length=encoder_length,
        horizon=horizon,
        step=step,
        thresholds={m: {"warning": thresholds[m].warning, "critical": thresholds[m].critical} for m in targets},
        normalization=normalization,
    )


def with_spreads(spec: ModelSpec, prepared: pd.DataFrame) -> ModelSpec:
    """The spec with each target's spread over ``prepared`` (kept for loss weights and floors)."""
    from dataclasses import replace

    if spec.layout == "series":  # every window is divided by its own spread first (window_scale)
        return replace(spec, target_spreads=(1.0,))
    spreads = tuple(float(max(prepared[t].std(), 1e-3)) for t in spec.targets)
    return replace(spec, target_spreads=spreads)


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
        raise ValueError(f"not enough history to train: each series needs at least {needed} steps "
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
        raise ValueError(f"the data lacks metric(s) the model needs: {', '.join(missing)}")
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
    metrics added; ValueError when a metric the model needs is missing."""
    if spec.layout == "series":
        frame = to_series(frame, spec.metrics)
    out = schema.add_derived(frame) if schema.CPU_BUSY not in frame.columns and "cpu_idle_pct" in frame else frame
    missing = [m for m in spec.unknown_reals if m not in out.columns]
    if missing:
        raise ValueError(f"the data lacks metric(s) the model needs: {', '.join(missing)}")
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
    return prepared


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
        from argus_core.profiles import infer_profiles
        profiles = infer_profiles(frame[schema.SERVER].astype(str).to_numpy())
    return np.where(np.isin(profiles, spec.profiles), profiles, GENERIC).astype(object)


def target_normalizers(parameters: dict) -> list:
    """The fitted target normaliser of each target (one target has no MultiNormalizer around it)."""
    normalizer = parameters["target_normalizer"]
    return list(getattr(normalizer, "normalizers", [normalizer]))


def dataset_kwargs(spec: ModelSpec) -> dict:
    """The TimeSeriesDataSet arguments that follow from a spec (pytorch-forecasting types inside)."""
    from pytorch_forecasting.data import MultiNormalizer, NaNLabelEncoder, TorchNormalizer

    if spec.normalization == "encoder":
        from argus_core.normalizers import FlooredEncoderNormalizer

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
        time_varying_known_reals=list(CALENDAR),
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
        raise ValueError(
            f"not enough history to train: each server needs at least {needed} steps "
            f"({pd.Timedelta(spec.step) * needed}) before the validation cut plus a horizon after it"
        )
    history = prepared[prepared[TIME_IDX] <= cut]
    if parameters is None:
        train = TimeSeriesDataSet(history, **dataset_kwargs(spec))
    else:
        train = TimeSeriesDataSet.from_parameters(reusable(parameters), history)
    validation = TimeSeriesDataSet.from_dataset(train, prepared, min_prediction_idx=cut + 1,
                                                stop_randomization=True)
    return train, validation


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

        from argus_core.normalizers import FlooredEncoderNormalizer

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
        from argus_core.losses import PerTargetWeights

        return PerTargetWeights([QuantileLoss(list(spec.quantiles)) for _ in spec.targets], weights=weights)
    return MultiLoss([QuantileLoss(list(spec.quantiles)) for _ in spec.targets], weights=weights)
