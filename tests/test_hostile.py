"""The live service under hostile and heavy clients: every bad request a clear 4xx that stores
nothing, no silent loss of a pushed row, and no client that can hold the others up. The slow and
many clients run against a real uvicorn server on a free loopback port, with bounded loops."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from argus_core.data import schema
from argus_core.live.api import MAX_METRIC_ROWS, Access, create_app
from argus_core.live.service import Service, Settings
from argus_core.runs.store import RunStore, default_path
from tests import test_live
from tests.test_live import CLOCK, CUT, as_json, make, rows_after


@pytest.fixture
def live(tmp_path):
    return test_live.live.__wrapped__(tmp_path)


BIG = 4294967306  # a CLOSE_WAIT count past int32, which storing once wrapped to a negative number


def pushed(rows: pd.DataFrame) -> list[dict]:
    return as_json(rows)


def no_traceback(response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


# --- data lost or corrupted ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [BIG, 1e30])
def test_a_count_too_large_to_store_is_refused_at_push_and_nothing_is_kept(live, value):
    service, client = make(live)
    batch = pushed(rows_after(CUT, 2))
    batch[0]["back_close_wait"] = value
    answer = client.post("/api/v1/samples", json=batch)
    assert answer.status_code == 422 and "too large" in answer.text and "back_close_wait" in answer.text
    assert service.inbox.waiting() == []  # the valid rows of the batch were not kept either
    ok = client.post("/api/v1/samples", json=pushed(rows_after(CUT, 2)))
    assert ok.status_code == 200 and ok.json()["accepted"] == len(batch)
    client.post("/api/v1/cycle")
    assert not (service.inbox.folder / "rejected").exists()  # what was accepted is stored at the cycle


# --- bad requests: a clear 422, never a traceback ------------------------------------------------------

def test_malformed_pushes_get_a_422_naming_the_problem(live):
    service, client = make(live)
    batch = pushed(rows_after(CUT, 1))
    nan_text = [dict(batch[0], cpu_user_pct="NaN")] + batch[1:]
    answer = client.post("/api/v1/samples", json=nan_text)
    no_traceback(answer)
    assert answer.status_code == 422 and "cpu_user_pct" in answer.text
    deep = "[" * 100_000 + "]" * 100_000
    answer = client.post("/api/v1/samples", content=deep, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "nested too deeply" in answer.text
    slash = [dict(batch[0], server_name="rack1/db7")]
    answer = client.post("/api/v1/samples", json=slash)
    assert answer.status_code == 422 and "no /" in answer.text
    header = ";".join([schema.TIMESTAMP, schema.SERVER, "cpu_user_pct"]) + "\n2026-03-11T12:05:00Z;ppdb001;5\n"
    answer = client.post("/api/v1/samples", content=header, headers={"content-type": "text/csv"})
    assert answer.status_code == 422 and "semicolons" in answer.text
    import gzip
    body = gzip.compress(json.dumps(batch).encode())
    answer = client.post("/api/v1/samples", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "compression is not supported" in answer.text
    answer = client.post("/api/v1/samples", content=body, headers={"content-type": "application/json",
                                                                    "content-encoding": "gzip"})
    assert answer.status_code == 415 and "uncompressed" in answer.text
    assert service.inbox.waiting() == []
    deep_silence = client.post("/api/v1/silences", content=deep, headers={"content-type": "application/json"})
    assert deep_silence.status_code == 422


@pytest.mark.parametrize("rows, field", [
    ([{"step": 10**30, "values": {"loss": 1.0}}], "step"),
    ([{"step": 1, "epoch": "abc", "values": {"loss": 1.0}}], "epoch"),
    ([{"step": 1, "epoch": None, "values": {"loss": 1.0}}], "epoch"),
    ('[{"step": 1, "epoch": 1e400, "values": {"loss": 1.0}}]', "epoch"),
    ([{"step": 1, "values": {"loss": 10**400}}], "values.loss"),
    ([{"step": 1, "values": {"loss": True}}], "values.loss"),
])
def test_bad_run_metrics_get_a_422_naming_the_field(live, rows, field):
    _, client = make(live)
    run = client.post("/api/v1/runs", json={"name": "external"}).json()["id"]
    body = rows if isinstance(rows, str) else json.dumps(rows)
    answer = client.post(f"/api/v1/runs/{run}/metrics", content=body, headers={"content-type": "application/json"})
    no_traceback(answer)
    assert answer.status_code == 422 and field in answer.text
    assert client.get(f"/api/v1/runs/{run}").json()["metrics"] == []


def test_a_run_id_past_any_integer_is_a_422(live):
    _, client = make(live)
    answer = client.get("/api/v1/runs/" + "9" * 30)
    no_traceback(answer)
    assert answer.status_code == 422


# --- runs over REST ------------------------------------------------------------------------------------

def test_runs_recorded_over_rest_move_forward_only_and_never_block_a_training(live):
    _, client = make(live)
    models = live[1]
    run = client.post("/api/v1/runs", json={"name": "external loop", "dataset": "elsewhere"}).json()["id"]
    assert client.post(f"/api/v1/runs/{run}/status", json={"status": "queued"}).status_code == 422
    assert client.post(f"/api/v1/runs/{run}/status",
                       json={"status": "completed", "model_id": "../../etc/passwd"}).status_code == 422
    runs = RunStore(default_path(models))
    assert runs.active() is None  # a run another loop records does not hold this Argus's trainings
    assert runs.mark_dead_runs() == [] and runs.get(run).status == "running"  # it has no process here to reap
    done = client.post(f"/api/v1/runs/{run}/status", json={"status": "completed", "model_id": "tft-elsewhere-1"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    again = client.post(f"/api/v1/runs/{run}/status", json={"status": "running"})
    assert again.status_code == 409 and "forward only" in again.text
    assert runs.get(run).status == "completed"
    from argus_core.errors import ArgusError
    from argus_core.runs import jobs
    with pytest.raises(ArgusError, match="no checkpoint"):
        jobs.resume(models, run)
    from argus_core.views import console
    assert run not in console.resumable(runs.list())


def test_a_webhook_must_be_http(live):
    _, client = make(live)
    answer = client.post("/api/v1/runs", json={"name": "x", "settings": {"webhook": "file:///etc/hostname"}})
    assert answer.status_code == 422 and "http" in answer.text
    from argus_core.runs import jobs
    assert jobs.notify("file:///etc/hostname", {"text": "x"}) is False


def test_run_metrics_over_the_row_cap_are_refused_whole(live):
    _, client = make(live)
    run = client.post("/api/v1/runs", json={"name": "big"}).json()["id"]
    rows = [{"step": i, "values": {"loss": 1.0}} for i in range(MAX_METRIC_ROWS + 1)]
    answer = client.post(f"/api/v1/runs/{run}/metrics", json=rows)
    assert answer.status_code == 413 and "batches" in answer.text
    answer = client.post(f"/api/v1/runs/{run}/metrics", json=rows[:MAX_METRIC_ROWS])
    assert answer.json() == {"stored": MAX_METRIC_ROWS}


# --- silences --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("silence, says", [
    ({"server": "ppdb001", "start": "2026-03-11T15:00Z", "until": "2026-03-11T14:30Z"}, "must be after start"),
    ({"server": "ppdb001", "until": "2026-03-11T13:00Z"}, "has passed"),
    ({"server": "ppdb001", "until": 1767225600}, "is not a time"),
    ({"server": "ppdb001", "start": "", "until": "2026-03-12T00:00Z"}, "is not a time"),
    ({"server": "ppdb001", "until": "2026-03-12T00:00Z", "comment": "x" * 1_000_000}, "at most 500"),
    ({"server": "", "until": "2026-03-12T00:00Z"}, "a pattern of 1 to"),
])
def test_a_bad_silence_is_refused_and_not_kept(live, silence, says):
    service, client = make(live, rules=Path(__file__).resolve().parents[1] / "deploy" / "alerts.toml")
    answer = client.post("/api/v1/silences", json=silence)
    assert answer.status_code == 400 and says in answer.text, answer.text
    assert client.get("/api/v1/silences").json() == []


def test_a_silence_can_be_expired_and_stays_expired_after_a_restart(live):
    rules = Path(__file__).resolve().parents[1] / "deploy" / "alerts.toml"
    service, client = make(live, rules=rules)
    made = client.post("/api/v1/silences", json={"server": "ppdb*", "until": "2026-03-12T00:00Z",
                                                 "comment": "maintenance"})
    assert made.status_code == 201 and made.json()["id"]
    silence_id = made.json()["id"]
    assert [s["id"] for s in client.get("/api/v1/silences").json()] == [silence_id]
    assert client.delete("/api/v1/silences/nope").status_code == 404
    gone = client.delete(f"/api/v1/silences/{silence_id}")
    assert gone.status_code == 200 and gone.json()["expired"]["comment"] == "maintenance"
    _, again = make(live, rules=rules)
    assert again.get("/api/v1/silences").json() == []


# --- access ------------------------------------------------------------------------------------------------

def test_private_reads_keep_the_api_description_and_model_behind_the_token(live):
    dataset, models = live
    token = "a-long-enough-token-1234"
    service = Service(Settings(dataset=dataset, models=models, threads=1), clock=lambda: CLOCK)
    client = TestClient(create_app(service, Access(token=token, private_reads=True)))
    for path in ("/docs", "/openapi.json", "/metrics", "/api/v1/risk"):
        assert client.get(path).status_code == 401, path
    client.post("/api/v1/cycle", headers={"Authorization": f"Bearer {token}"})
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- a real server: slow and many clients ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """The app on a real uvicorn server in a thread, on a free loopback port; stopped on exit."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def call(url: str, body=None, method: str | None = None, timeout: float = 60) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class SlowReceiver(http.server.BaseHTTPRequestHandler):
    delay = 4.0
    received: list[float] = []

    def do_POST(self):  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.delay)
        SlowReceiver.received.append(time.monotonic())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_slow_webhook_and_a_big_metrics_post_hold_nobody_up(live):
    service, _ = make(live)
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with Running(create_app(service)) as base:
            hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            run = json.loads(call(f"{base}/api/v1/runs", {"name": "x", "settings": {"webhook": hook}})[1])["id"]
            status, _ = call(f"{base}/api/v1/runs/{run}/status", {"status": "completed"})
            answered = time.monotonic()
            assert status == 200
            assert SlowReceiver.received == []  # the answer came before the receiver finished
            # a metrics post held up at the database (another writer holds it) holds up nobody else
            import sqlite3

            rows = [{"step": i, "values": {"loss": 1.0, "val": 2.0}} for i in range(MAX_METRIC_ROWS)]
            other = json.loads(call(f"{base}/api/v1/runs", {"name": "y"})[1])["id"]
            holder = sqlite3.connect(default_path(live[1]), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the run store's write lock, taken by someone else
            finished: list[str] = []
            worker = threading.Thread(target=lambda: finished.append(
                call(f"{base}/api/v1/runs/{other}/metrics", rows)[1]))
            worker.start()
            time.sleep(0.5)  # the post has arrived and waits for the lock
            assert call(f"{base}/healthz", timeout=5)[0] == 200 and call(f"{base}/api/v1/runs", timeout=5)[0] == 200
            assert finished == []  # still waiting: the service answered the others meanwhile
            holder.execute("COMMIT")
            holder.close()
            worker.join(60)
            assert json.loads(finished[0]) == {"stored": MAX_METRIC_ROWS}
            deadline = time.monotonic() + 15
            while not SlowReceiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
            assert SlowReceiver.received and SlowReceiver.received[0] > answered
    finally:
        receiver.shutdown()


def test_idle_event_followers_do_not_take_the_threads_pushes_need(live):
    service, _ = make(live)
    with Running(create_app(service)) as base:
        followers = []
        for _ in range(50):  # more than the default thread pool's 40 threads
            sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30)
            sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            followers.append(sock)
        try:
            time.sleep(1.0)
            started = time.monotonic()
            status, text = call(f"{base}/api/v1/samples", pushed(rows_after(CUT, 1)), timeout=10)
            assert status == 200, text
            status, _ = call(f"{base}/api/v1/silences", {"server": "ppdb001", "until": "2026-03-12T00:00Z"},
                             timeout=10)
            assert status == 201
            assert time.monotonic() - started < 10  # bounded: each call above would have timed out
        finally:
            for sock in followers:
                sock.close()


