"""Sign-in and roles on the dashboard.

With an ``[auth]`` section in ``.streamlit/secrets.toml`` (Streamlit's OpenID Connect: any
provider, e.g. Google, Microsoft Entra, Okta, Keycloak, Dex), every page first asks who is there
(``st.login``) and gives them the role the roles file says (``argus_core.access.roles``); the
buttons a role may not use are not drawn, and ``argus_core.access.perform`` refuses them anyway.
Without ``[auth]`` the dashboard is open as before (anyone may act, as "anyone") and says so on
every page when it listens beyond this machine.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from argus_core import access
from argus_core.errors import ArgusError

ROOT = Path(__file__).resolve().parents[1]
KEY_ACTOR = "argus.actor"
OPEN = "anyone (no sign-in)"


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, ArgusError, Exception):  # no secrets file, or one that does not parse
        return False


def _providers() -> list[str | None]:
    """The providers of ``[auth]``: its named subsections, or None for the section itself."""
    section = st.secrets["auth"]
    named = [name for name, value in section.items() if hasattr(value, "keys")]
    return named or [None]


def _source() -> str:
    try:
        address = st.context.ip_address
    except (AttributeError, RuntimeError):
        return ""
    return address if isinstance(address, str) else ""


@st.cache_resource(show_spinner=False, max_entries=4)
def _book(path: str, stamp: float) -> access.RoleBook:
    return access.RoleBook.load(path)


def roles_book() -> access.RoleBook:
    path = access.roles.default_roles_path(ROOT)
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = 0.0
    return _book(str(path), stamp)


def sign_in() -> access.Actor:
    """Who uses this page: without ``[auth]``, anyone (as admin, as before); with it, the signed-in
    user in their role. Draws the sign-in screen and stops the page for a visitor who is not
    signed in, or whom the roles file gives no access."""
    if not auth_configured():
        actor = access.Actor(OPEN, "admin", "dashboard", _source())
        st.session_state[KEY_ACTOR] = actor
        return actor
    if not st.user.is_logged_in:
        st.title("Argus")
        st.write("Sign in to see the fleet's forecasts and act on them.")
        for provider in _providers():
            label = "Sign in" if provider is None else f"Sign in with {provider}"
            if st.button(label, icon=":material/login:", key=f"sign-in-{provider or 'default'}"):
                st.login(provider) if provider else st.login()
        st.stop()
    email = str(st.user.get("email") or st.user.get("sub") or "")
    try:
        book = roles_book()
    except ArgusError as exc:
        st.error(f"{exc}. Until it is fixed, nobody signed in may use Argus.")
        st.stop()
    role = book.role_of(email, st.user.to_dict())
    if role == access.roles.NONE:
        st.title("Argus")
        st.warning(f"You are signed in as {email}, but this Argus gives you no role: ask one of its admins to add "
                   "you to its roles file.")
        st.button("Sign out", icon=":material/logout:", key="sign-out-none", on_click=st.logout)
        st.stop()
    actor = access.Actor(email, role, "dashboard", _source())
    st.session_state[KEY_ACTOR] = actor
    return actor


def me() -> access.Actor:
    """The page's user (``sign_in`` ran first, in app.py); a page run alone in a test acts as the
    open dashboard does."""
    return st.session_state.get(KEY_ACTOR) or sign_in()


def may(action: str) -> bool:
    return access.allowed(me(), action)


def who_panel() -> None:
    """The sidebar's line on who is here: the user and role, with Sign out; or, for an open
    dashboard served beyond this machine, that anyone who reaches it may act."""
    actor = me()
    if auth_configured():
        st.caption(f"Signed in as **{actor.name}** · {actor.role}")
        st.button("Sign out", icon=":material/logout:", key="sign-out", on_click=st.logout)
        return
    address = st.get_option("server.address")
    if address not in access.roles.LOOPBACK:
        st.warning(f"No sign-in: this dashboard listens on {address or 'every interface'}, and anyone who can reach "
                   "it may start trainings, promote models and expire silences. Configure a provider and roles "
                   "(see the README's Access section), or serve it on 127.0.0.1.", icon=":material/lock_open:")
