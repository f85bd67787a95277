"""The live service's bearer tokens, each with scopes, kept hashed in one JSON file.

    read      every GET (when the service keeps its reads private), the audit trail
    ingest    POST /api/v1/samples
    runs      record runs of another training loop (POST /api/v1/runs ...)
    operate   run a cycle now, add and expire silences
    admin     everything above, and reload the model or the alert rules

``argus_core token create NAME --scopes read,ingest`` prints the token once; the file keeps its
SHA-256 only, so a leaked file gives no token away. ``token revoke NAME`` takes effect at the
service's next request (the file is read again whenever it changes). A presented token is
compared against every stored hash in constant time. The service's single token of old
(``--token-file``, ``ARGUS_TOKEN``) still works, as one token with every scope.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argus_core import atomic
from argus_core.errors import ArgusError, SettingsError, UnknownItem

SCOPES = ("read", "ingest", "runs", "operate", "admin")
FILENAME = "tokens.json"
PREFIX = "argus_"  # a token says what it is in a log or a secrets scanner
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def default_path(models: str | Path) -> Path:
    return Path(os.environ.get("ARGUS_TOKENS") or Path(models) / FILENAME)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Token:
    name: str
    scopes: tuple[str, ...]
    created: float
    revoked: float | None = None

    def allows(self, scope: str) -> bool:
        return self.revoked is None and (scope in self.scopes or "admin" in self.scopes)


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not scopes:
        raise SettingsError(f"--scopes names no scope; choose from {', '.join(SCOPES)}")
    if unknown := [s for s in scopes if s not in SCOPES]:
        raise SettingsError(f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    return scopes


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["tokens"]
        assert isinstance(entries, list) and all(isinstance(e, dict) and "hash" in e and "name" in e for e in entries)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ArgusError(f"the token file {path} cannot be read ({exc.__class__.__name__}); "
                         "restore it, or move it aside and create the tokens again") from exc
    return entries


def _write(path: Path, entries: list[dict]) -> None:
    with atomic.staged(path) as tmp:
        tmp.write_text(json.dumps({"tokens": entries}, indent=1), encoding="utf-8")
        os.chmod(tmp, 0o600)  # hashes only, but nobody else's business


def create(path: str | Path, name: str, scopes: tuple[str, ...]) -> str:
    """A new token named ``name`` with ``scopes``; returns the token, which is never shown again."""
    path = Path(path)
    if not NAME.match(name or ""):
        raise SettingsError(f"a token's name is 1-64 letters, digits, _ . @ or -, starting with a letter or digit; "
                            f"got {name!r}")
    parse_scopes(",".join(scopes))
    entries = _read(path)
    if any(e["name"] == name and e.get("revoked") is None for e in entries):
        raise SettingsError(f"a token named {name} exists; revoke it first or choose another name")
    token = PREFIX + secrets.token_urlsafe(32)
    entries.append({"name": name, "hash": digest(token), "scopes": list(scopes), "created": time.time(),
                    "revoked": None})
    _write(path, entries)
    return token


def revoke(path: str | Path, name: str) -> Token:
    path = Path(path)
    entries = _read(path)
    live = [e for e in entries if e["name"] == name and e.get("revoked") is None]
    if not live:
        raise UnknownItem(f"no live token named {name} in {path}; see `python -m argus_core token list`")
    for entry in live:
        entry["revoked"] = time.time()
    _write(path, entries)
    return _token(live[0])


def listing(path: str | Path) -> list[Token]:
    """Every token, revoked ones included (no hash, no token)."""
    return [_token(e) for e in _read(Path(path))]


def _token(entry: dict) -> Token:
    return Token(str(entry["name"]), tuple(entry.get("scopes") or ()), float(entry.get("created") or 0.0),
                 entry.get("revoked"))


class TokenBook:
    """What the service checks a request's token against: the token file (read again whenever it
    changes, so a revoked token is refused at once) and the single legacy token, if any."""

    def __init__(self, path: str | Path | None = None, legacy: str | None = None):
        self.path = Path(path) if path is not None else None
        self._legacy = digest(legacy) if legacy else None
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._entries: list[tuple[str, Token]] = []

    def _current(self) -> list[tuple[str, Token]]:
        if self.path is None:
            return []
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    entries = _read(self.path) if stamp else []
                except ArgusError:
                    entries = []  # a broken file lets nobody in (the service said so at start)
                self._entries = [(str(e["hash"]), _token(e)) for e in entries]
                self._stamp = stamp
            return self._entries

    @property
    def configured(self) -> bool:
        """Whether any token (live or revoked) exists: then writes need one."""
        return self._legacy is not None or bool(self._current())

    def find(self, presented: str) -> Token | None:
        """The live token ``presented`` is, or None. Every stored hash is compared (constant time
        each), whether or not an earlier one matched."""
        given = digest(presented)
        match = None
        if self._legacy is not None and secrets.compare_digest(given, self._legacy):
            match = Token("service token", SCOPES, 0.0)
        for stored, token in self._current():
            if secrets.compare_digest(given, stored) and token.revoked is None:
                match = match or token
        return match
