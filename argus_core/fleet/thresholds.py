"""The one threshold resolver: what counts as warning and critical for a (server, metric).

In order, later wins: the contract's defaults (``schema.THRESHOLDS``), the thresholds recorded
with the model (an import's own, in its ``config.json``), then the rules file's per-profile and
per-server tables (a load average of 30 is idle on a 96-core host). The pages, the live cycle, the
Incident demo and ``status`` all take their thresholds from ``resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from argus_core.data import schema
from argus_core.fleet import alerting
from argus_core.fleet.risk import Overrides


def model_thresholds(spec) -> dict[str, schema.Threshold]:
    """The thresholds recorded with a model (its ``ModelSpec``), in its target order; the
    contract's defaults for a metric an older model recorded none for. Metrics without either
    carry no threshold and are not scored."""
    recorded = spec.thresholds or {}
    out = {}
    for metric in spec.forecast_metrics:
        if metric in recorded:
            out[metric] = schema.Threshold(recorded[metric]["warning"], recorded[metric]["critical"])
        elif metric in schema.THRESHOLDS:
            out[metric] = schema.THRESHOLDS[metric]
    return out


@dataclass(frozen=True)
class Thresholds:
    """The model's thresholds per metric, and the servers whose profile or name has its own."""

    by_metric: dict[str, schema.Threshold]
    overrides: Overrides = field(default_factory=dict)  # (server, metric) -> its own thresholds

    @property
    def metrics(self) -> list[str]:
        return list(self.by_metric)

    def for_server(self, server: str) -> dict[str, schema.Threshold]:
        """The thresholds that apply to one server, metric by metric."""
        return {m: self.overrides.get((str(server), m), t) for m, t in self.by_metric.items()}


def resolve(spec, profiles: dict[str, str], rules: alerting.RuleSet | None = None) -> Thresholds:
    """The thresholds of a model (its ``ModelSpec``) on a fleet (server -> profile), with the
    rules file's per-profile and per-server overrides."""
    by_metric = model_thresholds(spec)
    overrides = (rules or alerting.RuleSet()).overrides(profiles, by_metric)
    return Thresholds(by_metric, overrides)
