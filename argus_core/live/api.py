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
    GET  /api/v1/events             server-sent events: one per cycle, level change, model change, alert
    GET  /metrics                   Prometheus exposition;  GET /healthz, /readyz

Writing endpoints need ``Authorization: Bearer <token>`` when the service was given a token (it
must be, to listen beyond 127.0.0.1); reads too when ``private_reads``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from argus_core.data import schema
from argus_core.errors import ArgusError, DatasetError, ModelNotFound, SchemaError, SettingsError
from argus_core.fleet import alerting
from argus_core.live import exporter
from argus_core.live.service import Service
from argus_core.model import registry, series_key
from argus_core.runs import jobs
from argus_core.runs.store import STATUSES, RunStore, default_path

RETENTION_DAYS = 30.0  # run metrics older than this are pruned


@dataclass(frozen=True)
class Access:
    token: str | None = None  # required on writes when set
    private_reads: bool = False  # reads need the token too


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """A frame as JSON records: ISO 8601 times, NaN as null."""
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


def create_app(service: Service, access: Access = Access(), retention_days: float = RETENTION_DAYS) -> FastAPI:
    app = FastAPI(title="Argus live service", version="1",
                  description="Forecast-based risk for a server fleet, kept current as samples arrive.")
    app.state.service = service

    def check(request: Request) -> None:
        if access.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), access.token.encode()):
            raise HTTPException(401, "this endpoint needs Authorization: Bearer <token> (the service's token)",
                                headers={"WWW-Authenticate": "Bearer"})

    def check_read(request: Request) -> None:
        if access.private_reads:
            check(request)

    writer, reader = Depends(check), Depends(check_read)

    @app.exception_handler(ArgusError)
    async def argus_error(request: Request, exc: ArgusError) -> JSONResponse:
        if isinstance(exc, SchemaError):
            return JSONResponse({"detail": str(exc), "problems": [str(p) for p in exc.problems]}, status_code=422)
        code = 404 if isinstance(exc, ModelNotFound) else 400 if isinstance(exc, SettingsError) else \
            503 if isinstance(exc, DatasetError) else 409
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(OSError)
    async def disk_error(request: Request, exc: OSError) -> JSONResponse:
        return JSONResponse({"detail": f"the service could not write: {exc.strerror or exc}; nothing was stored"},
                            status_code=507)

    for routes in (_health(service), _fleet(service, reader, writer), _alerts(service, reader, writer),
                   _models(service, reader, writer), _runs(service, reader, writer, retention_days),
                   _streams(service, reader)):
        app.include_router(routes)
    return app


