"""``python -m argus_core serve`` as a real process on a free port of 127.0.0.1: it answers, takes
a push, is killed with SIGKILL before its next cycle, and the restarted process stores that push
once and serves the levels it had. It also refuses to listen beyond 127.0.0.1 without a token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.runs.client import RunLogger
from argus_core.runs.store import RunStore, default_path
from tests.support import wait_for
from tests.test_live import CUT, FULL, as_json, rows_after

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: object | None = None, timeout: float = 60) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def start(dataset: Path, models: Path, port: int) -> subprocess.Popen:
    # a long --every: the cycles in this test are the first one and the ones it asks for
    return subprocess.Popen([sys.executable, "-m", "argus_core", "serve", "--dataset", str(dataset), "--models",
                             str(models), "--port", str(port), "--every", "1h", "--threads", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_ready(base: str, child: subprocess.Popen, deadline_s: float = 180) -> dict:
    def ready() -> dict | None:
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
        try:
            status, body = call(f"{base}/readyz", timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return body if status == 200 else None

    return wait_for(ready, deadline_s, "the service to become ready", every=0.5)


def stop(child: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if child.poll() is None:
        os.killpg(child.pid, sig)
    child.wait(timeout=30)


def test_serve_survives_a_kill_without_losing_or_doubling_a_push(tmp_path):
    import shutil

    dataset, models = tmp_path / "live", tmp_path / "models"
    store.write_dataset(dataset, FULL[FULL[schema.TIMESTAMP] <= CUT], kind="simulated", step="5min")
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = start(dataset, models, port)
    try:
        assert wait_ready(base, child)["generation"] == 1
        status, risk = call(f"{base}/api/v1/risk")
        assert status == 200 and len(risk["servers"]) == 14
        levels = {s["server_name"]: s["level"] for s in risk["servers"]}
        status, pushed = call(f"{base}/api/v1/samples", as_json(rows_after(CUT, 4)))
        assert status == 200 and pushed["accepted"] == 56
    finally:
        stop(child, signal.SIGKILL)  # killed before any cycle stored the push
    rows = store.read_manifest(dataset)["rows"]
    child = start(dataset, models, port)
    try:
        ready = wait_ready(base, child)
        assert ready["generation"] >= 1
        status, cycle = call(f"{base}/api/v1/cycle", {})
        assert status == 200
        assert store.read_manifest(dataset)["rows"] == rows + 56  # stored once, not lost
        stored = store.read(dataset, start=CUT + pd.Timedelta("5min"))
        assert not stored.duplicated([schema.SERVER, schema.TIMESTAMP]).any()
        status, again = call(f"{base}/api/v1/samples", as_json(rows_after(CUT, 4)))
        assert again["accepted"] == 0
        status, risk = call(f"{base}/api/v1/risk")
        assert set(levels) == {s["server_name"] for s in risk["servers"]}
        run = RunLogger(base, "an outside loop", settings={"lr": 0.1}, every=3)  # the client, over real HTTP
        for step in range(7):
            run.log(step, 0, train_loss=1.0 / (step + 1))
        assert run.finish("completed")["status"] == "completed"
        runs = RunStore(default_path(models))
        assert len(runs.metrics(run.id)) == 7 and runs.get(run.id).name == "an outside loop"
    finally:
        stop(child)


def test_serve_refuses_other_addresses_without_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARGUS_TOKEN", raising=False)
    dataset = tmp_path / "live"
    store.write_dataset(dataset, FULL[FULL[schema.TIMESTAMP] <= CUT], kind="simulated", step="5min")
    assert main(["serve", "--dataset", str(dataset), "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert "needs a token" in err and "Traceback" not in err
    short = tmp_path / "token"
    short.write_text("abc\n")
    assert main(["serve", "--dataset", str(dataset), "--host", "0.0.0.0", "--token-file", str(short)]) == 1
    assert "shorter than 16" in capsys.readouterr().err
    assert main(["serve", "--dataset", str(tmp_path / "none")]) == 1
    assert "not an Argus dataset" in capsys.readouterr().err


def test_sigterm_stops_serve_promptly_with_an_event_stream_open(tmp_path):
    """A service with a client following its events used to take almost two minutes to stop, and
    went on cycling meanwhile beside its replacement. Now SIGTERM stops the cycles at once and the
    process within its grace period, the stream cut, through its own stop (it used to be killed by
    the signal uvicorn raised again, leaving its address behind for the pages)."""
    import shutil
    import threading

    dataset, models = tmp_path / "live", tmp_path / "models"
    store.write_dataset(dataset, FULL[FULL[schema.TIMESTAMP] <= CUT], kind="simulated", step="5min")
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = subprocess.Popen([sys.executable, "-m", "argus_core", "serve", "--dataset", str(dataset), "--models",
                              str(models), "--port", str(port), "--every", "2s", "--threads", "1"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    streamed: list[bytes] = []

    def follow() -> None:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/events", timeout=120) as stream:
                while chunk := stream.read(64):
                    streamed.append(chunk)
        except OSError:
            pass

    try:
        wait_ready(base, child)
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        wait_for(lambda: streamed, 30, "the event stream to start")
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=20)  # it used to take almost two minutes: TimeoutExpired here
        follower.join(10)
        assert not follower.is_alive()  # the stream was closed, not left hanging
        assert "stopped" in child.stdout.read()  # it went through its own stop: cycles ended, sinks flushed
        assert child.returncode == 0 and not (dataset / ".live" / "service.json").exists()  # the pages' pointer went
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
