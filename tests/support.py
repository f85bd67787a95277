"""What many tests share: the tiny model's settings and one way to wait for something.

Imported as ``tests.support`` (the repository root is on the path, in pytest and in the
subprocesses some tests start).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from argus_core.model.config import TrainConfig

# a TFT that trains in seconds on two cores: hidden size 8, one head, three batches of 16, one
# validation batch, one torch thread (a test file changes what it tests with dataclasses.replace)
TINY = TrainConfig(epochs=1, batch_size=16, hidden_size=8, attention_heads=1, batches_per_epoch=3, val_batches=1,
                   threads=1)

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "the condition",
             every: float = 0.2) -> T:
    """The first truthy value ``predicate()`` returns, tried every ``every`` seconds; an
    AssertionError naming ``what`` when ``timeout`` seconds pass without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
