"""Writes that a crash never leaves half-done: every file is written under a temporary name in
its own directory and renamed into place, readable as the user's umask says (``mkstemp`` alone
makes private 0600 files). Used by the store, the registry and backtests alike."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UMASK = os.umask(0)
os.umask(UMASK)  # read once, at import: the process's umask, restored at once


def stage(final: str | Path) -> Path:
    """An empty, readable temporary file beside ``final`` (its folder is created), to be filled
    and then moved into place with ``publish``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~UMASK)
    return Path(tmp)


def publish(tmp: str | Path, final: str | Path) -> None:
    """Move a staged file into place (one rename: readers see the old file or the new one)."""
    os.replace(tmp, final)


@contextmanager
def staged(final: str | Path) -> Iterator[Path]:
    """``with staged(path) as tmp: write(tmp)``: published when the block ends, removed when it raises."""
    tmp = stage(final)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


def write_json(path: str | Path, payload: object, *, compact: bool = False) -> None:
    """``payload`` as JSON at ``path``, atomically. Refuses NaN and infinities (``ValueError``):
    they are not JSON, and most readers choke on them."""
    text = (json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str) if compact
            else json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n")
    with staged(path) as tmp:
        tmp.write_text(text)
