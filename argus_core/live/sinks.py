"""Where alerts go: Alertmanager (``POST /api/v2/alerts``) and Slack-compatible webhooks.

Deliveries run in their own thread, so a slow or dead receiver never holds up a cycle; a failed
delivery is logged, counted (``argus_alert_deliveries_failed_total{sink}``) and retried:

    Alertmanager   state, not events: every firing alert is re-sent each cycle with an ``endsAt``
                   a few cycles ahead (so Alertmanager resolves it by itself if Argus dies), and a
                   resolved one is re-sent with its ``endsAt`` for ``RESOLVED_RESENDS`` cycles, as
                   Prometheus does. A failed send is simply repeated at the next cycle.
    webhook        events: one message when an alert fires and one when it resolves; undelivered
                   messages wait (at most ``MAX_PENDING``) and are retried with a doubling delay.

Silenced alerts are kept and shown but sent to neither.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace

import httpx
import pandas as pd

from argus_core.fleet.alerting import Alert

log = logging.getLogger("argus.alerts")

RESOLVED_RESENDS = 3
MAX_PENDING = 500


def _labels(alert: Alert) -> dict[str, str]:
    labels = {"alertname": alert.rule, "server": alert.server, "severity": alert.severity, "source": "argus",
              **{str(k): str(v) for k, v in alert.labels.items()}}
    if alert.metric:
        labels["metric"] = alert.metric
    return labels


def _lead_text(alert: Alert) -> str:
    lead = alert.lead_seconds()
    return "" if lead is None else f"{lead / 60:.0f} min"


class AlertmanagerSink:
    name = "alertmanager"

    def __init__(self, url: str, every: pd.Timedelta, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.every = every
        self._http = httpx.Client(timeout=timeout)
        self._resolved_sends: dict[tuple, int] = {}

    def payload(self, alerts: list[Alert], now: pd.Timestamp) -> list[dict]:
        out = []
        hold = max(self.every * 4, pd.Timedelta("5min"))  # Alertmanager ends it by itself if Argus goes away
        for alert in alerts:
            if alert.silenced or alert.starts_at is None:
                continue
            if alert.state == "resolved":
                sent = self._resolved_sends.get(alert.key, 0)
                if sent >= RESOLVED_RESENDS:
                    continue
                ends = alert.ends_at
            elif alert.state == "firing":
                ends = (max(now, pd.Timestamp(alert.starts_at)) + hold).isoformat()
            else:
                continue
            out.append({"labels": _labels(alert),
                        "annotations": {"summary": alert.summary, "lead": _lead_text(alert),
                                        **({"reason": alert.reason} if alert.reason else {})},
                        "startsAt": alert.starts_at, "endsAt": ends})
        return out

    def send(self, alerts: list[Alert], changed: list[Alert], now: pd.Timestamp) -> None:
        body = self.payload(alerts, now)
        if not body:
            return
        response = self._http.post(f"{self.url}/api/v2/alerts", json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"Alertmanager at {self.url} answered {response.status_code}: {response.text[:200]}")
        for alert in alerts:
            if alert.state == "resolved" and not alert.silenced:
                self._resolved_sends[alert.key] = self._resolved_sends.get(alert.key, 0) + 1
        live = {a.key for a in alerts}
        self._resolved_sends = {k: v for k, v in self._resolved_sends.items() if k in live}


class WebhookSink:
    """Slack's incoming-webhook shape (``{"text": ...}``), which Mattermost, Rocket.Chat and most
    chat tools accept too; ``alerts`` carries the same facts for programs."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout)
        self.pending: list[dict] = []
        self._delay = 1.0
        self._next_try = 0.0

    @staticmethod
    def message(alert: Alert) -> dict:
        if alert.state == "firing":
            head = f":rotating_light: *{alert.rule}* firing on {alert.server}"
        else:
            head = f":white_check_mark: *{alert.rule}* resolved on {alert.server} ({alert.reason})"
        lead = _lead_text(alert)
        text = f"{head}: {alert.summary}" + (f" Lead time {lead}." if lead and alert.state == "firing" else "")
        return {"text": text, "alerts": [{"state": alert.state, "labels": _labels(alert), "summary": alert.summary,
                                          "startsAt": alert.starts_at, "endsAt": alert.ends_at}]}

    def send(self, alerts: list[Alert], changed: list[Alert], now: pd.Timestamp) -> None:
        self.pending += [self.message(a) for a in changed if not a.silenced]
        del self.pending[:-MAX_PENDING]  # a receiver away for days: the oldest messages go
        if not self.pending or time.monotonic() < self._next_try:
            return
        while self.pending:
            response = self._http.post(self.url, json=self.pending[0])
            if response.status_code >= 300:
                self._next_try = time.monotonic() + self._delay
                self._delay = min(self._delay * 2, 300.0)
                raise RuntimeError(f"webhook {self.url} answered {response.status_code}: {response.text[:200]}")
            self.pending.pop(0)
        self._delay = 1.0


@dataclass
class Dispatcher:
    """Hands each cycle's alerts to every sink from one background thread."""

    sinks: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)  # sink name -> failed deliveries
    delivered: dict = field(default_factory=dict)  # sink name -> good deliveries
    last_error: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None
        for sink in self.sinks:
            self.failures.setdefault(sink.name, 0)
            self.delivered.setdefault(sink.name, 0)

    def submit(self, alerts: list[Alert], changed: list[Alert], now: pd.Timestamp) -> None:
        if not self.sinks:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="argus-alerts", daemon=True)
            self._thread.start()
        item = ([replace(a) for a in alerts], [replace(a) for a in changed], now)  # the cycle goes on changing them
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the sinks are slower than the cycles: this cycle's state replaces the oldest
            try:
                dropped = self._queue.get_nowait()
                item = (item[0], dropped[1] + item[1], now)  # keep the events the webhook still owes
            except queue.Empty:
                pass
            self._queue.put_nowait(item)

    def deliver(self, alerts: list[Alert], changed: list[Alert], now: pd.Timestamp) -> None:
        """One delivery to every sink, here (the thread's body; tests call it directly)."""
        for sink in self.sinks:
            try:
                sink.send(alerts, changed, now)
                self.delivered[sink.name] += 1
                self.last_error.pop(sink.name, None)
            except Exception as exc:  # noqa: BLE001 - a sink's failure is counted and retried, never raised
                self.failures[sink.name] += 1
                self.last_error[sink.name] = str(exc)
                log.warning("alert delivery to %s failed: %s", sink.name, exc)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until what was submitted has been handed to the sinks (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._thread is not None and time.monotonic() < deadline and \
                (not self._queue.empty() or self._queue.unfinished_tasks):
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            alerts, changed, now = self._queue.get()
            try:
                self.deliver(alerts, changed, now)
            finally:
                self._queue.task_done()

