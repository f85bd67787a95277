"""The live cycle: take what arrived, store it atomically, forecast the fleet with the champion,
score risk and levels (with the hysteresis of the last snapshot), publish one snapshot, then
advance the alerts (``argus_core.fleet.alerting``) and hand them to the sinks.

A pulling source that fails (Prometheus away) is recorded; when nothing new arrived the cycle
fails, so the last snapshot keeps being served and shows as stale, and the source's next pull
fills the gap from its own history. A server with no sample for ``stale_after`` leaves the
ranking (listed as skipped, its alerts resolved once as stale), so a decommissioned host neither
lingers nor storms.

One ``Service`` owns one live dataset; only it writes there. Cycles never overlap (a lock): the
timer's and one asked for (``POST /api/v1/cycle``) take turns. A champion that fails to load is
reported and the model that served before keeps serving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import queue
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from argus_core import anomaly, fleet
from argus_core.data import schema, store
from argus_core.errors import ArgusError, DatasetError, ModelNotFound, SchemaError, SettingsError, UnknownItem
from argus_core.fleet import alerting, live_state
from argus_core.live import exporter, ingest, snapshot
from argus_core.live.events import EventHub
from argus_core.live.sinks import Dispatcher
from argus_core.live.sources import Inbox, Source
from argus_core.model import Forecaster, registry, threads

log = logging.getLogger("argus.live")


@dataclass(frozen=True)
class Settings:
    dataset: Path
    models: Path = registry.DEFAULT_ROOT
    every: pd.Timedelta = pd.Timedelta("5min")  # time between cycles
    state: Path | None = None  # snapshot, levels and the inbox (default: <dataset>/.live)
    late: pd.Timedelta = pd.Timedelta("24h")  # how much older than the newest sample a pushed row may be
    future: pd.Timedelta = pd.Timedelta("10min")  # how far past the service's clock a pushed row may be
    max_body_bytes: int = ingest.MAX_BODY_BYTES
    threads: int | None = None  # torch threads for the forecast (default: cores - 1)
    rules: Path | None = None  # alert rules and thresholds per profile/server (None: no alerts)
    stale_after: pd.Timedelta = pd.Timedelta("30min")  # a server this far behind the newest sample leaves the ranking

    @property
    def state_dir(self) -> Path:
        return self.state or live_state.state_dir(self.dataset)


@dataclass
class Counters:
    samples_accepted: int = 0  # values (rows x metrics) spooled for storage
    samples_rejected: int = 0  # values of refused batches
    samples_duplicate: int = 0  # values already stored or waiting
    cycles: int = 0
    cycle_failures: int = 0
    last_success: float | None = None  # wall-clock time of the last good cycle
    started: float = field(default_factory=time.time)  # when the service started (wall clock)
    last_error: str | None = None
    last_cycle_seconds: float | None = None
    last_reasons: list[str] = field(default_factory=list)


@contextlib.contextmanager
def hold(settings: Settings, on_refusal=None):
    """The live dataset claimed for this process (an advisory lock on ``serve.lock`` in its state
    folder, released by the kernel if the process dies): a second service on the same dataset is
    refused with the first one's PID instead of writing beside it."""
    store.read_manifest(settings.dataset)  # DatasetError, with the command to make one, before any folder is made
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the block
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        if on_refusal is not None:
            on_refusal()
        raise DatasetError(f"{settings.dataset} is already served by PID {holder}: stop that service first, or serve "
                           "another dataset") from exc
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


LOCK_FILE = "serve.lock"
PUSH_GROUP = 500  # pushes checked together at most


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")




