"""GPU training figures: throughput of the shipped-size TFT in fp32 and bf16 mixed precision at
batch 64 to 4,096 with the batches cut on the GPU (and once on the host, the route before), beside
the same machine's CPU at one thread and at several, and full fresh training runs with the shipped
model's settings at batch 64 and 1,024.

    .venv/bin/python bench/bench_gpu.py [--models models] [--full-epochs 12] [--skip-full]

Prints a note and exits 0 on a machine without CUDA. The CPU line is the baseline, measured in
the same process; the full run trains on the same simulated month as the shipped model
(90 servers x 720 h, seed 1, incident rate 0.03) into a temporary models directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from argus_core.data import store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.model import artifacts, datasets, layout, registry  # noqa: E402
from argus_core.model.batches import WindowBatches  # noqa: E402
from argus_core.model.train import TrainConfig, build_network, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def throughput(model: artifacts.LoadedModel, accelerator: str, precision: str, batch: int, steps: int,
               on_device: bool = True) -> float:
    """Samples/s of a Lightning fit fed by Argus's batch gatherer (on the GPU itself when
    ``on_device``, as `train` does there; on the host otherwise); the first 3 steps are not timed."""
    import lightning.pytorch as pl

    spec = model.spec
    frame = simulate_fleet(SimConfig(servers=30, hours=96, seed=3)).frame
    prepared = layout.prepare(frame, spec)
    hidden = artifacts.decode(model.config["hparams"])["hidden_size"]
    net = build_network(model.dataset_parameters, spec, TrainConfig(hidden_size=hidden))
    windows = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters), list(net.hparams.x_reals),
                            list(net.hparams.x_categoricals), batch_size=batch,
                            device="cuda" if accelerator == "gpu" and on_device else None)
    warmup = 3

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch_, index):
            if index == warmup:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.started = time.perf_counter()

        def on_train_end(self, trainer, module):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.ended = time.perf_counter()

    clock = Clock()
    trainer = pl.Trainer(max_epochs=1, accelerator=accelerator, devices=1, precision=precision, logger=False,
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                         limit_val_batches=0, limit_train_batches=warmup + steps, gradient_clip_val=0.1,
                         callbacks=[clock])
    trainer.fit(net, train_dataloaders=torch.utils.data.DataLoader(windows, batch_size=None))
    return steps * batch / (clock.ended - clock.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--full-epochs", type=int, default=12)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--full-batches", default="64,1024", help="batch sizes of the full runs, comma-separated "
                        "(the learning rate scaled by the square root of batch / 64, as `train --batch-size auto`)")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to measure (run this on a GPU machine).")
        return
    cores = os.cpu_count() or 1
    threads = max(1, min(cores - 1, 8))
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, {cores} CPU cores "
          f"(CPU baseline on {threads} threads)")
    model = artifacts.load(args.models / registry.champion_model_id(args.models))
    if not args.skip_throughput:
        print_throughput(model, args.steps)
    if not args.skip_full:
        full_runs(args.full_epochs, [int(b) for b in args.full_batches.split(",")])


def print_throughput(model: artifacts.LoadedModel, steps: int) -> None:
    spec = model.spec
    print(f"\n## Training throughput, model {model.model_id} (encoder {spec.encoder_length}, horizon {spec.horizon}),"
          f" {steps} timed steps")
    print("| device | batches cut on | precision | batch | samples/s | vs CPU (1 thread) |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    one = throughput(model, "cpu", "32-true", 64, max(4, steps // 4))
    torch.set_num_threads(threads)
    cpu = throughput(model, "cpu", "32-true", 64, max(4, steps // 4))
    print(f"| cpu, 1 thread | host | 32-true | 64 | {one:.1f} | 1.0x |")
    print(f"| cpu, {threads} threads | host | 32-true | 64 | {cpu:.1f} | {cpu / one:.1f}x |")
    for batch in (64, 256, 1024, 4096):
        for precision in ("32-true", "bf16-mixed"):
            rate = throughput(model, "gpu", precision, batch, steps)
            print(f"| gpu | device | {precision} | {batch:,} | {rate:.1f} | {rate / one:.1f}x |", flush=True)
    host = throughput(model, "gpu", "bf16-mixed", 1024, steps, on_device=False)  # the route before this one
    print(f"| gpu | host | bf16-mixed | 1,024 | {host:.1f} | {host / one:.1f}x |", flush=True)


def full_runs(epochs: int, batches: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "train-fleet"
        sim = simulate_fleet(SimConfig(servers=90, hours=720, seed=1, incident_rate=0.03))
        store.write_dataset(dataset, sim.frame, kind="simulated", incidents=sim.incidents,
                            extra={"generator": sim.settings})
        for batch in batches:
            config = TrainConfig(fresh=True, epochs=epochs, batch_size=batch, recipe="given",
                                 learning_rate=TrainConfig().learning_rate * (batch / 64) ** 0.5,
                                 batches_per_epoch=max(1, 100 * 64 // batch), val_batches=max(1, 30 * 64 // batch))
            print(f"\n## Full fresh training, {epochs} epochs of 6,400 windows, batch {batch}, bf16-mixed")
            started = time.perf_counter()
            result = train(dataset, Path(tmp) / f"models-{batch}", config, log=lambda line: print("  " + line))
            print(f"  wall {time.perf_counter() - started:.0f} s, {result.epochs} epochs, {result.steps} steps, "
                  f"best val loss {result.best_val_loss:.4f}, device {result.device}", flush=True)


if __name__ == "__main__":
    main()
