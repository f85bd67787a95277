"""Cycle and level-change messages, numbered, for clients that follow the fleet without polling
(``GET /api/v1/events``, server-sent events). Kept in a bounded ring: a client that reconnects
with the last number it saw gets what it missed, as far back as the ring goes."""

from __future__ import annotations

import threading
import time
from collections import deque

KEEP = 1000  # messages kept for clients that reconnect


class EventHub:
    def __init__(self, keep: int = KEEP) -> None:
        self._ring: deque[dict] = deque(maxlen=keep)
        self._next = 1
        self._changed = threading.Condition()

    def publish(self, kind: str, **fields) -> dict:
        with self._changed:
            event = {"id": self._next, "kind": kind, "time": time.time(), **fields}
            self._next += 1
            self._ring.append(event)
            self._changed.notify_all()
        return event

    def after(self, last_id: int) -> list[dict]:
        with self._changed:
            return [e for e in self._ring if e["id"] > last_id]

    def wait_after(self, last_id: int, timeout: float) -> list[dict]:
        """Messages newer than ``last_id``, waiting up to ``timeout`` seconds for one."""
        with self._changed:
            self._changed.wait_for(lambda: self._next - 1 > last_id, timeout=timeout)
            return [e for e in self._ring if e["id"] > last_id]

    @property
    def last_id(self) -> int:
        return self._next - 1
