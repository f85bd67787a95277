"""What a dataset's live service leaves beside its data for every other reader: the state folder
(``<dataset>/.live``), the alerts it keeps there and the rules file it runs.

The service (``argus_core.live``) writes through ``write_alerts``; the pages, the CLI and the
API read through ``read_alerts``, ``alerts_of`` and ``rules_for``, never by path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from argus_core import atomic
from argus_core.errors import ArgusError
from argus_core.fleet import alerting

STATE_DIR = ".live"  # a live service's state folder inside its dataset
ALERTS_FILE = "alerts.json"  # open and recently resolved alerts, API silences and the rules file's path


def state_dir(dataset: str | Path) -> Path:
    """The default state folder of ``dataset``'s live service."""
    return Path(dataset) / STATE_DIR


def read_alerts(state: str | Path) -> dict | None:
    """The alerts saved in a state folder (None: no alerting runs there, or the file is unreadable)."""
    path = Path(state) / ALERTS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def write_alerts(state: str | Path, data: dict) -> None:
    """Save the alerts of a state folder atomically (readers see the old file or the new one)."""
    atomic.write_json(Path(state) / ALERTS_FILE, data)


def rules_for(dataset: str | Path) -> alerting.RuleSet:
    """The rules a dataset's live service runs (its thresholds per profile and server apply to
    what the pages compute too); ``ARGUS_RULES`` names a file for datasets without one. A rules
    file that no longer reads gives no rules (the service reports it)."""
    recorded = (read_alerts(state_dir(dataset)) or {}).get("rules")
    path = os.environ.get("ARGUS_RULES") or (recorded if recorded and recorded != "(none)" else None)
    if not path:
        return alerting.RuleSet()
    try:
        return alerting.load_rules(path)
    except ArgusError:
        return alerting.RuleSet()


def alerts_of(dataset: str | Path) -> pd.DataFrame | None:
    """Firing and recently resolved alerts of the dataset's live service (None: no alerting runs
    on it), firing first, newest first."""
    data = read_alerts(state_dir(dataset))
    return None if data is None else alerting.alerts_frame(data)
