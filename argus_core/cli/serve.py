"""`serve`: the live service on one dataset (see ``argus_core.live``)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pandas as pd

from argus_core.errors import SettingsError
from argus_core.model.registry import DEFAULT_ROOT

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "ARGUS_TOKEN"


def duration(text: str) -> pd.Timedelta:
    """``--every 5min``, ``--late 24h``: a positive duration with a unit (argparse type)."""
    raw = text.strip()
    try:
        value = pd.Timedelta(raw) if re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]+", raw) else None
    except ValueError:
        value = None
    if value is None or value <= pd.Timedelta(0):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration with a unit, such as 30s, 5min or 24h")
    return value


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
    sv.add_argument("--private-reads", action="store_true", help="reads need the token too")
    sv.add_argument("--threads", type=int, default=None, help="torch threads (default: cores - 1)")
    sv.set_defaults(handler=_serve)


def token_of(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        token = args.token_file.read_text().strip()
        if len(token) < 16:
            raise SettingsError(f"the token in {args.token_file} is shorter than 16 characters")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from argus_core.live.api import Access, create_app
    from argus_core.live.service import Service, Settings

    token = token_of(args)
    if args.host not in LOOPBACK and token is None:
        raise SettingsError(f"listening on {args.host} needs a token for the writing endpoints: --token-file FILE "
                            f"or {TOKEN_ENV}")
    if not 0 < args.port < 65536:
        raise SettingsError(f"--port must be between 1 and 65535, not {args.port}")
    service = Service(Settings(dataset=args.dataset, models=args.models, every=args.every, late=args.late,
                               future=args.future, threads=args.threads))
    app = create_app(service, Access(token=token, private_reads=args.private_reads))
    print(f"serving {args.dataset} with the champion of {args.models} on http://{args.host}:{args.port} "
          f"(API docs at /docs), a cycle every {args.every}", flush=True)
    service.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        service.stop()
    print("stopped", file=sys.stderr)
    return 0
