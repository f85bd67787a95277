"""Quantile forecasts -> breach probability, time to breach, risk score and level.

Per server and metric, from the p10/p50/p90 path over the horizon:

- ``p_warning`` / ``p_critical``: the probability of crossing the threshold at some step of the
  horizon, taken as the largest per-step exceedance probability. Per step, the forecast CDF is
  piecewise linear through (q10, 0.1), (q50, 0.5), (q90, 0.9) and continues with the outer
  slopes into the tails (clipped to 0..1);
- ``breach_p50`` / ``breach_p90``: the first time the p50 (likely) and p90 (pessimistic)
  paths reach the critical threshold, NaT when they do not;
- ``score`` (0..100): 100 x (0.7 p_critical + 0.3 p_warning), discounted by up to a quarter for
  breaches late in the horizon: soon and likely ranks first.

A server's score is that of its worst metric (the ``driver``). Levels use hysteresis: a server
enters a level at its threshold and leaves only when its score falls ``HYSTERESIS`` below it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.data import schema

LEVELS = ("healthy", "watch", "warning", "critical")
ENTER = {"watch": 20.0, "warning": 45.0, "critical": 70.0}  # score needed to enter the level
HYSTERESIS = 10.0  # points below the entry score before a server may leave a level


def exceedance_probability(q10: np.ndarray, q50: np.ndarray, q90: np.ndarray, threshold: float) -> np.ndarray:
    """P(value > threshold) per element, from three quantiles (piecewise-linear CDF)."""
    eps = 1e-6
    lower_slope = 0.4 / np.maximum(q50 - q10, eps)  # probability per unit between q10 and q50
    upper_slope = 0.4 / np.maximum(q90 - q50, eps)
    cdf = np.where(
        threshold <= q50,
        0.5 - (q50 - threshold) * lower_slope,
        0.5 + (threshold - q50) * upper_slope,
    )
    return 1.0 - np.clip(cdf, 0.0, 1.0)


def metric_risk(quantiles: pd.DataFrame, thresholds: dict[str, schema.Threshold] | None = None) -> pd.DataFrame:
    """One row per (server, metric) with probabilities, breach times and a score.

    Vectorised: the paths of equal length are scored as one (paths, horizon) array."""
    thresholds = thresholds or schema.THRESHOLDS
    q = quantiles[quantiles["metric"].isin(list(thresholds))]
    q = q.sort_values([schema.SERVER, "metric", schema.TIMESTAMP], kind="stable")
    keys = [schema.SERVER, "metric"]
    lengths = q.groupby(keys, sort=False, observed=True)[schema.TIMESTAMP].transform("size").to_numpy()
    blocks = [_score_paths(q[lengths == length], int(length), thresholds) for length in np.unique(lengths)]
    frame = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=[*keys, *_RISK_COLUMNS])
    frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    for col in ("breach_p50", "breach_p90", "warning_p50"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


_RISK_COLUMNS = ("p_warning", "p_critical", "breach_p50", "breach_p90", "warning_p50", "peak_p50", "peak_p90",
                 "score")


def _score_paths(q: pd.DataFrame, horizon: int, thresholds: dict[str, schema.Threshold]) -> pd.DataFrame:
    """Score paths of ``horizon`` steps each; ``q`` is sorted by server, metric and time."""
    paths = len(q) // horizon
    q10, q50, q90 = (q[c].to_numpy(np.float64).reshape(paths, horizon) for c in schema.QUANTILE_COLUMNS)
    stamps = q[schema.TIMESTAMP].dt.tz_convert(None).to_numpy().reshape(paths, horizon)  # no per-element objects
    servers = q[schema.SERVER].to_numpy()[::horizon]
    metrics = q["metric"].to_numpy()[::horizon]
    warning = np.array([thresholds[m].warning for m in metrics])[:, None]  # (paths, 1)
    critical = np.array([thresholds[m].critical for m in metrics])[:, None]
    p_warn = exceedance_probability(q10, q50, q90, warning)  # (paths, horizon)
    p_crit = exceedance_probability(q10, q50, q90, critical)
    likely_crit, likely_warn = p_crit >= 0.5, p_warn >= 0.5
    first = np.where(likely_crit.any(axis=1), likely_crit.argmax(axis=1),
                     np.where(likely_warn.any(axis=1), likely_warn.argmax(axis=1), horizon - 1))
    urgency = 1.0 - 0.25 * first / max(horizon - 1, 1)  # soon and likely ranks first
    return pd.DataFrame({
        schema.SERVER: servers,
        "metric": metrics,
        "p_warning": p_warn.max(axis=1),
        "p_critical": p_crit.max(axis=1),
        "breach_p50": _first_times(stamps, q50 >= critical),
        "breach_p90": _first_times(stamps, q90 >= critical),
        "warning_p50": _first_times(stamps, q50 >= warning),
        "peak_p50": q50.max(axis=1),
        "peak_p90": q90.max(axis=1),
        "score": 100.0 * (0.7 * p_crit.max(axis=1) + 0.3 * p_warn.max(axis=1)) * urgency,
    })


def _first_times(stamps: np.ndarray, hits: np.ndarray) -> pd.Series:
    """Per row, the stamp of the first hit; NaT for rows without one."""
    first = stamps[np.arange(len(stamps)), hits.argmax(axis=1)] if len(stamps) else stamps[:, 0]
    return pd.Series(pd.to_datetime(first, utc=True)).where(hits.any(axis=1))


def fleet_risk(quantiles: pd.DataFrame, previous_levels: dict[str, str] | None = None,
               thresholds: dict[str, schema.Threshold] | None = None) -> pd.DataFrame:
    """One row per server, riskiest first: score, level, driving metric and its breach figures."""
    return rank_servers(metric_risk(quantiles, thresholds), previous_levels)


def rank_servers(per_metric: pd.DataFrame, previous_levels: dict[str, str] | None = None) -> pd.DataFrame:
    """``metric_risk`` rows -> one row per server (its worst metric is the ``driver``), with a
    level that honours ``previous_levels`` (hysteresis), riskiest first."""
    if per_metric.empty:
        return per_metric
    worst = per_metric.sort_values("score", ascending=False, kind="stable").groupby(schema.SERVER).head(1)
    worst = worst.rename(columns={"metric": "driver"}).reset_index(drop=True)
    previous_levels = previous_levels or {}
    worst["level"] = [level_with_hysteresis(score, previous_levels.get(server))
                      for server, score in zip(worst[schema.SERVER], worst["score"], strict=True)]
    worst = worst.sort_values(["score", schema.SERVER], ascending=[False, True], kind="stable")
    return worst.reset_index(drop=True)


def level_for(score: float) -> str:
    """The level a score reaches on its own, without history."""
    level = "healthy"
    for name in LEVELS[1:]:
        if score >= ENTER[name]:
            level = name
    return level


def level_with_hysteresis(score: float, previous: str | None) -> str:
    """Move up as soon as a level's entry score is reached; move down only when the score is
    ``HYSTERESIS`` below the current level's entry score."""
    fresh = level_for(score)
    if previous not in LEVELS or LEVELS.index(fresh) >= LEVELS.index(previous):
        return fresh
    level = previous
    while level != "healthy" and score < ENTER[level] - HYSTERESIS:
        level = LEVELS[LEVELS.index(level) - 1]
    return max(level, fresh, key=LEVELS.index)
