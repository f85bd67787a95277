"""The live service over HTTP (FastAPI; OpenAPI docs at ``/docs``).

    POST /api/v1/samples            a batch (JSON records or CSV): 200 with what was kept, 422 listing
                                    every problem (nothing stored), 413 over the body limit
    POST /api/v1/cycle              run a cycle now
    GET  /api/v1/risk               the fleet ranking of the last snapshot
    GET  /api/v1/servers/{name}     one server: level, risk per metric, forecast paths, the "why"
    GET  /api/v1/models             the registry;  POST /api/v1/models/reload  load the champion now
    GET  /api/v1/runs[/{id}]        the run store: runs, one run's metrics and events
    POST /api/v1/runs               record a run of any training loop; then POST .../{id}/metrics
                                    (batches) and POST .../{id}/status (running, completed, failed ...)
    GET  /api/v1/alerts             firing and recently resolved alerts (rule, server, metric, lead time)
    GET  /api/v1/silences;  POST /api/v1/silences  {"server": "web-*", "until": "...", "comment": "..."}
    DELETE /api/v1/silences/{id}    expire a silence now
    GET  /api/v1/events             server-sent events: one per cycle, level change, model change, alert
    GET  /metrics                   Prometheus exposition;  GET /healthz, /readyz

Writing endpoints need ``Authorization: Bearer <token>`` when the service was given a token (it
must be, to listen beyond 127.0.0.1); reads too when ``private_reads``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response, StreamingResponse

from argus_core.access import audit, tokens
from argus_core.access.roles import Actor
from argus_core.data import schema
from argus_core.errors import ArgusError, DatasetError, ModelNotFound, SchemaError, SettingsError, UnknownItem
from argus_core.fleet import alerting
from argus_core.live import exporter
from argus_core.live.service import Service
from argus_core.model import registry, series_key
from argus_core.runs import jobs
from argus_core.runs.store import ENDED, REST, RunStore, default_path

RETENTION_DAYS = 30.0  # run metrics older than this are pruned


@dataclass(frozen=True)
class Access:
    token: str | None = None  # the single token of old (--token-file, ARGUS_TOKEN): every scope
    private_reads: bool = False  # reads need a token with the read scope too
    tokens: Path | None = None  # the file of scoped tokens (``argus_core token ...``), read again when it changes


class Guards:
    """Who calls, and whether they may: each endpoint needs a scope (``access.tokens.SCOPES``).
    A service with no token at all (loopback only) is open; with any, writes need a live token
    with the endpoint's scope (401 without one, 403 with one that lacks it), reads too under
    private reads, and the audit trail always. Audited actions record refusals too. The check runs
    on the event loop (a hash and a stat: no thread hop for every push and scrape); only a refusal's
    record is written from a thread."""

    def __init__(self, access: Access, models: Path):
        self.book = tokens.TokenBook(access.tokens, access.token)
        self.private = access.private_reads
        self.models = models

    async def caller(self, request: Request, scope: str, always: bool = False, action: str | None = None) -> Actor:
        source = request.client.host if request.client else ""
        if not self.book.configured:
            return Actor("anyone (no token)", "open", "api", source)
        if scope == "read" and not (self.private or always):
            return Actor("anyone (public read)", "open", "api", source)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given.strip()
        token = self.book.find(given) if scheme.lower() == "bearer" and given else None
        if token is None:
            await self._refused(action, Actor("unknown token" if given else "no token", "-", "api", source),
                                "no live token")
            raise HTTPException(401, f"this endpoint needs Authorization: Bearer <token> (a live token of this "
                                     f"service with the {scope} scope)", headers={"WWW-Authenticate": "Bearer"})
        if not token.allows(scope):
            actor = Actor(token.name, ",".join(token.scopes), "api", source)
            await self._refused(action, actor, f"lacks the {scope} scope")
            raise HTTPException(403, f"the token {token.name} lacks the {scope} scope this endpoint needs "
                                     f"(its scopes: {', '.join(token.scopes)})")
        return Actor(token.name, ",".join(token.scopes), "api", source)

    async def _refused(self, action: str | None, actor: Actor, why: str) -> None:
        if action is not None:
            try:
                await asyncio.to_thread(audit.record, self.models, actor, action, "", "refused", why)
            except ArgusError:
                pass  # an unwritable run store must not turn a 401 into a 500

    def need(self, scope: str, always: bool = False, action: str | None = None):
        async def check(request: Request) -> Actor:
            return await self.caller(request, scope, always, action)
        return Depends(check)

    async def audited(self, actor: Actor, action: str, target: str, do, detail=None):
        """``do()`` off the event loop, recorded in the audit trail when done (bad input changes
        nothing stored, the trail included)."""
        result = await asyncio.to_thread(do)
        said = detail(result) if callable(detail) else (detail or "")
        what = target(result) if callable(target) else target
        await asyncio.to_thread(audit.record, self.models, actor, action, what, "done", said)
        return result


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """A frame as JSON records: ISO 8601 times, NaN as null."""
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


def create_app(service: Service, access: Access = Access(), retention_days: float = RETENTION_DAYS) -> FastAPI:
    private = access.private_reads  # then the API's own description is behind the token too
    app = FastAPI(title="Argus live service", version="1",
                  description="Forecast-based risk for a server fleet, kept current as samples arrive.",
                  docs_url=None if private else "/docs", redoc_url=None if private else "/redoc",
                  openapi_url=None if private else "/openapi.json")
    app.state.service = service
    guards = Guards(access, Path(service.settings.models))
    reader = guards.need("read")

    @app.exception_handler(ArgusError)
    async def argus_error(request: Request, exc: ArgusError) -> JSONResponse:
        if isinstance(exc, SchemaError):
            return JSONResponse({"detail": str(exc), "problems": [str(p) for p in exc.problems]}, status_code=422)
        code = 404 if isinstance(exc, ModelNotFound | UnknownItem) else 400 if isinstance(exc, SettingsError) else \
            503 if isinstance(exc, DatasetError) else 409
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(OSError)
    async def disk_error(request: Request, exc: OSError) -> JSONResponse:
        return JSONResponse({"detail": f"the service could not write: {exc.strerror or exc}; nothing was stored"},
                            status_code=507)

    if private:
        @app.get("/openapi.json", dependencies=[reader], include_in_schema=False)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", dependencies=[reader], include_in_schema=False)
        def docs():
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Argus live service")

    for routes in (_health(service, private), _fleet(service, guards), _alerts(service, guards),
                   _models(service, guards), _runs(service, guards, retention_days), _streams(service, reader)):
        app.include_router(routes)
    return app


def _health(service: Service, private: bool = False) -> APIRouter:
    """Liveness and readiness, never behind the token (a load balancer asks them); under private
    reads they say no more than ready or not (no model id, no data time)."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        snap = service.snapshot
        if snap is None or (service.model is None and service.model_error):  # the saved snapshot, no model
            detail = service.model_error or service.counters.last_error or "no forecast yet"
            return JSONResponse({"ready": False, **({} if private else {"detail": detail})}, status_code=503)
        if service.source_errors:
            problems = "; ".join(f"{name}: {text}" for name, text in service.source_errors.items())
            return JSONResponse({"ready": False, "stale": True, **({} if private else {
                "generation": snap.generation,
                "detail": f"{problems}; still serving the forecast from data up to {snap.data_end}"})},
                status_code=503)
        return JSONResponse({"ready": True, **({} if private else {"generation": snap.generation,
                                                                     "model_id": snap.model_id})})
    return router


