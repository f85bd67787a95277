"""Live service speed, beside the forecast alone in the same run.

    .venv/bin/python bench/bench_live.py [--servers 90,1000,10000] [--parts cycle,ingest,latency,memory]
                                         [--memory-cycles 60] [--parts agents --agents 1000 --repo CHECKOUT]

- cycle: one cycle (store a pushed step + forecast + risk + snapshot + export) at each fleet size,
  median of 3 warm cycles, beside ``forecast_fleet`` alone on the same history;
- ingest: push throughput in values (rows x metrics) per second, JSON and CSV batches of one step
  of a 1,000-server fleet, beside parsing the body alone;
- latency: /metrics and /api/v1/risk at 1,000 servers over HTTP (uvicorn on 127.0.0.1) while
  cycles run back to back, p50 and p99;
- memory: RSS after the warm-up and after ``--memory-cycles`` cycles of pushes at 1,000 servers;
- agents (not in the default parts): ``serve`` in its own process, 1,000 agents each pushing a batch
  a minute while cycles run, then 200 pushers back to back: push p50/p99, /metrics p99, pushes per
  second, RSS. ``--repo`` runs another checkout's ``serve`` with the same load (a baseline).

The shipped champion forecasts; torch runs one thread (this machine's default: cores - 1).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402

from argus_core.data import schema, store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.live import exporter  # noqa: E402
from argus_core.live.api import create_app  # noqa: E402
from argus_core.live.service import Service, Settings  # noqa: E402
from argus_core.model import forecast, threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HISTORY_H, EXTRA_STEPS = 26, 80


def fleet(servers: int, folder: Path) -> tuple[Path, pd.DataFrame]:
    """A live dataset of 26 h and the steps that follow it (to push)."""
    sim = simulate_fleet(SimConfig(servers=servers, hours=HISTORY_H + EXTRA_STEPS / 12, seed=5, incident_rate=0.0))
    cut = sim.frame[schema.TIMESTAMP].min() + pd.Timedelta(hours=HISTORY_H)
    dataset = folder / f"live-{servers}"
    store.write_dataset(dataset, sim.frame[sim.frame[schema.TIMESTAMP] < cut], kind="simulated")
    later = sim.frame[sim.frame[schema.TIMESTAMP] >= cut].astype({schema.SERVER: str, schema.STATUS: str})
    return dataset, later.drop(columns=[schema.PROFILE])


def step_rows(later: pd.DataFrame, index: int) -> pd.DataFrame:
    stamps = sorted(later[schema.TIMESTAMP].unique())
    return later[later[schema.TIMESTAMP] == stamps[index]]


def body(rows: pd.DataFrame, kind: str) -> bytes:
    if kind == "csv":
        return rows.to_csv(index=False).encode()
    return rows.to_json(orient="records", date_format="iso").encode()


def service_for(dataset: Path, models: Path) -> Service:
    return Service(Settings(dataset=dataset, models=models, threads=1, every=pd.Timedelta("1h")))


def cycle_part(sizes: list[int], folder: Path, models: Path) -> None:
    print("\n## one cycle (push one step, store, forecast, risk, snapshot, export), 1 thread")
    print(f"{'servers':>8} {'cold cycle':>11} {'warm cycle':>11} {'forecast alone':>15} {'cycle / forecast':>17}")
    for servers in sizes:
        dataset, later = fleet(servers, folder)
        service = service_for(dataset, models)
        started = time.perf_counter()
        service.cycle()
        cold = time.perf_counter() - started
        warm = []
        for index in range(3):
            service.accept(body(step_rows(later, index), "json"), "application/json")
            started = time.perf_counter()
            service.cycle()
            exporter.exposition(service)
            warm.append(time.perf_counter() - started)
        model = service.model
        history = store.read_recent(dataset, model.spec.encoder_length + store.LATE_SLACK)
        alone = []
        for _ in range(3):
            started = time.perf_counter()
            forecast.forecast_fleet(model, history)
            alone.append(time.perf_counter() - started)
        cycle, base = statistics.median(warm), statistics.median(alone)
        print(f"{servers:>8} {cold:>10.2f}s {cycle:>10.2f}s {base:>14.2f}s {cycle / base:>16.2f}x", flush=True)
        shutil.rmtree(dataset)


def ingest_part(folder: Path, models: Path) -> None:
    print("\n## push ingestion, one step of a 1,000-server fleet per batch (values = rows x 16 metrics)")
    dataset, later = fleet(1000, folder)
    service = service_for(dataset, models)
    metrics = len(schema.METRIC_COLUMNS)
    print(f"{'format':>7} {'accept':>12} {'values/s':>12} {'parse alone':>12} {'values/s':>12}")
    for kind, content_type in (("json", "application/json"), ("csv", "text/csv")):
        times, parse = [], []
        for index in range(10):
            rows = step_rows(later, index + (0 if kind == "json" else 10))
            payload = body(rows, kind)
            started = time.perf_counter()
            service.accept(payload, content_type)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            if kind == "json":
                pd.DataFrame.from_records(json.loads(payload))
            else:
                pd.read_csv(io.BytesIO(payload))
            parse.append(time.perf_counter() - started)
        rows_per = len(step_rows(later, 0))
        accept, alone = statistics.median(times), statistics.median(parse)
        print(f"{kind:>7} {accept * 1000:>10.1f}ms {rows_per * metrics / accept:>12,.0f} {alone * 1000:>10.1f}ms "
              f"{rows_per * metrics / alone:>12,.0f}", flush=True)
    shutil.rmtree(dataset)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def latency_part(folder: Path, models: Path, requests: int = 200) -> None:
    import uvicorn

    print("\n## read latency at 1,000 servers while cycles run back to back (HTTP on 127.0.0.1)")
    dataset, later = fleet(1000, folder)
    service = service_for(dataset, models)
    service.cycle()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    time.sleep(1.5)
    busy = threading.Event()
    busy.set()

    def cycles() -> None:
        index = 0
        while busy.is_set():
            service.accept(body(step_rows(later, index % EXTRA_STEPS), "json"), "application/json")
            service.cycle()
            index += 1

    worker = threading.Thread(target=cycles, daemon=True)
    worker.start()
    print(f"{'endpoint':>14} {'p50':>9} {'p99':>9} {'max':>9} {'bytes':>10}")
    for path in ("/metrics", "/api/v1/risk"):
        spent = []
        for _ in range(requests):
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as answer:
                size = len(answer.read())
            spent.append(time.perf_counter() - started)
        spent.sort()
        print(f"{path:>14} {spent[len(spent) // 2] * 1000:>7.1f}ms {spent[int(len(spent) * 0.99) - 1] * 1000:>7.1f}ms "
              f"{spent[-1] * 1000:>7.1f}ms {size:>10,}", flush=True)
    busy.clear()
    worker.join(120)
    print(f"  ({service.counters.cycles} cycles ran during the reads)")
    server.should_exit = True
    shutil.rmtree(dataset)


def agents_part(folder: Path, models: Path, repo: Path, agents: int = 1000, seconds: float = 60.0,
                burst: int = 200) -> None:
    """``serve`` (of ``repo``'s checkout) in its own process on a live fleet of ``agents`` servers that
    ends now, a cycle every 30 s; this process plays the agents: each pushes its server's sample for
    the next step once, at a random moment of ``seconds`` (``agents`` batches a minute), from up to
    ``burst`` connections at a time, while /metrics is read every 0.25 s. Then ``burst`` pushers push
    back to back for 20 s (the most pushes per second; after the first round each batch again, as a
    retrying agent would: checked in full, stored once). Bounded in count and in time."""
    import os
    import random
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    print(f"\n## {agents} agents pushing one batch each over {seconds:g} s (serve from {repo}), then {burst} "
          "pushers back to back")
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    start = now - pd.Timedelta(hours=HISTORY_H)
    sim = simulate_fleet(SimConfig(servers=agents, hours=HISTORY_H + 1, seed=5, incident_rate=0.0,
                                   start=start.isoformat()))
    dataset = folder / f"agents-{agents}"
    store.write_dataset(dataset, sim.frame[sim.frame[schema.TIMESTAMP] < now], kind="simulated")
    later = sim.frame[sim.frame[schema.TIMESTAMP] >= now].astype({schema.SERVER: str, schema.STATUS: str})
    later = later.drop(columns=[schema.PROFILE])
    port = free_port()
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed below
    child = subprocess.Popen([sys.executable, "-m", "argus_core", "serve", "--dataset", str(dataset), "--models",
                              str(models), "--port", str(port), "--every", "30s", "--rules", "none", "--threads", "1"],
                             cwd=repo, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ARGUS_TOKEN": ""})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise SystemExit("serve did not become ready in 300 s: see " + str(folder / "serve.log"))

        def push(rows: pd.DataFrame) -> tuple[float, int]:
            request = urllib.request.Request(f"{base}/api/v1/samples", data=body(rows, "json"), method="POST",
                                             headers={"Content-Type": "application/json"})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            return time.perf_counter() - started, status

        reads: list[float] = []
        reading = threading.Event()
        reading.set()

        def read_metrics() -> None:
            while reading.is_set():
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"{base}/metrics", timeout=60) as answer:
                        answer.read()
                    reads.append(time.perf_counter() - started)
                except OSError:
                    reads.append(float("inf"))
                time.sleep(0.25)

        reader = threading.Thread(target=read_metrics, daemon=True)
        reader.start()
        rng = random.Random(5)
        first = later[later[schema.TIMESTAMP] == now]
        per_agent = [first.iloc[[i]] for i in range(len(first))]
        moments = sorted(rng.uniform(0, seconds) for _ in per_agent)
        began = time.monotonic()

        def agent(index: int) -> tuple[float, int]:
            time.sleep(max(0.0, began + moments[index] - time.monotonic()))
            return push(per_agent[index])

        with ThreadPoolExecutor(burst) as pool:
            results = list(pool.map(agent, range(len(per_agent))))
        spent = sorted(r[0] for r in results)
        bad = sum(1 for r in results if r[1] != 200)
        reading.clear()
        reader.join(30)
        metrics = sorted(reads)
        rss = _rss_of(child.pid)
        with urllib.request.urlopen(f"{base}/metrics", timeout=60) as answer:
            cycles = next((line.split()[-1] for line in answer.read().decode().splitlines()
                           if line.startswith("argus_cycles_total")), "?")
        print(f"  steady: {len(results)} pushes in {time.monotonic() - began:.1f} s, {bad} not 200; push p50 "
              f"{_pct(spent, 50) * 1000:.0f} ms, p99 {_pct(spent, 99) * 1000:.0f} ms, max {spent[-1] * 1000:.0f} ms; "
              f"/metrics p50 {_pct(metrics, 50) * 1000:.0f} ms, p99 {_pct(metrics, 99) * 1000:.0f} ms over "
              f"{len(metrics)} reads; serve RSS {rss:,.0f} MB; {cycles} cycles since start", flush=True)
        second = later[later[schema.TIMESTAMP] == now + pd.Timedelta("5min")]
        pieces = [second.iloc[i:i + 5] for i in range(0, len(second), 5)]  # 5 servers a batch, each once
        stop_at = time.monotonic() + 20.0

        def pusher(offset: int) -> list[tuple[float, int]]:
            done = []
            index = offset
            while time.monotonic() < stop_at and len(done) < 500:  # after the first round: retries (duplicates)
                done.append(push(pieces[index % len(pieces)]))
                index += burst
            return done

        began = time.monotonic()
        with ThreadPoolExecutor(burst) as pool:
            burst_results = [r for chunk in pool.map(pusher, range(burst)) for r in chunk]
        took = time.monotonic() - began
        spent = sorted(r[0] for r in burst_results)
        print(f"  burst: {len(burst_results)} pushes from {burst} pushers in {took:.1f} s = "
              f"{len(burst_results) / took:.1f} pushes/s; p50 {_pct(spent, 50) * 1000:.0f} ms, p99 "
              f"{_pct(spent, 99) * 1000:.0f} ms; {sum(1 for r in burst_results if r[1] != 200)} not 200; serve RSS "
              f"{_rss_of(child.pid):,.0f} MB", flush=True)
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()
        shutil.rmtree(dataset, ignore_errors=True)


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else float("nan")


def _rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_part(folder: Path, models: Path, count: int) -> None:
    print(f"\n## memory over {count} cycles with pushes at 1,000 servers ({count * 5 / 60:g} h of fleet time)")
    dataset, later = fleet(1000, folder)
    service = service_for(dataset, models)
    for index in range(5):
        service.accept(body(step_rows(later, index), "json"), "application/json")
        service.cycle()
    gc.collect()
    start = rss_mb()
    for index in range(5, 5 + count):
        service.accept(body(step_rows(later, index % EXTRA_STEPS), "json"), "application/json")
        service.cycle()
    gc.collect()
    end = rss_mb()
    print(f"RSS after warm-up {start:,.0f} MB, after {count} more cycles {end:,.0f} MB: "
          f"{100 * (end / start - 1):+.1f}%")
    shutil.rmtree(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="90,1000,10000")
    parser.add_argument("--parts", default="cycle,ingest,latency,memory")
    parser.add_argument("--memory-cycles", type=int, default=60)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--agents", type=int, default=1000, help="agents of the agents part")
    parser.add_argument("--repo", type=Path, default=ROOT,
                        help="the checkout whose `serve` the agents part runs (another one: a baseline)")
    args = parser.parse_args()
    threads.use_threads(1)
    parts = args.parts.split(",")
    print(f"# bench_live: champion of {args.models}, torch 1 thread")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "cycle" in parts:
            cycle_part([int(s) for s in args.servers.split(",")], folder, args.models)
        if "ingest" in parts:
            ingest_part(folder, args.models)
        if "latency" in parts:
            latency_part(folder, args.models)
        if "memory" in parts:
            memory_part(folder, args.models, args.memory_cycles)
        if "agents" in parts:
            agents_part(folder, args.models.resolve(), args.repo.resolve(), args.agents)


if __name__ == "__main__":
    main()
