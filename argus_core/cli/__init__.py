"""``python -m argus_core``: the command line, thin as the pages are (``main`` parses and catches
``ArgusError`` once; ``data``, ``models``, ``runs``, ``anomaly`` and ``serve`` hold the commands;
``status`` prints what ``fleet.assess`` concludes, as the pages show it).

May import every other wing; nothing imports it but ``argus_core.__main__`` and the tests.
"""

from argus_core.cli.main import main

__all__ = ["main"]
