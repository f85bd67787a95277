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
    argus_abnormal{server}, argus_anomaly_deviation_ratio{server}  abnormal now (model.anomaly)
    argus_cycle_duration_seconds, argus_cycles_total, argus_cycle_failures_total,
    argus_last_cycle_success_timestamp_seconds (0: none yet), argus_started_timestamp_seconds,
    argus_data_last_sample_timestamp_seconds,
    argus_samples_accepted_total, argus_samples_rejected_total, argus_model_info{model_id}
    argus_alert_firing{alertname,server,metric,severity}        1 per firing alert (silenced ones too, labelled)
    argus_alert_deliveries_total{sink}, argus_alert_deliveries_failed_total{sink}
    argus_source_up{source}, argus_snapshot_stale              a pulling source's health; 1 while the
                                                               served forecast is older than the source
                                                               or the last cycle failed
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from argus_core.data import schema
from argus_core.fleet import risk

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def horizon_label(seconds: float) -> str:
    """``8h``, ``90m``: the horizon as Prometheus writes durations."""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class ServiceCollector:
    """The service's own figures (counters, last cycle), read at every scrape."""

    def __init__(self, service) -> None:
        self.service = service

    def collect(self):
        service, snap = self.service, self.service.snapshot
        counters = service.counters
        yield _gauge("argus_cycle_duration_seconds", "Duration of the last successful cycle.",
                     counters.last_cycle_seconds)
        for name, text, value in (
                ("argus_cycles", "Cycles that published a snapshot.", counters.cycles),
                ("argus_cycle_failures", "Cycles that failed (the previous snapshot stayed).", counters.cycle_failures),
                ("argus_samples_accepted", "Pushed values (rows x metrics) accepted.", counters.samples_accepted),
                ("argus_samples_rejected", "Pushed values (rows x metrics) refused.", counters.samples_rejected)):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family
        # 0 until a cycle succeeds, so that a service that never completes one can be alerted on
        yield _gauge("argus_last_cycle_success_timestamp_seconds", "When the last cycle published (Unix time; "
                     "0: none yet).", counters.last_success or 0.0)
        yield _gauge("argus_started_timestamp_seconds", "When this service started (Unix time).", counters.started)
        up = GaugeMetricFamily("argus_source_up", "1 when the source's last pull worked.", labels=["source"])
        for source in service.sources:
            if source.name != "push":
                up.add_metric([source.name], 0.0 if source.name in service.source_errors else 1.0)
        yield up
        yield _gauge("argus_snapshot_stale", "1 while a source fails or no model loads, and the last forecast is "
                     "served.", 1.0 if service.stale else 0.0)
        firing = GaugeMetricFamily("argus_alert_firing", "1 per firing alert.",
                                   labels=["alertname", "server", "metric", "severity", "silenced"])
        for alert in service.alerts.firing():
            firing.add_metric([alert.rule, alert.server, alert.metric, alert.severity,
                               "true" if alert.silenced else "false"], 1.0)
        yield firing
        for name, text, values in (
                ("argus_alert_deliveries", "Alert deliveries that worked, per sink.", service.dispatcher.delivered),
                ("argus_alert_deliveries_failed", "Alert deliveries that failed (retried), per sink.",
                 service.dispatcher.failures)):
            family = CounterMetricFamily(name, text, labels=["sink"])
            for sink, count in values.items():
                family.add_metric([sink], count)
            yield family
        if snap is None:
            return
        if snap.data_end:
            yield _gauge("argus_data_last_sample_timestamp_seconds", "The newest stored sample (Unix time).",
                         pd.Timestamp(snap.data_end).timestamp())
        info = InfoMetricFamily("argus_model", "The model that made the published forecast.")
        info.add_metric([], {"model_id": snap.model_id})
        yield info


# --- the snapshot's series: written once per snapshot, as text (50,000 lines at 1,000 servers) ---------

def _label_values(values) -> np.ndarray:
    """Label values escaped as the text format wants them (backslash, double quote, newline)."""
    text = pd.Series(values, dtype="object").astype(str)
    return (text.str.replace("\\", "\\\\", regex=False).str.replace('"', '\\"', regex=False)
            .str.replace("\n", "\\n", regex=False)).to_numpy(dtype=object)


def _family(name: str, help_text: str, labels: list[tuple[str, np.ndarray]], values: np.ndarray,
            keep: np.ndarray | None = None) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    if keep is not None:
        labels = [(k, v[keep]) for k, v in labels]
        values = values[keep]
    if len(values):
        joined = None
        for key, column in labels:
            piece = key + '="' + column.astype(object) + '"'
            joined = piece if joined is None else joined + "," + piece
        numbers = np.char.mod("%.10g", values.astype(np.float64)).astype(object)
        lines += list(name + "{" + joined + "} " + numbers)
    return lines


