"""`serve`: the live service on one dataset (see ``argus_core.live``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from argus_core.access.roles import LOOPBACK
from argus_core.data import schema
from argus_core.errors import SettingsError
from argus_core.model.registry import DEFAULT_ROOT

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "alerts.toml"
TOKEN_ENV = "ARGUS_TOKEN"


def human(span: pd.Timedelta) -> str:
    """``5min``, ``26h``, ``2d``: a duration as one writes it on the command line."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration(text: str) -> pd.Timedelta:
    """``--every 5min``, ``--late 24h``: a positive duration with a unit (argparse type)."""
    try:
        return schema.parse_duration(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_serve_command(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="run the live service: ingest, forecast every cycle, REST and /metrics",
                        description="Keep a live dataset's forecasts, risk and levels current: samples pushed to "
                                    "POST /api/v1/samples are stored every cycle, the champion forecasts the fleet "
                                    "(reloaded after a promote), and the results are served as JSON under /api/v1/ "
                                    "and as Prometheus metrics at /metrics. API docs at /docs.")
    sv.add_argument("--dataset", required=True, type=Path, help="the live dataset (only this service writes it)")
    sv.add_argument("--models", type=Path, default=DEFAULT_ROOT, help="models directory (default: models)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1 only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--every", type=duration, default=pd.Timedelta("5min"), help="time between cycles (default 5min)")
    sv.add_argument("--late", type=duration, default=pd.Timedelta("24h"),
                    help="accept pushed samples up to this much older than the newest stored one (default 24h)")
    sv.add_argument("--future", type=duration, default=pd.Timedelta("10min"),
                    help="accept pushed samples up to this far past the service's clock (default 10min)")
    sv.add_argument("--token-file", type=Path, default=None,
                    help=f"file holding the bearer token writes need (or set {TOKEN_ENV}); required to listen "
                         "beyond 127.0.0.1")
    sv.add_argument("--tokens", type=Path, default=None,
                    help="the file of scoped tokens made by `python -m argus_core token create` (default: "
                         "MODELS/tokens.json, or ARGUS_TOKENS); read again whenever it changes")
    sv.add_argument("--private-reads", action="store_true", help="reads need a token (with the read scope) too")
    sv.add_argument("--threads", type=int, default=None, help="torch threads (default: cores - 1)")
    sv.add_argument("--source", choices=("push", "prometheus"), default="push",
                    help="push: samples POSTed to /api/v1/samples (always on); prometheus: also pull every cycle")
    sv.add_argument("--prometheus-url", default=None,
                    help="Prometheus (or Thanos, Mimir, VictoriaMetrics) query API, e.g. http://prometheus:9090")
    sv.add_argument("--mapping", type=Path, default=None,
                    help="PromQL per Argus metric (TOML; default mappings/node_exporter.toml)")
    sv.add_argument("--backfill", type=duration, default=None,
                    help="history to pull when the dataset is new or has a gap (default: the champion's encoder "
                         "window and a margin, at least 2d)")
    sv.add_argument("--rules", default=str(DEFAULT_RULES),
                    help="alert rules and per-profile/server thresholds (TOML; default deploy/alerts.toml; "
                         "'none': no alerts)")
    sv.add_argument("--alertmanager-url", action="append", default=[],
                    help="send alerts to this Alertmanager (POST /api/v2/alerts); repeat for several")
    sv.add_argument("--webhook-url", action="append", default=[],
                    help="send alert messages to this Slack-compatible webhook; repeat for several")
    sv.add_argument("--stale-after", type=duration, default=pd.Timedelta("30min"),
                    help="a server with no sample this long leaves the ranking (default 30min)")
    sv.set_defaults(handler=_serve)


def add_pull_command(sub: argparse._SubParsersAction) -> None:
    pu = sub.add_parser("pull", help="fill a dataset from Prometheus's history (to train on, or to start serve)",
                        description="Query Prometheus over the last SPAN with a mapping and write the result as a "
                                    "new dataset (or add what is new to an existing one).")
    pu.add_argument("--prometheus-url", required=True)
    pu.add_argument("--mapping", type=Path, default=None, help="default mappings/node_exporter.toml")
    pu.add_argument("--dataset", required=True, type=Path)
    pu.add_argument("--span", type=duration, default=pd.Timedelta(days=30), help="how far back (default 30d)")
    pu.set_defaults(handler=_pull)


def _pull(args: argparse.Namespace) -> int:
    from argus_core.data import store
    from argus_core.live import prometheus

    mapping = prometheus.load_mapping(args.mapping)
    client = prometheus.PrometheusClient(args.prometheus_url)
    now = pd.Timestamp.now(tz="UTC")
    if store.is_dataset(args.dataset):
        from argus_core.live import ingest

        manifest = store.read_manifest(args.dataset)
        kinds = manifest.get("metric_kinds")
        rows, _ = prometheus.PrometheusSource(client, mapping, args.dataset, lambda: now, args.span).pull()
        added = 0 if rows is None else ingest.append_new(args.dataset, rows, f"prometheus {client.url}",
                                                         manifest.get("step"),
                                                         kinds if kinds and dict(kinds) != schema.V1_KINDS else None)
        print(f"{args.dataset}: {added:,} new rows from {client.url}")
        return 0
    manifest = prometheus.backfill(args.dataset, client, mapping, args.span, now)
    absent = manifest.get("prometheus", {}).get("absent") or []
    print(f"{args.dataset}: {manifest['rows']:,} rows, {len(manifest['servers'])} servers, "
          f"{manifest['start'][:16]} to {manifest['end'][:16]} from {client.url}"
          + (f"; not in Prometheus, left out: {', '.join(absent)}" if absent else ""))
    return 0


def _backfill_span(args: argparse.Namespace) -> pd.Timedelta:
    """--backfill, else the champion's encoder window plus the late slack (at least 2 days)."""
    import json

    from argus_core.data import store
    from argus_core.model import ModelSpec, registry

    if args.backfill is not None:
        return args.backfill
    span = pd.Timedelta(days=2)
    try:
        champion = registry.champion_model_id(args.models)
        if champion:
            spec = ModelSpec.from_json(json.loads((args.models / champion / "config.json").read_text())["spec"])
            span = max(span, pd.Timedelta(spec.step) * (spec.history_steps + store.LATE_SLACK + 1))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # serve reports a missing or broken champion itself
    return span


def _prometheus_source(args: argparse.Namespace):
    """The pulling source, after filling a new dataset from Prometheus's history."""
    from argus_core.data import store
    from argus_core.live import prometheus

    if not args.prometheus_url:
        raise SettingsError("--source prometheus needs --prometheus-url URL (e.g. http://127.0.0.1:9090)")
    mapping = prometheus.load_mapping(args.mapping)
    client = prometheus.PrometheusClient(args.prometheus_url)
    span = _backfill_span(args)
    if not store.is_dataset(args.dataset):
        manifest = prometheus.backfill(args.dataset, client, mapping, span, pd.Timestamp.now(tz="UTC"))
        print(f"filled {args.dataset} from {client.url}: {manifest['rows']:,} rows, {len(manifest['servers'])} "
              f"servers over the last {human(span)}", flush=True)
    return prometheus.PrometheusSource(client, mapping, args.dataset, lambda: pd.Timestamp.now(tz="UTC"), span)


def _sinks(args: argparse.Namespace) -> list:
    from argus_core.live.sinks import AlertmanagerSink, WebhookSink

    for url in [*args.alertmanager_url, *args.webhook_url]:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"a sink URL must start with http:// or https://, not {url!r}")
    return [*(AlertmanagerSink(url, args.every) for url in args.alertmanager_url),
            *(WebhookSink(url) for url in args.webhook_url)]


