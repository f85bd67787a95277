"""`token create|list|revoke`: the live service's scoped tokens (hashed in the token file)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from argus_core.cli.output import printable


def add_token_commands(sub: argparse._SubParsersAction) -> None:
    from argus_core.access import tokens

    to = sub.add_parser("token", help="create, list or revoke the live service's scoped tokens",
                        description="Tokens for `serve`'s API, each with scopes: "
                                    + ", ".join(tokens.SCOPES) + " (admin allows everything). The file keeps "
                                    "only their SHA-256; `serve` reads it again whenever it changes, so a revoked "
                                    "token is refused at once.")
    to.add_argument("--models", type=Path, default=Path("models"),
                    help="models directory: the token file is its tokens.json, the audit trail its run store")
    to.add_argument("--tokens", type=Path, default=None, help="the token file (default: MODELS/tokens.json, "
                                                               "or ARGUS_TOKENS)")
    actions = to.add_subparsers(title="actions", metavar="ACTION")
    cr = actions.add_parser("create", help="make a token; it is printed once and never shown again")
    cr.add_argument("name", help="who or what uses it, e.g. ingest-agents, grafana")
    cr.add_argument("--scopes", required=True, help="comma-separated: " + ",".join(tokens.SCOPES))
    cr.set_defaults(handler=_create)
    ls = actions.add_parser("list", help="every token: name, scopes, created, revoked (never the token)")
    ls.set_defaults(handler=_list)
    rv = actions.add_parser("revoke", help="refuse a token from now on")
    rv.add_argument("name")
    rv.set_defaults(handler=_revoke)
    to.set_defaults(handler=_list)


def _path(args: argparse.Namespace) -> Path:
    from argus_core.access import tokens

    return args.tokens or tokens.default_path(args.models)


def _create(args: argparse.Namespace) -> int:
    from argus_core import access
    from argus_core.access import tokens

    scopes = tokens.parse_scopes(args.scopes)
    token = access.perform(args.models, access.shell_actor(), "token.create", args.name,
                           lambda: tokens.create(_path(args), args.name, scopes), detail=",".join(scopes))
    print(printable(f"token {args.name} ({', '.join(scopes)}) written to {_path(args)}; it is shown this once:"),
          file=sys.stderr)
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    from argus_core.access import tokens

    found = tokens.listing(_path(args))
    if not found:
        print(f"no tokens in {_path(args)}; create one with `python -m argus_core token create NAME --scopes read`")
        return 0
    for token in found:
        state = "live" if token.revoked is None else f"revoked {_when(token.revoked)}"
        print(printable(f"{token.name:<24} {','.join(token.scopes):<28} created {_when(token.created)}  {state}"))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from argus_core import access
    from argus_core.access import tokens

    access.perform(args.models, access.shell_actor(), "token.revoke", args.name,
                   lambda: tokens.revoke(_path(args), args.name))
    print(printable(f"token {args.name} revoked: the service refuses it from its next request"))
    return 0


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))