# --- a Prometheus that answers badly ---------------------------------------------------------------------

class OddPrometheus(http.server.BaseHTTPRequestHandler):
    """Answers every query with ``OddPrometheus.body`` (bytes)."""

    body = b""

    def do_POST(self):  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(OddPrometheus.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def odd_prometheus():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OddPrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def matrix(values) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"instance": "db1:9100"}, "values": values}]}}).encode()


@pytest.mark.parametrize("body, says", [
    (matrix([[1, "abc"], ["x", "1"]]), "is not [unix time"),
    (matrix([[1]]), "is not [unix time"),
    (json.dumps({"ok": True}).encode(), "without a status field"),
    (b"[1, 2]", "without a status field"),
    (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": 3}}).encode(), "not a list"),
])
def test_a_malformed_prometheus_answer_is_a_source_failure_not_a_traceback(odd_prometheus, body, says):
    from argus_core.live.prometheus import PrometheusClient, PrometheusError

    OddPrometheus.body = body
    client = PrometheusClient(odd_prometheus, retries=0)
    now = pd.Timestamp("2026-03-11T12:00Z")
    with pytest.raises(PrometheusError, match=r"\[unix time|status field|not a list"):
        client.query_range("up", now - pd.Timedelta("1h"), now, pd.Timedelta("5min"))
    with pytest.raises(PrometheusError, match=says.replace("[", r"\[")):
        client.query_range("up", now - pd.Timedelta("1h"), now, pd.Timedelta("5min"))


def test_a_malformed_answer_in_a_cycle_marks_the_source_down(live, odd_prometheus):
    from argus_core.live import exporter
    from argus_core.live.prometheus import PrometheusClient, PrometheusSource, load_mapping

    OddPrometheus.body = matrix([[1, "abc"], ["x", "1"]])
    dataset, models = live
    source = PrometheusSource(PrometheusClient(odd_prometheus, retries=0), load_mapping(None), dataset,
                              lambda: CLOCK, pd.Timedelta("2h"))
    service = Service(Settings(dataset=dataset, models=models, threads=1), sources=[source], clock=lambda: CLOCK)
    service.cycle()  # the first cycle forecasts what is stored and records the source's failure
    assert "malformed" in service.source_errors[source.name]
    text = exporter.exposition(service).decode()
    assert f'argus_source_up{{source="{source.name}"}} 0.0' in text and "argus_snapshot_stale 1.0" in text


def test_an_answer_past_the_cap_is_refused_before_it_fills_memory(odd_prometheus, monkeypatch):
    from argus_core.live import prometheus

    monkeypatch.setattr(prometheus, "MAX_ANSWER_BYTES", 1024 * 1024)
    OddPrometheus.body = matrix([[1_700_000_000 + i, "1"] for i in range(200_000)])  # about 3 MB
    client = prometheus.PrometheusClient(odd_prometheus, retries=0)
    now = pd.Timestamp("2026-03-11T12:00Z")
    with pytest.raises(prometheus.PrometheusError, match="Argus reads at most 1 MB"):
        client.query_range("up", now - pd.Timedelta("1h"), now, pd.Timedelta("5min"))


# --- a model that cannot load ------------------------------------------------------------------------------

def broken_candidate(models: Path) -> str:
    """A registered candidate whose weights are damaged (a copy of the champion's directory)."""
    import shutil

    from argus_core.model import registry

    champion = registry.champion_model_id(models)
    broken = "tft-20991231-000000-broken"
    shutil.copytree(models / champion, models / broken)
    (models / broken / "model.safetensors").write_bytes(b"not weights at all")
    registry.register(models, broken, {"val_loss": 0.1, "created": "2099-12-31T00:00:00+00:00"})
    return broken


def test_promote_refuses_a_model_that_does_not_load(live, capsys):
    from argus_core.cli.main import main
    from argus_core.model import registry

    models = live[1]
    before = (models / "registry.json").read_text()
    broken = broken_candidate(models)
    registered = (models / "registry.json").read_text()
    assert main(["models", "--models", str(models), "promote", broken]) == 1  # the guard: no backtest
    assert "has no backtest of its own" in capsys.readouterr().err
    assert main(["models", "--models", str(models), "promote", broken, "--force"]) == 1  # past the guard, not loaded
    said = capsys.readouterr()
    assert "was not promoted: it does not load" in said.err and "Traceback" not in said.err + said.out
    assert (models / "registry.json").read_text() == registered != before
    assert registry.champion_model_id(models) != broken


def test_readyz_is_503_and_the_snapshot_stale_while_no_model_serves(live):
    from argus_core.live import exporter
    from argus_core.model import registry

    dataset, models = live
    service, client = make(live)
    client.post("/api/v1/cycle")
    broken = broken_candidate(models)
    data = json.loads((models / "registry.json").read_text())  # a champion damaged after it was promoted
    data["champion"] = broken
    (models / "registry.json").write_text(json.dumps(data))
    assert registry.champion_model_id(models) == broken
    restarted, client = make(live)  # a restart: the saved snapshot, no model yet
    assert client.post("/api/v1/cycle").status_code >= 400
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "failed to load" in ready.json()["detail"]
    assert client.get("/api/v1/risk").json()["stale"] is True
    assert "argus_snapshot_stale 1.0" in exporter.exposition(restarted).decode()


# --- serve's own checks --------------------------------------------------------------------------------------

def serve_args(live, *more: str) -> list[str]:
    dataset, models = live
    return ["serve", "--dataset", str(dataset), "--models", str(models), "--port", str(free_port()), *more]


@pytest.mark.parametrize("env, more, says", [
    ({"ARGUS_TOKEN": "short"}, [], "ARGUS_TOKEN is shorter than 16"),
    ({}, ["--private-reads"], "--private-reads needs a token"),
    ({}, ["--threads", "-3"], "--threads must be 1 or more"),
    ({}, ["--token-file", "{binary}"], "is not a text file"),
])
def test_serve_refuses_unsafe_settings_before_it_starts(live, tmp_path, monkeypatch, capsys, env, more, says):
    from argus_core.cli.main import main

    monkeypatch.delenv("ARGUS_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    binary = tmp_path / "token.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 8)
    args = serve_args(live, *[str(binary) if a == "{binary}" else a for a in more])
    assert main(args) in (1, 2)
    said = capsys.readouterr()
    assert says in said.err and "Traceback" not in said.err
    assert not (live[0] / ".live" / "snapshot.json").exists() and not (live[0] / ".live").exists()


def test_serve_on_a_port_in_use_stops_before_its_first_cycle(live, capsys):
    from argus_core.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        args = serve_args(live)
        args[args.index("--port") + 1] = str(port)
        assert main(args) == 1
    said = capsys.readouterr()
    assert f"cannot listen on 127.0.0.1:{port}" in said.err
    assert not (live[0] / ".live").exists()  # no cycle ran: no snapshot, no alerts were sent


def test_a_second_serve_on_the_same_dataset_is_refused_with_the_first_one_s_pid(live, capsys):
    import os

    from argus_core.cli.main import main
    from argus_core.live.service import hold

    dataset, models = live
    with hold(Settings(dataset=dataset, models=models)):
        assert main(serve_args(live)) == 1
    said = capsys.readouterr()
    assert f"already served by PID {os.getpid()}" in said.err


# --- import: the cadence on every path ------------------------------------------------------------------------

def contract_file(tmp_path: Path, name: str, every: str | None = None, finer: int = 1) -> Path:
    """Two servers of the demo scenario over two days, as a data-contract CSV: every ``every`` (a
    thinned copy) or ``finer`` rows per 5 minutes (each row repeated a minute apart)."""
    rows = test_live.FULL[test_live.FULL[schema.SERVER].astype(str).isin(["ppdb001", "ppweb001"])]
    rows = rows[rows[schema.TIMESTAMP] < rows[schema.TIMESTAMP].min() + pd.Timedelta("2D")]
    rows = rows.astype({schema.SERVER: str, schema.STATUS: str, schema.PROFILE: str})
    if every:
        rows = rows[(rows[schema.TIMESTAMP] - rows[schema.TIMESTAMP].min()) % pd.Timedelta(every) == pd.Timedelta(0)]
    if finer > 1:
        copies = [rows.assign(**{schema.TIMESTAMP: rows[schema.TIMESTAMP] + pd.Timedelta(minutes=i)})
                  for i in range(finer)]
        rows = pd.concat(copies).sort_values([schema.SERVER, schema.TIMESTAMP])
    path = tmp_path / name
    rows.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    return path


def test_import_keeps_a_contract_file_s_own_cadence(tmp_path, capsys):
    from argus_core.cli.main import main
    from argus_core.data import store

    path = contract_file(tmp_path, "ten.csv", every="10min")
    assert main(["import", str(path), "--dataset", str(tmp_path / "ten")]) == 0
    manifest = store.read_manifest(tmp_path / "ten")
    assert manifest["step"] == "10min"
    assert len(store.read(tmp_path / "ten")) == len(pd.read_csv(path))  # no half-empty 5-minute grid


def test_import_of_finer_data_names_the_remedy_and_the_remedy_works(tmp_path, capsys):
    from argus_core.cli.main import main
    from argus_core.data import store

    path = contract_file(tmp_path, "one.csv", finer=5)
    assert main(["import", str(path), "--dataset", str(tmp_path / "one")]) == 1
    said = capsys.readouterr().err
    assert "finer than the dataset's 5min" in said and "--resample mean" in said
    assert not (tmp_path / "one").exists()
    assert main(["import", str(path), "--dataset", str(tmp_path / "one"), "--resample", "mean"]) == 0
    frame = store.read(tmp_path / "one")
    assert store.read_manifest(tmp_path / "one")["step"] == "5min" and len(frame) == len(pd.read_csv(path)) // 5


def test_names_that_would_turn_a_terminal_line_around_are_printed_escaped():
    from argus_core.cli.output import printable

    assert printable("db\u202e1gpj.exe") == "db\\u202e1gpj.exe"
    assert printable("a\u200bb\ufeff") == "a\\u200bb\\ufeff"
    assert printable("ppdb001 ünïcode") == "ppdb001 ünïcode"  # letters of any script stay as they are


def test_a_cycle_left_with_no_server_of_enough_history_names_the_stale_ones(live):
    service, client = make(live)
    rows = rows_after(CUT, 24)
    newcomer = rows[rows[schema.SERVER] == "ppdb001"].assign(**{schema.SERVER: "ppnew001"})
    assert client.post("/api/v1/samples", json=pushed(newcomer)).status_code == 200
    answer = client.post("/api/v1/cycle")
    assert answer.status_code >= 400
    said = answer.json()["detail"]
    assert "left out as stale (no sample for 30min" in said and "ppdb001" in said and "and 4 more" in said


def test_a_silence_is_expired_from_the_cli_and_from_the_fleet_overview(live, monkeypatch, capsys):
    """Both find the running service through the dataset's state folder and end the silence there."""
    from streamlit.testing.v1 import AppTest

    from argus_core.cli.main import main
    from argus_core.fleet import live_state

    rules = Path(__file__).resolve().parents[1] / "deploy" / "alerts.toml"
    service, client = make(live, rules=rules)
    client.post("/api/v1/cycle")
    monkeypatch.delenv("ARGUS_TOKEN", raising=False)
    with Running(create_app(service)) as base:
        live_state.write_service(service.settings.state_dir, base)
        dataset = str(live[0])
        assert main(["silences", "--dataset", dataset, "add", "--server", "ppdb*", "--until", "2026-03-12T00:00Z",
                     "--comment", "disk swap"]) == 0
        first = capsys.readouterr().out.split()[1]
        assert main(["silences", "--dataset", dataset, "add", "--server", "ppweb*", "--until",
                     "2026-03-12T00:00Z"]) == 0
        second = capsys.readouterr().out.split()[1]
        assert main(["silences", "--dataset", dataset, "list"]) == 0
        listed = capsys.readouterr().out
        assert first in listed and second in listed and "disk swap" in listed
        assert main(["silences", "--dataset", dataset, "expire", first]) == 0
        assert main(["silences", "--dataset", dataset, "expire", first]) == 1
        assert "no silence" in capsys.readouterr().err
        assert [s["id"] for s in service.alerts.to_json()["silences"]] == [second]

        monkeypatch.setenv("ARGUS_DATASETS", dataset)
        monkeypatch.setenv("ARGUS_MODELS", str(live[1]))
        monkeypatch.setenv("ARGUS_THREADS", "1")
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=240)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="silence-expire-choice").value == second
        at.button(key="silence-expire").click().run()
        assert not at.exception and any(f"Silence {second} expired" in s.value for s in at.success)
        assert service.alerts.to_json()["silences"] == []
        live_state.forget_service(service.settings.state_dir)
    assert main(["silences", "--dataset", dataset, "list"]) == 1
    assert "no live service runs on" in capsys.readouterr().err
