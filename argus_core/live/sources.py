"""Where a live dataset's samples come from. A source is a small plug-in: ``pull()`` returns the
rows that arrived since the last call (canonical frames), ``done()`` is told once they are stored.

``Inbox`` is the push source: every accepted batch is written to a spool folder at once (an
atomic rename), so a service killed before its next cycle loses nothing; the cycle appends the
spooled batches and only then deletes them (a kill in between stores nothing twice: the cycle
drops rows the dataset already holds).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import pandas as pd

from argus_core import atomic
from argus_core.data import schema
from argus_core.live.ingest import keys_of


class Source(Protocol):
    name: str

    def pull(self) -> tuple[pd.DataFrame | None, object]:
        """(rows that arrived, a token for ``done``); None when nothing arrived."""
        ...

    def done(self, token: object) -> None:
        """The rows of ``token`` are stored: forget them."""
        ...


class Inbox:
    """Pushed batches spooled to ``folder`` until a cycle stores them. The (server, time) keys of
    what waits are also kept in memory, so checking a push for duplicates does not reread the spool."""

    name = "push"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        for stale in self.folder.glob(".*.tmp"):  # a batch being written when the process died
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._keys: dict[Path, list[tuple]] = {}  # per spooled file, its (server, time) keys
        self._waiting: set[tuple] = set()  # every spooled key, for a push's duplicate check
        for path in self.waiting():
            self._remember(path, pd.read_parquet(path, columns=KEY))

    def _remember(self, path: Path, frame: pd.DataFrame) -> None:
        keys = list(keys_of(frame))
        with self._lock:
            self._keys[path] = keys
            self._waiting.update(keys)

    def _forget(self, path: Path) -> None:
        with self._lock:  # a push (putting) and a cycle (forgetting) may meet here
            self._waiting.difference_update(self._keys.pop(path, []))
            if not self._keys:
                self._waiting.clear()

    def put(self, frame: pd.DataFrame) -> Path:
        """Spool one validated batch; once this returns the batch survives a kill."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):06d}.parquet"
        final = self.folder / name
        with atomic.staged(final) as tmp:
            frame.to_parquet(tmp, index=False)
        self._remember(final, frame)
        return final

    def waiting(self) -> list[Path]:
        return sorted(self.folder.glob("*.parquet"))

    def unseen(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` whose (server, time) is not spooled already (a set lookup per row:
        the cost of a push does not grow with what waits)."""
        if not self._waiting or frame.empty:
            return frame
        with self._lock:
            keep = [key not in self._waiting for key in keys_of(frame)]
        return frame[keep].reset_index(drop=True)

    def pull(self) -> tuple[pd.DataFrame | None, list[Path]]:
        files = self.waiting()
        if not files:
            return None, []
        frames = [pd.read_parquet(f) for f in files]
        return pd.concat(frames, ignore_index=True), files

    def done(self, token: list[Path]) -> None:
        for path in token:
            path.unlink(missing_ok=True)
            self._forget(path)

    def reject(self, path: Path, reason: str) -> Path:
        """Move a spooled batch the dataset refused to ``rejected/``, its reason beside it, so that
        it is kept for a look but never retried (it would fail every cycle after)."""
        folder = self.folder / REJECTED
        folder.mkdir(exist_ok=True)
        (folder / f"{path.stem}.txt").write_text(reason + "\n")
        moved = path.replace(folder / path.name)
        self._forget(path)
        return moved



KEY = [schema.SERVER, schema.TIMESTAMP]
REJECTED = "rejected"  # the inbox's folder of batches the dataset refused
