"""The torch thread count, chosen in one place for training, forecasting, backtests and the pages.

torch's default (one thread per core) collapses when another process holds a core: measured
0.5 s -> 5 s per training step on 2 cores (DESIGN.md). Argus leaves one core to the rest of the
machine unless told otherwise (``--threads``, or ``ARGUS_THREADS`` for the dashboard).
Importing this module does not import torch; ``use_threads`` does.
"""

from __future__ import annotations

import os

ENVIRONMENT = "ARGUS_THREADS"  # the dashboard's and the service's override


def choose_threads(requested: int | None = None) -> int:
    """``requested`` when given (at least 1), otherwise one less than the cores (at least 1)."""
    if requested:
        return max(1, requested)
    return max(1, (os.cpu_count() or 2) - 1)


def from_environment() -> int | None:
    """``ARGUS_THREADS`` as a count, None when unset, empty, zero or not a whole number."""
    raw = os.environ.get(ENVIRONMENT, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def use_threads(requested: int | None = None) -> int:
    """Set torch's intra-op thread count to ``choose_threads(requested)`` and return it."""
    import torch

    threads = choose_threads(requested)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