def _fleet(service: Service, guards: Guards) -> APIRouter:
    """Samples in; a cycle on demand; the last snapshot's ranking and one server's detail out."""
    router = APIRouter()
    reader = guards.need("read")

    @router.post("/api/v1/samples", dependencies=[guards.need("ingest")])
    async def samples(request: Request) -> dict:
        _not_compressed(request)
        body = await _body(request, service.settings.max_body_bytes)
        # checked with the pushes that arrive meanwhile, on the service's push thread: waiting holds no thread
        return await asyncio.wrap_future(service.submit(body, request.headers.get("content-type")))

    @router.post("/api/v1/cycle", dependencies=[guards.need("operate")])
    async def cycle() -> dict:
        snap = await asyncio.to_thread(service.cycle)
        return {"generation": snap.generation, "model_id": snap.model_id, "data_end": snap.data_end,
                "seconds": snap.cycle_seconds, "accepted": snap.accepted}

    def current():
        if service.snapshot is None:
            raise DatasetError(service.counters.last_error or "no forecast yet: the first cycle has not finished")
        return service.snapshot

    @router.get("/api/v1/risk", dependencies=[reader])
    def fleet_risk() -> dict:
        snap = current()
        return {**_status(service), "servers": frame_records(snap.ranking)}

    @router.get("/api/v1/servers/{name}", dependencies=[reader])
    def server(name: str) -> dict:
        snap = current()
        ranked = snap.ranking[snap.ranking[schema.SERVER].astype(str) == name]
        if ranked.empty:
            reason = snap.skipped.get(name)
            raise HTTPException(404, f"no forecast for server {name!r}" + (f": {reason}" if reason else
                                                                           "; see /api/v1/risk for the fleet"))
        per_metric = snap.per_metric[snap.per_metric[schema.SERVER].astype(str) == name]
        paths = snap.quantiles[snap.quantiles[schema.SERVER].astype(str) == name]
        why = snap.importance[snap.importance[schema.SERVER].astype(str) == name].head(5)
        return {**_status(service), **frame_records(ranked)[0], "metrics": frame_records(per_metric),
                "forecast": frame_records(paths), "why": frame_records(why),
                "last_sample": snap.last_sample.get(name),
                # what forecasts each metric: "tft", or the simple method or blend chosen on validation
                "served_by": {str(m): snap.served_by.get(series_key(name, str(m)), "tft")
                              for m in per_metric["metric"].astype(str)},
                # the model that forecasts this server: its own fine-tuned one (train --server), or the fleet's
                "model_id": snap.forecast_by.get(name, snap.model_id),
                "own_model": name in snap.forecast_by}
    return router


