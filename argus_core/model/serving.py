"""What forecasts each series: the TFT, a simple method, or a blend of the two, chosen per series
on a validation window before the hold-out.

A network that has learned the fleet can still lose to "same time yesterday" on a series with a
strict daily rhythm, or to "the last value" on one that only steps. After training,
``choose`` forecasts every series from origins spread over its validation window (the last
``validation_fraction`` before its hold-out, never trained on) with the TFT, seasonal naive
(one day earlier), naive (last value) and blends of the TFT's and seasonal naive's quantiles, and
keeps the candidate with the lowest mean absolute error of p50 there. The choice, with every
candidate's error and the simple methods' bands (from each series' training part), goes in the
model directory as ``serving.json``; ``apply`` turns the TFT's forecast of a fleet into the served
one, so risk, levels, alerts and the pages use whatever serves.

The TFT's p10-p90 band is stretched (or narrowed) by one factor per target, the one that makes
it hold 80 % of the validation actuals (``band_scale``); the raw network is often too sure after
a few minutes of training, and risk is only as honest as the band.

Ties and near-ties go to the TFT: another candidate serves only when it is at least ``MARGIN``
better over at least ``MIN_ORIGINS`` validation origins and better at half of them, so a short
validation window (NAB's series hold four origins) or one lucky day does not swap models: on
``nab-aws`` a first version without those two conditions served naive on three series whose
hold-out then went the TFT's way. Series with fewer origins each are decided
together, whatever their target, by the same three conditions on their pooled evidence
(``pooled_winner``), so a dataset of a few days still falls back where the TFT plainly loses. A
series the model never saw (a server added after training) has no validation window of its own:
it is served as its target's series are, taken together (``Serving.defaults``, the same pooled
rule over all of them), with the simple methods' bands read from its own history.

Torch-free except ``choose`` (which runs the network).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core import atomic
from argus_core.model import layout
from argus_core.model.spec import ModelSpec

FILE = "serving.json"
TFT, SEASONAL, NAIVE = "tft", "seasonal_naive", "naive"
BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # the TFT's share in a blend with seasonal naive
MARGIN = 0.05  # another candidate serves only when its validation error is at least 5 % below the TFT's,
MIN_ORIGINS = 6  # over at least 6 validation origins (two days at one every 8 h),
MIN_WIN_SHARE = 0.5  # and when it beats the TFT at half of them or more: a short or one-off win is noise
LABELS = {TFT: "TFT", SEASONAL: "seasonal naive (same time yesterday)", NAIVE: "naive (last value)"}
RATIO_CLIP = (1e-3, 1e3)  # an error ratio is clipped here before the logarithm: one exact series cannot decide


def geometric_mean(ratios) -> float:
    """The geometric mean of error ratios, each clipped to ``RATIO_CLIP`` (BOOM's aggregate; backtests,
    recipe choice and pooled serving decisions all read ratios this way)."""
    return float(np.exp(np.mean(np.log(np.clip(np.asarray(ratios, dtype=np.float64), *RATIO_CLIP)))))


@dataclass(frozen=True)
class Choice:
    """How one series is served: ``tft_weight`` of the TFT's quantiles plus the rest of ``other``'s
    (1.0: the TFT alone; 0.0: ``other`` alone)."""

    tft_weight: float
    other: str = SEASONAL

    @property
    def name(self) -> str:
        if self.tft_weight >= 1.0:
            return TFT
        if self.tft_weight <= 0.0:
            return self.other
        return f"blend {self.tft_weight:.2f}"

    @property
    def label(self) -> str:
        if 0.0 < self.tft_weight < 1.0:
            return f"{self.tft_weight:.0%} TFT + {1 - self.tft_weight:.0%} seasonal naive"
        return LABELS[self.name]


def candidates() -> dict[str, Choice]:
    out = {TFT: Choice(1.0), SEASONAL: Choice(0.0, SEASONAL), NAIVE: Choice(0.0, NAIVE)}
    out.update({Choice(w).name: Choice(w) for w in BLEND_WEIGHTS})
    return out


def season_steps(spec: ModelSpec) -> int:
    """One day in steps (the seasonal-naive lag), or 0 when a day is no whole number of steps or
    falls inside the horizon."""
    day = pd.Timedelta("1D") / pd.Timedelta(spec.step)
    return int(day) if day == int(day) and int(day) >= spec.horizon else 0


# --- the simple methods, on raw arrays ----------------------------------------------------------------

def simple_paths(history: np.ndarray, horizon: int, season: int) -> tuple[np.ndarray, np.ndarray]:
    """(seasonal-naive p50 paths (S, H), last real values (S,)) from histories (S, T) that end at
    the forecast origin (NaN for gaps)."""
    ahead = np.full((len(history), horizon), np.nan, dtype=np.float32)
    grid = np.concatenate([history.astype(np.float32), ahead], axis=1)
    seasonal = layout.seasonal_paths(grid, (season,))[:, -horizon:, 0]
    valid = ~np.isnan(history)
    last_index = np.where(valid.any(axis=1), history.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1), 0)
    last = history[np.arange(len(history)), last_index]
    return seasonal, np.where(np.isnan(last), 0.0, last)


def change_quantiles(sample: np.ndarray, horizon: int, only: bool = False) -> np.ndarray:
    """(H, 2) p10 and p90 of the in-sample h-step changes, h = 1..horizon (``only``: h = horizon);
    0 where the sample is too short. The simple methods' bands, here and in backtests."""
    steps = [horizon] if only else range(1, horizon + 1)
    out = np.zeros((len(steps), 2), dtype=np.float64)
    for i, h in enumerate(steps):
        if len(sample) <= h:
            continue
        changes = sample[h:] - sample[:-h]
        changes = changes[~np.isnan(changes)]
        if len(changes):
            out[i] = np.quantile(changes, [0.1, 0.9])
    return out


