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

The present counts too (``current``: each series' last observed value): a metric at or over a
threshold now is ``breaching_now`` (warning or critical), its probability of that breach is 1,
its breach time is now, and its server is at least at that level whatever the forecast says.
A metric over warning and climbing (``climb``: the last hour's line) gets a time to critical:
where the line reaches critical within the horizon before the forecast's path does, that is the
path's breach time (``critical_by`` = "climb").
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


RECENT_STEPS = 3  # a value older than this many steps before the end of the data is not "now"


def current_values(history: pd.DataFrame, metrics, step: str | pd.Timedelta = schema.DEFAULT_STEP) -> pd.DataFrame:
    """The last observed value of each (server, metric) in a long history frame, when it is at
    most ``RECENT_STEPS`` steps older than the frame's end: ``server_name, metric, timestamp,
    value`` (NaN values skipped; CPU busy derived from idle)."""
    if history.empty:
        return pd.DataFrame(columns=[schema.SERVER, "metric", schema.TIMESTAMP, "value"])
    history = history[history[schema.TIMESTAMP] >= history[schema.TIMESTAMP].max() - RECENT_STEPS * pd.Timedelta(step)]
    pieces = []
    for metric in metrics:
        values = schema.metric_values(history, metric)
        frame = pd.DataFrame({schema.SERVER: history[schema.SERVER].astype(str).to_numpy(),
                              schema.TIMESTAMP: history[schema.TIMESTAMP].to_numpy(), "value": values})
        frame = frame[np.isfinite(values)]
        last = frame.sort_values(schema.TIMESTAMP, kind="stable").groupby(schema.SERVER, sort=False).tail(1)
        pieces.append(last.assign(metric=metric))
    if not pieces:
        return pd.DataFrame(columns=[schema.SERVER, "metric", schema.TIMESTAMP, "value"])
    return pd.concat(pieces, ignore_index=True)[[schema.SERVER, "metric", schema.TIMESTAMP, "value"]]


CLIMB_WINDOW = pd.Timedelta("1h")  # the recent climb is a least-squares line over this much history


def recent_climb(history: pd.DataFrame, metrics, step: str | pd.Timedelta = schema.DEFAULT_STEP,
                 window: pd.Timedelta = CLIMB_WINDOW) -> pd.DataFrame:
    """Each (server, metric)'s least-squares line over the last ``window`` of ``history`` (at least
    half of its steps real): ``server_name, metric, climb_per_h`` (the slope, units per hour) and
    ``line_now`` (the line's value at the last step). What a forecast that never saw such a climb
    cannot extrapolate, and what Prometheus users write ``predict_linear`` for."""
    columns = [schema.SERVER, "metric", "climb_per_h", "line_now"]
    if history.empty:
        return pd.DataFrame(columns=columns)
    step = pd.Timedelta(step)
    end = history[schema.TIMESTAMP].max()
    recent = history[history[schema.TIMESTAMP] > end - window]
    hours = ((recent[schema.TIMESTAMP] - end) / pd.Timedelta("1h")).to_numpy(np.float64)  # <= 0
    codes, names = pd.factorize(recent[schema.SERVER].astype(str).to_numpy())
    needed = max(2, int(window / step) // 2)
    pieces = []
    for metric in metrics:
        y = schema.metric_values(recent, metric).astype(np.float64)
        real = np.isfinite(y)
        if not real.any():
            continue
        c, x, v = codes[real], hours[real], y[real]
        count = np.bincount(c, minlength=len(names)).astype(np.float64)
        sx, sy = np.bincount(c, x, len(names)), np.bincount(c, v, len(names))
        sxy, sxx = np.bincount(c, x * v, len(names)), np.bincount(c, x * x, len(names))
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = sxx - sx * sx / count
            slope = np.where(spread > 1e-12, (sxy - sx * sy / count) / spread, np.nan)
            level = sy / count - slope * sx / count  # the line at x = 0 (the last step)
        keep = count >= needed
        pieces.append(pd.DataFrame({schema.SERVER: np.asarray(names, dtype=object)[keep].astype(str), "metric": metric,
                                    "climb_per_h": slope[keep], "line_now": level[keep]}))
    return pd.concat(pieces, ignore_index=True)[columns] if pieces else pd.DataFrame(columns=columns)


Overrides = dict[tuple[str, str], schema.Threshold]  # (server, metric) -> its own thresholds


def metric_risk(quantiles: pd.DataFrame, thresholds: dict[str, schema.Threshold] | None = None,
                current: pd.DataFrame | None = None, overrides: Overrides | None = None,
                climb: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (server, metric) with probabilities, breach times, a score and the thresholds
    used (``warning``, ``critical``); with ``current`` (``current_values``), what is breaching now
    overrides the forecast. ``overrides`` replace a metric's thresholds on some servers (a load
    average of 30 is idle on a 96-core host). With ``climb`` (``recent_climb``): ``climb_per_h``
    and ``hours_to_critical``, when the recent line reaches critical (0 at or over it now, inf
    when it is not rising).

    Vectorised: the paths of equal length are scored as one (paths, horizon) array."""
    thresholds = thresholds or schema.THRESHOLDS
    q = quantiles[quantiles["metric"].isin(list(thresholds))]
    q = q.sort_values([schema.SERVER, "metric", schema.TIMESTAMP], kind="stable")
    keys = [schema.SERVER, "metric"]
    lengths = q.groupby(keys, sort=False, observed=True)[schema.TIMESTAMP].transform("size").to_numpy()
    blocks = [_score_paths(q[lengths == length], int(length), thresholds, overrides or {})
              for length in np.unique(lengths)]
    frame = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=[*keys, *_RISK_COLUMNS])
    frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    for col in ("breach_p50", "breach_p90", "warning_p50", "horizon_end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return _climbing_to_critical(with_climb(_with_present(frame, current), climb))


def _climbing_to_critical(frame: pd.DataFrame) -> pd.DataFrame:
    """A metric over warning now and climbing gets a time to critical even when the forecast does
    not cross it: where the last hour's line reaches critical within the horizon, earlier than the
    p50 (p90) path does, that is the breach time of the path, and ``critical_by`` says "climb"
    ("forecast" where the path's own crossing stands). Every reader (the ranking, /metrics, the
    alerts, the pages) then shows the one figure."""
    frame["critical_by"] = pd.Series(np.where(frame["breach_p50"].notna(), "forecast", None), dtype=object,
                                     index=frame.index)
    if frame.empty or "value_time" not in frame:
        return frame
    hours = frame["hours_to_critical"].to_numpy(np.float64)
    now = pd.to_datetime(frame["value_time"], utc=True)
    horizon_hours = ((frame["horizon_end"] - now) / pd.Timedelta("1h")).to_numpy(np.float64)
    # within the horizon only: a slow climb's line reaches critical in years, past any timestamp
    within = ((frame["breaching_now"] == "warning").to_numpy() & (frame["climb_per_h"].to_numpy(np.float64) > 0)
              & np.isfinite(hours) & (hours <= horizon_hours))
    if not within.any():
        return frame
    at = (now + pd.to_timedelta(np.where(within, hours, 0.0), unit="h")).dt.round("s")
    for col in ("breach_p50", "breach_p90"):
        sooner = within & (frame[col].isna() | (at < frame[col])).to_numpy()
        frame.loc[sooner, col] = at[sooner].astype(frame[col].dtype)
        if col == "breach_p50":
            frame.loc[sooner, "critical_by"] = "climb"
    return frame


def with_climb(frame: pd.DataFrame, climb: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` (metric_risk rows) with ``climb_per_h`` and ``hours_to_critical`` from ``recent_climb``."""
    frame["climb_per_h"] = np.nan
    frame["hours_to_critical"] = np.inf
    if climb is None or climb.empty or frame.empty:
        return frame
    keys = [schema.SERVER, "metric"]
    line = frame[keys].merge(climb.astype({schema.SERVER: str}), on=keys, how="left")
    slope, now = line["climb_per_h"].to_numpy(np.float64), line["line_now"].to_numpy(np.float64)
    gap = frame["critical"].to_numpy(np.float64) - now
    with np.errstate(divide="ignore", invalid="ignore"):
        hours = np.where(gap <= 0, 0.0, np.where(slope > 0, gap / slope, np.inf))
    frame["climb_per_h"] = slope
    frame["hours_to_critical"] = np.where(np.isfinite(now), hours, np.inf)
    return frame


def threshold_arrays(servers, metrics, thresholds: dict[str, schema.Threshold],
                     overrides: Overrides) -> tuple[np.ndarray, np.ndarray]:
    """(warning, critical) per (server, metric) pair: the metric's, or the server's override."""
    pairs = [overrides.get((str(s), m)) or thresholds[m] for s, m in zip(servers, metrics, strict=True)] \
        if overrides else [thresholds[m] for m in metrics]
    return (np.array([t.warning for t in pairs], dtype=np.float64),
            np.array([t.critical for t in pairs], dtype=np.float64))


def _with_present(frame: pd.DataFrame, current: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``value_now`` (the last observed value) and ``breaching_now``; a breach now is certain and due now."""
    frame["value_now"] = np.nan
    frame["breaching_now"] = pd.Series([None] * len(frame), dtype=object)
    if current is None or current.empty or frame.empty:
        return frame
    keys = [schema.SERVER, "metric"]
    present = frame[keys].merge(current.astype({schema.SERVER: str}), on=keys, how="left")
    value = present["value"].to_numpy(np.float64)
    stamp = pd.to_datetime(present[schema.TIMESTAMP], utc=True)
    warning, critical = frame["warning"].to_numpy(np.float64), frame["critical"].to_numpy(np.float64)
    at_critical = value >= critical  # NaN compares False: a metric with no recent value is not breaching
    at_warning = (value >= warning) & ~at_critical
    frame["value_now"] = value
    frame["value_time"] = stamp.to_numpy()
    frame.loc[at_critical, "breaching_now"] = "critical"
    frame.loc[at_warning, "breaching_now"] = "warning"
    breaching = at_critical | at_warning
    frame.loc[breaching, "p_warning"] = 1.0
    frame.loc[at_critical, "p_critical"] = 1.0
    for col in ("breach_p50", "breach_p90"):
        frame.loc[at_critical, col] = stamp[at_critical].to_numpy()
    frame.loc[breaching, "warning_p50"] = stamp[breaching].to_numpy()
    frame.loc[at_critical, "score"] = 100.0
    frame.loc[at_warning, "score"] = np.maximum(frame.loc[at_warning, "score"], ENTER["warning"])
    return frame


_RISK_COLUMNS = ("p_warning", "p_critical", "breach_p50", "breach_p90", "warning_p50", "peak_p50", "peak_p90",
                 "score", "warning", "critical", "horizon_end")


def _score_paths(q: pd.DataFrame, horizon: int, thresholds: dict[str, schema.Threshold],
                 overrides: Overrides) -> pd.DataFrame:
    """Score paths of ``horizon`` steps each; ``q`` is sorted by server, metric and time."""
    paths = len(q) // horizon
    q10, q50, q90 = (q[c].to_numpy(np.float64).reshape(paths, horizon) for c in schema.QUANTILE_COLUMNS)
    stamps = q[schema.TIMESTAMP].dt.tz_convert(None).to_numpy().reshape(paths, horizon)  # no per-element objects
    servers = q[schema.SERVER].to_numpy()[::horizon]
    metrics = q["metric"].to_numpy()[::horizon]
    warn_at, crit_at = threshold_arrays(servers, metrics, thresholds, overrides)
    warning, critical = warn_at[:, None], crit_at[:, None]  # (paths, 1)
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
        "warning": warn_at,
        "critical": crit_at,
        "horizon_end": pd.to_datetime(stamps[:, -1], utc=True) if len(stamps) else pd.to_datetime([], utc=True),
    })


def _first_times(stamps: np.ndarray, hits: np.ndarray) -> pd.Series:
    """Per row, the stamp of the first hit; NaT for rows without one."""
    first = stamps[np.arange(len(stamps)), hits.argmax(axis=1)] if len(stamps) else stamps[:, 0]
    return pd.Series(pd.to_datetime(first, utc=True)).where(hits.any(axis=1))


def fleet_risk(quantiles: pd.DataFrame, previous_levels: dict[str, str] | None = None,
               thresholds: dict[str, schema.Threshold] | None = None,
               current: pd.DataFrame | None = None, overrides: Overrides | None = None) -> pd.DataFrame:
    """One row per server, riskiest first: score, level, driving metric and its breach figures."""
    return rank_servers(metric_risk(quantiles, thresholds, current, overrides), previous_levels)


def rank_servers(per_metric: pd.DataFrame, previous_levels: dict[str, str] | None = None) -> pd.DataFrame:
    """``metric_risk`` rows -> one row per server (its worst metric is the ``driver``), with a
    level that honours ``previous_levels`` (hysteresis), riskiest first."""
    if per_metric.empty:
        return per_metric
    worst = per_metric.sort_values("score", ascending=False, kind="stable").groupby(schema.SERVER).head(1)
    worst = worst.rename(columns={"metric": "driver"}).reset_index(drop=True)
    previous_levels = previous_levels or {}
    floor = per_metric.groupby(schema.SERVER)["breaching_now"].agg(_worst_now) if "breaching_now" in per_metric \
        else pd.Series(dtype=object)
    now = [v if v in LEVELS else None for v in worst[schema.SERVER].map(floor)]
    worst["breaching_now"] = pd.Series(now, dtype=object)
    worst["level"] = [max(level_with_hysteresis(score, previous_levels.get(server)), breach or "healthy",
                          key=LEVELS.index)
                      for server, score, breach in zip(worst[schema.SERVER], worst["score"], now, strict=True)]
    worst = worst.sort_values(["score", schema.SERVER], ascending=[False, True], kind="stable")
    return worst.reset_index(drop=True)


def _worst_now(values: pd.Series) -> str | None:
    """The worst level any metric of a server breaches now (None: none)."""
    found = [v for v in values if v in LEVELS]
    return max(found, key=LEVELS.index) if found else None


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
