"""Cost of cutting one training batch: gathered on the host (numpy) or on the training device.

    .venv/bin/python bench/bench_batches.py [--models models] [--batches 64,256,1024] [--repeat 20]

Uses the shipped model's inputs (288-step encoder, 96-step horizon, 8 targets) on a simulated
90-server x 3-day fleet, one torch thread. Per batch size it prints milliseconds per batch and
windows per second for: the host route (numpy gathering, then the tensors built on the CPU: what
a CPU training reads), the device route with the CPU as device (every array a torch tensor, a
batch cut by indexing), and the device route on CUDA when there is a GPU (the batch never leaves
the GPU). The first batch of each is not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.model import artifacts, datasets, layout  # noqa: E402
from argus_core.model.batches import WindowBatches  # noqa: E402


def timed(batches: WindowBatches, size: int, repeat: int, device: str | None) -> float:
    """Milliseconds per batch of ``size`` windows (the median of ``repeat``)."""
    rng = np.random.default_rng(0)
    picks = [batches.windows[rng.integers(0, len(batches.windows), size)] for _ in range(repeat + 1)]
    if device is not None:
        picks = [torch.from_numpy(p).to(device) for p in picks]
    times = []
    for index, chosen in enumerate(picks):
        started = time.perf_counter()
        x, _ = batches.batch(chosen)
        if device is not None and device.startswith("cuda"):
            torch.cuda.synchronize()
        if index:
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from argus_core.model import registry

    model = artifacts.load(args.models / registry.champion_model_id(args.models))
    spec = model.spec
    prepared = layout.prepare(simulate_fleet(SimConfig(servers=90, hours=72, seed=3)).frame, spec)
    hp = model.network.hparams
    routes = [("host (numpy)", None), ("device route, CPU", "cpu")]
    if torch.cuda.is_available():
        routes.append((f"device route, {torch.cuda.get_device_name(0)}", "cuda"))
    print(f"model {model.model_id}: encoder {spec.encoder_length}, horizon {spec.horizon}, "
          f"{len(spec.targets)} targets; 90 servers x 3 days; torch {torch.__version__}, 1 thread")
    print("| route | batch | ms per batch | windows/s |")
    print("| --- | ---: | ---: | ---: |")
    for label, device in routes:
        try:
            batches = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters), list(hp.x_reals),
                                    list(hp.x_categoricals), batch_size=64, device=device)
        except TypeError:  # a release before the device route: the host route only
            if device is not None:
                continue
            batches = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters), list(hp.x_reals),
                                    list(hp.x_categoricals), batch_size=64)
        for size in map(int, args.batches.split(",")):
            ms = timed(batches, size, args.repeat, device)
            print(f"| {label} | {size:,} | {ms:.1f} | {size / ms * 1000:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