def token_of(args: argparse.Namespace) -> str | None:
    """The bearer token, from --token-file or ARGUS_TOKEN; either must be 16 characters or more."""
    if args.token_file is not None:
        try:
            token = args.token_file.read_bytes().decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise SettingsError(f"{args.token_file} is not a text file (byte {exc.start} is not UTF-8): put the "
                                "token in it as one line of text") from exc
        except OSError as exc:
            raise SettingsError(f"cannot read the token file {args.token_file}: {exc.strerror or exc}") from exc
        where = str(args.token_file)
    else:
        token, where = os.environ.get(TOKEN_ENV, "").strip(), TOKEN_ENV
        if not token:
            return None
    if len(token) < 16:
        raise SettingsError(f"the token in {where} is shorter than 16 characters: use a long random one, e.g. "
                            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if not token.isprintable() or " " in token:
        raise SettingsError(f"the token in {where} holds spaces or control characters: use letters, digits and "
                            "punctuation only")
    return token


GRACE_S = 3  # seconds open requests (an event stream never ends by itself) get after a SIGTERM


def _stopping_server():
    import uvicorn

    class Stopping(uvicorn.Server):
        """uvicorn's server that, on SIGTERM or Ctrl-C, first tells the service to start no cycle."""

        def __init__(self, config, service) -> None:
            super().__init__(config)
            self._service = service

        def handle_exit(self, sig, frame) -> None:
            self._service.halt()
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            # uvicorn raises the signal again once it has stopped, which would kill the process
            # before `serve` stops its service, flushes the sinks and removes service.json
            self._captured_signals.clear()

    return Stopping


def bind(host: str, port: int):
    """The listening socket, opened before the service does anything (a port in use stops it here)."""
    import socket

    if not 0 < port < 65536:
        raise SettingsError(f"--port must be between 1 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                            + (" (another process holds the port; choose another with --port)"
                               if getattr(exc, "errno", None) == 98 else "")) from exc
    sock.listen(2048)
    return sock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from argus_core.access import tokens
    from argus_core.live.api import Access, create_app
    from argus_core.live.service import Service, Settings, hold

    Stopping = _stopping_server()

    token = token_of(args)
    token_file = args.tokens or tokens.default_path(args.models)
    scoped = any(t.revoked is None for t in tokens.listing(token_file))  # a broken file: ArgusError here
    if args.host not in LOOPBACK and token is None and not scoped:
        raise SettingsError(f"listening on {args.host} needs a token for the writing endpoints: create scoped ones "
                            f"with `python -m argus_core token create NAME --scopes ...` ({token_file}), or give one "
                            f"with --token-file FILE or {TOKEN_ENV}")
    if args.private_reads and token is None and not scoped:
        raise SettingsError(f"--private-reads needs a token (`python -m argus_core token create NAME --scopes read`, "
                            f"--token-file FILE or {TOKEN_ENV}): without one every read would be public")
    if args.threads is not None and args.threads < 1:
        raise SettingsError(f"--threads must be 1 or more, not {args.threads}")
    rules = None if args.rules.lower() == "none" else Path(args.rules)
    sinks = _sinks(args)
    settings = Settings(dataset=args.dataset, models=args.models, every=args.every, late=args.late,
                        future=args.future, threads=args.threads, rules=rules, stale_after=args.stale_after)
    sock = bind(args.host, args.port)  # a port in use stops it before the first cycle
    try:
        sources = [_prometheus_source(args)] if args.source == "prometheus" else []
    except BaseException:
        sock.close()
        raise
    with hold(settings, on_refusal=sock.close):  # one service per live dataset: "already served by PID N"
        service = Service(settings, sources=sources, sinks=sinks)
        app = create_app(service, Access(token=token, private_reads=args.private_reads, tokens=token_file))
        alerts = f"{len(service.rules_set.rules)} alert rule(s) from {rules}" if rules else "no alert rules"
        print(f"serving {args.dataset} with the champion of {args.models} on http://{args.host}:{args.port} "
              f"(API docs at /docs), a cycle every {human(args.every)}; {alerts}"
              + (f", sent to {', '.join(s.name for s in sinks)}" if sinks else "")
              + (f"; pulling from {args.prometheus_url}" if sources else ""), flush=True)
        from argus_core.fleet import live_state

        local = "127.0.0.1" if args.host in ("0.0.0.0", "") else "[::1]" if args.host == "::" else \
            f"[{args.host}]" if ":" in args.host else args.host
        live_state.write_service(settings.state_dir, f"http://{local}:{args.port}")  # the pages find it here
        service.start()
        try:
            # a SIGTERM stops the cycles at once and the server within GRACE_S, event streams or not
            Stopping(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE_S),
                     service).run(sockets=[sock])
        finally:
            service.stop()
            sock.close()
            live_state.forget_service(settings.state_dir)
    print("stopped", file=sys.stderr)
    return 0


