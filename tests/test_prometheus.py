"""Against a real Prometheus and Alertmanager (Debian's packages, started on 127.0.0.1 at free
ports with temporary storage): a simulated fleet with a memory leak is backfilled into Prometheus
as node_exporter's series; ``serve``'s Prometheus source pulls it, the champion forecasts, the
alert fires before the breach and reaches Alertmanager, whose webhook reaches a local receiver;
Prometheus scrapes Argus's /metrics and the shipped rule file's alert fires; Prometheus goes
away and comes back, and the gap is filled; a decommissioned server goes stale quietly."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema, store
from argus_core.errors import ArgusError, SettingsError
from argus_core.live import demo, prometheus, promlocal
from argus_core.live.service import Service, Settings
from argus_core.live.sinks import AlertmanagerSink, WebhookSink
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[1]
MISSING = promlocal.missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)} (make test installs "
                                                       "Debian's prometheus and prometheus-alertmanager as root)")
GAP = pd.Timedelta("30min")  # what Prometheus gains while it is away


class Receiver:
    """A real HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, test, timeout: float = 30.0):
        return wait_for(lambda: [b for b in list(self.bodies) if test(b)], timeout, "a delivery to the receiver")

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The leak fleet in Prometheus up to 30 minutes ago (the rest is the gap), with the stack."""
    work = tmp_path_factory.mktemp("promstack")
    plan = demo.DemoPlan(servers=8, incident="memory_leak", seed=3)
    sim, replay_from, incident = demo.simulate(plan)
    cut = replay_from + pd.Timedelta("4h")  # one hour before the breach
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    # whole weeks, so the shifted fleet keeps its weekday and time of day: the model's calendar
    # inputs then read what the simulator meant (a Tuesday), whatever day the test runs on. A
    # shift to the minute once made the leak's forecast depend on the hour of the week of the run.
    week = pd.Timedelta("7D")
    shift = (now - GAP - cut) // week * week
    frame = sim.frame[(sim.frame[schema.TIMESTAMP] > cut - pd.Timedelta("27h"))
                      & (sim.frame[schema.TIMESTAMP] <= cut + GAP)]
    before = frame[frame[schema.TIMESTAMP] <= cut]
    promlocal.backfill_frame(before, work / "tsdb", work / "om", shift)
    reset = work / "reset.om"  # a host whose counter restarts from 0 half-way (a reboot)
    first = int((cut + shift - pd.Timedelta("1h")).timestamp())
    series = 'argus_test_rx_bytes_total{instance="reset-host:9100"}'
    # a host with TCP sockets but none in CLOSE_WAIT, 60 h back: before any window the other tests read
    quiet = 'node_tcp_connection_states{instance="quiet-host:9100",state="established"}'
    early = first - 59 * 3600
    reset.write_text("".join(f"{series} {(i % 30) * 6e6} {first + 60 * i}\n" for i in range(61))
                     + "".join(f"{quiet} 12 {early + 60 * i}\n" for i in range(61)) + "# EOF\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(reset), str(work / "tsdb")],
                   check=True, capture_output=True)
    receiver = Receiver()
    stack = promlocal.Stack(work)
    stack.start_prometheus(promlocal.prometheus_config(interval="1s"), work / "tsdb")
    stack.start_alertmanager(receiver.url)
    yield {"work": work, "stack": stack, "receiver": receiver, "frame": frame, "shift": shift, "cut": cut + shift,
           "incident": incident, "breach": pd.Timestamp(incident.breach_time) + shift,
           "mapping": prometheus.load_mapping(promlocal.sim_mapping(work))}
    stack.close()
    receiver.close()


def test_fetch_gives_back_the_simulated_metrics(fleet):
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    got = prometheus.fetch(client, fleet["mapping"], fleet["cut"] - pd.Timedelta("6h"), fleet["cut"], metrics=None)
    assert got.absent == [] and got.series == 8 * 13  # 13 queried metrics, cpu_idle_pct derived
    truth = fleet["frame"].assign(timestamp=fleet["frame"][schema.TIMESTAMP] + fleet["shift"])
    merged = got.frame.merge(truth, on=[schema.SERVER, schema.TIMESTAMP], suffixes=("", "_sim"))
    assert len(merged) == len(got.frame) == 8 * 73
    for metric in schema.METRIC_COLUMNS:  # counters through rate(), ratios of gauges: all come back
        assert np.allclose(merged[metric].astype(float), merged[f"{metric}_sim"].astype(float), atol=1e-3), metric
    assert set(got.frame[schema.PROFILE].astype(str)) == set(truth[schema.PROFILE].astype(str))


def test_nan_and_counter_resets_are_not_spikes(fleet):
    """0/0 every 30 minutes is a gap carried forward; a counter reset inside rate() is no spike."""
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    mapping = prometheus.parse_mapping({"metrics": {
        "load_average": {"query": "avg by ($by) (node_load1 * (node_time_seconds % 1800) / "
                                  "(node_time_seconds % 1800))", "kind": "rate"}}})
    got = prometheus.fetch(client, mapping, fleet["cut"] - pd.Timedelta("3h"), fleet["cut"],
                           metrics={"load_average": "rate"})
    truth = fleet["frame"].assign(timestamp=fleet["frame"][schema.TIMESTAMP] + fleet["shift"])
    merged = got.frame.merge(truth, on=[schema.SERVER, schema.TIMESTAMP], suffixes=("", "_sim"))
    holes = merged[schema.TIMESTAMP].astype("int64") // 10**9 % 1800 == 0
    assert holes.any() and merged["load_average"].notna().all()
    exact = merged[~holes]
    assert np.allclose(exact["load_average"], exact["load_average_sim"], atol=1e-4)
    for _, rows in merged.sort_values(schema.TIMESTAMP).groupby(schema.SERVER, observed=True):
        carried = rows["load_average"].to_numpy()
        at = np.flatnonzero(holes.loc[rows.index].to_numpy())
        at = at[at > 0]
        assert np.allclose(carried[at], carried[at - 1])  # the step before, not 0 and not NaN
    # a restarted host's network counter starts again from 0: rate() sees a reset, not a drop or a spike
    mapping = prometheus.parse_mapping({"metrics": {"net_in_mb_s": {
        "query": "sum by ($by) (rate(argus_test_rx_bytes_total[5m])) / 1e6", "kind": "rate"}}})
    got = prometheus.fetch(client, mapping, fleet["cut"] - pd.Timedelta("50min"), fleet["cut"] - pd.Timedelta("5min"),
                           metrics={"net_in_mb_s": "rate"})
    rate = got.frame["net_in_mb_s"].to_numpy()
    assert len(rate) >= 8 and rate.min() >= 0.0 and rate.max() <= 0.1 + 1e-6  # 100 kB/s throughout
    assert np.median(rate) == pytest.approx(0.1, rel=1e-3)


def test_bad_mappings_and_urls_are_clear():
    with pytest.raises(SettingsError, match="kind must be one of"):
        prometheus.parse_mapping({"metrics": {"x": {"query": "up", "kind": "bytes"}}})
    with pytest.raises(SettingsError, match="either query"):
        prometheus.parse_mapping({"metrics": {"x": {"kind": "rate"}}})
    with pytest.raises(SettingsError, match="rest_of names"):
        prometheus.parse_mapping({"metrics": {"cpu_idle_pct": {"rest_of": ["cpu_user_pct"]}}})
    with pytest.raises(SettingsError, match="http"):
        prometheus.PrometheusClient("prometheus:9090")
    mapping = prometheus.load_mapping()  # the shipped node_exporter mapping loads
    assert "mem_used_pct" in mapping.metrics and mapping.metrics["cpu_idle_pct"].rest_of


def test_a_refused_query_names_the_promql_and_prometheus_s_message(fleet):
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    with pytest.raises(prometheus.PrometheusError) as caught:
        client.query_range("rate(node_load1[5m]", fleet["cut"] - pd.Timedelta("1h"), fleet["cut"],
                           pd.Timedelta("5min"))
    assert "rate(node_load1[5m]" in str(caught.value) and "parse error" in str(caught.value)


def test_paging_stays_under_prometheus_s_point_limit(fleet):
    """A 1-minute step over 9 days is 12,960 points: Prometheus refuses that in one query."""
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    end = fleet["cut"]
    series = client.query_range('node_load1{instance="ppdb001:9100"}', end - pd.Timedelta(days=9), end,
                                pd.Timedelta("1min"))
    assert client.requests == 2 and len(series) == 1
    assert series[0][1][-1] == end.timestamp()


def test_end_to_end_alert_before_the_breach_gap_fill_and_stale_server(fleet, tmp_path):
    stack, receiver = fleet["stack"], fleet["receiver"]
    leaker = fleet["incident"].server_name
    client = prometheus.PrometheusClient(stack.prometheus.url, backoff=0.05, retries=1)
    now = fleet["cut"]
    dataset = tmp_path / "live"
    manifest = prometheus.backfill(dataset, client, fleet["mapping"], pd.Timedelta("26h"), now)
    assert manifest.get("metric_kinds") is None and len(manifest["servers"]) == 8  # the built-in 14 metrics
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "LeakSoon"\nwhen = { p_critical = 0.4 }\nfor_cycles = 2\n'
                     'severity = "critical"\nmetrics = ["mem_used_pct"]\nlabels = { team = "sre" }\n')
    clock = {"now": now, "monotonic": 0.0}  # the fleet's time, and the source's for its back-off
    source = prometheus.PrometheusSource(client, fleet["mapping"], dataset, lambda: clock["now"],
                                         pd.Timedelta("26h"), monotonic=lambda: clock["monotonic"])
    chat = Receiver()
    service = Service(Settings(dataset=dataset, models=ROOT / "models", rules=rules, threads=1,
                               stale_after=pd.Timedelta("20min")), sources=[source],
                      sinks=[AlertmanagerSink(stack.alertmanager.url, pd.Timedelta("5min")), WebhookSink(chat.url)])
    first = service.cycle()
    assert first.ranking[schema.SERVER].iloc[0] == leaker and not service.alerts.firing()  # held for 2 cycles
    service.cycle()
    firing = service.alerts.firing()
    assert [(a.rule, a.server, a.metric) for a in firing] == [("LeakSoon", leaker, "mem_used_pct")]
    alert = firing[0]
    assert pd.Timestamp(alert.starts_at) < fleet["breach"] - pd.Timedelta("30min")  # an hour ahead, in fleet time
    assert leaker in alert.summary and "mem_used_pct" in alert.summary and "p90" in alert.summary
    service.dispatcher.flush()

    # Alertmanager groups it and its webhook reaches our receiver
    def from_alertmanager(body):
        return body.get("receiver") == "hook" and any(a["labels"].get("alertname") == "LeakSoon"
                                                      for a in body.get("alerts", []))
    delivered = receiver.wait_for(from_alertmanager)
    assert delivered, "Alertmanager did not call its webhook"
    labels = delivered[0]["alerts"][0]["labels"]
    assert labels["server"] == leaker and labels["metric"] == "mem_used_pct" and labels["team"] == "sre"
    assert chat.wait_for(lambda b: "LeakSoon" in b.get("text", "") and leaker in b["text"])  # the Slack-style one

    # Prometheus scrapes Argus's /metrics, and the shipped rule file's alert fires
    import uvicorn

    from argus_core.live.api import create_app

    port = promlocal.free_port()
    http = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=http.run, daemon=True).start()
    demo.wait_until_up(f"http://127.0.0.1:{port}/healthz")
    shipped = (ROOT / "deploy" / "prometheus" / "argus-rules.yml").read_text()
    quick = tmp_path / "argus-rules.yml"
    quick.write_text(shipped.replace("for: 15m", "for: 0s").replace("for: 5m", "for: 0s"))
    stack.reload_prometheus(promlocal.prometheus_config(scrape=[("argus", f"127.0.0.1:{port}")],
                                                        rule_files=[quick], interval="1s"))
    def firing():
        answer = httpx.get(stack.prometheus.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in answer if a["labels"]["alertname"] == "ArgusPromQLRiskWarning"
                and a["labels"].get("server") == leaker and a["state"] == "firing"]

    wait_for(firing, 30, "the shipped ArgusPromQLRiskWarning rule to fire in Prometheus", every=0.5)

    # Prometheus goes away: the cycle records it, the last snapshot stays, marked stale
    generation = service.snapshot.generation
    stack.prometheus.stop()
    with pytest.raises(prometheus.PrometheusError, match="unreachable"):
        service.cycle()
    assert service.snapshot.generation == generation and "prometheus" in service.source_errors
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["stale"] and "unreachable" in ready.json()["detail"]
    metrics_text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'argus_source_up{source="prometheus"} 0.0' in metrics_text and "argus_snapshot_stale 1.0" in metrics_text

    # while it was away 30 minutes passed; one server was decommissioned in that time
    gone = sorted(set(fleet["frame"][schema.SERVER].astype(str)) - {leaker})[0]
    later = fleet["frame"][(fleet["frame"][schema.TIMESTAMP] + fleet["shift"] > now)
                           & (fleet["frame"][schema.SERVER].astype(str) != gone)]
    promlocal.backfill_frame(later, fleet["work"] / "tsdb", fleet["work"] / "om-gap", fleet["shift"])
    stack.start_prometheus(promlocal.prometheus_config(interval="1s"), fleet["work"] / "tsdb",
                           port=int(stack.prometheus.url.rsplit(":", 1)[1]))
    clock["now"] = now + GAP
    clock["monotonic"] += prometheus.MAX_BACKOFF  # past the source's back-off
    recovered = service.cycle()
    assert not service.source_errors and recovered.generation == generation + 1
    assert recovered.accepted == 7 * 6  # the gap, from Prometheus's history
    assert recovered.data_end == (now + GAP).isoformat()
    assert gone not in set(recovered.ranking[schema.SERVER].astype(str))
    assert recovered.skipped[gone].startswith("stale")
    assert not [a for a in service.alerts.alerts.values() if a.server == gone and a.state == "firing"]
    stored = store.read(dataset, columns=[schema.SERVER, schema.TIMESTAMP])
    assert not stored.duplicated().any()
    http.should_exit = True
    chat.close()


def test_the_shipped_node_exporter_mapping_makes_a_dataset_of_its_own_metrics(fleet, tmp_path):
    """Without java_cpu_pct and front_close_wait (not in node_exporter) the dataset keeps the 12
    metrics that answered, never invents the others, and the built-in model says it cannot serve it."""
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    dataset = tmp_path / "node"
    manifest = prometheus.backfill(dataset, client, prometheus.load_mapping(), pd.Timedelta("26h"), fleet["cut"])
    kinds = manifest["metric_kinds"]
    assert set(kinds) == set(schema.METRIC_COLUMNS) - {"java_cpu_pct", "front_close_wait"}
    assert kinds["cpu_idle_pct"] == "percent" and kinds["back_close_wait"] == "count"
    stored = store.read(dataset)
    assert "java_cpu_pct" not in stored.columns and stored["cpu_idle_pct"].between(0, 100).all()
    service = Service(Settings(dataset=dataset, models=ROOT / "models", threads=1))
    with pytest.raises(ArgusError, match="java_cpu_pct") as caught:
        service.cycle()
    assert "train" in str(caught.value)


def test_the_shipped_close_wait_query_answers_zero_for_a_host_with_no_socket_in_the_state(fleet):
    """node_exporter's tcpstat has no close_wait series for a host with no such socket: the shipped
    query answers 0 for it (a gap there once stopped the host's every metric from being stored)."""
    client = prometheus.PrometheusClient(fleet["stack"].prometheus.url)
    mapping = prometheus.load_mapping()
    end = fleet["cut"] - pd.Timedelta("59h")
    query = mapping.promql(mapping.metrics["back_close_wait"])
    series = client.query_range(query, end - pd.Timedelta("30min"), end, pd.Timedelta("5min"))
    by_host = {prometheus.server_name(labels, mapping): values for labels, _, values in series}
    assert "quiet-host" in by_host and (np.asarray(by_host["quiet-host"]) == 0).all()
    # hosts with CLOSE_WAIT sockets still read their count
    series = client.query_range(query, fleet["cut"] - pd.Timedelta("30min"), fleet["cut"], pd.Timedelta("5min"))
    assert series and any((np.asarray(values) > 0).any() for _, _, values in series)


def test_live_demo_with_a_local_prometheus_runs_headless(tmp_path):
    """``make live-demo DEMO_ARGS=--prometheus``, headless for a few seconds: it backfills the fleet,
    starts Prometheus and Alertmanager, serves a forecast pulled from Prometheus and stops cleanly."""
    import sys

    port = promlocal.free_port()
    done = subprocess.run([sys.executable, "-m", "argus_core", "live-demo", "--prometheus", "--no-dashboard",
                           "--minutes", "0.25", "--servers", "6", "--dataset", str(tmp_path / "demo"),
                           "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Prometheus   http://127.0.0.1:" in done.stdout and "Alertmanager http://127.0.0.1:" in done.stdout
    assert "last snapshot 1" in done.stdout or "last snapshot 2" in done.stdout
    assert "Traceback" not in done.stderr
    assert store.read_manifest(tmp_path / "demo")["kind"] == "prometheus"


def test_pull_fills_a_dataset_to_train_on_and_adds_only_what_is_new(fleet, tmp_path, capsys):
    from argus_core.cli.main import main

    dataset = tmp_path / "pulled"
    mapping = fleet["work"] / "node_exporter_sim.toml"
    url = fleet["stack"].prometheus.url
    span = "9d"  # the fleet lies up to a week back (whole weeks of shift) and spans 27 h
    assert main(["pull", "--prometheus-url", url, "--mapping", str(mapping), "--dataset", str(dataset),
                 "--span", span]) == 0
    out = capsys.readouterr().out
    assert "8 servers" in out and store.read_manifest(dataset)["kind"] == "prometheus"
    rows = store.read_manifest(dataset)["rows"]
    assert main(["pull", "--prometheus-url", url, "--mapping", str(mapping), "--dataset", str(dataset),
                 "--span", span]) == 0
    assert store.read_manifest(dataset)["rows"] >= rows and "new rows" in capsys.readouterr().out
    assert main(["pull", "--prometheus-url", url, "--mapping", str(tmp_path / "none.toml"), "--dataset",
                 str(tmp_path / "x")]) == 1
    assert "mapping" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_the_shipped_prometheus_rules_check_and_never_share_a_name_with_argus_s_own_alerts():
    """promtool accepts the rule file, and none of its alerts is named as one `serve` sends
    (deploy/alerts.toml): run beside `serve --alertmanager-url`, no alert arrives twice under one name."""
    import tomllib

    path = ROOT / "deploy" / "prometheus" / "argus-rules.yml"
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
             if line.strip().startswith("- alert:")}
    own = {rule["name"] for rule in tomllib.loads((ROOT / "deploy" / "alerts.toml").read_text())["rules"]}
    assert own and not names & own
    assert {"ArgusNeverForecast", "ArgusDataFallingBehind"} <= names
