"""What every command prints and returns: exit codes, and text made safe for a terminal."""

from __future__ import annotations

import re

EXIT_PROBLEM = 1  # the data or the request has a problem the message explains
EXIT_USAGE = 2  # argparse's own convention for bad arguments


# control characters, and the invisible and direction-changing ones (U+202E turns the rest of a line around)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences a server name or a file
    could carry) shown as ``\\x1b`` instead of being obeyed."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
