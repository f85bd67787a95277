"""The thread governor moves a CPU training run to one thread when another process makes
multi-threaded steps stall, and back when the core is free again."""

from __future__ import annotations

import pytest
import torch

from argus_core.model import callbacks
from argus_core.model.callbacks import ThreadGovernor


class FakeMachine:
    """Step times by thread count: ``busy`` makes two-thread steps 15x slower, as measured here."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = False

    def perf_counter(self) -> float:
        return self.now

    def run_step(self, governor: ThreadGovernor, batch) -> None:
        governor.on_train_batch_start(None, None, batch, 0)
        threads = torch.get_num_threads()
        self.now += (0.5 if threads == 1 else 0.35 * (15 if self.busy else 1))
        governor.on_train_batch_end(None, None, None, batch, 0)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    fake = FakeMachine()
    monkeypatch.setattr(callbacks.time, "perf_counter", fake.perf_counter)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield fake
    torch.set_num_threads(before)


def test_busy_core_moves_training_to_one_thread_and_back(machine: FakeMachine) -> None:
    lines: list[str] = []
    governor = ThreadGovernor(2, log=lines.append, every=20)
    batch = ({"encoder_lengths": torch.zeros(64)}, None)
    for _ in range(10):
        machine.run_step(governor, batch)
    assert torch.get_num_threads() == 2 and governor.switches == []  # one thread was tried and was slower

    machine.busy = True  # another process takes a core: the next slow step starts a trial at once
    for _ in range(3):
        machine.run_step(governor, batch)
    assert torch.get_num_threads() == 1
    assert governor.switches[-1][1] == 1
    assert "threads: 2 -> 1" in lines[-1] and "another process" in lines[-1]

    machine.busy = False  # the core is free again: the next periodic trial goes back to two threads
    for _ in range(25):
        machine.run_step(governor, batch)
    assert torch.get_num_threads() == 2
    assert [threads for _, threads in governor.switches] == [1, 2]
    assert "threads: 1 -> 2" in lines[-1]
