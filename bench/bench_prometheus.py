"""A cycle's cost when pulling a fleet from a local Prometheus, beside the forecast alone.

    .venv/bin/python bench/bench_prometheus.py [--servers 1000] [--hours 27]

A simulated fleet is written as node_exporter's series (counters at a 1-minute scrape, gauges
at 5 minutes) and backfilled with promtool into a Prometheus started on 127.0.0.1 (Debian's
package). Then, with the node_exporter mapping (plus the two simulated series it lacks):
- backfill: ``prometheus.backfill`` of the encoder window and its margin (what ``serve`` does on
  its first start), rows and seconds;
- pull: one cycle's pull of what is new (the last 15 minutes and the overlap), median of 3;
- cycle: ``Service.cycle`` with the Prometheus source (pull + store + forecast + risk + alerts +
  snapshot), median of 3, beside ``forecast_fleet`` alone on the same history.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402

from argus_core.data import schema, store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.live import prometheus, promlocal  # noqa: E402
from argus_core.live.service import Service, Settings  # noqa: E402
from argus_core.model import forecast, threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=27.0)
    args = parser.parse_args()
    if promlocal.missing():
        sys.exit(f"not installed: {', '.join(promlocal.missing())} (apt-get install prometheus "
                 "prometheus-alertmanager)")
    threads.use_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sim = simulate_fleet(SimConfig(servers=args.servers, hours=args.hours, seed=99, incident_rate=0.02))
        now = pd.Timestamp.now(tz="UTC").floor("5min")
        shift = now - sim.frame[schema.TIMESTAMP].max()
        t0 = time.perf_counter()
        samples = promlocal.backfill_frame(sim.frame, work / "tsdb", work / "om", shift)
        promtool_s = time.perf_counter() - t0
        stack = promlocal.Stack(work)
        try:
            stack.start_prometheus(promlocal.prometheus_config(), work / "tsdb")
            mapping = prometheus.load_mapping(promlocal.sim_mapping(work))
            client = prometheus.PrometheusClient(stack.prometheus.url, timeout=300)
            span = pd.Timedelta("5min") * (288 + store.LATE_SLACK + 1)
            dataset = work / "live"
            t0 = time.perf_counter()
            manifest = prometheus.backfill(dataset, client, mapping, span, now)
            backfill_s = time.perf_counter() - t0
            clock = {"now": now}
            source = prometheus.PrometheusSource(client, mapping, dataset, lambda: clock["now"], span)
            pulls = []
            for _ in range(3):
                t0 = time.perf_counter()
                source.pull()
                pulls.append(time.perf_counter() - t0)
            service = Service(Settings(dataset=dataset, models=ROOT / "models", threads=1,
                                       rules=ROOT / "deploy" / "alerts.toml"), sources=[source],
                              clock=lambda: clock["now"])
            service.cycle()  # warm: loads the champion
            cycles = []
            for _ in range(3):
                t0 = time.perf_counter()
                service.cycle()
                cycles.append(time.perf_counter() - t0)
            model = service.model  # the champion the cycles used
            history = store.read_recent(dataset, model.spec.encoder_length + store.LATE_SLACK)
            alone = []
            for _ in range(3):
                t0 = time.perf_counter()
                forecast.forecast_fleet(model, history)
                alone.append(time.perf_counter() - t0)
        finally:
            stack.close()
    print(f"\n{args.servers} servers x {args.hours:g} h in a local Prometheus ({samples:,} samples backfilled by "
          f"promtool in {promtool_s:.0f} s); 1 torch thread\n")
    print("| figure | value |")
    print("| --- | ---: |")
    print(f"| backfill on first start ({span}, {manifest['rows']:,} rows) | {backfill_s:.1f} s |")
    print(f"| one cycle's pull (last 15 min + overlap; {source.last_fetch['series']:,} series) | "
          f"{statistics.median(pulls):.2f} s |")
    print(f"| one cycle with the Prometheus source (pull + store + forecast + risk + alerts + snapshot) | "
          f"{statistics.median(cycles):.2f} s |")
    print(f"| forecast_fleet alone on the same history | {statistics.median(alone):.2f} s |")


if __name__ == "__main__":
    main()