def bands(sample: np.ndarray, horizon: int, season: int) -> tuple[list[float], list[list[float]]]:
    """p10 and p90 of one series' in-sample errors: seasonal naive's ([lo, hi]) and naive's at each
    step ahead ([[lo, hi]] x horizon)."""
    return change_quantiles(sample, season, only=True)[0].tolist(), change_quantiles(sample, horizon).tolist()


def series_paths(values: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole series (S, T) -> (seasonal naive's value for every step (S, T), the last real value
    before every step (S, T)): a forecast from origin o reads [o, o + H) of the first and o of the
    second, the same numbers ``simple_paths`` gives from the history up to o for any origin with a
    real value before it (lags are at least the horizon, so no step reads its own future)."""
    seasonal = layout.seasonal_paths(values.astype(np.float32), (season,))[:, :, 0]
    valid = ~np.isnan(values)
    index = np.where(valid, np.arange(values.shape[1])[None, :], -1)
    np.maximum.accumulate(index, axis=1, out=index)
    before = np.concatenate([np.full((len(values), 1), -1), index[:, :-1]], axis=1)  # last real strictly before
    last = np.take_along_axis(values, np.maximum(before, 0), axis=1)
    return seasonal, np.where((before >= 0) & ~np.isnan(last), last, 0.0)


def simple_quantiles(kind: str, seasonal: np.ndarray, last: float, seasonal_band, naive_band) -> np.ndarray:
    """(H, 3) p10/p50/p90 of seasonal naive or naive for one series."""
    if kind == SEASONAL:
        lo, hi = seasonal_band
        return np.stack([seasonal + lo, seasonal, seasonal + hi], axis=1)
    band = np.asarray(naive_band, dtype=np.float64)[: len(seasonal)]
    return np.stack([last + band[:, 0], np.full(len(seasonal), last), last + band[:, 1]], axis=1)


def served(choice: Choice, tft: np.ndarray, seasonal: np.ndarray, last: float, seasonal_band,
           naive_band) -> np.ndarray:
    """(H, 3) served quantiles of one series from the TFT's (H, 3)."""
    if choice.tft_weight >= 1.0:
        return tft
    other = simple_quantiles(choice.other, seasonal, last, seasonal_band, naive_band)
    return np.sort(choice.tft_weight * tft + (1 - choice.tft_weight) * other, axis=1)


# --- the table in the model directory ------------------------------------------------------------------

COVERAGE = 0.8  # the share of actuals a p10-p90 band should hold
BAND_SCALES = np.round(np.arange(0.5, 3.01, 0.05), 2)  # what the TFT's band may be stretched by


def widen(q: np.ndarray, factor: float) -> np.ndarray:
    """Quantiles (..., 3) with p10 and p90 moved ``factor`` times as far from p50."""
    if factor == 1.0:
        return q
    out = q.copy()
    out[..., 0] = q[..., 1] - factor * (q[..., 1] - q[..., 0])
    out[..., 2] = q[..., 1] + factor * (q[..., 2] - q[..., 1])
    return out


def band_scale(q: np.ndarray, actual: np.ndarray) -> float:
    """The stretch of the TFT's p10-p90 band that makes it hold ``COVERAGE`` of the validation
    actuals (q: (N, 3), actual: (N,)): a network trained for a few minutes is often too sure."""
    below, above = q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]
    coverage = [np.mean((actual >= q[:, 1] - f * below) & (actual <= q[:, 1] + f * above)) for f in BAND_SCALES]
    return float(BAND_SCALES[int(np.argmin(np.abs(np.array(coverage) - COVERAGE)))])


