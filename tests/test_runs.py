"""The run store and background trainings: the same code path the training console uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from argus_core.errors import ArgusError, TrainingBusy
from argus_core.model import registry
from argus_core.model.config import TrainConfig
from argus_core.runs import jobs
from argus_core.runs.store import RunStore, RunStoreError, default_path, pid_alive
from tests import support
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
TINY = replace(support.TINY, epochs=3, attention_heads=2, val_batches=30, encoder_length=96, horizon=24,
               fresh=True)


RUN_TIMEOUT = 300  # a tiny training in a child process, on a busy 2-core machine


def test_store_records_runs_curves_and_events(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create("first", {"epochs": 2}, "demo", status="queued")
    assert store.active().id == run_id
    store.update(run_id, status="running", pid=os.getpid())
    store.log_metrics(run_id, 10, 0, {"train_loss": 0.5, "val_loss": 0.4})
    store.log_resources(run_id, 95.0, 512.0)
    store.finish(run_id, "completed", model_id="tft-x")
    run = store.get(run_id)
    assert (run.status, run.model_id, run.settings) == ("completed", "tft-x", {"epochs": 2})
    assert run.ended >= run.started and store.active() is None
    curves = store.metrics(run_id)
    assert set(curves["name"]) == {"train_loss", "val_loss"} and curves["step"].eq(10).all()
    assert list(store.events(run_id)["detail"]) == ["queued", "running", "completed"]
    assert store.resources(run_id)["cpu_pct"].iloc[0] == 95.0
    with store._connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError):
        store.update(run_id, status="exploded")
    with pytest.raises(ArgusError, match="no run 99"):
        store.get(99)


def test_dead_process_is_found_and_marked_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create("ghost", {}, "demo", status="running")
    store.update(run_id, pid=2**22 + 12345)  # no such process
    assert not pid_alive(2**22 + 12345) and pid_alive(os.getpid())
    assert store.mark_dead_runs() == [run_id]
    assert store.get(run_id).status == "interrupted"


def test_corrupt_store_gives_a_clear_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunStoreError, match="not a readable SQLite file"):
        RunStore(path)
    assert path.read_bytes().startswith(b"this is not sqlite")  # left as it was


def test_invalid_settings_are_refused_before_anything_starts(tmp_path):
    models = tmp_path / "models"
    for bad in (TrainConfig(epochs=0), TrainConfig(learning_rate=-1.0), TrainConfig(batch_size=0),
                TrainConfig(incident_share=1.5), TrainConfig(loss_scale="median"), TrainConfig(center="median")):
        with pytest.raises(ArgusError, match="invalid training settings"):
            jobs.start(DEMO, models, bad)
    with pytest.raises(ArgusError, match="not an Argus dataset"):
        jobs.start(tmp_path / "nope", models, TINY)
    assert not default_path(models).exists() or RunStore(default_path(models)).list() == []


class _Hook(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        _Hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_background_training_records_refuses_a_second_and_calls_the_webhook(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    models = tmp_path / "models"
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    # started by a process that exits at once, as when the Streamlit server is killed: the training goes on
    launcher = subprocess.run(
        [sys.executable, "-c", "import sys; from argus_core.runs import jobs; from tests.test_runs import TINY; "
         f"print(jobs.start({str(DEMO)!r}, {str(models)!r}, TINY, name='tiny', webhook={hook!r}))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    run_id = int(launcher.stdout.strip().splitlines()[-1])
    try:
        with pytest.raises(TrainingBusy, match=f"run {run_id} \\(tiny\\)"):
            jobs.start(DEMO, models, TINY)
        store = RunStore(default_path(models))
        run = wait_for(lambda: (r := store.get(run_id)).status not in ("queued", "running") and r,
                       RUN_TIMEOUT, what="the run")
        assert run.status == "completed", run.error
        assert run.model_id == registry.champion_model_id(models)
        curves = store.metrics(run_id)
        assert curves.query("name == 'val_loss'")["epoch"].tolist() == [0, 1, 2]
        assert {"train_loss", "learning_rate", "progress"} <= set(curves["name"])
        assert "completed" in _Hook.bodies[-1]["text"] and run.model_id in _Hook.bodies[-1]["text"]
    finally:
        server.shutdown()
    # a webhook that cannot be reached is recorded, never fatal
    assert not jobs.notify("http://127.0.0.1:9/none", {"text": "x"}, store, run_id)
    assert "webhook_failed" in set(store.events(run_id)["kind"])


@pytest.mark.slow
def test_cancel_stops_the_process_group(tmp_path):
    models = tmp_path / "models"
    run_id = jobs.start(DEMO, models, TINY)
    store = RunStore(default_path(models))
    pid = store.get(run_id).pid
    jobs.cancel(models, run_id)
    assert store.get(run_id).status == "cancelled"
    assert not pid_alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group is gone
    assert jobs.child(run_id) is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
    with pytest.raises(ArgusError, match="nothing to cancel"):
        jobs.cancel(models, run_id)


@pytest.mark.slow
def test_killed_training_is_interrupted_then_resumes_from_its_checkpoint(tmp_path):
    models = tmp_path / "models"
    run_id = jobs.start(DEMO, models, TINY)
    store = RunStore(default_path(models))
    wait_for(lambda: (store.metrics(run_id)["name"] == "val_loss").any(), RUN_TIMEOUT, what="the first epoch")
    os.killpg(store.get(run_id).pid, signal.SIGKILL)
    wait_for(lambda: jobs.child(run_id).poll() is not None, 30, "the kill")
    assert store.mark_dead_runs() == [run_id]
    assert store.get(run_id).status == "interrupted"
    resumed = jobs.resume(models, run_id)
    run = wait_for(lambda: (r := store.get(resumed)).status not in ("queued", "running") and r,
                   RUN_TIMEOUT, what="the resume")
    assert run.status == "completed", run.error
    assert run.resumed_from == run_id
    log = Path(run.log_path).read_text()
    assert "resuming from checkpoint" in log and "epoch   1/3" not in log
    assert "checkpoint" in set(store.events(run_id)["kind"])
    assert "resumed" in set(store.events(resumed)["kind"])


@pytest.mark.slow
def test_a_crashing_training_records_its_error_and_log(tmp_path):
    models = tmp_path / "models"
    run_id = jobs.start(DEMO, models, TrainConfig(encoder_length=5000, horizon=24, epochs=1, threads=1, fresh=True))
    store = RunStore(default_path(models))
    run = wait_for(lambda: (r := store.get(run_id)).status not in ("queued", "running") and r,
                   RUN_TIMEOUT, what="the crash")
    assert run.status == "failed"
    first_line, _, tail = run.error.partition("\n")
    assert "5000" in first_line or "history" in first_line  # the reason, in words
    assert "last lines of the log" in tail


def test_runs_commands_list_show_and_refuse(tmp_path, capsys):
    from argus_core.cli.main import main

    models = tmp_path / "models"
    assert main(["runs", "list", "--models", str(models)]) == 0
    assert "no runs" in capsys.readouterr().out and not models.exists()  # looking creates nothing
    store = RunStore(default_path(models))
    run_id = store.create("nightly", {"epochs": 2}, "demo", status="running")
    store.log_metrics(run_id, 5, 0, {"train_loss": 0.3, "val_loss": 0.2, "learning_rate": 0.003})
    store.finish(run_id, "completed", model_id="tft-x")
    assert main(["runs", "list", "--models", str(models)]) == 0
    assert "completed" in (out := capsys.readouterr().out) and "tft-x" in out and "0.2000" in out
    assert main(["runs", "show", str(run_id), "--models", str(models), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_val_loss"] == 0.2 and shown["epochs"][0]["val_loss"] == 0.2
    assert main(["runs", "cancel", str(run_id), "--models", str(models)]) == 1
    assert "nothing to cancel" in capsys.readouterr().err