def _alerts(service: Service, guards: Guards) -> APIRouter:
    """The alert book, silences and the rules; the audit trail."""
    router = APIRouter()
    reader = guards.need("read")

    @router.get("/api/v1/alerts", dependencies=[reader])
    def alerts(state: str | None = None) -> dict:
        if state not in (None, "firing", "resolved"):
            raise HTTPException(422, "state must be firing or resolved")
        frame = alerting.alerts_frame(service.alerts.to_json())
        if state:
            frame = frame[frame["state"] == state]
        frame = frame.assign(lead_seconds=pd.to_timedelta(frame["lead"]).dt.total_seconds()).drop(columns=["lead"])
        return {"rules": [r.name for r in service.rules_set.rules], "rules_file": service.rules_set.source,
                "alerts": frame_records(frame), "deliveries": {"ok": service.dispatcher.delivered,
                                                               "failed": service.dispatcher.failures,
                                                               "last_error": service.dispatcher.last_error}}

    @router.get("/api/v1/silences", dependencies=[reader])
    def silences() -> list[dict]:
        return service.alerts.to_json()["silences"] + [
            {**alerting.silence_json(s), "from_rules_file": True} for s in service.rules_set.silences]

    adding, expiring = guards.need("operate", action="silence.add"), guards.need("operate", action="silence.expire")
    reloading, auditor = guards.need("admin", action="rules.change"), guards.need("read", always=True)

    @router.post("/api/v1/silences", status_code=201)
    async def silence(request: Request, actor: Actor = adding) -> dict:
        payload = await _json_object(request, service.settings.max_body_bytes)
        made = await guards.audited(actor, "silence.add", lambda s: s.id, lambda: service.add_silence(payload),
                                    lambda s: json.dumps(alerting.silence_json(s), default=str))
        return alerting.silence_json(made)

    @router.delete("/api/v1/silences/{silence_id}")
    async def expire(silence_id: str, actor: Actor = expiring) -> dict:
        ended = await guards.audited(actor, "silence.expire", silence_id[:100],
                                     lambda: service.expire_silence(silence_id))
        return {"expired": alerting.silence_json(ended)}

    @router.post("/api/v1/rules/reload")
    async def rules_reload(actor: Actor = reloading) -> dict:
        """Read the rules file again; a file with problems is refused (400) and the rules in force stay."""
        fresh = await guards.audited(actor, "rules.change", str(service.settings.rules or ""), service.reload_rules,
                                     lambda r: f"{len(r.rules)} rule(s) from {r.source}")
        return {"rules": [r.name for r in fresh.rules], "rules_file": fresh.source}

    @router.get("/api/v1/audit")
    def audit_trail(actor: Actor = auditor, limit: int = 100) -> list[dict]:
        """Who did what: promotes, roll backs, trainings, silences, rules and tokens, newest first."""
        if not 1 <= limit <= 10_000:
            raise HTTPException(422, "limit must be between 1 and 10000")
        frame = audit.trail(service.settings.models, limit)
        return frame_records(frame.assign(time=pd.to_datetime(frame["time"], unit="s", utc=True)))
    return router


def _models(service: Service, guards: Guards) -> APIRouter:
    """The registry and the serving model; a reload of the champion now."""
    router = APIRouter()
    reader = guards.need("read")

    @router.get("/api/v1/models", dependencies=[reader])
    def models() -> dict:
        return {**registry.read(service.settings.models), "serving": service.model.model_id if service.model else None,
                "model_error": service.model_error}

    reloading = guards.need("admin", action="model.reload")

    @router.post("/api/v1/models/reload")
    async def reload(actor: Actor = reloading) -> dict:
        await guards.audited(actor, "model.reload", registry.champion_model_id(service.settings.models) or "",
                             lambda: service.ensure_model(True))
        return {"serving": service.model.model_id if service.model else None, "model_error": service.model_error}
    return router