@dataclass
class Serving:
    season: int
    series: dict[str, dict]  # series key -> {"by": candidate name, "scores": {...}, "seasonal_band", "naive_band"}
    band_scales: dict[str, float] | None = None  # target -> stretch of the TFT's band (``band_scale``)
    # target -> what serves a series of it the table does not hold (never seen in training):
    # ``pooled_winner`` over all the target's series; absent (older models): the TFT
    defaults: dict[str, str] | None = None

    def tft_band(self, target: str) -> float:
        return float((self.band_scales or {}).get(target, 1.0))

    def choice(self, key: str, target: str | None = None) -> Choice:
        """What serves series ``key``; for a key the table does not hold, its target's default."""
        entry = self.series.get(key)
        if entry is None:
            return candidates().get((self.defaults or {}).get(target, TFT), Choice(1.0))
        return candidates().get(entry["by"], Choice(1.0))

    def choice_at(self, key: str, target: str, history: np.ndarray) -> Choice:
        """``choice`` at a forecast origin, ``history`` the series' values up to it: a series the table
        does not hold takes its target's default only with more than a day of real values (before
        that there is no "same time yesterday"), the TFT until then."""
        if key not in self.series and int(np.sum(~np.isnan(history))) <= self.season:
            return Choice(1.0)
        return self.choice(key, target)

    def bands_of(self, key: str, history: np.ndarray, horizon: int) -> tuple[list[float], list[list[float]]]:
        """(seasonal band, naive bands) of series ``key``: the table's, from its training part, or for
        a series it does not hold, from ``history`` (its values up to the origin)."""
        entry = self.series.get(key)
        if entry is not None:
            return entry["seasonal_band"], entry["naive_band"]
        return bands(history, horizon, self.season)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.series.values():
            out[entry["by"]] = out.get(entry["by"], 0) + 1
        return dict(sorted(out.items(), key=lambda item: -item[1]))

    def validation_mase(self, model: str = TFT) -> float:
        """The geometric mean over series of ``model``'s validation MASE (series whose in-sample
        seasonal error is zero are left out, ratios clipped to ``RATIO_CLIP``, as in backtests)."""
        ratios = [entry["scores"][model] / entry["scale"] for entry in self.series.values()
                  if model in entry["scores"] and (entry.get("scale") or 0) > 0]
        if not ratios:
            return float("nan")
        return geometric_mean(ratios)

    def validation_median(self, model: str = TFT) -> float:
        """The median over series of ``model``'s validation MASE: what the typical series says, which
        one near-constant series cannot move (its tiny in-sample scale makes its MASE tiny or huge,
        and the geometric mean follows it: a recipe once won at 0.139 with one such series and scored
        1.148 without it)."""
        ratios = [entry["scores"][model] / entry["scale"] for entry in self.series.values()
                  if model in entry["scores"] and (entry.get("scale") or 0) > 0]
        return float(np.median(ratios)) if ratios else float("nan")

    def to_json(self) -> dict:
        return {"season": self.season, "margin": MARGIN, "band_scales": self.band_scales or {},
                "defaults": self.defaults or {}, "series": self.series}