def add_live_demo_command(sub: argparse._SubParsersAction) -> None:
    from argus_core.data.simulate import INCIDENT_KINDS
    from argus_core.live.demo import DemoPlan

    defaults = DemoPlan()
    de = sub.add_parser("live-demo", help="watch the live service follow a simulated fleet with an incident",
                        description="Simulate a fleet with one scripted incident, write its first day as a live "
                                    "dataset, serve it, push the rest to the service in accelerated fleet time "
                                    "(as an agent would) and open the dashboard in live mode. Ctrl-C stops it all.")
    de.add_argument("--servers", type=int, default=defaults.servers)
    de.add_argument("--incident", choices=sorted(INCIDENT_KINDS), default=defaults.incident)
    de.add_argument("--seed", type=int, default=defaults.seed)
    de.add_argument("--speed", type=float, default=defaults.speed,
                    help=f"fleet seconds per second (default {defaults.speed:g}: a 5-minute step every 2.5 s)")
    de.add_argument("--dataset", type=Path, default=Path("data/live-demo"),
                    help="written anew (default data/live-demo)")
    de.add_argument("--models", type=Path, default=DEFAULT_ROOT)
    de.add_argument("--port", type=int, default=8000, help="the service's port (default 8000)")
    de.add_argument("--dashboard-port", type=int, default=8501)
    de.add_argument("--no-dashboard", action="store_true", help="the service and the replayer only")
    de.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (default: Ctrl-C)")
    de.add_argument("--prometheus", action="store_true",
                    help="the fleet in a local Prometheus (Debian's packages), scraped in real time and pulled by "
                         "the service, alerts to a local Alertmanager; node_exporter scrapes this machine too")
    de.set_defaults(handler=_live_demo)


