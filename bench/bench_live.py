"""Live service speed, beside the forecast alone in the same run.

    .venv/bin/python bench/bench_live.py [--servers 90,1000,10000] [--parts cycle,ingest,latency,memory]
                                         [--memory-cycles 60]

- cycle: one cycle (store a pushed step + forecast + risk + snapshot + export) at each fleet size,
  median of 3 warm cycles, beside ``forecast_fleet`` alone on the same history;
- ingest: push throughput in values (rows x metrics) per second, JSON and CSV batches of one step
  of a 1,000-server fleet, beside parsing the body alone;
- latency: /metrics and /api/v1/risk at 1,000 servers over HTTP (uvicorn on 127.0.0.1) while
  cycles run back to back, p50 and p99;
- memory: RSS after the warm-up and after ``--memory-cycles`` cycles of pushes at 1,000 servers.

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


if __name__ == "__main__":
    main()