MAX_METRIC_ROWS = 10_000  # rows of one POST /api/v1/runs/{id}/metrics; more: 413, send them in batches
MAX_STEP = 2**62  # steps and epochs fit SQLite's 64-bit integers with room to spare
RunId = Annotated[int, FastPath(ge=1, le=MAX_STEP, description="a run's id")]


def _runs(service: Service, guards: Guards, retention_days: float) -> APIRouter:
    """The run store, for any training loop. Runs recorded here are marked as such: they are not
    reaped by process id, never block this Argus's trainings, and cannot be resumed here."""
    router = APIRouter()
    reader, writer = guards.need("read"), guards.need("runs")

    def runs_read() -> RunStore:
        return RunStore(default_path(service.settings.models), create=False)

    @router.get("/api/v1/runs", dependencies=[reader])
    def runs_list() -> list[dict]:
        return [_run(r) for r in runs_read().list()]

    def known(runs: RunStore, run_id: int):
        try:
            return runs.get(run_id)
        except ArgusError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get("/api/v1/runs/{run_id}", dependencies=[reader])
    def run_detail(run_id: RunId) -> dict:
        runs = runs_read()
        run = known(runs, run_id)
        return {**_run(run), "metrics": frame_records(runs.metrics(run_id)),
                "events": frame_records(runs.events(run_id))}

    @router.post("/api/v1/runs", dependencies=[writer], status_code=201)
    async def run_create(request: Request) -> dict:
        payload = await _json_object(request, service.settings.max_body_bytes)
        name, dataset = payload.get("name"), payload.get("dataset", "")
        settings = payload.get("settings", {})
        if not isinstance(name, str) or not name.strip() or not isinstance(dataset, str) \
                or not isinstance(settings, dict):
            raise HTTPException(422, 'send {"name": text, "dataset": text (optional), "settings": object (optional)}')
        webhook = settings.get("webhook")
        if webhook is not None and (not isinstance(webhook, str) or not jobs.web_url(webhook)):
            raise HTTPException(422, "settings.webhook must be an http:// or https:// URL")

        def create() -> int:
            runs = RunStore(default_path(service.settings.models))
            made = runs.create(name.strip()[:200], settings, dataset[:1000], status="running", origin=REST)
            runs.prune_metrics(time.time() - retention_days * 86400)
            return made
        return {"id": await asyncio.to_thread(create)}

    @router.post("/api/v1/runs/{run_id}/metrics", dependencies=[writer])
    async def run_metrics(run_id: RunId, request: Request) -> dict:
        payload = await _json_body(request, service.settings.max_body_bytes)
        rows = payload if isinstance(payload, list) else payload.get("metrics") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise HTTPException(422, 'send [{"step": int, "epoch": int, "values": {name: number}}, ...]')
        if len(rows) > MAX_METRIC_ROWS:
            raise HTTPException(413, f"{len(rows):,} rows in one request; at most {MAX_METRIC_ROWS:,}: send them in "
                                     "batches")
        parsed = [_metric_row(index, row) for index, row in enumerate(rows)]

        def store() -> int:  # off the event loop, one transaction
            runs = RunStore(default_path(service.settings.models))
            run = known(runs, run_id)
            if not run.external:
                raise HTTPException(409, f"run {run_id} is a training of this Argus; it records its own metrics")
            runs.log_many(run_id, parsed)
            return len(parsed)
        return {"stored": await asyncio.to_thread(store)}

    @router.post("/api/v1/runs/{run_id}/status", dependencies=[writer])
    async def run_status(run_id: RunId, request: Request) -> dict:
        payload = await _json_object(request, service.settings.max_body_bytes)
        status = payload.get("status")
        if status not in ENDED + ("running",):
            raise HTTPException(422, f"status must be one of running, {', '.join(ENDED)}")
        fields = {}
        for key in ("error", "model_id"):
            if payload.get(key) is not None and not isinstance(payload[key], str):
                raise HTTPException(422, f"{key} must be text")
            if isinstance(payload.get(key), str):
                fields[key] = payload[key][:2000]
        if "model_id" in fields and not registry.valid_id(fields["model_id"]):
            raise HTTPException(422, "model_id must be a model directory's name: letters, digits and . _ - only, "
                                     "at most 128, no path")

        def change():
            runs = RunStore(default_path(service.settings.models))
            run = known(runs, run_id)
            if not run.external:
                raise HTTPException(409, f"run {run_id} is a training of this Argus: cancel it with "
                                         f"`python -m argus_core runs cancel {run_id}` or from the Training console")
            if run.status in ENDED or status == run.status:
                raise HTTPException(409, f"run {run_id} is {run.status}; a run moves forward only (running, then "
                                         f"one of {', '.join(ENDED)})")
            if status in ENDED:
                runs.finish(run_id, status, **fields)
                webhook = run.settings.get("webhook")
                detail = f": {fields['error']}" if fields.get("error") else ""
                if webhook:  # sent from its own thread: a slow receiver holds nobody up
                    threading.Thread(target=jobs.notify, name="argus-webhook", daemon=True, args=(
                        webhook, {"text": f"Argus training run {run_id} ({run.name}) {status}{detail}"}, runs,
                        run_id)).start()
            else:
                runs.update(run_id, status=status, **fields)
            return _run(runs.get(run_id))
        return await asyncio.to_thread(change)
    return router