def render_snapshot(snap) -> str:
    """The snapshot's per-server and per-metric gauges in the Prometheus text format."""
    horizon = horizon_label(snap.horizon_seconds)
    pm, ranking = snap.per_metric, snap.ranking
    server, metric = _label_values(pm[schema.SERVER]), _label_values(pm["metric"])
    hz = np.full(len(pm), horizon, dtype=object)
    as_of = pd.Timestamp(snap.as_of) if snap.as_of else None
    out: list[str] = []
    out += _family("argus_breach_probability", "Probability of crossing the threshold within the horizon.",
                   [("server", np.concatenate([server, server])), ("metric", np.concatenate([metric, metric])),
                    ("threshold", np.array(["warning"] * len(pm) + ["critical"] * len(pm), dtype=object)),
                    ("horizon", np.concatenate([hz, hz]))],
                   np.concatenate([pm["p_warning"].to_numpy(float), pm["p_critical"].to_numpy(float)]))
    for_paths = []
    for path, column in (("p50", "breach_p50"), ("p90", "breach_p90")):
        when = pd.to_datetime(pm[column], utc=True)
        seconds = ((when - as_of).dt.total_seconds().clip(lower=0) if as_of is not None
                   else pd.Series(np.nan, index=pm.index)).to_numpy(float)
        for_paths.append((path, seconds))
    paths = np.concatenate([np.full(len(pm), p, dtype=object) for p, _ in for_paths])
    seconds = np.concatenate([s for _, s in for_paths])
    out += _family("argus_time_to_breach_seconds", "Seconds from the forecast start to the first critical breach "
                   "on the path (absent: no breach).",
                   [("server", np.concatenate([server, server])), ("metric", np.concatenate([metric, metric])),
                    ("path", paths), ("horizon", np.concatenate([hz, hz]))], seconds, keep=~np.isnan(seconds))
    out += _family("argus_forecast_peak", "Peak of the forecast path over the horizon, in the metric's unit.",
                   [("server", np.concatenate([server, server])), ("metric", np.concatenate([metric, metric])),
                    ("quantile", np.array(["0.5"] * len(pm) + ["0.9"] * len(pm), dtype=object)),
                    ("horizon", np.concatenate([hz, hz]))],
                   np.concatenate([pm["peak_p50"].to_numpy(float), pm["peak_p90"].to_numpy(float)]))
    current = pm["value_now"].to_numpy(float) if "value_now" in pm else np.full(len(pm), np.nan)
    out += _family("argus_metric_value", "The latest sample of the metric.", [("server", server), ("metric", metric)],
                   current, keep=~np.isnan(current))
    breaching = pm["breaching_now"].map(lambda v: isinstance(v, str)).to_numpy(float) if "breaching_now" in pm \
        else np.zeros(len(pm))
    out += _family("argus_breaching_now", "1 while the latest sample is at or over a threshold.",
                   [("server", server), ("metric", metric)], breaching)
    names = _label_values(ranking[schema.SERVER])
    out += _family("argus_risk_score", "Risk score 0..100 of the server's worst metric.",
                   [("server", names), ("horizon", np.full(len(ranking), horizon, dtype=object))],
                   ranking["score"].to_numpy(float))
    out += _family("argus_risk_level", "Level: 0 healthy, 1 watch, 2 warning, 3 critical.", [("server", names)],
                   ranking["level"].map(risk.LEVELS.index).to_numpy(float))
    odd = snap.abnormal
    if len(odd):
        who = _label_values(odd[schema.SERVER])
        out += _family("argus_abnormal", "1 while the server is abnormal now (far from nominal behaviour).",
                       [("server", who)], odd["abnormal"].to_numpy(float))
        out += _family("argus_anomaly_deviation_ratio", "Deviation from nominal behaviour over the fast "
                       "threshold (1 = at it).", [("server", who)],
                       (odd["deviation"] / odd["tau_fast"]).to_numpy(float))
    return "\n".join(out) + "\n"


_RENDERED: dict[tuple[int, int], str] = {}  # (id of the snapshot, generation) -> its text


def snapshot_text(snap) -> str:
    key = (id(snap), snap.generation)
    if key not in _RENDERED:
        _RENDERED.clear()  # only the current snapshot is ever scraped
        _RENDERED[key] = render_snapshot(snap)
    return _RENDERED[key]


def _gauge(name: str, documentation: str, number: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if number is not None:
        family.add_metric([], float(number))
    return family


def exposition(service) -> bytes:
    """The text format a Prometheus server scrapes: the service's figures, then the snapshot's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    head = generate_latest(registry)
    return head + (snapshot_text(service.snapshot).encode() if service.snapshot is not None else b"")
