"""A local Prometheus stack for the tests, the benches and ``live-demo --prometheus``: a
simulated fleet written as node_exporter's series (OpenMetrics, one file per day), backfilled with
``promtool tsdb create-blocks-from openmetrics``, and ``prometheus`` / ``prometheus-alertmanager``
(Debian's packages) run on 127.0.0.1 at free ports with temporary storage. Every process started
here dies with its parent (PR_SET_PDEATHSIG) and is stopped by ``close``.

The series written per server (labels ``instance="NAME:9100"``, ``job="node"``, ``argus_profile``):
counters at a 1-minute scrape (``node_cpu_seconds_total`` by mode, ``node_network_*_bytes_total``
for eth0 and lo), gauges at the fleet's 5-minute step (memory, swap, the root filesystem, load,
boot and wall time, CLOSE_WAIT sockets), and two series node_exporter does not have
(``argus_sim_java_cpu_percent``, ``argus_sim_front_close_wait``) that ``SIM_MAPPING`` adds to the
node_exporter mapping so the built-in 14 metrics are complete.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.errors import ArgusError

BINARIES = {"prometheus": "prometheus", "promtool": "promtool", "alertmanager": "prometheus-alertmanager",
            "node_exporter": "prometheus-node-exporter"}
NEEDED = ("prometheus", "promtool", "alertmanager")
SCRAPE = 60  # seconds between counter samples
MEM_TOTAL = 64 * 2**30
SWAP_TOTAL = 8 * 2**30
DISK_SIZE = 500 * 10**9
EXTRA_METRICS = """
[metrics.java_cpu_pct]
query = 'avg by ($by) (argus_sim_java_cpu_percent)'

