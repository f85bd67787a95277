"""The last snapshot as Prometheus metrics (``GET /metrics``).

Prometheus refuses samples stamped in the future, so a forecast is exported as current gauges
about the horizon ahead (the ``horizon`` label says how far, e.g. ``8h``), never as future
points. Labels are bounded: server, metric, threshold (warning, critical), path (p50, p90); no
timestamps or free text. Names follow Prometheus's conventions: ``argus_`` prefix, base units.

    argus_breach_probability{server,metric,threshold,horizon}    P(crossing within the horizon)
    argus_time_to_breach_seconds{server,metric,path,horizon}     to the first critical breach (absent: none)
    argus_forecast_peak{server,metric,quantile,horizon}          p50 / p90 peak over the horizon
    argus_metric_value{server,metric}                            the latest sample (what "now" is)
    argus_risk_score{server,horizon}                             0..100, the ranking's order
    argus_risk_level{server}                                     0 healthy, 1 watch, 2 warning, 3 critical
    argus_breaching_now{server,metric}                           1 while a metric is over a threshold now
    argus_cycle_duration_seconds, argus_cycles_total, argus_cycle_failures_total,
    argus_last_cycle_success_timestamp_seconds, argus_data_last_sample_timestamp_seconds,
    argus_samples_accepted_total, argus_samples_rejected_total, argus_model_info{model_id}
"""

from __future__ import annotations

import math

import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from argus_core import risk
from argus_core.data import schema

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def horizon_label(seconds: float) -> str:
    """``8h``, ``90m``: the horizon as Prometheus writes durations."""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class SnapshotCollector:
    """Reads the service's current snapshot and counters at every scrape."""

    def __init__(self, service) -> None:
        self.service = service

    def collect(self):
        service, snap = self.service, self.service.snapshot
        counters = service.counters
        yield _gauge("argus_cycle_duration_seconds", "Duration of the last successful cycle.",
                     counters.last_cycle_seconds)
        cycles = CounterMetricFamily("argus_cycles", "Cycles that published a snapshot.")
        cycles.add_metric([], counters.cycles)
        yield cycles
        failures = CounterMetricFamily("argus_cycle_failures", "Cycles that failed (the previous snapshot stayed).")
        failures.add_metric([], counters.cycle_failures)
        yield failures
        accepted = CounterMetricFamily("argus_samples_accepted", "Pushed values (rows x metrics) accepted.")
        accepted.add_metric([], counters.samples_accepted)
        yield accepted
        rejected = CounterMetricFamily("argus_samples_rejected", "Pushed values (rows x metrics) refused.")
        rejected.add_metric([], counters.samples_rejected)
        yield rejected
        yield _gauge("argus_last_cycle_success_timestamp_seconds", "When the last cycle published (Unix time).",
                     counters.last_success)
        if snap is None:
            return
        if snap.data_end:
            yield _gauge("argus_data_last_sample_timestamp_seconds", "The newest stored sample (Unix time).",
                         pd.Timestamp(snap.data_end).timestamp())
        info = InfoMetricFamily("argus_model", "The model that made the published forecast.")
        info.add_metric([], {"model_id": snap.model_id})
        yield info
        horizon = horizon_label(snap.horizon_seconds)
        yield from _per_metric(snap.per_metric, horizon, pd.Timestamp(snap.as_of) if snap.as_of else None)
        score = GaugeMetricFamily("argus_risk_score", "Risk score 0..100 of the server's worst metric.",
                                  labels=["server", "horizon"])
        level = GaugeMetricFamily("argus_risk_level", "Level: 0 healthy, 1 watch, 2 warning, 3 critical.",
                                  labels=["server"])
        for row in snap.ranking.itertuples(index=False):
            server = str(getattr(row, schema.SERVER))
            score.add_metric([server, horizon], float(row.score))
            level.add_metric([server], float(risk.LEVELS.index(row.level)))
        yield score
        yield level


def _per_metric(per_metric: pd.DataFrame, horizon: str, as_of: pd.Timestamp | None):
    probability = GaugeMetricFamily("argus_breach_probability", "Probability of crossing the threshold within "
                                    "the horizon.", labels=["server", "metric", "threshold", "horizon"])
    to_breach = GaugeMetricFamily("argus_time_to_breach_seconds", "Seconds from the forecast start to the first "
                                  "critical breach on the path (absent: no breach).",
                                  labels=["server", "metric", "path", "horizon"])
    peak = GaugeMetricFamily("argus_forecast_peak", "Peak of the forecast path over the horizon, in the metric's "
                             "unit.", labels=["server", "metric", "quantile", "horizon"])
    value = GaugeMetricFamily("argus_metric_value", "The latest sample of the metric.", labels=["server", "metric"])
    now = GaugeMetricFamily("argus_breaching_now", "1 while the latest sample is at or over a threshold.",
                            labels=["server", "metric"])
    for row in per_metric.itertuples(index=False):
        server, metric = str(getattr(row, schema.SERVER)), str(row.metric)
        probability.add_metric([server, metric, "warning", horizon], float(row.p_warning))
        probability.add_metric([server, metric, "critical", horizon], float(row.p_critical))
        for path, column in (("p50", "breach_p50"), ("p90", "breach_p90")):
            when = getattr(row, column)
            if as_of is not None and not pd.isna(when):
                to_breach.add_metric([server, metric, path, horizon], max(0.0, (when - as_of).total_seconds()))
        peak.add_metric([server, metric, "0.5", horizon], float(row.peak_p50))
        peak.add_metric([server, metric, "0.9", horizon], float(row.peak_p90))
        current = getattr(row, "value_now", math.nan)
        if current is not None and not pd.isna(current):
            value.add_metric([server, metric], float(current))
        now.add_metric([server, metric], 1.0 if isinstance(getattr(row, "breaching_now", None), str) else 0.0)
    yield from (probability, to_breach, peak, value, now)


def _gauge(name: str, documentation: str, number: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if number is not None:
        family.add_metric([], float(number))
    return family


def exposition(service) -> bytes:
    """The text format a Prometheus server scrapes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(service))
    return generate_latest(registry)
