"""The Lightning callbacks of a training: the per-epoch line, the thread governor, checkpoints."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch


class ProgressLine(pl.Callback):
    """One line per epoch: losses, BEST when validation improved, learning rate, ETA.
    Keeps a copy of the best weights so the saved model is the best one, not the last."""

    def __init__(self, total_epochs: int, epochs_this_run: int, log, checkpoints: Checkpoints,
                 time_limit_s: float | None = None) -> None:
        self.total = total_epochs
        self.time_limit_s = time_limit_s
        self.offset = total_epochs - epochs_this_run
        self.say = log
        self.checkpoints = checkpoints
        self.best = checkpoints.resumed_best
        self.best_state: dict | None = checkpoints.resumed_best_state  # a resumed run keeps its best so far
        self.epochs_seen = 0
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        val = _number(metrics.get("val_loss"))
        train_loss = _number(metrics.get("train_loss_epoch", metrics.get("train_loss")))
        improved = val is not None and val < self.best
        if improved:
            self.best = val
            self.best_state = {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}
        self.epochs_seen += 1
        epoch = self.offset + trainer.current_epoch + 1
        per_epoch = (time.perf_counter() - self.started) / self.epochs_seen
        remaining = max(0, min(self.total - epoch, (trainer.max_epochs or 0) - trainer.current_epoch - 1))
        eta = per_epoch * remaining
        if self.time_limit_s is not None:  # the time limit may end the run first
            eta = min(eta, max(0.0, self.time_limit_s - (time.perf_counter() - self.started)))
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        # before the line: a kill after it loses nothing (the best weights go with it when they changed)
        self.checkpoints.save(trainer, module, epoch - 1, self.best, self.best_state if improved else None)
        self.say(
            f"epoch {epoch:>3}/{self.total}  train {_fmt(train_loss)}  val {_fmt(val)}{' BEST' if improved else ''}"
            f"  lr {lr:.1e}  {per_epoch:.1f} s/epoch  ETA {_duration(eta)}"
        )


class ThreadGovernor(pl.Callback):
    """Keeps a CPU training run at the faster of its requested thread count and one thread.

    Several threads share every operation of a step, and each waits for the slowest: when
    another process holds one of the cores, a step at two threads took 15x longer here (8 instead
    of 130 samples/s), while one thread lost nothing. So the governor times steps (per sample),
    tries one thread for ``trial`` step(s) after the first ones, switches when that was at least
    ``margin`` faster, and tries again every ``every`` steps, or at once when a step takes ``jump``
    times the recent median. A trial costs a step or two in a hundred.
    It says so when it switches. ``switches`` records (step, threads) for tests and benchmarks."""

    def __init__(self, threads: int, log=print, every: int = 100, trial: int = 1, jump: float = 3.0,
                 margin: float = 0.15) -> None:
        self.requested, self.say = threads, log
        self.every, self.trial, self.jump, self.margin = every, trial, jump, margin
        self.current = threads
        self.recent: dict[int, list[float]] = {}
        self.step = 0
        self.trying: int | None = None  # the thread count on trial, if any
        self.trial_left = 0
        self.next_trial = 1 + trial  # first trial after one warm-up step and ``trial`` timed ones
        self.switches: list[tuple[int, int]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        per_sample = (time.perf_counter() - self.started) / max(1, _batch_size(batch))
        self.step += 1
        if self.step == 1:
            return  # the first step builds kernels and grows the allocator: not a measure of anything
        times = self.recent.setdefault(torch.get_num_threads(), [])
        times.append(per_sample)
        del times[:-5]
        if self.trying is not None:
            self.trial_left -= 1
            if self.trial_left <= 0:
                self._decide()
            return
        settled = self.recent.get(self.current, [])
        spiked = len(settled) >= 3 and per_sample > self.jump * float(np.median(settled[:-1]))
        if self.step >= self.next_trial or spiked:
            self.trying = 1 if self.current != 1 else self.requested
            self.trial_left = self.trial
            self.recent[self.trying] = []
            torch.set_num_threads(self.trying)

    def _decide(self) -> None:
        tried, kept = self.trying, self.current
        self.trying = None
        self.next_trial = self.step + self.every
        tried_time = float(np.median(self.recent[tried]))
        kept_time = float(np.median(self.recent[kept][-self.trial:]))
        if tried_time < (1.0 - self.margin) * kept_time:
            self.current = tried
            self.switches.append((self.step, tried))
            why = " (another process is probably using a core)" if tried < kept else ""
            self.say(f"threads: {kept} -> {tried}: {1000 * kept_time:.1f} -> {1000 * tried_time:.1f} ms "
                     f"per sample{why}")
        torch.set_num_threads(self.current)


def _batch_size(batch) -> int:
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    if isinstance(x, dict) and "encoder_lengths" in x:
        return int(x["encoder_lengths"].size(0))
    return 1


class Checkpoints(pl.Callback):
    """Pickle-free resumable checkpoints: weights, the best weights so far, optimiser tensors,
    counters. ``state.json`` vouches for the rest and says how the run left them: ``final_model_id``
    once training is over and the model is being saved (a rerun saves that model instead of
    training on), ``failed`` when the run raised (a rerun starts over unless it resumes on purpose)."""

    def __init__(self, directory: Path, config, log) -> None:
        self.directory = directory
        self.every = config.checkpoint_minutes * 60.0
        self.say = log
        self.last_save = time.monotonic()
        self.resumed: dict | None = None
        self.resumed_best = math.inf
        self.resumed_best_state: dict[str, torch.Tensor] | None = None
        self._pending_optimizer: dict[str, torch.Tensor] | None = None
        self._offset_steps = 0
        self.listeners: list = []  # called with the saved state after each checkpoint (the run store's recorder)
        self._epoch_offset = 0

    def restore(self, network: torch.nn.Module, resume_failed: bool = False) -> dict | None:
        from safetensors.torch import load_file, load_model

        state_path = self.directory / "state.json"
        if not state_path.exists():
            return None
        try:
            state = json.loads(state_path.read_text())
            if state.get("failed") and not resume_failed:
                self.say(f"the checkpoint in {self.directory} is from a run that failed ({state['failed']}); "
                         "starting over (resume that run on purpose: `python -m argus_core runs list`, then the "
                         "console's Resume)")
                self.clear()
                return None
            load_model(network, str(self.directory / "weights.safetensors"))
            self._pending_optimizer = load_file(str(self.directory / "optimizer.safetensors"))
            best = self.directory / "best.safetensors"
            self.resumed_best_state = load_file(str(best)) if best.exists() else None
        except Exception as exc:  # a torn checkpoint is not fatal: start over, say why
            self.say(f"ignoring the unreadable checkpoint in {self.directory}: {exc}")
            return None
        self.resumed = state
        self.resumed_best = state.get("best_val_loss", math.inf)
        self._offset_steps = state["global_step"]
        self._epoch_offset = state["epoch"] + 1
        self.say(f"resuming from checkpoint: epoch {state['epoch'] + 1} done, step {state['global_step']}, "
                 f"saved {state['saved_at']} (not starting over)")
        return state

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._pending_optimizer is None:
            return
        optimizer = trainer.optimizers[0]
        groups = json.loads((self.directory / "optimizer_groups.json").read_text())
        state: dict = {}
        for key, tensor in self._pending_optimizer.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        self._pending_optimizer = None

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if time.monotonic() - self.last_save >= self.every:
            self.save(trainer, module, self._epoch_offset + trainer.current_epoch - 1, None)

    def save(self, trainer: pl.Trainer, module: pl.LightningModule, epoch: int, best: float | None,
             best_state: dict[str, torch.Tensor] | None = None) -> None:
        from safetensors.torch import save_file

        if not trainer.is_global_zero:  # one writer: every rank holds the same weights
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        optimizer = trainer.optimizers[0].state_dict()
        tensors = {f"state.{index}.{name}": value.detach().cpu().contiguous()
                   for index, entries in optimizer["state"].items() for name, value in entries.items()
                   if isinstance(value, torch.Tensor)}
        staged = self.directory / ".staged"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        save_file(_weights_on_cpu(module), str(staged / "weights.safetensors"))
        save_file(tensors, str(staged / "optimizer.safetensors"))
        (staged / "optimizer_groups.json").write_text(json.dumps(optimizer["param_groups"]))
        if best_state is not None:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(staged / "best.safetensors"))
        previous = json.loads((self.directory / "state.json").read_text()) if (self.directory / "state.json").exists() \
            else {}
        state = {
            "epoch": epoch,
            "global_step": self._offset_steps + trainer.global_step,
            "best_val_loss": best if best is not None else previous.get("best_val_loss", math.inf),
            "saved_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        }
        (staged / "state.json").write_text(json.dumps(state))
        for name in ("weights.safetensors", "optimizer.safetensors", "optimizer_groups.json", "best.safetensors"):
            if (staged / name).exists():
                os.replace(staged / name, self.directory / name)
        os.replace(staged / "state.json", self.directory / "state.json")  # last: it vouches for the rest
        staged.rmdir()
        self.last_save = time.monotonic()
        for listener in self.listeners:
            listener(state)

    def mark(self, **fields) -> None:
        """Add fields to ``state.json`` (written atomically): ``final_model_id``, ``failed``."""
        state_path = self.directory / "state.json"
        if not state_path.exists():
            return
        state = {**json.loads(state_path.read_text()), **fields}
        staged = self.directory / ".state.json.tmp"
        staged.write_text(json.dumps(state))
        os.replace(staged, state_path)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)



def _weights_on_cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state as CPU tensors, each distinct tensor once. On CUDA the LSTMs' weights
    are views into one flat cuDNN buffer, which safetensors' ``save_model`` refuses; names that
    alias one tensor (the TFT shares a few) are written once and ``load_model`` restores the rest."""
    weights: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, tensor in module.state_dict().items():
        identity = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if tensor.numel() and identity in seen:
            continue
        seen.add(identity)
        weights[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return weights


def _number(value) -> float | None:
    if value is None:
        return None
    return float(value.item() if hasattr(value, "item") else value)


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:.4f}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
