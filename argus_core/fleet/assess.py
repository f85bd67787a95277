"""The one assessment path: recent history -> forecast -> thresholds -> risk -> levels -> abnormal.

    assessment = assess(history, forecaster, thresholds=..., judge=..., previous_levels=...)

The pages (``views.dashboard``), the live cycle (``live.service``), the Incident demo
(``views.replay``) and ``status`` all call ``assess`` and read the one ``Assessment`` it returns;
nothing assembles this path a second time, so the four cannot rank the same fleet differently.
A live snapshot is a saved ``Assessment`` (``live.snapshot``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from argus_core.anomaly import Judge
from argus_core.data import schema
from argus_core.fleet import risk
from argus_core.fleet.thresholds import Thresholds, resolve
from argus_core.model import FleetForecast


@dataclass
class Assessment:
    """What Argus concludes about a fleet at one moment, from one model."""

    model_id: str
    as_of: pd.Timestamp  # the last step the forecast starts after
    step: pd.Timedelta
    horizon: int  # steps forecast
    forecast: FleetForecast  # the paths (quantiles), what weighed most (importance), skipped and unseen servers
    thresholds: Thresholds
    profiles: dict[str, str]  # server -> profile
    per_metric: pd.DataFrame  # risk.metric_risk: one row per (server, metric), present and climb included
    ranking: pd.DataFrame  # one row per server, riskiest first (see ``rank``)
    # abnormal now (argus_core.anomaly), one row per server at as_of; None when no detector judged it
    abnormal: pd.DataFrame | None = None
    deviations: pd.DataFrame | None = None  # every scored step of the window (None from a running scorer)
    previous_levels: dict[str, str] = field(default_factory=dict)  # the hysteresis ``ranking`` honoured

    @property
    def levels(self) -> dict[str, str]:
        """server -> level: the next assessment's ``previous_levels``."""
        if self.ranking.empty:
            return {}
        return dict(zip(self.ranking[schema.SERVER].astype(str), self.ranking["level"], strict=True))

    @property
    def metrics(self) -> list[str]:
        """The forecast metrics that carry thresholds, in the model's order."""
        forecast_metrics = set(self.forecast.quantiles["metric"].unique()) if len(self.forecast.quantiles) else set()
        return [m for m in self.thresholds.by_metric if m in forecast_metrics]

    def ranked(self, previous_levels: dict[str, str] | None) -> pd.DataFrame:
        """The ranking again with another memory of levels (a browser session's own hysteresis)."""
        if (previous_levels or {}) == self.previous_levels:
            return self.ranking
        return rank(self.per_metric, self.forecast, self.profiles, self.abnormal, previous_levels, self.as_of)


def assess(history: pd.DataFrame, forecaster, *, thresholds: Thresholds | None = None, rules=None,
           judge: Judge | None = None, previous_levels: dict[str, str] | None = None,
           profiles: dict[str, str] | None = None) -> Assessment:
    """Assess the fleet of ``history`` (each server's recent rows, up to the moment assessed) with
    ``forecaster`` (``model.Forecaster``).

    ``thresholds``: resolved already (``fleet.thresholds.resolve``), else resolved here from the
    model and ``rules`` (an ``alerting.RuleSet``: per-profile and per-server overrides).
    ``judge``: who is abnormal now (``anomaly.window_judge`` or ``anomaly.running_judge``).
    ``previous_levels``: the last assessment's levels, for hysteresis. ``profiles``: server ->
    profile when the caller knows better than the history's own column (a live dataset's manifest).
    Raises ``ArgusError`` when no forecast can be made."""
    result = forecaster.forecast(history)
    step = forecaster.step
    if profiles is None:
        profiles = history.groupby(schema.SERVER, observed=True)[schema.PROFILE].last().astype(str).to_dict() \
            if schema.PROFILE in history else {}
    profiles = {str(k): str(v) for k, v in profiles.items()}
    if thresholds is None:
        thresholds = resolve(forecaster.spec, profiles, rules)
    metrics = thresholds.metrics
    per_metric = risk.metric_risk(result.quantiles, thresholds.by_metric, risk.current_values(history, metrics, step),
                                  thresholds.overrides, risk.recent_climb(history, metrics, step))
    abnormal, deviations = judge(history) if judge is not None else (None, None)
    ranking = rank(per_metric, result, profiles, abnormal, previous_levels, result.as_of)
    return Assessment(result.model_id, pd.Timestamp(result.as_of), step, forecaster.horizon, result, thresholds,
                      profiles, per_metric, ranking, abnormal, deviations, dict(previous_levels or {}))


def rank(per_metric: pd.DataFrame, result: FleetForecast, profiles: dict[str, str], abnormal: pd.DataFrame | None,
         previous_levels: dict[str, str] | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per forecast server, riskiest first (``risk.rank_servers``: score, level with
    hysteresis, the driving metric and its figures), with its profile, hours to breach, the inputs
    that weighed most (``drivers``), what breaches now, whether it was never seen in training and
    whether it is abnormal now."""
    ranked = risk.rank_servers(per_metric, previous_levels)
    if ranked.empty:
        return ranked
    ranked.insert(1, schema.PROFILE, ranked[schema.SERVER].map(profiles).fillna("generic"))
    for col, name in (("breach_p50", "hours_to_breach_p50"), ("breach_p90", "hours_to_breach_p90")):
        # a series that reported late is forecast from its own last sample: a breach it predicts
        # for a moment already past is due now, not "-0.4 h"
        ranked[name] = ((ranked[col] - as_of) / pd.Timedelta("1h")).clip(lower=0).round(1)
    ranked["drivers"] = ranked[schema.SERVER].map(drivers_text(result.importance))
    ranked["now"] = now_text(ranked)
    ranked["unseen"] = ranked[schema.SERVER].isin(result.unseen_servers)
    if abnormal is not None and len(abnormal):
        found = abnormal.set_index(schema.SERVER)
        ranked["abnormal"] = ranked[schema.SERVER].map(found["abnormal"]).fillna(False).astype(bool)
        ranked["abnormal_metrics"] = [found["drivers"].get(s, "") if a else "" for s, a in
                                      zip(ranked[schema.SERVER], ranked["abnormal"], strict=True)]
    else:
        ranked["abnormal"] = False
        ranked["abnormal_metrics"] = ""
    return ranked


def now_text(ranked: pd.DataFrame) -> list[str]:
    """Per ranked server: "breaching now (critical)" when a metric is over a threshold at the
    latest sample, else "" (the level then comes from the forecast alone)."""
    if "breaching_now" not in ranked:
        return [""] * len(ranked)
    return [f"breaching now ({level})" if isinstance(level, str) else "" for level in ranked["breaching_now"]]


def drivers_text(importance: pd.DataFrame, top: int = 3) -> dict[str, str]:
    """server -> "mem_used_pct 31%, swap_used_pct 12%, hour 9%": the variables the TFT weighed most."""
    if importance.empty:
        return {}
    ordered = importance.sort_values([schema.SERVER, "importance"], ascending=[True, False], kind="stable")
    best = ordered.groupby(schema.SERVER, observed=True).head(top)
    return {server: ", ".join(f"{v} {w:.0%}" for v, w in zip(group["variable"], group["importance"], strict=True))
            for server, group in best.groupby(schema.SERVER, observed=True)}


def level_counts(ranked: pd.DataFrame) -> dict[str, int]:
    """How many servers sit at each level, every level named (zero included)."""
    counts = ranked["level"].value_counts() if len(ranked) else pd.Series(dtype=int)
    return {level: int(counts.get(level, 0)) for level in risk.LEVELS}
