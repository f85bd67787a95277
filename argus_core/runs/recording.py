"""A training bookkept as a run: its status, curves, result or error in the run store, the
webhook told how it ended, and ``runs cancel`` (SIGTERM) recorded as a cancel."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from argus_core.model.config import TrainConfig
from argus_core.runs import jobs
from argus_core.runs.store import RunStore, default_path

LOG_TAIL_LINES = 20


def recorded_training(models: Path, dataset: Path, config: TrainConfig, train_fn: Callable[[list], object],
                      run_id: int | None = None, webhook: str | None = None):
    """Run ``train_fn(extra_callbacks)`` as run ``run_id`` (started by the console: ``jobs.start``)
    or as a new run (started from a shell): status, curves, result or error, and the webhook."""
    from argus_core.model import RunRecorder

    if run_id is not None:
        runs = RunStore(default_path(models))
        runs.update(run_id, status="running", pid=os.getpid())
    else:
        runs, run_id = jobs.claim(Path(models), Path(dataset), config,
                                  f"{Path(dataset).name} {time.strftime('%m-%d %H:%M')} (cli)", webhook,
                                  status="running")
        runs.update(run_id, pid=os.getpid())
    # `runs cancel` sends SIGTERM: unwind and record it, instead of vanishing
    previous_handler = signal.signal(signal.SIGTERM, _cancelled)
    recorder = RunRecorder(runs, run_id, config.epochs, config.batches_per_epoch)
    try:
        result = train_fn([recorder])
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        message = "cancelled" if status == "cancelled" else f"{type(exc).__name__}: {exc}"
        runs.finish(run_id, status, error=message + _log_tail(runs, run_id))
        jobs.notify(webhook, {"text": f"Argus training run {run_id} {status}: {message}"}, runs, run_id)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    runs.finish(run_id, "completed", model_id=result.model_id)
    jobs.notify(webhook, {"text": f"Argus training run {run_id} completed: {result.model_id}, "
                                       f"best val loss {result.best_val_loss:.4f} in {result.seconds:.0f} s"},
                runs, run_id)
    return result


def _cancelled(signum, frame) -> None:
    raise KeyboardInterrupt("cancelled")


def _log_tail(runs: RunStore, run_id: int) -> str:
    path = runs.get(run_id).log_path
    if not path or not Path(path).exists():
        return ""
    lines = Path(path).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n--- last lines of the log ---\n" + "\n".join(lines)
