"""The live service in-process (FastAPI's TestClient) on a copy of the demo scenario cut at noon of
its last day, fed the real rows that follow: ingestion (good, bad, repeated, late, future), a
cycle, /metrics through prometheus_client's parser, hot reload after a promote, a champion that
fails to load, restart, tokens, events, and the run store over REST."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from argus_core.data import schema, store
from argus_core.live import snapshot
from argus_core.live.api import Access, create_app
from argus_core.live.service import Service, Settings
from argus_core.model import registry
from tests.test_store import snapshot as files_of

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
CUT = pd.Timestamp("2026-03-11T12:00Z")
CLOCK = pd.Timestamp("2026-03-11T14:00Z")  # the service's "now" in these tests
FULL = store.read(DEMO)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("ARGUS_THREADS", "1")


@pytest.fixture
def live(tmp_path) -> tuple[Path, Path]:
    dataset = tmp_path / "live"
    store.write_dataset(dataset, FULL[FULL[schema.TIMESTAMP] <= CUT], kind="simulated", step="5min")
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    return dataset, models


def make(live, token: str | None = None, **settings) -> tuple[Service, TestClient]:
    dataset, models = live
    service = Service(Settings(dataset=dataset, models=models, threads=1, **settings), clock=lambda: CLOCK)
    return service, TestClient(create_app(service, Access(token=token)))


def rows_after(start: pd.Timestamp, steps: int) -> pd.DataFrame:
    end = start + pd.Timedelta("5min") * steps
    part = FULL[(FULL[schema.TIMESTAMP] > start) & (FULL[schema.TIMESTAMP] <= end)]
    return part.astype({schema.SERVER: str, schema.STATUS: str, schema.PROFILE: str})


def as_json(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.drop(columns=[schema.PROFILE]).to_json(orient="records", date_format="iso"))


def test_a_cycle_serves_risk_server_detail_and_readiness(live):
    service, client = make(live)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 503  # no forecast yet
    done = client.post("/api/v1/cycle").json()
    assert done["generation"] == 1 and done["model_id"] == registry.champion_model_id(live[1])
    assert client.get("/readyz").json()["ready"] is True
    risk = client.get("/api/v1/risk").json()
    assert len(risk["servers"]) == 14 and risk["data_end"].startswith("2026-03-11T12:00")
    assert {"server_name", "level", "score", "driver", "p_critical"} <= set(risk["servers"][0])
    detail = client.get("/api/v1/servers/ppdb001").json()
    assert detail["level"] in ("healthy", "watch", "warning", "critical")
    assert len(detail["forecast"]) == 96 * len(detail["metrics"]) and detail["why"]
    # the shipped model has no serving table: the TFT forecasts every metric
    assert set(detail["served_by"].values()) == {"tft"} and len(detail["served_by"]) == len(detail["metrics"])
    assert client.get("/api/v1/servers/nobody").status_code == 404


def test_pushed_samples_are_stored_once_at_the_next_cycle(live):
    service, client = make(live)
    batch = rows_after(CUT, 6)
    before = store.read_manifest(live[0])["rows"]
    first = client.post("/api/v1/samples", json=as_json(batch)).json()
    assert first["accepted"] == len(batch) == 14 * 6
    again = client.post("/api/v1/samples", json={"samples": as_json(batch)}).json()
    assert again["accepted"] == 0 and again["duplicates"] == len(batch)  # a retried batch stores nothing twice
    done = client.post("/api/v1/cycle").json()
    assert done["accepted"] == len(batch) and done["data_end"].startswith("2026-03-11T12:30")
    assert store.read_manifest(live[0])["rows"] == before + len(batch)
    csv = rows_after(CUT + pd.Timedelta("30min"), 2).drop(columns=[schema.PROFILE]).to_csv(index=False)
    assert client.post("/api/v1/samples", content=csv, headers={"content-type": "text/csv"}).json()["accepted"] == 28
    assert client.post("/api/v1/samples", json=as_json(batch)).json()["accepted"] == 0  # stored ones too
    client.post("/api/v1/cycle")
    assert store.read_manifest(live[0])["rows"] == before + len(batch) + 28


def test_late_samples_are_placed_and_too_late_or_future_ones_refused(live):
    service, client = make(live)
    late = rows_after(CUT - pd.Timedelta("1h"), 3)
    late = late[late[schema.SERVER] == "ppweb001"].assign(server_name="ppweb777")  # a new server, an hour late
    assert client.post("/api/v1/samples", json=as_json(late)).json()["accepted"] == 3
    too_late = late.assign(timestamp=late[schema.TIMESTAMP] - pd.Timedelta("3D"), server_name="ppweb778")
    answer = client.post("/api/v1/samples", json=as_json(too_late))
    assert answer.status_code == 422 and "too late" in answer.json()["detail"]
    future = late.assign(timestamp=late[schema.TIMESTAMP] + pd.Timedelta("1D"), server_name="ppweb779")
    answer = client.post("/api/v1/samples", json=as_json(future))
    assert answer.status_code == 422 and "in the future" in answer.json()["detail"]
    client.post("/api/v1/cycle")
    stored = store.read(live[0], servers=["ppweb777"])
    assert len(stored) == 3 and stored[schema.PROFILE].astype(str).unique().tolist() == ["WEB_API"]


def test_abnormal_now_kept_between_cycles_is_what_scoring_the_stored_rows_says(live):
    # the service keeps a running baseline rather than rereading a day or a week each cycle; after
    # new steps and a late sample (which sends its server back to the stored rows) it must still
    # say what scoring the dataset from scratch says
    from argus_core import anomaly

    service, client = make(live)
    batch = rows_after(CUT, 6)
    late = (batch[schema.SERVER] == "ppdb001") & (batch[schema.TIMESTAMP] == CUT + pd.Timedelta("10min"))
    later = rows_after(CUT + pd.Timedelta("30min"), 3)
    for rows in (None, batch[~late.to_numpy()], pd.concat([batch[late.to_numpy()], later])):
        if rows is not None:
            assert client.post("/api/v1/samples", json=as_json(rows)).json()["accepted"] == len(rows)
        done = client.post("/api/v1/cycle")
        assert done.status_code == 200, done.text
        history = store.read_recent(live[0], service.model.spec.history_steps + store.LATE_SLACK)
        expected, _ = anomaly.window_judge(service.model.path, live[0])(history)
        got = service.snapshot.abnormal.set_index(schema.SERVER).loc[expected[schema.SERVER]]
        assert (got[schema.TIMESTAMP].to_numpy() == expected[schema.TIMESTAMP].to_numpy()).all()
        np.testing.assert_allclose(got["deviation"], expected["deviation"], rtol=0, atol=1e-6)
        assert got["abnormal"].tolist() == expected["abnormal"].tolist()
    assert CUT + pd.Timedelta("10min") in set(store.read(live[0], servers=["ppdb001"])[schema.TIMESTAMP])


@pytest.mark.parametrize("change, status, message", [
    (lambda rows: rows.assign(mem_used_pct=[150.0] + [50.0] * (len(rows) - 1)), 422, "mem_used_pct"),
    (lambda rows: rows.assign(favourite_colour="blue"), 422, "unknown field"),
    (lambda rows: rows.assign(server_name=["ppdb\x1b[31m001"] + ["ppdb001"] * (len(rows) - 1)), 422,
     "bad server name"),
    (lambda rows: rows.assign(server_name=["<b>db</b>"] + ["ppdb001"] * (len(rows) - 1)), 422, "bad server name"),
    (lambda rows: rows.assign(cpu_idle_pct="lots"), 422, "cpu_idle_pct"),
])
def test_a_batch_with_any_bad_row_stores_nothing(live, change, status, message):
    service, client = make(live)
    batch = rows_after(CUT, 2)
    before = files_of(live[0])
    answer = client.post("/api/v1/samples", json=as_json(change(batch)))
    assert answer.status_code == status and message in answer.text, answer.text
    assert answer.json()["problems"]
    assert not service.inbox.waiting() and files_of(live[0]) == before
    assert service.counters.samples_rejected > 0


def test_a_batch_the_dataset_would_refuse_is_refused_at_push_or_set_aside_at_the_cycle(live):
    # a batch accepted at push is stored at the next cycle; one that storing refuses must neither
    # be promised nor wedge every cycle after it
    service, client = make(live)
    client.post("/api/v1/cycle")
    one = rows_after(CUT, 1)
    db = one[one[schema.SERVER] == "ppdb001"]
    before = files_of(live[0])
    off_grid = client.post("/api/v1/samples", json=as_json(db.assign(timestamp=CUT + pd.Timedelta("2min"))))
    assert off_grid.status_code == 422 and "off the dataset's time grid" in off_grid.text
    records = as_json(db)
    records[0]["profile"] = "WEB_API"
    other = client.post("/api/v1/samples", json=records)
    assert other.status_code == 422 and "DATABASE in the dataset, WEB_API in the batch" in other.text
    assert not service.inbox.waiting() and files_of(live[0]) == before
    # a new server's two batches, each fine alone, off each other's grid: the second is set aside
    new = db.assign(server_name="ppdb777")
    for at in ("5min", "7min"):
        answer = client.post("/api/v1/samples", json=as_json(new.assign(timestamp=CUT + pd.Timedelta(at))))
        assert answer.json()["accepted"] == 1
    rejected = service.counters.samples_rejected
    done = client.post("/api/v1/cycle")
    assert done.status_code == 200 and done.json()["accepted"] == 1
    assert store.read(live[0], servers=["ppdb777"])[schema.TIMESTAMP].tolist() == [CUT + pd.Timedelta("5min")]
    aside = service.inbox.folder / "rejected"
    assert len(list(aside.glob("*.parquet"))) == 1 and "irregular time" in next(aside.glob("*.txt")).read_text()
    assert service.counters.samples_rejected > rejected and not service.inbox.waiting()
    assert client.post("/api/v1/samples", json=as_json(rows_after(CUT, 2))).json()["accepted"] == 28
    assert client.post("/api/v1/cycle").json()["accepted"] == 28  # the cycles go on


class Relabelled:
    """A pulling source (as Prometheus is) whose series lost their profile label: the next step
    of the fleet, every server named a web server."""

    name = "relabelled"

    def __init__(self) -> None:
        self.rows = rows_after(CUT, 1).assign(**{schema.PROFILE: "WEB_API"})

    def pull(self):
        return (self.rows, None) if self.rows is not None else (None, None)

    def done(self, token) -> None:
        self.rows = None


def test_a_pulled_server_with_another_profile_keeps_the_datasets_and_is_stored(live):
    dataset, models = live
    service = Service(Settings(dataset=dataset, models=models, threads=1), sources=[Relabelled()], clock=lambda: CLOCK)
    service.cycle()  # refused as "profile differs" at every cycle before, so nothing new was ever stored
    stored = store.read(dataset, start=CUT + pd.Timedelta("5min"))
    assert len(stored) == 14
    assert stored.set_index(schema.SERVER)[schema.PROFILE].astype(str).to_dict()["ppdb001"] == "DATABASE"


def test_bodies_that_are_not_batches_get_a_clear_4xx(live):
    service, client = make(live, max_body_bytes=10_000)
    assert client.post("/api/v1/samples", content=b"\xff\xfe not utf-8",
                       headers={"content-type": "application/json"}).status_code == 422
    assert "JSON list of records" in client.post("/api/v1/samples", json={"rows": 3}).text
    assert client.post("/api/v1/samples", content=b"{oops", headers={"content-type": "application/json"}
                       ).status_code == 422
    big = client.post("/api/v1/samples", content=b"x" * 20_000, headers={"content-type": "text/csv"})
    assert big.status_code == 413 and "limit" in big.text
    assert client.post("/api/v1/samples", json=[]).status_code == 422
    assert not service.inbox.waiting()


def test_metrics_parse_and_stay_bounded(live):
    service, client = make(live)
    client.post("/api/v1/samples", json=as_json(rows_after(CUT, 1)))
    client.post("/api/v1/cycle")
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("argus_breach_probability", "argus_time_to_breach_seconds", "argus_forecast_peak",
                 "argus_risk_score", "argus_risk_level", "argus_cycle_duration_seconds", "argus_samples_accepted",
                 "argus_samples_rejected", "argus_last_cycle_success_timestamp_seconds", "argus_model_info"):
        assert name in families, name
    probability = families["argus_breach_probability"].samples
    metrics = len(service.snapshot.per_metric["metric"].unique())
    assert len(probability) == 14 * metrics * 2
    assert {s.labels["threshold"] for s in probability} == {"warning", "critical"}
    assert {s.labels["horizon"] for s in probability} == {"8h"}
    assert all(0 <= s.value <= 1 for s in probability)
    assert all(s.timestamp is None for f in families.values() for s in f.samples)  # never future-stamped
    assert families["argus_model_info"].samples[0].labels["model_id"] == service.snapshot.model_id
    assert families["argus_samples_accepted"].samples[0].value == 14 * len(schema.METRIC_COLUMNS)
    assert len(families["argus_abnormal"].samples) == 14  # the detector beside the champion
    labels = {k for f in families.values() for s in f.samples for k in s.labels}
    assert labels <= {"server", "metric", "threshold", "horizon", "path", "quantile", "model_id"}


def test_a_promote_is_served_at_the_next_cycle_and_a_broken_champion_is_not(live):
    service, client = make(live)
    first = client.post("/api/v1/cycle").json()["model_id"]
    retired = next(m for m in registry.read(live[1])["models"] if m != first)
    registry.promote(live[1], retired)
    assert client.post("/api/v1/cycle").json()["model_id"] == retired
    events = [e["kind"] for e in service.events.after(0)]
    assert "model" in events
    (live[1] / first / "model.safetensors").write_bytes(b"torn")
    registry.promote(live[1], first)
    answer = client.post("/api/v1/models/reload").json()
    assert answer["serving"] == retired and "failed to load" in answer["model_error"]
    assert client.post("/api/v1/cycle").json()["model_id"] == retired  # the previous one keeps serving
    assert "failed to load" in client.get("/api/v1/risk").json()["model_error"]


def test_levels_and_the_snapshot_survive_a_restart_and_spooled_samples_are_not_lost(live):
    service, client = make(live)
    client.post("/api/v1/cycle")
    levels = dict(service.levels)
    client.post("/api/v1/samples", json=as_json(rows_after(CUT, 3)))  # spooled, then the process dies
    before = store.read_manifest(live[0])["rows"]
    again, client2 = make(live)
    assert again.snapshot.generation == 1 and again.levels == levels
    assert client2.get("/readyz").json()["ready"] is True  # the last snapshot is served at once
    assert client2.post("/api/v1/cycle").json()["accepted"] == 14 * 3
    assert store.read_manifest(live[0])["rows"] == before + 14 * 3
    assert snapshot.load(live[0] / ".live").generation == 2


def test_writes_need_the_token_when_one_is_set(live):
    token = "a-long-enough-secret-token"
    service, client = make(live, token=token)
    batch = as_json(rows_after(CUT, 1))
    assert client.post("/api/v1/samples", json=batch).status_code == 401
    assert client.post("/api/v1/samples", json=batch, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/v1/cycle").status_code == 401 and client.post("/api/v1/runs", json={}).status_code == 401
    assert not service.inbox.waiting()
    ok = client.post("/api/v1/samples", json=batch, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["accepted"] == 14
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_events_stream_one_message_per_cycle(live):
    service, client = make(live)
    client.post("/api/v1/cycle")
    with client.stream("GET", "/api/v1/events?after=0&limit=1") as stream:
        text = "".join(stream.iter_text())
    assert "event: cycle" in text or "event: level" in text or "event: model" in text
    kinds = [e["kind"] for e in service.events.after(0)]
    assert "cycle" in kinds


def test_any_training_loop_can_log_into_the_run_store(live):
    service, client = make(live)
    run = client.post("/api/v1/runs", json={"name": "my own loop", "settings": {"lr": 0.01}}).json()["id"]
    rows = [{"step": i, "epoch": 0, "values": {"train_loss": 1.0 / (i + 1)}} for i in range(5)]
    assert client.post(f"/api/v1/runs/{run}/metrics", json=rows).json() == {"stored": 5}
    assert client.post(f"/api/v1/runs/{run}/metrics", json=[{"step": "x"}]).status_code == 422
    done = client.post(f"/api/v1/runs/{run}/status", json={"status": "completed"}).json()
    assert done["status"] == "completed"
    detail = client.get(f"/api/v1/runs/{run}").json()
    assert len(detail["metrics"]) == 5 and detail["settings"] == {"lr": 0.01}
    assert [r["name"] for r in client.get("/api/v1/runs").json()] == ["my own loop"]
    assert client.get("/api/v1/runs/999").status_code == 404
    assert client.post(f"/api/v1/runs/{run}/status", json={"status": "great"}).status_code == 422


def test_the_dashboard_shows_the_live_snapshot_and_its_freshness(live, monkeypatch):
    from streamlit.testing.v1 import AppTest

    service, client = make(live)
    # every server but one reports for another half hour: that one is stale
    batch = rows_after(CUT, 6)
    client.post("/api/v1/samples", json=as_json(batch[batch[schema.SERVER] != "ppcon001"]))
    generation = client.post("/api/v1/cycle").json()["generation"]
    monkeypatch.setenv("ARGUS_DATASETS", str(live[0]))
    monkeypatch.setenv("ARGUS_MODELS", str(live[1]))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox[0].value == live[0]  # the live dataset is offered first
    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"Live: snapshot {generation} published") for c in captions), captions
    assert any(f"live · snapshot {generation}" in c.value for c in at.caption), [c.value for c in at.caption]
    assert any("ppcon001" in w.value and "stopped sending" in w.value for w in at.warning)
    counts = {m.label: int(m.value) for m in at.metric}
    assert sum(counts.values()) == 14
    levels = service.snapshot.ranking.set_index("server_name")["level"].value_counts()
    assert counts == {level.capitalize(): int(levels.get(level, 0)) for level in ("healthy", "watch", "warning",
                                                                                    "critical")}
    at.switch_page("app_pages/critical_servers.py").run()
    assert not at.exception and at.dataframe[0].value["server_name"].iloc[0] == \
        service.snapshot.ranking["server_name"].iloc[0]


def test_a_full_disk_refuses_pushes_clearly_and_reads_keep_working(live, monkeypatch):
    import errno

    service, client = make(live)
    client.post("/api/v1/cycle")

    def full(frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(service.inbox, "put", full)
    answer = client.post("/api/v1/samples", json=as_json(rows_after(CUT, 1)))
    assert answer.status_code == 507 and "No space left on device" in answer.json()["detail"]
    assert client.get("/api/v1/risk").status_code == 200 and client.get("/metrics").status_code == 200
    assert not service.inbox.waiting()


def test_an_outside_run_that_finishes_calls_its_webhook(live):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        service, client = make(live)
        hook = f"http://127.0.0.1:{server.server_port}/hook"
        run = client.post("/api/v1/runs", json={"name": "nightly", "settings": {"webhook": hook}}).json()["id"]
        client.post(f"/api/v1/runs/{run}/status", json={"status": "failed", "error": "out of memory"})
        assert received and "nightly" in received[0]["text"] and "failed: out of memory" in received[0]["text"]
        assert "webhook" not in client.get(f"/api/v1/runs/{run}").json()["settings"]  # not shown back
    finally:
        server.shutdown()


def test_a_dead_service_shows_as_late_in_the_dashboard(live, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from argus_core.live import view as live_view

    service, client = make(live, every=pd.Timedelta("5min"))
    client.post("/api/v1/cycle")  # then the service dies: no further snapshot
    created = pd.Timestamp(service.snapshot.created)
    status = live_view.fleet_view(live[0], live[1], now=created + pd.Timedelta("1h")).live
    assert status.late_by == pd.Timedelta("50min")  # an hour, less the two cycles it is allowed
    monkeypatch.setattr(live_view.pd.Timestamp, "now", classmethod(lambda cls, tz=None: created + pd.Timedelta("1h")))
    monkeypatch.setenv("ARGUS_DATASETS", str(live[0]))
    monkeypatch.setenv("ARGUS_MODELS", str(live[1]))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    assert not at.exception
    assert any("The service is late by" in w.value and "still running" in w.value for w in at.warning)


def test_alerts_fire_resolve_and_show_on_the_pages(live, monkeypatch, tmp_path):
    """A rule held two cycles fires once (deduplicated), shows on Fleet overview and on the
    server's detail with its lead time, honours a silence, and per-profile thresholds reach risk."""
    from streamlit.testing.v1 import AppTest

    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "Risky"\nwhen = { level = "watch" }\nfor_cycles = 2\n'
                     '[thresholds.profile.DATABASE]\nmem_used_pct = { warning = 10, critical = 20 }\n')
    service, client = make(live, rules=rules)
    client.post("/api/v1/cycle")
    assert client.get("/api/v1/alerts").json()["alerts"] == []  # pending: held for two cycles
    client.post("/api/v1/cycle")
    alerts = client.get("/api/v1/alerts?state=firing").json()["alerts"]
    databases = {s for s, p in store.read_manifest(live[0])["servers"].items() if p == "DATABASE"}
    assert databases <= {a["server_name"] for a in alerts}  # a DATABASE at 10/20 % memory is over its thresholds
    per_metric = service.snapshot.per_metric.set_index(["server_name", "metric"])
    db = sorted(databases)[0]
    assert per_metric.loc[(db, "mem_used_pct"), "critical"] == 20.0
    assert per_metric.loc[(db, "mem_used_pct"), "breaching_now"] == "critical"
    client.post("/api/v1/cycle")
    again = client.get("/api/v1/alerts?state=firing").json()["alerts"]
    assert len(again) == len(alerts)  # one alert per (rule, server, metric), not one per cycle
    restarted, _ = make(live, rules=rules)  # a restart keeps them: nothing fires twice
    assert {a.key: a.starts_at for a in restarted.alerts.firing()} == {a.key: a.starts_at
                                                                       for a in service.alerts.firing()}
    assert client.post("/api/v1/silences", json={"server": db, "comment": "known"}).status_code == 201
    assert client.post("/api/v1/silences", json={"until": "soon"}).status_code == 400
    silenced = {a["server_name"]: a["silenced"] for a in client.get("/api/v1/alerts").json()["alerts"]}
    assert silenced[db] is True and not all(silenced.values())
    firing = [line for line in client.get("/metrics").text.splitlines() if line.startswith("argus_alert_firing{")]
    assert any('alertname="Risky"' in line and f'server="{db}"' in line and 'silenced="true"' in line
               for line in firing) and len(firing) == len(alerts)

    monkeypatch.setenv("ARGUS_DATASETS", str(live[0]))
    monkeypatch.setenv("ARGUS_MODELS", str(live[1]))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"**{len(alerts)} firing**" in m.value for m in at.markdown)
    table = next(d.value for d in at.dataframe if {"rule", "summary"} <= set(d.value.columns))  # not the silences
    assert set(table["server_name"]) >= databases and set(table["rule"]) == {"Risky"}
    assert table["lead"].str.len().gt(0).all()
    at.switch_page("app_pages/server_detail.py").run()
    at.selectbox(key="detail-server").set_value(db).run()
    assert not at.exception, [e.value for e in at.exception]
    mine = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert list(mine["rule"]) == ["Risky"]


def test_a_service_that_never_completes_a_cycle_says_so_at_metrics(live, tmp_path):
    """A serve whose every cycle fails (no model here) tripped none of the shipped Prometheus rules:
    no last-success time was exported and the snapshot was not stale. Now the last success reads 0,
    the start time is there for "never completed one in 15 minutes", and the snapshot is stale."""
    dataset, _ = live
    empty = tmp_path / "no-models"
    empty.mkdir()
    service, client = make((dataset, empty))
    assert client.post("/api/v1/cycle").status_code >= 400
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert families["argus_last_cycle_success_timestamp_seconds"].samples[0].value == 0
    assert families["argus_started_timestamp_seconds"].samples[0].value > 0
    assert families["argus_snapshot_stale"].samples[0].value == 1
    assert families["argus_cycle_failures"].samples[0].value >= 1
