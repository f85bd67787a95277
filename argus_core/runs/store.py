"""The run store: every training run, its settings, curves, resource use and events, in one
SQLite file beside the models (``models/runs.sqlite`` unless told otherwise).

WAL mode, so the training process writes while the dashboard reads. Training from the CLI and
from the console writes here through the same Lightning callback (``argus_core.run_recorder``).

Statuses: queued -> running -> completed | failed | cancelled | interrupted (the process died
without saying so: found by ``mark_dead_runs``). A corrupt or locked file raises
``RunStoreError`` with the path and what to do.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from argus_core.errors import ArgusError, RunStoreError

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ENDED = ("completed", "failed", "cancelled", "interrupted")
REST = "rest"  # the origin of runs recorded over the service's API
ACTIVE = ("queued", "running")
FILENAME = "runs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,          -- JSON: the TrainConfig fields and the dataset
    dataset TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,                    -- unix seconds
    ended REAL,
    error TEXT,
    model_id TEXT,
    pid INTEGER,
    log_path TEXT,
    resumed_from INTEGER,            -- the run this one resumes, if any
    origin TEXT                      -- NULL: a training of this Argus; 'rest': recorded over the service's API
);
CREATE TABLE IF NOT EXISTS metrics (
    run INTEGER NOT NULL REFERENCES runs(id), step INTEGER, epoch INTEGER,
    name TEXT NOT NULL, value REAL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run, name, step);
CREATE TABLE IF NOT EXISTS resources (
    run INTEGER NOT NULL REFERENCES runs(id), time REAL NOT NULL,
    cpu_pct REAL, rss_mb REAL, gpu_util_pct REAL, gpu_mem_mb REAL
);
CREATE TABLE IF NOT EXISTS events (
    run INTEGER NOT NULL REFERENCES runs(id), time REAL NOT NULL, kind TEXT NOT NULL, detail TEXT
);
CREATE TABLE IF NOT EXISTS audit (             -- who did what: argus_core.access.audit
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,                        -- unix seconds
    actor TEXT NOT NULL,                       -- the signed-in user, the token's name, the shell's user
    role TEXT,                                 -- their role (or the token's scopes)
    via TEXT NOT NULL,                         -- dashboard, api, cli
    source TEXT,                               -- where from: the client's address, the host
    action TEXT NOT NULL,                      -- model.promote, silence.add, token.revoke ...
    target TEXT,                               -- what it acted on: a model id, a run, a silence
    outcome TEXT NOT NULL,                     -- done, refused
    detail TEXT
);
"""


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    settings: dict
    dataset: str
    status: str
    started: float | None
    ended: float | None
    error: str | None
    model_id: str | None
    pid: int | None
    log_path: str | None
    resumed_from: int | None
    origin: str | None = None  # None: a training of this Argus (it has a process); "rest": recorded over the API

    @property
    def external(self) -> bool:
        """Recorded by another training loop over the API: no process here, no checkpoint to resume."""
        return self.origin == REST

    @property
    def duration_s(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


def default_path(model_root: str | Path) -> Path:
    return Path(os.environ.get("ARGUS_RUNS", Path(model_root) / FILENAME))


class RunStore:
    """One SQLite file of runs. ``create=False`` opens it for reading only: a missing file reads as
    no runs and is not created (looking at an empty models directory writes nothing there); the
    first write creates it."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        self._ready = False
        if create:
            self._ensure()

    def _ensure(self) -> None:
        if self._ready:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "origin" not in columns:  # a store written before runs had an origin
                db.execute("ALTER TABLE runs ADD COLUMN origin TEXT")
        self._ready = True

    def _absent(self) -> bool:
        """Read-only and nothing written yet: every read answers "no runs"."""
        return not self._ready and not self.path.exists()

    @contextmanager
    def _connect(self):
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise RunStoreError(f"cannot open the run store {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.row_factory = sqlite3.Row
            yield db
        except sqlite3.DatabaseError as exc:
            hint = "it is locked by another process; try again" if "locked" in str(exc) else \
                "it is not a readable SQLite file; move it aside and a new one is created"
            raise RunStoreError(f"the run store {self.path} failed ({exc}): {hint}") from exc
        finally:
            db.close()

    # runs -------------------------------------------------------------------------------
    def create(self, name: str, settings: dict, dataset: str, status: str = "queued",
               resumed_from: int | None = None, origin: str | None = None) -> int:
        self._ensure()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO runs (name, settings, dataset, status, started, resumed_from, origin) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, json.dumps(settings, sort_keys=True, default=str), dataset, status, time.time(), resumed_from,
                 origin))
            run_id = int(cursor.lastrowid)
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, time.time(), "status", status))
        return run_id

    def update(self, run_id: int, **fields) -> None:
        allowed = {"status", "ended", "error", "model_id", "pid", "log_path", "started"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self._ensure()
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))
            if "status" in fields:
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?)",
                           (run_id, time.time(), "status", fields["status"] + (f": {fields['error']}"
                                                                               if fields.get("error") else "")))

    def finish(self, run_id: int, status: str, error: str | None = None, model_id: str | None = None) -> None:
        self.update(run_id, status=status, ended=time.time(), error=error, model_id=model_id)

    def get(self, run_id: int) -> Run:
        row = None
        if not self._absent():
            with self._connect() as db:
                row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ArgusError(f"no run {run_id} in {self.path}; see `python -m argus_core runs list`")
        return _run(row)

    def list(self, limit: int = 200) -> list[Run]:
        if self._absent():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run(r) for r in rows]

    def active(self) -> Run | None:
        """The queued or running run, if any (one training at a time per models directory)."""
        if self._absent():
            return None
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE status IN ('queued', 'running') AND origin IS NULL "
                             "ORDER BY id DESC").fetchone()
        return _run(row) if row else None

    # curves, resources, events ----------------------------------------------------------
    def log_metrics(self, run_id: int, step: int, epoch: int, values: dict[str, float]) -> None:
        self.log_many(run_id, [(step, epoch, values)])

    def log_many(self, run_id: int, rows: list[tuple[int, int, dict[str, float]]]) -> int:
        """(step, epoch, {name: value}) rows in one transaction; how many values were written."""
        now = time.time()
        values = [(run_id, step, epoch, name, float(value), now) for step, epoch, named in rows
                  for name, value in named.items()]
        self._ensure()
        with self._connect() as db:
            db.execute("BEGIN")
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", values)
            db.execute("COMMIT")
        return len(values)

    def log_resources(self, run_id: int, cpu_pct: float | None, rss_mb: float | None,
                      gpu_util_pct: float | None = None, gpu_mem_mb: float | None = None) -> None:
        self._ensure()
        with self._connect() as db:
            db.execute("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, time.time(), cpu_pct, rss_mb, gpu_util_pct, gpu_mem_mb))

    def event(self, run_id: int, kind: str, detail: str = "") -> None:
        self._ensure()
        with self._connect() as db:
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, time.time(), kind, detail))

    def metrics(self, run_ids: int | list[int]) -> pd.DataFrame:
        ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
        rows = []
        if not self._absent():
            with self._connect() as db:
                marks = ",".join("?" * len(ids))
                rows = db.execute(f"SELECT * FROM metrics WHERE run IN ({marks}) ORDER BY run, time", ids).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=["run", "step", "epoch", "name", "value", "time"])

    def resources(self, run_id: int) -> pd.DataFrame:
        rows = []
        if not self._absent():
            with self._connect() as db:
                rows = db.execute("SELECT * FROM resources WHERE run = ? ORDER BY time", (run_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["run", "time", "cpu_pct", "rss_mb", "gpu_util_pct", "gpu_mem_mb"])

    def events(self, run_id: int) -> pd.DataFrame:
        rows = []
        if not self._absent():
            with self._connect() as db:
                rows = db.execute("SELECT * FROM events WHERE run = ? ORDER BY time", (run_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=["run", "time", "kind", "detail"])

    def prune_metrics(self, before: float) -> int:
        """Delete metric and resource rows written before ``before`` (Unix time); how many went."""
        if self._absent():
            return 0
        with self._connect() as db:
            gone = db.execute("DELETE FROM metrics WHERE time < ?", (before,)).rowcount
            db.execute("DELETE FROM resources WHERE time < ?", (before,))
        return int(gone)

    def delete(self, run_id: int) -> Run:
        """Remove an ended run with its curves, resources and events (its model, if it made one,
        stays registered); a queued or running run is refused: cancel it first."""
        run = self.get(run_id)
        if run.status not in ENDED:
            raise ArgusError(f"run {run_id} is {run.status}: cancel it before deleting it")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            for table in ("metrics", "resources", "events"):
                db.execute(f"DELETE FROM {table} WHERE run = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            db.execute("COMMIT")
        return run

    # the audit trail ----------------------------------------------------------------------
    def record_audit(self, entry: dict) -> None:
        """One line of the audit trail (``argus_core.access.audit`` builds it)."""
        self._ensure()
        with self._connect() as db:
            db.execute("INSERT INTO audit (time, actor, role, via, source, action, target, outcome, detail) "
                       "VALUES (:time, :actor, :role, :via, :source, :action, :target, :outcome, :detail)", entry)

    def audit(self, limit: int = 100) -> pd.DataFrame:
        """The latest ``limit`` lines of the audit trail, newest first."""
        columns = ["id", "time", "actor", "role", "via", "source", "action", "target", "outcome", "detail"]
        rows = []
        if not self._absent():
            self._ensure()  # a store written before the audit trail gets its table
            with self._connect() as db:
                rows = db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=columns)

    def mark_dead_runs(self) -> list[int]:
        """Runs that say 'running' but whose process is gone become 'interrupted'."""
        dead = []
        for run in self.list():
            if run.status == "running" and not run.external and (run.pid is None or not pid_alive(run.pid)):
                self.finish(run.id, "interrupted", error="the training process died (killed, or the machine "
                                                         "restarted); resume it from its last checkpoint")
                dead.append(run.id)
        return dead


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (finished, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _run(row: sqlite3.Row) -> Run:
    data = dict(row)
    data["settings"] = json.loads(data["settings"] or "{}")
    return Run(**data)
