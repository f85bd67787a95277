"""Turn failures into messages: no traceback reaches a user."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from argus_core.errors import ArgusError

log = logging.getLogger("argus.ui")


SHOWN = "argus.errors_shown"  # the messages shown in this run of the script


def new_run() -> None:
    """Forget what was shown: called once at the top of each run (the sidebar)."""
    st.session_state[SHOWN] = set()


def show_error(message: str) -> None:
    """``st.error``, once per run: the sidebar and the page that both meet one unreadable file say it once."""
    shown = st.session_state.setdefault(SHOWN, set())
    if message not in shown:
        shown.add(message)
        st.error(message)


@contextmanager
def guard(what: str = "this page") -> Iterator[None]:
    """Show an ``ArgusError`` as its message (it says what is missing and the command that fixes
    it) and stop the page; anything else is logged with its traceback on the server and shown as
    one line. Streamlit's own stop/rerun signals are BaseExceptions and pass through."""
    try:
        yield
    except ArgusError as exc:
        show_error(str(exc))
        st.stop()
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the browser
        log.exception("unexpected error while drawing %s", what)
        st.error(f"Argus could not draw {what}: {type(exc).__name__}: {exc}. The server log has the details.")
        st.stop()
