"""`silences`: list, add and expire the silences of a running live service, through its API."""

from __future__ import annotations

import argparse
from pathlib import Path

from argus_core.cli.output import printable
from argus_core.errors import SettingsError


def add_silence_commands(sub: argparse._SubParsersAction) -> None:
    si = sub.add_parser("silences", help="list, add or expire the silences of a running `serve`",
                        description="Silences mute alerts of matching rules, servers and metrics until they end. "
                                    "This talks to the running service: --dataset finds it through the dataset's "
                                    "state folder, --url names it. Writes need the service's token (--token-file "
                                    "or ARGUS_TOKEN).")
    where = si.add_mutually_exclusive_group(required=True)
    where.add_argument("--dataset", type=Path, help="the dataset a local `serve` runs on")
    where.add_argument("--url", help="the service's address, e.g. http://127.0.0.1:8000")
    si.add_argument("--token-file", type=Path, default=None, help="file holding the service's token")
    actions = si.add_subparsers(title="actions", metavar="ACTION")
    ls = actions.add_parser("list", help="every silence, with its id")
    ls.set_defaults(handler=_list)
    add = actions.add_parser("add", help="silence alerts until a time")
    for name in ("rule", "server", "metric"):
        add.add_argument(f"--{name}", default=None, help=f"{name} pattern (* and ? match any; default: any)")
    add.add_argument("--until", required=True, help="ISO 8601 time, e.g. 2026-12-31T18:00:00Z")
    add.add_argument("--start", default=None, help="ISO 8601 time (default: now)")
    add.add_argument("--comment", default="", help="why (at most 500 characters)")
    add.set_defaults(handler=_add)
    ex = actions.add_parser("expire", help="end a silence now")
    ex.add_argument("silence_id", metavar="ID")
    ex.set_defaults(handler=_expire)
    si.set_defaults(handler=_list)


def _service(args: argparse.Namespace) -> tuple[str, str | None]:
    from argus_core.cli.serve import token_of
    from argus_core.fleet import live_state

    url = args.url
    if url is None:
        url = live_state.service_url(args.dataset)
        if url is None:
            raise SettingsError(f"no live service runs on {args.dataset}: start one with `python -m argus_core serve "
                                f"--dataset {args.dataset}`, or name it with --url")
    elif not url.startswith(("http://", "https://")):
        raise SettingsError(f"--url must start with http:// or https://, not {url!r}")
    return url, token_of(argparse.Namespace(token_file=args.token_file))


def _list(args: argparse.Namespace) -> int:
    from argus_core.fleet import live_state

    url, token = _service(args)
    found = live_state.call(url, "GET", "/api/v1/silences", token=token)
    if not found:
        print(f"no silences at {url}")
    for entry in found:
        what = " ".join(f"{k}={entry[k]}" for k in ("rule", "server", "metric") if entry.get(k, "*") != "*")
        origin = "rules file" if entry.get("from_rules_file") else entry.get("id", "")
        print(printable(f"{origin:<14} {what:<40} until {entry.get('until', 'no end')}  {entry.get('comment', '')}"))
    return 0


def _add(args: argparse.Namespace) -> int:
    from argus_core.fleet import live_state

    url, token = _service(args)
    body = {k: v for k, v in (("rule", args.rule), ("server", args.server), ("metric", args.metric),
                              ("until", args.until), ("start", args.start), ("comment", args.comment))
            if v not in (None, "")}
    made = live_state.call(url, "POST", "/api/v1/silences", body, token=token)
    print(printable(f"silence {made.get('id')} until {made.get('until')}"))
    return 0


def _expire(args: argparse.Namespace) -> int:
    from argus_core.fleet import live_state

    url, token = _service(args)
    ended = live_state.expire_silence(url, args.silence_id, token=token)["expired"]
    print(printable(f"silence {args.silence_id} expired ({ended.get('comment') or 'no comment'})"))
    return 0
