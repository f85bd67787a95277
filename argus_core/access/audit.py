"""The audit trail: every action that changes what Argus serves or alerts on (promote, roll back,
a training started, resumed or cancelled, a run deleted, a silence added or expired, the rules
reloaded, a token created or revoked), by whom, when, from where, on what, and how it ended
(done, or refused: a role or token that may not), in the run store of the models directory.

``perform`` is the one way the dashboard and the CLI act: it checks the role
(``roles.require``), does the action and records it, refusals included. An attempt that fails
on bad input (an unknown model, a malformed silence) changes nothing stored, the trail included:
its user sees the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from argus_core.access.roles import AccessDenied, Actor, require
from argus_core.runs.store import RunStore, default_path

T = TypeVar("T")


def record(models: str | Path, actor: Actor, action: str, target: str = "", outcome: str = "done",
           detail: str = "") -> None:
    """Append one line to the audit trail of ``models``'s run store."""
    RunStore(default_path(models)).record_audit({
        "time": time.time(), "actor": str(actor.name), "role": str(actor.role), "via": str(actor.via),
        "source": str(actor.source or ""), "action": action, "target": str(target)[:500], "outcome": outcome,
        "detail": str(detail)[:500]})


def perform(models: str | Path, actor: Actor, action: str, target: str, do: Callable[[], T],
            detail: str = "") -> T:
    """``do()`` when ``actor`` may do ``action``, recorded as done; AccessDenied (nothing done,
    the refusal recorded) otherwise. An ArgusError from ``do()`` passes through unrecorded."""
    try:
        require(actor, action)
    except AccessDenied as exc:
        record(models, actor, action, target, "refused", str(exc))
        raise
    result = do()
    record(models, actor, action, target, "done", detail)
    return result


def trail(models: str | Path, limit: int = 100):
    """The latest ``limit`` lines, newest first (a DataFrame; empty when nothing was recorded)."""
    return RunStore(default_path(models), create=False).audit(limit)
