"""Background trainings: start ``python -m argus_core train`` as its own process group, one at a
time per models directory; cancel the whole group; find runs whose process died; resume them.

The training process records itself in the run store (``runs.py``) through ``RunRecorder``;
this module only launches, signals and reaps. Killing the process that started a training
(the Streamlit server, say) does not stop it: it runs in its own session.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from argus_core.data import store as data_store
from argus_core.errors import ArgusError, SettingsError, TrainingBusy
from argus_core.model import config as train_config
from argus_core.model.config import TrainConfig
from argus_core.runs.store import RunStore, default_path

_CHILDREN: dict[int, subprocess.Popen] = {}  # run id -> process started here, reaped by ``reap``
WEBHOOK = "webhook"  # kept in a run's settings beside the TrainConfig fields


def train_command(dataset: Path, models: Path, run_id: int) -> list[str]:
    """The training process of run ``run_id``: its settings travel in the run record, whole
    (``run_config``), never as a hand-kept list of flags."""
    return [sys.executable, "-m", "argus_core", "train", "--dataset", str(dataset), "--models", str(models),
            "--run-id", str(run_id)]


def run_config(runs: RunStore, run_id: int) -> tuple[TrainConfig, str | None]:
    """The TrainConfig recorded for run ``run_id`` and its webhook (SettingsError when the record
    holds something a TrainConfig cannot be made from)."""
    settings = runs.get(run_id).settings
    return train_config.from_json(settings, ignore=(WEBHOOK,)), settings.get(WEBHOOK)


@contextmanager
def _start_lock(models: Path):
    """Serialises 'is a run active? then create one' across processes."""
    folder = models / ".runs"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claim(models: Path, dataset: Path, config: TrainConfig, name: str | None, webhook: str | None,
          status: str, resumed_from: int | None = None) -> tuple[RunStore, int]:
    """Record a new run unless one is queued or running in ``models`` (TrainingBusy naming it).
    Check and record happen under one file lock, so two starts cannot both pass."""
    if webhook and not web_url(webhook):
        raise SettingsError(f"the webhook must be an http:// or https:// URL, not {webhook[:100]!r}")
    runs = RunStore(default_path(models))
    with _start_lock(Path(models)):
        runs.mark_dead_runs()
        busy = runs.active()
        if busy is not None:
            raise TrainingBusy(f"run {busy.id} ({busy.name}) is {busy.status} in {models}; one training at a time: "
                               f"wait for it or cancel it (`python -m argus_core runs cancel {busy.id}`)")
        run_id = runs.create(name or f"{Path(dataset).name} {time.strftime('%m-%d %H:%M')}",
                             {**train_config.to_json(config), WEBHOOK: webhook}, str(dataset), status=status,
                             resumed_from=resumed_from)
    return runs, run_id


def start(dataset: str | Path, models: str | Path, config: TrainConfig, name: str | None = None,
          webhook: str | None = None, resumed_from: int | None = None) -> int:
    """Launch a training in the background and return its run id. TrainingBusy when one runs."""
    dataset, models = Path(dataset), Path(models)
    problems = train_config.check(config)
    if problems:
        raise ArgusError("invalid training settings: " + "; ".join(problems))
    data_store.read_manifest(dataset)  # DatasetError with the command, before anything is recorded
    runs, run_id = claim(models, dataset, config, name, webhook, status="queued", resumed_from=resumed_from)
    log_path = models / ".runs" / f"run-{run_id}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(train_command(dataset, models, run_id), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    runs.update(run_id, pid=process.pid, log_path=str(log_path))
    _CHILDREN[run_id] = process
    return run_id


def cancel(models: str | Path, run_id: int, grace_s: float = 10.0) -> None:
    """Stop a queued or running training's whole process group and mark it cancelled."""
    runs = RunStore(default_path(models), create=False)  # an unknown run: nothing created
    run = runs.get(run_id)
    if run.status not in ("queued", "running"):
        raise ArgusError(f"run {run_id} is {run.status}: nothing to cancel")
    if run.pid:
        _signal_group(run.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(run_id, run.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(run_id, run.pid):
            _signal_group(run.pid, signal.SIGKILL)
            while _alive(run_id, run.pid) and time.monotonic() < deadline + 5:
                time.sleep(0.1)
    runs.finish(run_id, "cancelled", error="cancelled by the user")
    reap()


def checkpoint_of(models: str | Path, run) -> Path | None:
    """The checkpoint a stopped run left (None: it stopped before its first epoch ended, its settings
    cannot be read, or its dataset changed since: a resume would start from nothing)."""
    if run.external:
        return None
    try:
        config, _ = run_config(RunStore(default_path(models), create=False), run.id)
        manifest = data_store.read_manifest(run.dataset)
    except (ArgusError, OSError):
        return None
    folder = train_config.checkpoint_dir(models, run.dataset, manifest, config)
    return folder if (folder / "state.json").is_file() else None


def resume(models: str | Path, run_id: int) -> int:
    """Start a new run with the settings of an interrupted, failed or cancelled one; the
    training finds the old run's checkpoint (same dataset and settings) and continues from it."""
    runs = RunStore(default_path(models), create=False)
    run = runs.get(run_id)
    if run.external:
        raise ArgusError(f"run {run_id} was recorded over the API by another training loop: Argus has no checkpoint "
                         "of it to resume")
    if run.status not in ("interrupted", "failed", "cancelled"):
        raise ArgusError(f"run {run_id} is {run.status}; only interrupted, failed or cancelled runs resume")
    if checkpoint_of(models, run) is None:
        raise ArgusError(f"run {run_id} left no checkpoint to resume from (it stopped before its first epoch ended, "
                         "or its dataset changed since): start a new training instead")
    config, webhook = run_config(runs, run_id)
    return start(run.dataset, models, config, name=f"{run.name} (resumed)", webhook=webhook, resumed_from=run_id)


def child(run_id: int) -> subprocess.Popen | None:
    """The process of run ``run_id`` when it was started by this process and not reaped yet."""
    return _CHILDREN.get(run_id)


def reap() -> None:
    """Collect the exit status of finished trainings started here (no zombies)."""
    for run_id, process in list(_CHILDREN.items()):
        if process.poll() is not None:
            del _CHILDREN[run_id]


def web_url(url: str) -> bool:
    """An http(s) URL with a host: the only kind a webhook is sent to."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and len(url) <= 2000


def notify(url: str | None, payload: dict, runs: RunStore | None = None, run_id: int | None = None) -> bool:
    """POST a Slack-compatible JSON body; a failure is recorded as an event, never raised."""
    if not url:
        return False
    if not web_url(url):  # urllib would open file:// and ftp:// too
        if runs is not None and run_id is not None:
            runs.event(run_id, "webhook_failed", f"{url[:200]}: not an http(s) URL; nothing was sent")
        return False
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            ok = 200 <= reply.status < 300
    except Exception as exc:  # noqa: BLE001 - a webhook must never fail the training
        ok = False
        detail = f"{type(exc).__name__}: {exc}"
    else:
        detail = f"HTTP {reply.status}"
    if runs is not None and run_id is not None:
        runs.event(run_id, "webhook" if ok else "webhook_failed", f"{url}: {detail}")
    return ok


def _signal_group(pid: int, sig: int) -> None:
    # only a process that leads its own group (started here, or by ``start`` elsewhere) gets the
    # group signal: a training started from a shell shares the shell's group
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(run_id: int, pid: int) -> bool:
    from argus_core.runs.store import pid_alive

    process = _CHILDREN.get(run_id)
    if process is not None:
        return process.poll() is None
    return pid_alive(pid)
