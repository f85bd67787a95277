"""Who may see and do what: roles for the dashboard's users, scoped tokens for the service, and
an audit trail of every action that changes what Argus serves or alerts on.

- ``roles``: viewer < operator < admin, what each action needs, and the roles file that maps
  signed-in users (by e-mail or by a group claim of their provider) to a role;
- ``tokens``: the service's bearer tokens, each with scopes, stored hashed;
- ``audit``: every action tried, by whom, when, from where and with what outcome, in the run
  store; ``perform`` checks the role, does the action and records it, so a refused action is
  refused in the core and not only hidden on a page.

May import: ``argus_core.runs`` (the run store holds the audit trail), ``errors``, ``atomic``.
Never torch, ``live``, ``cli`` or streamlit: the service, the CLI and the pages all import this.
"""

from argus_core.access.audit import perform, record
from argus_core.access.roles import ACTIONS, ROLES, AccessDenied, Actor, RoleBook, allowed, require, shell_actor

__all__ = ["ACTIONS", "ROLES", "AccessDenied", "Actor", "RoleBook", "allowed", "perform", "record", "require",
           "shell_actor"]
