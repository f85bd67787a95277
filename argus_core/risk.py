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

from argus_core import schema

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
    """One row per (server, metric) with probabilities, breach times and a score."""
    thresholds = thresholds or schema.THRESHOLDS
    rows = []
    q = quantiles[quantiles["metric"].isin(list(thresholds))]
    q = q.sort_values([schema.SERVER, "metric", schema.TIMESTAMP], kind="stable")
    for (server, metric), group in q.groupby([schema.SERVER, "metric"], sort=False, observed=True):
        limit = thresholds[metric]
        q10, q50, q90 = (group[c].to_numpy(np.float64) for c in schema.QUANTILE_COLUMNS)
        stamps = group[schema.TIMESTAMP].to_numpy()
        p_warn = exceedance_probability(q10, q50, q90, limit.warning)
        p_crit = exceedance_probability(q10, q50, q90, limit.critical)
        horizon = len(stamps)
        first = int(np.argmax(p_crit >= 0.5)) if (p_crit >= 0.5).any() else \
            int(np.argmax(p_warn >= 0.5)) if (p_warn >= 0.5).any() else horizon - 1
        urgency = 1.0 - 0.25 * first / max(horizon - 1, 1)
        score = 100.0 * (0.7 * p_crit.max() + 0.3 * p_warn.max()) * urgency
        rows.append({
            schema.SERVER: server,
            "metric": metric,
            "p_warning": float(p_warn.max()),
            "p_critical": float(p_crit.max()),
            "breach_p50": _first_time(stamps, q50 >= limit.critical),
            "breach_p90": _first_time(stamps, q90 >= limit.critical),
            "warning_p50": _first_time(stamps, q50 >= limit.warning),
            "peak_p50": float(q50.max()),
            "peak_p90": float(q90.max()),
            "score": float(score),
        })
    frame = pd.DataFrame(rows)
    for col in ("breach_p50", "breach_p90", "warning_p50"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


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


def _first_time(stamps: np.ndarray, hits: np.ndarray):
    return stamps[int(np.argmax(hits))] if hits.any() else pd.NaT
