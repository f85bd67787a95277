"""The Lightning callback that writes a training's progress into the run store: the same one
for trainings started from the CLI and from the console.

Per training batch (throttled to one write a second): step, epoch, train loss, progress and
ETA. Per epoch: train and validation loss, learning rate. Every few seconds: CPU %, RSS and,
on a GPU, utilisation and memory. Checkpoints appear as events.
"""

from __future__ import annotations

import math
import os
import time
from typing import Protocol

import lightning.pytorch as pl


class RunLog(Protocol):
    """Where the recorder writes: ``argus_core.runs.store.RunStore`` (the model wing does not
    import the runs wing; the run store is handed in)."""

    def log_metrics(self, run_id: int, step: int, epoch: int, values: dict[str, float]) -> None: ...

    def log_resources(self, run_id: int, cpu_pct: float | None, rss_mb: float | None,
                      gpu_util_pct: float | None = None, gpu_mem_mb: float | None = None) -> None: ...

    def event(self, run_id: int, kind: str, detail: str = "") -> None: ...


WRITE_EVERY_S = 1.0
RESOURCES_EVERY_S = 3.0


class RunRecorder(pl.Callback):
    def __init__(self, store: RunLog, run_id: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.store = store
        self.run_id = run_id
        self.total_steps = max(1, total_epochs * batches_per_epoch)
        self.batches_per_epoch = batches_per_epoch
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.last_write = 0.0
        self.last_sample = 0.0
        self.cpu_mark = (time.monotonic(), _cpu_seconds())

    def on_fit_start(self, trainer: pl.Trainer, module) -> None:
        from argus_core.model.callbacks import Checkpoints

        for callback in trainer.callbacks:
            if isinstance(callback, Checkpoints):
                callback.listeners.append(self._checkpointed)
                if callback.resumed:
                    self.store.event(self.run_id, "resumed",
                                     f"from the checkpoint of epoch {callback.resumed['epoch'] + 1}, "
                                     f"step {callback.resumed['global_step']}")

    def _checkpointed(self, state: dict) -> None:
        self.store.event(self.run_id, "checkpoint", f"epoch {state['epoch'] + 1}, step {state['global_step']}")

    def on_train_batch_end(self, trainer: pl.Trainer, module, outputs, batch, batch_idx: int) -> None:
        now = time.monotonic()
        if now - self.last_write < WRITE_EVERY_S:
            return
        self.last_write = now
        step = int(trainer.global_step)
        if self.first_step is None:
            self.first_step = step
        values = {"progress": min(1.0, step / self.total_steps)}
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            values["train_loss_step"] = float(loss.detach().float().cpu())
        done = step - self.first_step
        if done > 0:
            values["eta_s"] = (now - self.started) / done * max(0, self.total_steps - step)
        self.store.log_metrics(self.run_id, step, int(trainer.current_epoch), values)
        if now - self.last_sample >= RESOURCES_EVERY_S:
            self.last_sample = now
            self._sample()

    def on_train_epoch_end(self, trainer: pl.Trainer, module) -> None:
        metrics = trainer.callback_metrics
        values = {}
        pairs = (("train_loss_epoch", "train_loss"), ("train_loss", "train_loss"), ("val_loss", "val_loss"))
        for source, name in pairs:
            if source in metrics and name not in values:
                value = float(metrics[source])
                if math.isfinite(value):
                    values[name] = value
        if trainer.optimizers:
            values["learning_rate"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.store.log_metrics(self.run_id, int(trainer.global_step), int(trainer.current_epoch), values)
        self.store.event(self.run_id, "epoch", f"epoch {trainer.current_epoch + 1} done")

    def _sample(self) -> None:
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self.cpu_mark
        self.cpu_mark = (now, cpu)
        cpu_pct = 100.0 * (cpu - cpu_then) / max(now - then, 1e-6)
        gpu_util = gpu_mem = None
        try:
            import torch

            if torch.cuda.is_available():
                gpu_mem = torch.cuda.memory_allocated() / 2**20
                try:
                    gpu_util = float(torch.cuda.utilization())
                except Exception:  # noqa: BLE001 - needs pynvml; memory alone is still worth recording
                    gpu_util = None
        except ImportError:
            pass
        self.store.log_resources(self.run_id, cpu_pct, _rss_mb(), gpu_util, gpu_mem)


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None
