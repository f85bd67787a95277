"""What a dataset's live service leaves beside its data for every other reader: the state folder
(``<dataset>/.live``), the alerts it keeps there and the rules file it runs.

The service (``argus_core.live``) writes through ``write_alerts``; the pages, the CLI and the
API read through ``read_alerts``, ``alerts_of`` and ``rules_for``, never by path.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
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


SERVICE_FILE = "service.json"  # where the running service listens (written by `serve`, removed when it stops)
TOKEN_ENV = "ARGUS_TOKEN"


def write_service(state: str | Path, url: str) -> None:
    """Record where the service of a state folder listens, for the pages and the CLI to reach it."""
    atomic.write_json(Path(state) / SERVICE_FILE, {"url": url, "pid": os.getpid()})


def forget_service(state: str | Path) -> None:
    (Path(state) / SERVICE_FILE).unlink(missing_ok=True)


def service_url(dataset: str | Path) -> str | None:
    """The address of the service that runs on ``dataset`` now (None: none does, or it died)."""
    try:
        data = json.loads((state_dir(dataset) / SERVICE_FILE).read_text())
        url, pid = str(data["url"]), int(data["pid"])
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return url
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url


def expire_silence(url: str, silence_id: str, token: str | None = None, timeout: float = 10.0) -> dict:
    """End a silence through the service at ``url`` (``DELETE /api/v1/silences/{id}``); the
    service's own message as an ArgusError when it refuses or cannot be reached."""
    return call(url, "DELETE", f"/api/v1/silences/{urllib.parse.quote(silence_id, safe='')}", token=token,
                timeout=timeout)


def call(url: str, method: str, path: str, body: dict | None = None, token: str | None = None,
         timeout: float = 10.0) -> dict:
    """One JSON request to the live service; ArgusError with its message on any failure."""
    token = token if token is not None else (os.environ.get(TOKEN_ENV, "").strip() or None)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url.rstrip("/") + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read().decode()).get("detail")
        except (ValueError, AttributeError, UnicodeDecodeError):
            detail = None
        raise ArgusError(f"the service at {url} refused: {detail or exc.reason} (HTTP {exc.code})") from exc
    except (OSError, ValueError) as exc:
        raise ArgusError(f"the service at {url} cannot be reached: {getattr(exc, 'reason', exc)}") from exc