[metrics.front_close_wait]
query = 'sum by ($by) (argus_sim_front_close_wait)'
"""


class StackError(ArgusError):
    """A local Prometheus or Alertmanager could not be started."""


def missing() -> list[str]:
    """The Debian binaries this machine lacks (``make test`` installs them when it can)."""
    return [BINARIES[name] for name in NEEDED if shutil.which(BINARIES[name]) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sim_mapping(folder: Path) -> Path:
    """The shipped node_exporter mapping plus the two simulated series it lacks."""
    from argus_core.live.prometheus import DEFAULT_MAPPING

    path = folder / "node_exporter_sim.toml"
    path.write_text(DEFAULT_MAPPING.read_text() + EXTRA_METRICS)
    return path


# --- OpenMetrics --------------------------------------------------------------------------------------

def _labels(server: str, profile: str, **extra: str) -> str:
    pairs = {"instance": f"{server}:9100", "job": "node", "argus_profile": profile, **extra}
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())


def _lines(name: str, labels: str, stamps: np.ndarray, values: np.ndarray) -> str:
    text = np.char.add(np.char.add(f"{name}{{{labels}}} ", np.char.mod("%.9g", values)),
                       np.char.add(" ", stamps.astype(np.int64).astype(str)))
    return "\n".join(text.tolist()) + "\n"


def node_series(server: str, profile: str, g: pd.DataFrame, t: np.ndarray) -> tuple[list, list]:
    """What node_exporter (and the two simulated extras) would expose for one server's rows ``g``
    at Unix times ``t``: (counters as (family, key, labels, per-second rate), gauges as (family,
    labels, values)). The one definition the backfill and the live exporter share."""
    def col(name: str) -> np.ndarray:
        return g[name].to_numpy(np.float64)

    plain = _labels(server, profile)
    fs = _labels(server, profile, device="/dev/sda1", fstype="ext4", mountpoint="/")
    idle = np.clip(100.0 - col("cpu_user_pct") - col("cpu_sys_pct") - col("cpu_iowait_pct"), 0, 100)
    counters = [("node_cpu_seconds_total", f"{server}/cpu/{mode}", _labels(server, profile, cpu="0", mode=mode),
                 pct / 100.0)
                for mode, pct in (("user", col("cpu_user_pct")), ("system", col("cpu_sys_pct")),
                                  ("iowait", col("cpu_iowait_pct")), ("idle", idle))]
    counters += [(family, f"{server}/{family}/{device}", _labels(server, profile, device=device), col(column) * scale)
                 for family, column in (("node_network_receive_bytes_total", "net_in_mb_s"),
                                        ("node_network_transmit_bytes_total", "net_out_mb_s"))
                 for device, scale in (("eth0", 1e6), ("lo", 1e4))]
    ones = np.ones(len(t))
    gauges = [
        ("node_memory_MemTotal_bytes", plain, MEM_TOTAL * ones),
        ("node_memory_MemAvailable_bytes", plain, MEM_TOTAL * (1 - col("mem_used_pct") / 100.0)),
        ("node_memory_SwapTotal_bytes", plain, SWAP_TOTAL * ones),
        ("node_memory_SwapFree_bytes", plain, SWAP_TOTAL * (1 - col("swap_used_pct") / 100.0)),
        ("node_load1", plain, col("load_average")),
        ("node_time_seconds", plain, np.asarray(t, dtype=np.float64)),
        ("node_boot_time_seconds", plain, t - col("uptime_days") * 86400.0),
        ("argus_sim_java_cpu_percent", plain, col("java_cpu_pct")),
        ("argus_sim_front_close_wait", plain, col("front_close_wait")),
        ("node_filesystem_size_bytes", fs, DISK_SIZE * ones),
        ("node_filesystem_avail_bytes", fs, DISK_SIZE * (1 - col("disk_usage_pct") / 100.0)),
        ("node_tcp_connection_states", _labels(server, profile, state="close_wait"), col("back_close_wait")),
    ]
    return counters, gauges


def openmetrics_day(rows: pd.DataFrame, shift: pd.Timedelta | None = None,
                    counters_from: dict | None = None) -> tuple[str, dict]:
    """One day of a canonical frame (built-in metrics) as OpenMetrics text, timestamps moved by
    ``shift``. Counters continue from ``counters_from`` (what the previous day ended at)."""
    counters_from = dict(counters_from or {})
    shift = pd.Timedelta(0) if shift is None else shift
    step_s = None
    out: dict[str, list[str]] = {}
    for server, g in rows.groupby(schema.SERVER, observed=True, sort=True):
        g = g.sort_values(schema.TIMESTAMP)
        t = ((g[schema.TIMESTAMP] + shift).astype("int64") // 10**9).to_numpy()
        step_s = step_s or (int(np.median(np.diff(t))) if len(t) > 1 else 300)
        per_step = step_s // SCRAPE
        minutes = (t[:, None] - step_s + SCRAPE * np.arange(1, per_step + 1)[None, :]).ravel()  # (T-step, T]
        counters, gauges = node_series(str(server), str(g[schema.PROFILE].iloc[0]), g, t)
        for family, key, labels, per_second in counters:  # a counter at every scrape, gauges at every step
            values = counters_from.get(key, 0.0) + np.cumsum(np.repeat(per_second * SCRAPE, per_step))
            counters_from[key] = float(values[-1])
            out.setdefault(family, []).append(_lines(family, labels, minutes, values))
        for family, labels, values in gauges:
            out.setdefault(family, []).append(_lines(family, labels, t, values))
    text = "".join("".join(parts) for parts in out.values()) + "# EOF\n"
    return text, counters_from


def backfill_frame(frame: pd.DataFrame, data_dir: Path, work: Path, shift: pd.Timedelta | None = None,
                   counters_out: dict | None = None) -> int:
    """Write ``frame`` (built-in metrics) into a Prometheus storage folder, one OpenMetrics file
    per day through promtool; returns the samples written (``counters_out`` gets where each
    counter ended, for a ``SimExporter`` to continue from)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    shift = pd.Timedelta(0) if shift is None else shift
    days = (frame[schema.TIMESTAMP] + shift).dt.floor("D")
    counters: dict = {}
    samples = 0
    for day in sorted(days.unique()):
        text, counters = openmetrics_day(frame[days == day], shift, counters)
        path = work / f"day-{pd.Timestamp(day):%Y%m%d}.om"
        path.write_text(text)
        samples += text.count("\n") - 1
        done = subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics",
                               str(path), str(data_dir)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise StackError(f"promtool could not backfill {path.name}: {done.stderr.strip()[-500:]}")
        path.unlink()
    if counters_out is not None:
        counters_out.update(counters)
    return samples


class SimExporter:
    """A simulated fleet scraped live: ``/metrics`` serves each server's sample of the fleet-time
    step that wall time falls in (fleet time = wall time - ``shift``), the same series as
    ``openmetrics_day``, counters continuing from ``counters``. For ``live-demo --prometheus``."""

    def __init__(self, frame: pd.DataFrame, shift: pd.Timedelta, counters: dict) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.frame = frame.sort_values([schema.TIMESTAMP, schema.SERVER]).set_index(schema.TIMESTAMP)
        self.shift, self.counters = shift, dict(counters)
        self.last = time.time()
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="argus-sim-exporter", daemon=True).start()

    def render(self) -> str:
        with self._lock:
            now = time.time()
            elapsed, self.last = now - self.last, now
            fleet = (pd.Timestamp(now, unit="s", tz="UTC") - self.shift).ceil("5min")
            if fleet > self.frame.index.max():
                return "# the simulated fleet has ended\n"
            rows = self.frame.loc[[fleet]]
            lines = []
            for server, one in rows.groupby(schema.SERVER, observed=True, sort=True):
                counters, gauges = node_series(str(server), str(one[schema.PROFILE].iloc[0]), one, np.array([now]))
                for family, key, labels, per_second in counters:
                    self.counters[key] = self.counters.get(key, 0.0) + float(per_second[0]) * elapsed
                    lines.append(f"{family}{{{labels}}} {self.counters[key]:.9g}")
                lines += [f"{family}{{{labels}}} {float(values[0]):.9g}" for family, labels, values in gauges]
            return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()