def _health(service: Service) -> APIRouter:
    """Liveness and readiness, never behind the token (a load balancer asks them)."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        snap = service.snapshot
        if snap is None:
            return JSONResponse({"ready": False, "detail": service.counters.last_error or "no forecast yet"},
                                status_code=503)
        if service.source_errors:
            problems = "; ".join(f"{name}: {text}" for name, text in service.source_errors.items())
            return JSONResponse({"ready": False, "stale": True, "generation": snap.generation,
                                 "detail": f"{problems}; still serving the forecast from data up to {snap.data_end}"},
                                status_code=503)
        return JSONResponse({"ready": True, "generation": snap.generation, "model_id": snap.model_id})
    return router


def _fleet(service: Service, reader, writer) -> APIRouter:
    """Samples in; a cycle on demand; the last snapshot's ranking and one server's detail out."""
    router = APIRouter()

    @router.post("/api/v1/samples", dependencies=[writer])
    async def samples(request: Request) -> dict:
        body = await _body(request, service.settings.max_body_bytes)
        return await asyncio.to_thread(service.accept, body, request.headers.get("content-type"))

    @router.post("/api/v1/cycle", dependencies=[writer])
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


def _alerts(service: Service, reader, writer) -> APIRouter:
    """The alert book and silences."""
    router = APIRouter()

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

    @router.post("/api/v1/silences", dependencies=[writer], status_code=201)
    async def silence(request: Request) -> dict:
        payload = await _json_object(request, service.settings.max_body_bytes)
        made = await asyncio.to_thread(service.add_silence, payload)
        return alerting.silence_json(made)
    return router


def _models(service: Service, reader, writer) -> APIRouter:
    """The registry and the serving model; a reload of the champion now."""
    router = APIRouter()

    @router.get("/api/v1/models", dependencies=[reader])
    def models() -> dict:
        return {**registry.read(service.settings.models), "serving": service.model.model_id if service.model else None,
                "model_error": service.model_error}

    @router.post("/api/v1/models/reload", dependencies=[writer])
    async def reload() -> dict:
        await asyncio.to_thread(service.ensure_model, True)
        return {"serving": service.model.model_id if service.model else None, "model_error": service.model_error}
    return router


def _runs(service: Service, reader, writer, retention_days: float) -> APIRouter:
    """The run store, for any training loop."""
    router = APIRouter()

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
    def run_detail(run_id: int) -> dict:
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
        runs = RunStore(default_path(service.settings.models))
        run_id = runs.create(name.strip()[:200], settings, dataset, status="running")
        runs.prune_metrics(time.time() - retention_days * 86400)
        return {"id": run_id}

    @router.post("/api/v1/runs/{run_id}/metrics", dependencies=[writer])
    async def run_metrics(run_id: int, request: Request) -> dict:
        payload = await _json_body(request, service.settings.max_body_bytes)
        rows = payload if isinstance(payload, list) else payload.get("metrics") if isinstance(payload, dict) else None
        runs = RunStore(default_path(service.settings.models))
        known(runs, run_id)
        parsed = []
        for index, row in enumerate(rows if isinstance(rows, list) else [None]):
            ok = isinstance(row, dict) and isinstance(row.get("step"), int) and isinstance(row.get("values"), dict) \
                and all(isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                        for k, v in row["values"].items())
            if not ok:
                raise HTTPException(422, f'row {index}: send [{{"step": int, "epoch": int, "values": {{name: number}}}}'
                                         ", ...]")
            parsed.append((row["step"], int(row.get("epoch", 0)), row["values"]))
        for step, epoch, values in parsed:
            runs.log_metrics(run_id, step, epoch, values)
        return {"stored": len(parsed)}

    @router.post("/api/v1/runs/{run_id}/status", dependencies=[writer])
    async def run_status(run_id: int, request: Request) -> dict:
        payload = await _json_object(request, service.settings.max_body_bytes)
        status = payload.get("status")
        if status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        runs = RunStore(default_path(service.settings.models))
        run = known(runs, run_id)
        fields = {k: payload[k] for k in ("error", "model_id") if isinstance(payload.get(k), str)}
        if status in ("completed", "failed", "cancelled", "interrupted"):
            runs.finish(run_id, status, **fields)
            webhook = run.settings.get("webhook")
            detail = f": {fields['error']}" if fields.get("error") else ""
            jobs.notify(webhook, {"text": f"Argus training run {run_id} ({run.name}) {status}{detail}"}, runs, run_id)
        else:
            runs.update(run_id, status=status, **fields)
        return _run(runs.get(run_id))
    return router


def _streams(service: Service, reader) -> APIRouter:
    """Server-sent events and the Prometheus exposition."""
    router = APIRouter()

    @router.get("/api/v1/events", dependencies=[reader])
    async def events(request: Request, after: int = 0, limit: int = 0) -> StreamingResponse:
        async def stream():
            last, sent = after, 0
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                batch = await asyncio.to_thread(service.events.wait_after, last, 15.0)
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
    def metrics() -> Response:
        return Response(exporter.exposition(service), media_type=exporter.CONTENT_TYPE)
    return router


def _status(service: Service) -> dict:
    snap = service.snapshot
    return {"generation": snap.generation, "model_id": snap.model_id, "data_end": snap.data_end, "as_of": snap.as_of,
            "created": snap.created, "cycle_seconds": snap.cycle_seconds, "model_error": snap.model_error,
            "late_by_seconds": service.late_by(), "stale": bool(service.source_errors),
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
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"the body must be UTF-8 JSON: {exc}") from exc


async def _json_object(request: Request, limit: int) -> dict:
    payload = await _json_body(request, limit)
    if not isinstance(payload, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return payload

