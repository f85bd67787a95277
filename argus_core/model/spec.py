"""What a model reads and writes, decided once per model and kept in its directory (``ModelSpec``).

- targets: the dataset's metrics that carry thresholds (CPU busy, memory, swap, disk, load,
  CLOSE_WAIT, network in for the simulated fleet), each with p10/p50/p90;
- unknown inputs: every metric of the dataset (targets included) except redundant ones;
- known inputs: calendar features (``layout.CALENDAR``);
- static input: the server's profile; a profile the model never saw becomes GENERIC.

Torch-free: the CLI, the pages and the run store read specs without loading pytorch-forecasting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from argus_core.data import schema
from argus_core.data.profiles import PROFILE_NAMES
from argus_core.errors import DatasetError, SettingsError
from argus_core.model.config import CENTERS, LOSS_SCALES, NEW_MODEL_CENTER, TrainConfig

# what model directories written before each choice existed did (they do not name it)
BEFORE_THE_CHOICE = {"normalization": "global", "loss_scale": "global", "center": "mean"}
# metrics that say nothing a target does not already say
REDUNDANT = ("cpu_idle_pct", "cpu_user_pct", "cpu_sys_pct")
DEFAULT_TARGETS = (
    schema.CPU_BUSY, "mem_used_pct", "swap_used_pct", "disk_usage_pct",
    "load_average", "back_close_wait", "net_in_mb_s",
)

VALUE = "value"  # series layout: the one value column of a (server, metric) series


def lag_input(target: str, lag: int) -> str:
    """The known input that carries ``target``'s value ``lag`` steps earlier."""
    return f"{target}_lag_{lag}"


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
    loss_scale: str = TrainConfig.loss_scale
    # per-window normalisation: "mean" of the encoder, its "last" value or "recent" (last hour's) mean
    center: str = NEW_MODEL_CENTER
    # seasonal inputs: for each lag (in steps; one day, one week), every target's value that many
    # steps earlier is a known input at every encoder and horizon step, scaled like the target, so
    # the network is handed the seasonal-naive path (``layout.seasonal_paths``); () for none
    seasonal_lags: tuple[int, ...] = ()
    # steps back the served forecast's simple methods look (argus_core.model.serving; 0: the TFT serves all)
    fallback_season: int = 0

    @property
    def lag_inputs(self) -> tuple[str, ...]:
        """The known inputs that carry the seasonal paths, lag by lag, target by target."""
        return tuple(lag_input(t, lag) for lag in self.seasonal_lags for t in self.targets)

    @property
    def history_steps(self) -> int:
        """Steps of history a forecast reads: the encoder, and as far back as the longest lag."""
        return self.encoder_length + max((*self.seasonal_lags, self.fallback_season))

    @property
    def forecast_metrics(self) -> tuple[str, ...]:
        """The metrics a forecast of this model names."""
        return self.metrics if self.layout == "series" else self.targets

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict) -> ModelSpec:
        fields = {**BEFORE_THE_CHOICE, **payload}
        for key in ("targets", "unknown_reals", "quantiles", "profiles", "target_spreads", "metrics",
                    "seasonal_lags"):
            fields.setdefault(key, ())
            if not isinstance(fields[key], list | tuple):
                raise ValueError(f"spec.{key} must be a list, not {fields[key]!r}")
            fields[key] = tuple(fields[key])
        spec = cls(**fields)
        problems = spec.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return spec

    def problems(self) -> list[str]:
        """What makes this spec unusable (a hand-edited or damaged config.json)."""
        out = [f"spec.{name} must be a positive whole number, not {getattr(self, name)!r}"
               for name in ("encoder_length", "horizon")
               if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int)
               or getattr(self, name) < 1]
        if not self.targets or not all(isinstance(t, str) for t in (*self.targets, *self.unknown_reals)):
            out.append("spec.targets and spec.unknown_reals must be lists of metric names")
        if not all(isinstance(lag, int) and not isinstance(lag, bool) and lag >= self.horizon
                   for lag in self.seasonal_lags):
            out.append(f"spec.seasonal_lags must be whole numbers of steps of at least the horizon ({self.horizon}), "
                       f"not {list(self.seasonal_lags)!r}")
        if not isinstance(self.thresholds, dict):
            out.append("spec.thresholds must be an object")
        for name, allowed in (("layout", ("wide", "series")), ("normalization", ("encoder", "global")),
                              ("loss_scale", LOSS_SCALES), ("center", CENTERS)):
            if getattr(self, name) not in allowed:
                out.append(f"spec.{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        try:
            schema.parse_step(self.step)
        except (SettingsError, TypeError) as exc:
            out.append(f"spec.step: {exc}")
        return out


def seasonal_lags_for(choice: str, step: str, horizon: int, history_steps: int, encoder_length: int) -> tuple[int, ...]:
    """The lags of ``train --seasonal-inputs``: "none", "day", "week" (day and week), or "auto":
    the day, and the week too when the series have at least two weeks of history beyond one
    window, so most training windows see a real week-old value (where a series is younger than a
    lag, its value one day earlier stands in, then its first value; never a later one)."""
    if choice == "none":
        return ()
    step_td = pd.Timedelta(step)
    day, week = pd.Timedelta("1D") / step_td, pd.Timedelta("7D") / step_td
    if day != int(day) or int(day) < horizon:  # no whole daily season at this step, or it lies inside the horizon
        return ()
    day, week = int(day), int(week)
    if choice == "day":
        return (day,)
    if choice == "week" or history_steps >= 2 * week + encoder_length + horizon:
        return (day, week)
    return (day,)


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
            normalization="encoder", layout="series", metrics=tuple(metrics),
            loss_scale="global")  # one target per series: nothing to weigh between targets
    available = list(metrics)
    if "cpu_idle_pct" in available and schema.CPU_BUSY not in available:
        available.append(schema.CPU_BUSY)
    targets = tuple(m for m in DEFAULT_TARGETS if m in available and m in thresholds)
    targets += tuple(m for m in available if m in thresholds and m not in targets)
    if not targets:
        raise DatasetError("the dataset has no metric with a threshold to forecast")
    others = tuple(m for m in available if m not in targets and m not in REDUNDANT)
    return ModelSpec(
        targets=targets,
        unknown_reals=targets + others,
        encoder_length=encoder_length,
        horizon=horizon,
        step=step,
        thresholds={m: {"warning": thresholds[m].warning, "critical": thresholds[m].critical} for m in targets},
        normalization=normalization,
        loss_scale=TrainConfig.loss_scale if normalization == "encoder" else "global",
    )


def with_spreads(spec: ModelSpec, prepared: pd.DataFrame) -> ModelSpec:
    """The spec with each target's spread over ``prepared`` (kept for loss weights and floors)."""

    if spec.layout == "series":  # every window is divided by its own spread first (window_scale)
        return replace(spec, target_spreads=(1.0,))
    spreads = tuple(float(max(prepared[t].std(), 1e-3)) for t in spec.targets)
    return replace(spec, target_spreads=spreads)
