"""Roles and what they may do, and the roles file that gives signed-in users their role.

    viewer    every page, read only
    operator  a viewer who may also start, resume and cancel trainings, add and expire silences
    admin     an operator who may also promote, roll back, delete runs, change the alert rules
              and the service's tokens

The roles file (TOML; ``ARGUS_ROLES``, else ``.streamlit/roles.toml`` beside the app)::

    default = "viewer"          # a signed-in user nothing below names ("none": no access)
    group_claim = "groups"      # the ID token's claim that lists the user's groups

    [users]                     # by e-mail, case-insensitive
    "alice@example.com" = "admin"

    [groups]                    # by a group the provider puts in group_claim
    "sre-oncall" = "operator"

A user named in several places gets the highest role among them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from argus_core.errors import ArgusError, SettingsError

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses only this machine reaches: open is safe there
ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
NONE = "none"  # a signed-in user with no access at all

ACTIONS = {  # the action -> the least role that may do it
    "train.start": "operator", "train.resume": "operator", "train.cancel": "operator",
    "silence.add": "operator", "silence.expire": "operator",
    "model.promote": "admin", "model.rollback": "admin", "model.reload": "admin", "run.delete": "admin",
    "rules.change": "admin", "token.create": "admin", "token.revoke": "admin",
}
WORDS = {  # how a refusal names the action
    "train.start": "start a training", "train.resume": "resume a training", "train.cancel": "cancel a training",
    "silence.add": "add a silence", "silence.expire": "expire a silence", "model.promote": "promote a model",
    "model.rollback": "roll back the champion", "model.reload": "reload the served model",
    "run.delete": "delete a run", "rules.change": "change the alert rules", "token.create": "create a token",
    "token.revoke": "revoke a token",
}


class AccessDenied(ArgusError):
    """The actor's role does not allow the action; nothing was changed."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user, a service token, the shell's user."""

    name: str
    role: str  # one of ROLES
    via: str = "dashboard"  # dashboard, api, cli
    source: str = ""  # the client's address or the host


def allowed(actor: Actor, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return actor.role in ROLES and ROLES.index(actor.role) >= ROLES.index(ACTIONS[action])


def require(actor: Actor, action: str) -> None:
    """AccessDenied, naming the role needed, unless ``actor`` may do ``action``."""
    if not allowed(actor, action):
        raise AccessDenied(f"{actor.name} ({actor.role}) may not {WORDS.get(action, action)}: "
                           f"that needs the {ACTIONS[action]} role; ask an admin of this Argus")


def default_roles_path(app_root: str | Path = ".") -> Path:
    return Path(os.environ.get("ARGUS_ROLES") or Path(app_root) / ".streamlit" / "roles.toml")


@dataclass(frozen=True)
class RoleBook:
    """The roles file, read: who gets which role."""

    default: str = "viewer"
    group_claim: str = "groups"
    users: dict[str, str] = field(default_factory=dict)  # lower-case e-mail -> role
    groups: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # None: no roles file (everyone signed in gets the default)

    @classmethod
    def load(cls, path: str | Path) -> RoleBook:
        """The file at ``path``; a missing file is no file (defaults); a malformed one is a
        SettingsError naming the problem."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"the roles file {path} cannot be read: {exc}") from exc
        known = {"default", "group_claim", "users", "groups"}
        if unknown := sorted(set(data) - known):
            raise SettingsError(f"the roles file {path} has unknown keys {unknown}; it takes {sorted(known)}")

        def role(value, where: str, allow_none: bool = False) -> str:
            choices = (*ROLES, NONE) if allow_none else ROLES
            if value not in choices:
                raise SettingsError(f"the roles file {path}: {where} is {value!r}; a role is one of "
                                    f"{', '.join(choices)}")
            return value

        def table(name: str) -> dict[str, str]:
            entries = data.get(name, {})
            if not isinstance(entries, dict):
                raise SettingsError(f"the roles file {path}: [{name}] must be a table of name = \"role\"")
            return {str(k).strip().lower() if name == "users" else str(k): role(v, f"{name}.{k}")
                    for k, v in entries.items()}

        claim = data.get("group_claim", "groups")
        if not isinstance(claim, str) or not claim:
            raise SettingsError(f"the roles file {path}: group_claim must be the name of a claim")
        return cls(default=role(data.get("default", "viewer"), "default", allow_none=True), group_claim=claim,
                   users=table("users"), groups=table("groups"), path=path)

    def role_of(self, email: str | None, claims: dict | None = None) -> str:
        """The highest role the e-mail and the groups in ``claims[group_claim]`` give; the default
        when nothing names them (``NONE``: no access)."""
        found = []
        if email and email.strip().lower() in self.users:
            found.append(self.users[email.strip().lower()])
        groups = (claims or {}).get(self.group_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        found += [self.groups[g] for g in groups if isinstance(g, str) and g in self.groups]
        if not found:
            return self.default
        return max(found, key=ROLES.index)


def shell_actor() -> Actor:
    """Who acts from the command line: the shell's user, on this host, as admin (whoever can run
    the CLI can write the models directory anyway)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return Actor(user, "admin", "cli", socket.gethostname())