def load(model_dir: str | Path) -> Serving | None:
    """The model's serving table, or None when it has none (a model trained before it existed:
    the TFT serves all); ModelDirectoryError naming the file when it is there but unreadable."""
    from argus_core.errors import ModelDirectoryError

    path = Path(model_dir) / FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
        table = Serving(int(payload["season"]), dict(payload["series"]),
                        {str(k): float(v) for k, v in dict(payload.get("band_scales") or {}).items()},
                        {str(k): str(v) for k, v in dict(payload.get("defaults") or {}).items()})
        known = candidates()
        if any(name not in known for name in table.defaults.values()):
            raise ValueError(f"unknown default in {table.defaults}")
        for key, entry in table.series.items():
            if (entry["by"] not in known or len(entry["seasonal_band"]) != 2
                    or not isinstance(entry["naive_band"], list)):
                raise ValueError(f"series {key!r} has an unreadable entry")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ModelDirectoryError(f"{path} is damaged ({type(exc).__name__}: {exc}); retrain the model, or delete "
                                  "the file to have the TFT serve every series") from exc
    return table


def save(model_dir: str | Path, table: Serving) -> None:
    atomic.write_json(Path(model_dir) / FILE, table.to_json(), compact=True)


# --- applying it to a fleet forecast -------------------------------------------------------------------

def apply(table: Serving, values: np.ndarray, keys: list[str], history: np.ndarray,
          target: str) -> tuple[np.ndarray, dict]:
    """The served forecast: ``values`` (S, H, 3) the TFT's quantiles of series ``keys`` of ``target``
    in raw units, ``history`` (S, T) each series' raw history up to the origin. Returns (values,
    key -> name). The TFT's band is stretched by its validation factor first."""
    horizon = values.shape[1]
    seasonal, last = simple_paths(history, horizon, table.season)
    values = widen(values, table.tft_band(target))
    out = values.copy()
    by = {}
    for i, key in enumerate(keys):
        choice = table.choice_at(key, target, history[i])
        by[key] = choice.name
        if choice.tft_weight >= 1.0:
            continue
        seasonal_band, naive_band = table.bands_of(key, history[i], horizon)
        out[i] = served(choice, values[i], seasonal[i], float(last[i]), seasonal_band, naive_band)
    return out, by


def winner(scores: dict[str, float], per_origin: dict[str, list[float]]) -> str:
    """The candidate that serves: the lowest validation error, when it clears ``MARGIN``,
    ``MIN_ORIGINS`` and ``MIN_WIN_SHARE`` against the TFT; the TFT otherwise."""
    best = min(scores, key=scores.get)
    if best == TFT or len(per_origin[TFT]) < MIN_ORIGINS or scores[best] > (1 - MARGIN) * scores[TFT]:
        return TFT
    wins = np.mean(np.array(per_origin[best]) < np.array(per_origin[TFT]))
    return best if wins >= MIN_WIN_SHARE else TFT


def pooled_winner(scores: list[dict[str, float]], per_origin: list[dict[str, list[float]]]) -> str:
    """One candidate for series too short to decide alone (each under ``MIN_ORIGINS`` validation
    origins), from their evidence pooled: a candidate serves them all when the geometric mean over
    those series of its error relative to the TFT's is at least ``MARGIN`` lower, over at least
    ``MIN_ORIGINS`` origins together, and it beats the TFT at ``MIN_WIN_SHARE`` of them. Ratios, not
    errors, so series in different units weigh alike. Without it a dataset of a few days' history
    could never fall back, however plainly "same time yesterday" won on its validation window."""
    if sum(len(p[TFT]) for p in per_origin) < MIN_ORIGINS:
        return TFT
    best, best_ratio = TFT, 1.0 - MARGIN
    for name in candidates():
        if name == TFT or not all(name in s for s in scores):
            continue
        # a series the TFT got exactly right counts as a loss for the other (unless it is exact too)
        ratio = geometric_mean([s[name] / s[TFT] if s[TFT] > 0 else (1.0 if s[name] == 0 else RATIO_CLIP[1])
                                for s in scores])
        wins = np.mean(np.concatenate([np.array(p[name]) < np.array(p[TFT]) for p in per_origin]))
        if ratio <= best_ratio and wins >= MIN_WIN_SHARE:
            best, best_ratio = name, ratio
    return best