def _live_demo(args: argparse.Namespace) -> int:
    import threading

    import uvicorn

    from argus_core.live import demo
    from argus_core.live.api import create_app
    from argus_core.live.service import Service, Settings

    plan = demo.DemoPlan(servers=args.servers, incident=args.incident, seed=args.seed, speed=args.speed)
    if args.prometheus:
        return _live_demo_prometheus(args, plan)
    sim, replay_from, incident = demo.simulate(plan)
    demo.write_history(args.dataset, sim, replay_from)
    step_s = pd.Timedelta("5min").total_seconds() / plan.speed
    service = Service(Settings(dataset=args.dataset, models=args.models,  # the shipped rules: the demo alerts
                               every=pd.Timedelta(seconds=max(2.0, 2 * step_s)), rules=DEFAULT_RULES))
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=args.port,
                                           log_level="warning"))
    threading.Thread(target=server.run, name="argus-http", daemon=True).start()
    base = f"http://127.0.0.1:{args.port}"
    demo.wait_until_up(f"{base}/healthz")
    from argus_core.fleet import live_state

    live_state.write_service(service.settings.state_dir, base)
    service.start()
    replayer = demo.Replayer(sim, replay_from, f"{base}/api/v1/samples", plan.speed, log=lambda line: print(
        line, flush=True))
    replayer.start()
    print(f"live demo: {plan.servers} servers in {args.dataset}; {incident.kind} on {incident.server_name}: "
          f"precursor {incident.precursor_start[11:16]}, breach {incident.breach_time[11:16]} UTC fleet time, "
          f"{(pd.Timestamp(incident.precursor_start) - replay_from) / pd.Timedelta('1s') / plan.speed:.0f} s from "
          f"now; API {base}/docs", flush=True)
    try:
        _until_stopped(args)
    finally:
        replayer.stop()
        service.stop()
        server.should_exit = True
    snap = service.snapshot
    print(f"stopped after {replayer.pushed:,} pushed rows; last snapshot {snap.generation if snap else '-'}"
          + (f", {incident.server_name} {snap.levels.get(incident.server_name)}" if snap else ""))
    return 0


def _until_stopped(args: argparse.Namespace) -> None:
    """The dashboard (unless --no-dashboard) until Ctrl-C or --minutes."""
    import subprocess
    import time

    dashboard = None
    if not args.no_dashboard:
        dashboard = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                                      str(args.dashboard_port), "--server.headless", "true"],
                                     env={**os.environ, "ARGUS_MODELS": str(args.models),
                                          "ARGUS_DATASETS": str(args.dataset)})
        print(f"dashboard: http://localhost:{args.dashboard_port} (pick {args.dataset} · live in the sidebar)",
              flush=True)
    try:
        deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=30)