def _metric_row(index: int, row) -> tuple[int, int, dict[str, float]]:
    """One row of run metrics, checked: 422 naming the row and the field."""
    def refuse(field: str, what: str):
        raise HTTPException(422, f"row {index}: {field} {what}; send "
                                 '[{"step": int, "epoch": int, "values": {name: number}}, ...]')
    if not isinstance(row, dict):
        refuse("the row", "is not an object")
    step, epoch, values = row.get("step"), row.get("epoch", 0), row.get("values")
    for field, number in (("step", step), ("epoch", epoch)):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_STEP:
            refuse(field, f"must be a whole number from 0 to {MAX_STEP:,}")
    if not isinstance(values, dict) or not values:
        refuse("values", "must be an object of name: number")
    if len(values) > 1000:
        refuse("values", "holds more than 1,000 names")
    for name, value in values.items():
        if not name or len(name) > 200:
            refuse("a value's name", "must be 1 to 200 characters")
        if isinstance(value, bool) or not isinstance(value, int | float):
            refuse(f"values.{name}", "must be a number")
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            refuse(f"values.{name}", "must be a finite number (within a 64-bit float)")
    return step, epoch, {name: float(value) for name, value in values.items()}


def _streams(service: Service, reader) -> APIRouter:
    """Server-sent events and the Prometheus exposition."""
    router = APIRouter()

    @router.get("/api/v1/events", dependencies=[reader])
    async def events(request: Request, after: int = 0, limit: int = 0) -> StreamingResponse:
        async def stream():
            last, sent = after, 0
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                batch = await _next_events(service.events, last, 15.0)
                if not batch:
                    yield ": keep-alive\n\n"
                    continue
                for event in batch:
                    yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event, default=str)}\n\n"
                    last, sent = event["id"], sent + 1
                    if limit and sent >= limit:
                        return

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @router.get("/metrics", dependencies=[reader])
    async def metrics() -> Response:  # on the loop: the snapshot's text is rendered once per cycle, never here
        return Response(exporter.exposition(service), media_type=exporter.CONTENT_TYPE)
    return router


async def _next_events(hub, last: int, timeout: float, every: float = 0.2) -> list[dict]:
    """Messages after ``last``, waiting up to ``timeout`` on the event loop itself: an idle follower
    holds no thread, so any number of them leave the threads to pushes and reads."""
    deadline = time.monotonic() + timeout
    while hub.last_id <= last and time.monotonic() < deadline:
        await asyncio.sleep(every)
    return hub.after(last)


def _status(service: Service) -> dict:
    snap = service.snapshot
    return {"generation": snap.generation, "model_id": snap.model_id, "data_end": snap.data_end, "as_of": snap.as_of,
            "created": snap.created, "cycle_seconds": snap.cycle_seconds, "model_error": snap.model_error,
            "late_by_seconds": service.late_by(), "stale": service.stale,
            "source_errors": dict(service.source_errors)}


def _run(run) -> dict:
    return {"id": run.id, "name": run.name, "status": run.status, "dataset": run.dataset, "started": run.started,
            "ended": run.ended, "model_id": run.model_id, "error": run.error, "resumed_from": run.resumed_from,
            "settings": {k: v for k, v in run.settings.items() if k != "webhook"}}


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}: send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body passes the limit of {limit:,} bytes: send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request, limit: int):
    body = await _body(request, limit)
    _not_compressed(request)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"the body must be UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:
        raise HTTPException(422, "the body's JSON is nested too deeply") from exc


def _not_compressed(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPException(415, f"Content-Encoding {encoding} is not supported: send the body uncompressed")


async def _json_object(request: Request, limit: int) -> dict:
    payload = await _json_body(request, limit)
    if not isinstance(payload, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return payload

