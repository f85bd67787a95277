"""A forecast that starts where the series is, and follows a climb the network does not.

The TFT forecasts each window as deviations from a recent centre, in units of the window's
spread. Inside an incident's climb (a CLOSE_WAIT pile-up, a memory leak) the series sits several
spreads above anything calm training windows taught it, and the network's path falls back to the
usual level at "now": the demo's database at 432 connections was forecast at 139 for the next
step. The climb rule notices such moments from the history alone and serves, for those series
only, the climb itself:

- the recent line: least squares over the last ``window_steps`` real values (an hour at 5 min);
- it serves when the line has climbed above everything the series did in the day before it (a
  daily rhythm reaches yesterday's level again, an incident does not; with less than a day of
  history it never serves),
  rises significantly (its slope's t statistic >= ``t_min``), is better told as a line than as a
  jump between two levels (a level that moved and stays is not a climb to extend), and the
  TFT's first step sits more than ``min_gap`` times the line's own noise (the residuals' standard
  deviation) away from the line's value now, below it or above it: the network disagrees with the
  present (it falls back to the usual level, or leaps past the present with a band too wide to
  rank by: the Incident demo's leak at 87% was forecast at 96 for the next step, its P(critical)
  falling from 1.00 to 0.57 while the memory climbed). (Against the
  TFT's band this cannot be told: inside a climb the network hedges, p90 near the present and
  p50 at the usual level, the demo's database 105 / 360 at 351 connections);
- then p50 is a damped trend from the line's value now, ``line_now + slope * sum(damping^i)``,
  which levels off instead of climbing for ever; its band is that of a damped trend with the
  line's own noise: p10/p90 = p50 -/+ 1.28 sqrt(noise^2 h + (slope's standard error x the
  trend's growth)^2), h steps ahead, its p90 raised to the network's own where that reaches
  further (inside a climb the network hedges: its p90 may see the breach sooner than a damped
  trend does, and the Incident demo's leak is warned of earlier by it).

Everywhere else the forecast is untouched, so calm-period accuracy stays what it was. The
settings were chosen on simulated validation fleets (``bench/bench_climb.py``), never on a
hold-out or the demo. Numpy only: the forecaster and the backtest both apply it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

Z90 = 1.2816  # the 0.9 quantile of a standard normal: p10 and p90 are this many deviations out


@dataclass(frozen=True)
class ClimbRule:
    window_steps: int = 12  # the recent line's history (an hour at 5 minutes); at least half of it real
    t_min: float = 4.0  # the slope's t statistic needed: a climb, not noise around a level
    damping: float = 0.97  # per step: the trend's growth fades (a leak does not climb for ever)
    min_gap: float = 8.0  # the TFT's first p50 below the line's value now by this many of the line's noise
    band_scale: float = 1.0  # the band's half width in units of the damped trend's own p10-p90 spread
    day_steps: int = 288  # a day at the step: a climb must exceed the day before it (a rhythm does not)
    both_sides: bool = True  # the network's first step far above the line disagrees with the present too

    def to_json(self) -> dict:
        return {"window_steps": self.window_steps, "t_min": self.t_min, "damping": self.damping,
                "min_gap": self.min_gap, "band_scale": self.band_scale, "day_steps": self.day_steps,
                "both_sides": self.both_sides}


DEFAULT = ClimbRule()
NAME = "climb"  # what serves a series the rule holds for (FleetForecast.served_by)
LABEL = "the recent climb (damped trend)"


def for_step(step: str) -> ClimbRule:
    """The rule at a model's step: the recent line over an hour, at least six steps."""
    import pandas as pd

    return replace(DEFAULT, window_steps=max(6, round(pd.Timedelta("1h") / pd.Timedelta(step))),
                   day_steps=max(12, round(pd.Timedelta("1D") / pd.Timedelta(step))))


def _line(recent: np.ndarray):
    """Least squares through the real values of each row of ``recent`` (S, W): (real mask, real
    count, mean step, mean value, step offsets, value offsets, slope per step)."""
    x = np.arange(recent.shape[1], dtype=np.float64)[None, :]
    real = np.isfinite(recent)
    n = real.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_x = np.where(real, x, 0.0).sum(axis=1) / n
        mean_y = np.where(real, recent, 0.0).sum(axis=1) / n
        dx = np.where(real, x - mean_x[:, None], 0.0)
        dy = np.where(real, recent - mean_y[:, None], 0.0)
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    return real, n, mean_x, mean_y, dx, dy, slope