def _live_demo_prometheus(args: argparse.Namespace, plan) -> int:
    """The demo fleet in a local Prometheus, scraped in real time, pulled by the service."""
    import shutil
    import threading

    import uvicorn

    from argus_core.live import demo, prometheus, promlocal
    from argus_core.live.api import create_app
    from argus_core.live.service import Service, Settings
    from argus_core.live.sinks import AlertmanagerSink

    missing = promlocal.missing()
    if missing:
        raise SettingsError(f"--prometheus needs {', '.join(missing)}: apt-get install prometheus "
                            "prometheus-alertmanager (and prometheus-node-exporter for this machine)")
    sim, replay_from, incident = demo.simulate(plan)
    fleet_now = replay_from + pd.Timedelta("3h")  # an hour into the incident's precursor, two before its breach
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    shift = now - fleet_now
    work = args.dataset.parent / f"{args.dataset.name}-prometheus"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    counters: dict = {}
    history = sim.frame[(sim.frame[schema.TIMESTAMP] <= fleet_now)
                        & (sim.frame[schema.TIMESTAMP] > fleet_now - pd.Timedelta("27h"))]
    print(f"backfilling {len(history):,} rows of the simulated fleet into a local Prometheus ...", flush=True)
    promlocal.backfill_frame(history, work / "tsdb", work / "om", shift, counters)
    fleet = promlocal.SimExporter(sim.frame[sim.frame[schema.TIMESTAMP] > fleet_now], shift, counters)
    stack = promlocal.Stack(work)
    try:
        node = stack.start_node_exporter()
        scrape = [("fleet", fleet.target)] + ([("node-self", node.url.removeprefix("http://"))] if node else [])
        alertmanager = stack.start_alertmanager(None)
        stack.start_prometheus(promlocal.prometheus_config(scrape=scrape, honor=("fleet",),
                                                           alertmanager=alertmanager.url.removeprefix("http://")),
                               work / "tsdb")
        mapping = prometheus.load_mapping(promlocal.sim_mapping(work))
        client = prometheus.PrometheusClient(stack.prometheus.url)
        if args.dataset.exists():
            shutil.rmtree(args.dataset)
        span = pd.Timedelta("26h")
        prometheus.backfill(args.dataset, client, mapping, span, pd.Timestamp.now(tz="UTC"))
        every = pd.Timedelta("1min")
        source = prometheus.PrometheusSource(client, mapping, args.dataset, lambda: pd.Timestamp.now(tz="UTC"), span)
        service = Service(Settings(dataset=args.dataset, models=args.models, every=every, rules=DEFAULT_RULES),
                          sources=[source], sinks=[AlertmanagerSink(alertmanager.url, every)])
        server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=args.port,
                                               log_level="warning"))
        threading.Thread(target=server.run, name="argus-http", daemon=True).start()
        demo.wait_until_up(f"http://127.0.0.1:{args.port}/healthz")
        service.start()
        breach = pd.Timestamp(incident.breach_time) + shift
        print(f"live demo with Prometheus: {plan.servers} simulated servers in real time; {incident.kind} on "
              f"{incident.server_name}, breach at {breach:%H:%M} UTC (wall clock)\n"
              f"  Prometheus   {stack.prometheus.url}  (fleet{' and this machine' if node else ''})\n"
              f"  Alertmanager {alertmanager.url}  (Argus's alerts arrive here)\n"
              f"  Argus API    http://127.0.0.1:{args.port}/docs, /metrics, /api/v1/alerts"
              + ("" if node else "\n  (install prometheus-node-exporter to scrape this machine too)")
              + ("\n  this machine is in Prometheus; Argus leaves it out: node_exporter has no java_cpu_pct or "
                 "front_close_wait (train on the pulled data to forecast it)" if node else ""), flush=True)
        try:
            _until_stopped(args)
        finally:
            service.stop()
            server.should_exit = True
    finally:
        stack.close()
        fleet.close()
    snap = service.snapshot
    firing = [f"{a.rule} on {a.server}" for a in service.alerts.firing()]
    print(f"stopped; last snapshot {snap.generation if snap else '-'}; firing: {', '.join(firing) or 'none'}")
    return 0
