"""``python -m argus_core``: the command line, thin as the pages are (``main`` parses and catches
``ArgusError`` once; ``data``, ``models`` and ``runs`` hold the commands).

May import every other wing; nothing imports it but ``argus_core.__main__`` and the tests.
"""

from argus_core.cli.main import main

__all__ = ["main"]