# --- processes ----------------------------------------------------------------------------------------

def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Process:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start(name: str, args: list[str], url: str, ready: str, log: Path, timeout: float = 60.0) -> Process:
    binary = shutil.which(BINARIES[name])
    if binary is None:
        raise StackError(f"{BINARIES[name]} is not installed (Debian: apt-get install prometheus "
                         "prometheus-alertmanager)")
    handle = log.open("w")
    proc = subprocess.Popen([binary, *args], stdout=handle, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited at start: {log.read_text()[-800:]}")
        try:
            if httpx.get(url + ready, timeout=1.0).status_code == 200:
                return Process(name, url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise StackError(f"{name} did not become ready in {timeout:.0f} s: {log.read_text()[-800:]}")


def prometheus_config(scrape: list[tuple[str, str]] = (), rule_files: list[Path] = (),
                      alertmanager: str | None = None, interval: str = "15s", honor: tuple[str, ...] = ()) -> str:
    """A prometheus.yml: scrape jobs (job, host:port), rule files, an Alertmanager; jobs in
    ``honor`` keep the labels their targets expose (a simulated fleet's instance names)."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
    if rule_files:
        lines += ["rule_files:", *[f"  - {p}" for p in rule_files]]
    if alertmanager:
        lines += ["alerting:", "  alertmanagers:", "    - static_configs:", f"        - targets: ['{alertmanager}']"]
    lines.append("scrape_configs:" if scrape else "scrape_configs: []")
    for job, target in scrape:
        lines += [f"  - job_name: {job}", *(["    honor_labels: true"] if job in honor else []),
                  "    static_configs:", f"      - targets: ['{target}']"]
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """Prometheus (and optionally Alertmanager) on loopback, over ``folder``."""

    folder: Path
    prometheus: Process | None = None
    alertmanager: Process | None = None
    processes: list[Process] = field(default_factory=list)

    def start_prometheus(self, config: str, data_dir: Path | None = None, port: int | None = None) -> Process:
        port = port or free_port()
        data_dir = data_dir or self.folder / "prometheus-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        (self.folder / "prometheus.yml").write_text(config)
        self.prometheus = _start("prometheus", [
            f"--config.file={self.folder / 'prometheus.yml'}", f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=3650d",  # the default 15 days would delete backfilled history
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
            f"http://127.0.0.1:{port}", "/-/ready", self.folder / "prometheus.log")
        self.processes.append(self.prometheus)
        return self.prometheus

    def start_alertmanager(self, webhook: str | None) -> Process:
        """Alertmanager calling ``webhook`` for every group (None: it only shows alerts in its UI)."""
        port = free_port()
        config = self.folder / "alertmanager.yml"
        hook = f"    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n" if webhook else ""
        config.write_text("route:\n  receiver: hook\n  group_by: ['alertname', 'server']\n  group_wait: 1s\n"
                          "  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n" + hook)
        storage = self.folder / "alertmanager-data"
        storage.mkdir(exist_ok=True)
        self.alertmanager = _start("alertmanager", [
            f"--config.file={config}", f"--storage.path={storage}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address="],  # no gossip port: a single instance on loopback only
            f"http://127.0.0.1:{port}", "/-/ready", self.folder / "alertmanager.log")
        self.processes.append(self.alertmanager)
        return self.alertmanager

    def start_node_exporter(self) -> Process | None:
        """Debian's node_exporter for this machine on loopback, or None when it is not installed."""
        if shutil.which(BINARIES["node_exporter"]) is None:
            return None
        port = free_port()
        process = _start("node_exporter", [f"--web.listen-address=127.0.0.1:{port}", "--collector.tcpstat"],
                         f"http://127.0.0.1:{port}", "/metrics", self.folder / "node_exporter.log")
        self.processes.append(process)
        return process

    def reload_prometheus(self, config: str) -> None:
        (self.folder / "prometheus.yml").write_text(config)
        httpx.post(self.prometheus.url + "/-/reload", timeout=10).raise_for_status()

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