def recent_lines(history: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per series (rows of ``history``, (S, T), NaN for missing steps): the least-squares line over
    the last ``window`` steps as (slope per step, the line's value at the last step, the slope's
    t statistic, the residuals' standard deviation); NaN where fewer than half the steps are real."""
    recent = np.asarray(history, dtype=np.float64)[:, -window:]
    real, n, mean_x, mean_y, dx, dy, slope = _line(recent)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(real, dy - slope[:, None] * dx, 0.0)
        sigma = np.sqrt((residual * residual).sum(axis=1) / np.maximum(n - 2, 1))
        standard_error = sigma / np.sqrt((dx * dx).sum(axis=1))
        t = np.where(standard_error > 0, slope / standard_error, np.where(slope != 0, np.inf * np.sign(slope), 0.0))
        line_now = mean_y + slope * (recent.shape[1] - 1 - mean_x)
    enough = n >= max(3, window // 2)
    nan = np.full(len(recent), np.nan)
    return (np.where(enough, slope, nan), np.where(enough, line_now, nan), np.where(enough, t, nan),
            np.where(enough, sigma, nan))


def step_fits_better(history: np.ndarray, window: int) -> np.ndarray:
    """Per series: whether the last ``window`` steps are better told as a jump between two levels
    than as a line (the two-level fit's squared error, at its best breakpoint, below the line's).
    A level that moved and stays is not a climb to extend."""
    recent = np.asarray(history, dtype=np.float64)[:, -window:]
    real, _, _, _, dx, dy, slope = _line(recent)
    y = np.where(real, recent, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        line_sse = ((dy - slope[:, None] * dx) ** 2 * real).sum(axis=1)
        # two levels, split after each step k (at least two real values on each side)
        count, total, squares = np.cumsum(real, axis=1), np.cumsum(y, axis=1), np.cumsum(y * y, axis=1)
        left_n, left_s, left_q = count[:, :-1], total[:, :-1], squares[:, :-1]
        right_n = count[:, -1:] - left_n
        right_s, right_q = total[:, -1:] - left_s, squares[:, -1:] - left_q
        sse = (left_q - left_s ** 2 / left_n) + (right_q - right_s ** 2 / right_n)
        sse = np.where((left_n >= 2) & (right_n >= 2), sse, np.inf)
    return np.nanmin(sse, axis=1) < line_sse


def apply(values: np.ndarray, history: np.ndarray, rule: ClimbRule = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (S, H, 3): p10/p50/p90 paths in raw units; ``history`` (S, T): each series' raw
    history up to the forecast origin. Returns (the paths with the climb served where the rule
    holds, which series it holds for)."""
    values = np.asarray(values, dtype=np.float64)
    history = np.asarray(history, dtype=np.float64)
    if history.shape[1] < rule.day_steps:  # too little history to tell a climb from a rhythm
        return values, np.zeros(len(values), dtype=bool)
    slope, line_now, t, noise = recent_lines(history, rule.window_steps)
    earlier = history[:, -rule.day_steps:-rule.window_steps]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series with no earlier value: nothing to exceed
        ceiling = np.nanmax(earlier, axis=1)
        # a perfectly straight climb has no noise: a step's rise stands in for it
        gap_unit = np.maximum(noise, 0.5 * np.abs(slope))
        gap = line_now - values[:, 0, 1]
        gap = np.abs(gap) if rule.both_sides else gap
        climbing = ((slope > 0) & (t >= rule.t_min) & (gap > rule.min_gap * gap_unit)
                    & (line_now > ceiling))
    candidates = np.flatnonzero(climbing)  # the two-level fit only for the few that pass the rest
    climbing[candidates] = ~step_fits_better(history[candidates], rule.window_steps)
    if not climbing.any():
        return values, climbing
    horizon = values.shape[1]
    growth = np.cumsum(rule.damping ** np.arange(1, horizon + 1))  # (H,)
    out = values.copy()
    rows = np.flatnonzero(climbing)
    s = slope[rows, None]
    median = line_now[rows, None] + s * growth[None, :]
    # the slope's uncertainty grows with the trend (t = slope / se, so se = slope / t); the line's
    # noise accumulates like a random walk's
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    se = s / np.maximum(t[rows, None], 1e-9)
    half = rule.band_scale * Z90 * np.sqrt(noise[rows, None] ** 2 * steps + (se * growth[None, :]) ** 2)
    # the upper band holds the network's p90 too where it reaches further (it may see the breach
    # sooner than a damped trend does); its lower band is its fall back to the usual level, which
    # is what the climb replaces
    out[rows, :, 0] = median - half
    out[rows, :, 1] = median
    out[rows, :, 2] = np.maximum(median + half, values[rows, :, 2])
    return out, climbing
