"""What forecasts mean for a fleet: thresholds, risk, levels, alert rules, and ``assess``.

Owns:
    thresholds   the one resolver: the model's thresholds, then the rules file's per-profile and
                 per-server overrides (``resolve`` -> ``Thresholds``)
    risk         quantile paths -> breach probabilities and times, scores, levels with hysteresis,
                 the present value and the recent climb
    assess       ``assess(history, forecaster, ...) -> Assessment``: the one path every caller takes
    alerting     alert rules (a TOML file), silences and the alert book that advances them each cycle
    live_state   what a live service leaves beside its dataset (its alerts, its rules), read by one
                 public function each

May import: ``argus_core.data``, ``argus_core.anomaly``, ``argus_core.model`` (its front:
``Forecaster``, ``FleetForecast``), ``argus_core.errors``, ``argus_core.atomic``. Never ``views``,
``runs``, ``live`` or ``cli``; no torch at import time.
"""

from __future__ import annotations

from argus_core.fleet.assess import Assessment, assess, drivers_text, level_counts, now_text, rank
from argus_core.fleet.thresholds import Thresholds, model_thresholds, resolve

__all__ = ["Assessment", "Thresholds", "assess", "drivers_text", "level_counts", "model_thresholds", "now_text",
           "rank", "resolve"]