class Service:
    def __init__(self, settings: Settings, sources: list[Source] | None = None, clock=utc_now,
                 sinks: list | None = None) -> None:
        manifest = store.read_manifest(settings.dataset)  # DatasetError with the command to make one
        self.rules_set = alerting.load_rules(settings.rules)  # SettingsError before anything starts
        self.settings = settings
        self.clock = clock
        kinds = manifest.get("metric_kinds")
        self.rules = ingest.Rules(step=manifest.get("step", schema.DEFAULT_STEP),
                                  metrics=kinds if kinds and dict(kinds) != schema.V1_KINDS else None,
                                  late=settings.late, future=settings.future)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.inbox = Inbox(settings.state_dir / "inbox")
        self.sources: list[Source] = [self.inbox, *(sources or [])]
        self.events = EventHub()
        self.counters = Counters()
        self._cycle_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._pushes: queue.Queue = queue.Queue()  # (body, content type, future) waiting to be checked
        self._pusher: threading.Thread | None = None
        self._pusher_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.model = None
        self.model_error: str | None = None
        self.snapshot = snapshot.load(settings.state_dir)  # levels and the last findings survive a restart
        self.levels = dict(self.snapshot.levels) if self.snapshot else {}
        self.source_errors: dict[str, str] = {}
        self.alerts = self._load_alerts()
        self.dispatcher = Dispatcher(list(sinks or []))
        self._alerts_lock = threading.Lock()
        self._scorer: anomaly.RunningScorer | None = None  # abnormal now, kept between cycles
        self._scorer_key: tuple | None = None  # the detector file it was built from
        self._profile_warned: set[str] = set()  # servers a source relabelled, told once

    def _load_alerts(self) -> alerting.AlertBook:
        path = self.settings.state_dir / live_state.ALERTS_FILE
        saved = live_state.read_alerts(self.settings.state_dir)
        try:
            if saved is not None:
                return alerting.AlertBook.from_json(self.rules_set, saved)
            if path.is_file():
                log.error("alerts in %s are unreadable (not JSON): starting with none", path)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("alerts in %s are unreadable (%s): starting with none", path, exc)
        return alerting.AlertBook(self.rules_set)

    def save_alerts(self) -> None:
        with self._alerts_lock:
            live_state.write_alerts(self.settings.state_dir, {**self.alerts.to_json(), "rules": self.rules_set.source})

    # --- ingestion -------------------------------------------------------------------------------
    # Pushes are checked by one thread, in groups: whatever arrived while the last group was being
    # checked is checked together (one pass of the data contract, one read of the stored keys, one
    # spooled file), so the cost of a push falls as the pushers grow instead of queueing them one
    # by one. A group with any problem is checked again push by push, so each pusher hears only of
    # its own problems and a good batch is never refused for a neighbour's.
    def accept(self, body: bytes, content_type: str | None) -> dict:
        """Validate and spool one pushed batch; SchemaError (nothing stored) on any bad row."""
        return self.submit(body, content_type).result()

    def submit(self, body: bytes, content_type: str | None) -> Future:
        """``accept`` without waiting: a future of its answer (the HTTP handler awaits it without
        holding a thread)."""
        future: Future = Future()
        with self._pusher_lock:
            if self._pusher is None or not self._pusher.is_alive():
                self._pusher = threading.Thread(target=self._push_loop, name="argus-push", daemon=True)
                self._pusher.start()
        self._pushes.put((body, content_type, future))
        return future

    def _push_loop(self) -> None:
        while True:
            first = self._pushes.get()
            if first is None:
                return
            group = [first]
            while len(group) < PUSH_GROUP:
                try:
                    item = self._pushes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._pushes.put(None)  # stop after this group
                    break
                group.append(item)
            try:
                self._accept_group(group)
            except BaseException as exc:  # noqa: BLE001 - every waiting pusher hears of it; the loop goes on
                log.exception("checking pushed batches failed")
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)

    def _accept_group(self, group: list[tuple[bytes, str | None, Future]]) -> None:
        parsed: list[tuple[pd.DataFrame, Future]] = []
        for body, content_type, future in group:
            try:
                raw = ingest.parse_body(body, content_type)
                if raw.empty:
                    self._validate(raw)  # SchemaError: "the batch has no rows"
                parsed.append((raw, future))
            except ArgusError as exc:
                future.set_exception(exc)
        if len(parsed) > 1:
            try:
                batch = self._validate(pd.concat([raw for raw, _ in parsed], ignore_index=True))
            except ArgusError:
                batch = None  # someone's problem: checked one by one below
            if batch is not None:
                try:
                    fresh = ingest.keys_of(self._spool(batch))
                except OSError as exc:
                    for _, future in parsed:
                        future.set_exception(exc)
                    return
                for raw, future in parsed:
                    kept = int(ingest.keys_of(raw).isin(fresh).sum())
                    future.set_result(self._answer(len(raw), kept))
                return
        for raw, future in parsed:
            try:
                batch = self._validate(raw)
                future.set_result(self._answer(len(batch), len(self._spool(batch))))
            except ArgusError as exc:
                self.counters.samples_rejected += _values(raw)
                future.set_exception(exc)
            except OSError as exc:  # a full or read-only disk: nothing spooled
                future.set_exception(exc)

    def _validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        manifest = store.read_manifest(self.settings.dataset)
        newest = pd.Timestamp(manifest["end"]) if manifest.get("rows") else None
        return ingest.validate_batch(raw, self.rules, newest, self.clock(), manifest.get("servers"),
                                     self.snapshot.last_sample if self.snapshot else None)

    def _spool(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Spool the rows of a checked batch that are neither stored nor waiting; returns them.

        Not under the cycle's ingest lock, so a push never waits for a cycle to store: the inbox
        forgets a batch's keys only after the dataset holds its rows, so a row is found in one or
        the other; in the rare race where it is found in neither it is spooled again, and storing
        drops a row the dataset already holds (the answer's duplicate count is then one short)."""
        stored = store.read(self.settings.dataset, start=batch[schema.TIMESTAMP].min(),
                            end=batch[schema.TIMESTAMP].max(), servers=batch[schema.SERVER].astype(str).unique(),
                            columns=[schema.SERVER, schema.TIMESTAMP])
        fresh = self.inbox.unseen(ingest.new_rows(batch, stored))
        if len(fresh):
            self.inbox.put(fresh)  # OSError (a full or read-only disk) reaches the caller: nothing spooled
        per_row = len(self.rules.metrics or schema.METRIC_COLUMNS)
        self.counters.samples_accepted += len(fresh) * per_row
        self.counters.samples_duplicate += (len(batch) - len(fresh)) * per_row
        return fresh

    @staticmethod
    def _answer(rows: int, accepted: int) -> dict:
        return {"rows": rows, "accepted": accepted, "duplicates": rows - accepted, "stored_at_next_cycle": True}

    # --- the model ---------------------------------------------------------------------------------
    def champion_id(self) -> str | None:
        try:
            return registry.champion_model_id(self.settings.models)
        except ArgusError as exc:
            self.model_error = str(exc)
            return None

    def ensure_model(self, force: bool = False):
        """The champion, loaded; after a promote or roll back the new one. A champion that fails
        to load leaves the serving model in place and is reported in ``model_error``."""
        wanted = self.champion_id()
        if wanted is None and self.model is None:
            raise ModelNotFound(self.model_error or f"no champion in {self.settings.models}; train one with "
                                "`python -m argus_core train --dataset DIR`")
        if wanted is None or (not force and self.model is not None and self.model.model_id == wanted):
            return self.model
        try:
            candidate = Forecaster.champion(self.settings.models, wanted)
        except ArgusError as exc:
            self.model_error = f"champion {wanted} failed to load: {exc}"
            log.error("%s", self.model_error)
            if self.model is None:
                raise
            return self.model
        previous = self.model.model_id if self.model is not None else None
        self.model, self.model_error = candidate, None
        if previous != candidate.model_id:
            self.events.publish("model", model_id=candidate.model_id, previous=previous)
        return self.model

    # --- the cycle ---------------------------------------------------------------------------------
    def cycle(self) -> snapshot.Snapshot:
        """Store what arrived, forecast, score, publish. ArgusError when no forecast can be made
        (the previous snapshot stays published)."""
        with self._cycle_lock:
            started = time.perf_counter()
            try:
                result = self._cycle(started)
            except Exception as exc:
                self.counters.cycle_failures += 1
                self.counters.last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ArgusError) \
                    else str(exc)
                self.events.publish("cycle_failed", error=self.counters.last_error)
                raise
            self.counters.cycles += 1
            self.counters.last_success = time.time()
            self.counters.last_error = None
            self.counters.last_cycle_seconds = result.cycle_seconds
            return result

    def _cycle(self, started: float) -> snapshot.Snapshot:
        accepted, failed = 0, None
        for source in self.sources:
            try:
                if source is self.inbox:
                    with self._ingest_lock:  # a push sees the inbox and the dataset before this or after it
                        accepted += self._take(source, *source.pull())
                    continue
                rows, token = source.pull()  # a pull from elsewhere may be slow: pushes go on meanwhile
                with self._ingest_lock:
                    accepted += self._take(source, rows, token)
            except ArgusError as exc:
                if source is self.inbox:
                    raise
                self.source_errors[source.name] = str(exc)
                failed = exc
                log.warning("source %s: %s", source.name, exc)
                self.events.publish("source_failed", source=source.name, error=str(exc))
            else:
                if source.name in self.source_errors:
                    self.events.publish("source_recovered", source=source.name)
                self.source_errors.pop(source.name, None)
        if failed is not None and not accepted and self.snapshot is not None:
            raise failed  # nothing new: the last snapshot stays, marked stale
        model = self.ensure_model()
        spec = model.spec
        manifest = store.read_manifest(self.settings.dataset)
        if not manifest.get("rows"):
            raise DatasetError(f"{self.settings.dataset} holds no rows yet: push samples to /api/v1/samples")
        history = store.read_recent(self.settings.dataset, spec.history_steps + store.LATE_SLACK, None, manifest)
        last = history.groupby(schema.SERVER, observed=True)[schema.TIMESTAMP].max()
        newest = pd.Timestamp(manifest["end"])
        stale = {str(s): f"stale: no sample since {t.isoformat()}" for s, t in last.items()
                 if newest - t > self.settings.stale_after}
        if stale:
            history = history[~history[schema.SERVER].astype(str).isin(list(stale))]
        threads.use_threads(self.settings.threads)
        profiles = {str(k): str(v) for k, v in manifest.get("servers", {}).items()}
        judge = self._judge(model, manifest)
        try:
            assessment = fleet.assess(history, model, rules=self.rules_set, judge=judge,
                                      previous_levels=self.levels, profiles=profiles)
        except ArgusError as exc:
            if not stale:
                raise
            names, quiet = sorted(stale), schema.duration_text(self.settings.stale_after)
            raise DatasetError(f"{exc}; left out as stale (no sample for {quiet} before the newest, "
                               f"{newest.isoformat()}): {', '.join(names[:10])}"
                               + (f" and {len(names) - 10} more" if len(names) > 10 else "")) from exc
        generation = (self.snapshot.generation + 1) if self.snapshot else 1
        published = snapshot.Snapshot(
            generation=generation, assessment=assessment, data_end=manifest.get("end"), created=utc_now().isoformat(),
            cycle_seconds=round(time.perf_counter() - started, 4),
            last_sample={str(k): v.isoformat() for k, v in last.items()}, stale=stale,
            model_error=self.model_error, accepted=accepted, every_seconds=self.settings.every.total_seconds(),
            history_steps=model.history_steps,
            data_arrived=utc_now().isoformat() if accepted or self.snapshot is None else self.snapshot.data_arrived)
        snapshot.save(self.settings.state_dir, published)
        exporter.snapshot_text(published)  # rendered here, once, so no scrape waits for it
        levels = assessment.levels
        changes = {s: (self.levels.get(s), level) for s, level in levels.items() if self.levels.get(s) != level}
        self.snapshot, self.levels = published, levels
        for server, (before, after) in changes.items():
            self.events.publish("level", server=server, before=before, after=after)
        self._advance_alerts(assessment, published.abnormal, profiles, stale)
        self.events.publish("cycle", generation=generation, model_id=model.model_id, data_end=published.data_end,
                            seconds=published.cycle_seconds, accepted=accepted,
                            levels=fleet.level_counts(assessment.ranking) if len(assessment.ranking) else {})
        return published

    def _judge(self, model: Forecaster, manifest: dict) -> anomaly.Judge | None:
        """Abnormal now from the running scorer (its baseline read from the dataset once, then only
        each cycle's new rows), rebuilt when the detector beside the serving model changes; None
        when there is no detector this Argus can read."""
        path = model.path / anomaly.FILE
        try:
            stat = path.stat()
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            if self._scorer is None or self._scorer_key != key:
                self._scorer, self._scorer_key = anomaly.RunningScorer(anomaly.AnomalyModel.load(model.path)), key
        except (OSError, ArgusError):
            self._scorer = self._scorer_key = None
            return None
        scorer = anomaly.running_judge(self._scorer, self.settings.dataset, manifest)

        def judge(history: pd.DataFrame):
            found = scorer(history)
            if found[0] is None:  # the scorer could not follow this data: start it again next cycle
                self._scorer = self._scorer_key = None
            return found

        return judge

    def _advance_alerts(self, assessment: fleet.Assessment, abnormal, profiles, stale) -> None:
        with self._alerts_lock:
            changed = self.alerts.evaluate(assessment.as_of, assessment.per_metric, assessment.ranking, abnormal,
                                           assessment.forecast.importance, profiles, stale)
            current = list(self.alerts.alerts.values())
        self.save_alerts()
        for alert in changed:
            self.events.publish("alert", rule=alert.rule, server=alert.server, metric=alert.metric,
                                state=alert.state, summary=alert.summary)
        self.dispatcher.submit(current, changed, self.clock())

    def add_silence(self, entry: dict) -> alerting.Silence:
        """A silence sent to the service: checked (SettingsError, nothing kept), given an id, kept
        across restarts until it ends or is expired."""
        problems: list[str] = []
        if not isinstance(entry, dict) or "id" in entry:
            raise SettingsError("send a silence as {\"server\": \"web-*\", \"until\": \"...\", \"comment\": "
                                "\"...\"}; the service gives it its id")
        silence = alerting.silence_of(entry, "silence", problems, now=self.clock())
        if silence is None:
            raise SettingsError("; ".join(problems))
        silence = dataclasses.replace(silence, id=secrets.token_hex(6))
        with self._alerts_lock:
            self.alerts.extra_silences.append(silence)
            self._silence_alerts()
        self.save_alerts()
        return silence

    def reload_rules(self) -> alerting.RuleSet:
        """Read the rules file again (after an edit): a file with problems is refused
        (SettingsError listing them) and the rules in force stay; open alerts are judged by the
        new rules from the next cycle."""
        if self.settings.rules is None:
            raise SettingsError("this service runs without alert rules (--rules none): restart it with a rules file")
        fresh = alerting.load_rules(self.settings.rules)
        with self._alerts_lock:
            self.rules_set = fresh
            self.alerts.rules = fresh
        self.save_alerts()
        return fresh

    def expire_silence(self, silence_id: str) -> alerting.Silence:
        """End a silence sent to the service now (ModelNotFound-like 404 when there is none)."""
        with self._alerts_lock:
            found = next((s for s in self.alerts.extra_silences if s.id and s.id == silence_id), None)
            if found is None:
                raise UnknownItem(f"no silence {silence_id!r}: see GET /api/v1/silences (silences of the rules "
                                  "file end when they are removed from it)")
            self.alerts.extra_silences.remove(found)
            self._silence_alerts()
        self.save_alerts()
        return found

    def _silence_alerts(self) -> None:
        now = self.clock()
        for alert in self.alerts.alerts.values():
            alert.silenced = any(s.covers(alert, now) for s in self.alerts.silences)

    def _take(self, source: Source, rows: pd.DataFrame | None, token) -> int:
        try:
            stored = self._store(rows, source.name) if rows is not None and len(rows) else 0
        except SchemaError:
            if source is not self.inbox:
                raise
            stored = self._store_each(token)
        if rows is not None:
            source.done(token)
        return stored

    def _store_each(self, files: list[Path]) -> int:
        """The inbox's batches one by one, when together they were refused: a batch the dataset
        refuses (checked at push against what was stored then; the dataset may have moved on) is
        set aside with its reason and counted as rejected, and the others are stored."""
        stored = 0
        for path in files:
            rows = pd.read_parquet(path)
            try:
                stored += self._store(rows, self.inbox.name)
            except SchemaError as exc:
                moved = self.inbox.reject(path, str(exc))
                self.counters.samples_rejected += len(rows) * len(self.rules.metrics or schema.METRIC_COLUMNS)
                log.warning("pushed batch set aside in %s: %s", moved, exc)
                self.events.publish("batch_rejected", rows=len(rows), path=str(moved), error=str(exc))
        return stored

    def _store(self, rows: pd.DataFrame, source: str) -> int:
        """Append rows the dataset does not hold yet (a kill after the last append, or a batch spooled
        twice, stores nothing twice). A known server keeps the dataset's profile: a pulled series
        whose profile label went away or changed would otherwise be refused at every cycle."""
        known = store.read_manifest(self.settings.dataset).get("servers") or {}
        if known and schema.PROFILE in rows.columns:
            stored = rows[schema.SERVER].astype(str).map(known)
            moved = (stored.notna() & (stored != rows[schema.PROFILE].astype(str))).to_numpy()
            if moved.any():
                names = sorted(set(rows[schema.SERVER].astype(str)[moved]) - self._profile_warned)
                if names:
                    log.warning("source %s gives %s another profile than the dataset's; the dataset's is kept",
                                source, ", ".join(names[:5]) + (" ..." if len(names) > 5 else ""))
                    self._profile_warned.update(names)
                rows = rows.assign(**{schema.PROFILE: stored.where(moved, rows[schema.PROFILE].astype(str)).to_numpy()})
        return ingest.append_new(self.settings.dataset, rows, f"live {source}", self.rules.step, self.rules.metrics)

    # --- the timer -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Run a cycle now and then every ``settings.every`` in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="argus-cycle", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def halt(self) -> None:
        """No cycle starts from now on (a SIGTERM: the replacement may already be starting); the
        one running, if any, ends; ``stop`` then waits for it and flushes the sinks."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        with self._pusher_lock:
            if self._pusher is not None and self._pusher.is_alive():
                self._pushes.put(None)  # the pushes already waiting are answered first
        if self._thread is not None:
            self._thread.join(timeout)
        self.dispatcher.flush(min(timeout, 10.0))  # what the last cycle owes the sinks goes out first

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.cycle()
            except ArgusError as exc:
                log.warning("cycle: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad cycle; the error is counted
                log.exception("cycle failed")
            self._wake.wait(self.settings.every.total_seconds())
            self._wake.clear()

    # --- reads -------------------------------------------------------------------------------------
    @property
    def stale(self) -> bool:
        """The published snapshot is not being renewed: a source fails, no model loads, or the
        last cycle failed (a service that never completed one is stale from its first failure)."""
        return bool(self.source_errors) or (self.model is None and self.model_error is not None) \
            or self.counters.last_error is not None

    def late_by(self) -> float | None:
        """Seconds past the moment the next cycle was due (None before the first good one)."""
        if self.counters.last_success is None:
            return None
        return max(0.0, time.time() - self.counters.last_success - self.settings.every.total_seconds())


def _values(raw) -> int:
    """Values in a refused batch, for the rejected counter (0 when it was not even parseable)."""
    if raw is None:
        return 0
    metrics = [c for c in raw.columns if c not in (schema.TIMESTAMP, schema.SERVER, schema.STATUS, schema.PROFILE)]
    return int(len(raw) * max(1, len(metrics)))
