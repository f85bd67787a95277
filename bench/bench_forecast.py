"""Forecaster figures, each beside a baseline measured in the same run.

    .venv/bin/python bench/bench_forecast.py [--models models] [--part inference,training,accuracy,early,incidents]

- inference: fleet forecasts for 90 and 1,000 servers, cold (load + predict) and warm, against
  pytorch-forecasting's stock ``predict`` on the same model;
- training: samples/s of Argus's training step against a stock Lightning fit of the same
  model, 1 and 2 threads, other core idle and busy;
- accuracy: a simulated hold-out week (a seed never used in training), rolling origins every
  8 h: MASE of p50 against seasonal naive (same time yesterday) and naive (last value), all
  scaled by the in-sample seasonal-naive error; pinball loss per quantile; p10-p90 coverage;
- early: the scripted demo, replayed every 5 fleet minutes: how long before the actual
  critical breach the p90 forecast first crosses the critical threshold, and whether any other
  server was ever forecast critical;
- incidents: the same question for every incident of a simulated fleet the model never saw,
  beside a linear-trend baseline, with the share of alerts that an actual crossing followed.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import lightning.pytorch  # noqa: E402, F401  (configures its loggers on import: quieted after it)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from argus_core.data import schema, store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.fleet import risk  # noqa: E402
from argus_core.model import artifacts, forecast  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric"):  # no "GPU available" / tips per fit
    logging.getLogger(_name).setLevel(logging.WARNING)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def fleet_history(servers: int, model: artifacts.LoadedModel, seed: int = 5) -> pd.DataFrame:
    hours = (model.spec.encoder_length + 12) * pd.Timedelta(model.spec.step) / pd.Timedelta("1h")
    return simulate_fleet(SimConfig(servers=servers, hours=hours, seed=seed)).frame


def stock_predict(model: artifacts.LoadedModel, history: pd.DataFrame) -> None:
    """pytorch-forecasting's own route: TimeSeriesDataSet in predict mode + BaseModel.predict."""
    from pytorch_forecasting import TimeSeriesDataSet

    from argus_core.model import datasets, layout
    encoder, _ = forecast.encoder_windows(history, model.spec)
    frame = pd.concat([encoder, forecast.future_rows(encoder, model.spec)], ignore_index=True)
    dataset = TimeSeriesDataSet.from_parameters(datasets.reusable(model.dataset_parameters),
                                                layout.prepare(frame, model.spec), predict=True)
    from argus_core.model.fast_tft import speed_up, stock
    stock(model.network)  # the library's own modules, as pytorch-forecasting ships them
    try:
        model.network.predict(dataset, mode="quantiles", batch_size=256,
                              trainer_kwargs={"accelerator": "cpu", "logger": False, "enable_progress_bar": False,
                                              "enable_model_summary": False})
    finally:
        speed_up(model.network)


def part_inference(model_dir: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    print(f"\n## Fleet inference ({threads} thread(s)), model {model_dir.name}")
    print(f"{'servers':>8} {'cold load+predict':>18} {'warm Argus':>11} {'warm stock predict':>19} {'speed-up':>9}")
    for servers in (90, 1000):
        forecast.clear_caches()
        history = fleet_history(servers, artifacts.load(model_dir))
        started = time.perf_counter()
        model = forecast.load_model(model_dir.parent, model_dir.name)
        forecast.forecast_fleet(model, history)
        cold = time.perf_counter() - started
        warm = timed(lambda m=model, h=history: forecast.forecast_fleet(m, h))
        stock = timed(lambda m=model, h=history: stock_predict(m, h), repeat=2)
        print(f"{servers:>8} {cold:>17.2f}s {warm:>10.2f}s {stock:>18.2f}s {stock / warm:>8.1f}x")


def _burn(stop_at: float) -> None:
    x = 0.0
    while time.time() < stop_at:
        x += 1.0


WARMUP_STEPS = 3  # the first steps build oneDNN primitives and grow the allocator: 2-6x a later step here


TRAINING_CONFIGS = "1/idle,1/busy,2/idle,2/busy"


def part_training(model_dir: Path, steps: int = 12, configs: str = TRAINING_CONFIGS) -> None:
    """Samples/s of a Lightning fit of the same model fed by the stock TimeSeriesDataSet loader
    (per-sample slicing and normaliser refits) and by Argus's batch gatherer (train_windows),
    1 and 2 threads, other core idle and busy. Batch 64; the first WARMUP_STEPS are not timed
    (a training run takes thousands of steps: the figure is the steady state)."""
    import lightning.pytorch as pl

    from argus_core.model import datasets, layout
    from argus_core.model.batches import WindowBatches
    from argus_core.model.callbacks import ThreadGovernor
    from argus_core.model.train import TrainConfig, build_network

    model = artifacts.load(model_dir)
    spec = model.spec
    frame = simulate_fleet(SimConfig(servers=30, hours=96, seed=3)).frame
    prepared = layout.prepare(frame, spec)
    train_ds, _ = datasets.training_datasets(prepared, spec, 0.15, model.dataset_parameters)
    parameters = datasets.reusable(model.dataset_parameters)
    hidden = artifacts.decode(model.config["hparams"])["hidden_size"]
    config = TrainConfig(hidden_size=hidden)

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, index):
            if index == WARMUP_STEPS:
                self.started = time.perf_counter()

    def fit(loader_for, stock_network: bool = False, governed: bool = False) -> float:
        net = build_network(model.dataset_parameters, spec, config)
        if stock_network:  # the library's own modules, per-step logging metrics and Adam's default loop
            from pytorch_forecasting.metrics import MAE, MAPE, RMSE, SMAPE

            from argus_core.model.fast_tft import stock
            stock(net)
            net.logging_metrics = torch.nn.ModuleList([SMAPE(), MAE(), RMSE(), MAPE()])
            net.hparams.optimizer_params = None
        clock = Clock()
        threads = torch.get_num_threads()
        callbacks = [clock]
        if governed and threads > 1:  # as train.py runs: the thread governor (callbacks.ThreadGovernor)
            callbacks.append(ThreadGovernor(threads, log=lambda line: print(f"    Argus {line}")))
        trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                             enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                             limit_train_batches=steps + WARMUP_STEPS, callbacks=callbacks)
        try:
            trainer.fit(net, train_dataloaders=loader_for(net))
        finally:
            torch.set_num_threads(threads)
        return steps * 64 / (time.perf_counter() - clock.started)

    def stock_loader(net):
        return train_ds.to_dataloader(train=True, batch_size=64, num_workers=0)

    def argus_loader(net):
        windows = WindowBatches(prepared, spec, parameters, list(net.hparams.x_reals),
                                list(net.hparams.x_categoricals), batch_size=64)
        return torch.utils.data.DataLoader(windows, batch_size=None)

    print(f"\n## Training throughput (samples/s, batch 64, hidden {hidden}, encoder {spec.encoder_length}, "
          f"horizon {spec.horizon}, {spec.normalization} normalisation)")
    print("stock: stock loader + the library's TFT modules, logging metrics and Adam; mixed: stock loader + "
          "Argus's network and Adam; Argus: Argus's batches, network, Adam and thread governor")
    print(f"{'threads':>8} {'other core':>11} {'stock':>8} {'mixed':>8} {'Argus':>8} {'ratio':>6}")
    for setting in configs.split(","):
        threads, busy = int(setting.split("/")[0]), setting.split("/")[1] == "busy"
        torch.set_num_threads(threads)
        burner = None
        if busy:
            burner = multiprocessing.Process(target=_burn, args=(time.time() + 900,))
            burner.start()
        try:
            stock, mixed, argus = fit(stock_loader, True), fit(stock_loader), fit(argus_loader, governed=True)
        finally:
            if burner is not None:
                burner.terminate()
                burner.join()
        print(f"{threads:>8} {'busy' if busy else 'idle':>11} {stock:>8.1f} {mixed:>8.1f} {argus:>8.1f} "
              f"{argus / stock:>5.2f}x")


def scaled_errors(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(actual - predicted).mean(axis=-1) / scale


def part_accuracy(model_dir: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    model = forecast.load_model(model_dir.parent, model_dir.name)
    spec = model.spec
    step = pd.Timedelta(spec.step)
    frame = schema.add_derived(simulate_fleet(SimConfig(servers=90, hours=24 * 9, seed=99)).frame)
    start = frame[schema.TIMESTAMP].min() + pd.Timedelta("2D")  # two days of history first
    origins = pd.date_range(start, frame[schema.TIMESTAMP].max() - step * spec.horizon, freq="8h")
    wide = {m: frame.pivot(index=schema.TIMESTAMP, columns=schema.SERVER, values=m) for m in spec.targets}
    rows = []
    for origin in origins:
        history = frame[frame[schema.TIMESTAMP] <= origin]
        result = forecast.forecast_fleet(model, history)
        q = result.quantiles
        for metric in spec.targets:
            table = wide[metric]
            servers = table.columns.astype(str)
            future = table.loc[origin + step: origin + step * spec.horizon].to_numpy().T  # (S, H)
            past = table.loc[:origin].to_numpy().T
            season = 288
            scale = np.abs(past[:, season:] - past[:, :-season]).mean(axis=1)
            scale = np.where(scale > 1e-6, scale, np.nan)
            sub = q[q["metric"] == metric].set_index([schema.SERVER, schema.TIMESTAMP])
            quant = {c: sub[c].unstack().reindex(servers).to_numpy() for c in schema.QUANTILE_COLUMNS}
            seasonal = table.loc[origin + step - pd.Timedelta("1D"): origin + step * spec.horizon
                                 - pd.Timedelta("1D")].to_numpy().T
            naive = np.repeat(past[:, -1:], spec.horizon, axis=1)
            pinball = {}
            for name, tau in zip(schema.QUANTILE_COLUMNS, schema.QUANTILES, strict=True):
                diff = future - quant[name]
                pinball[name] = np.maximum(tau * diff, (tau - 1) * diff).mean(axis=1) / scale
            inside = ((future >= quant["q10"]) & (future <= quant["q90"])).mean(axis=1)
            for i, server in enumerate(servers):
                if np.isnan(scale[i]):
                    continue
                rows.append({"metric": metric, "server": server,
                             "tft": scaled_errors(future[i], quant["q50"][i], scale[i]),
                             "seasonal_naive": scaled_errors(future[i], seasonal[i], scale[i]),
                             "naive": scaled_errors(future[i], naive[i], scale[i]),
                             "coverage": inside[i], **{f"pinball_{k}": v[i] for k, v in pinball.items()}})
    scores = pd.DataFrame(rows)
    print(f"\n## Accuracy on a simulated hold-out week (seed 99, 90 servers, {len(origins)} origins every 8 h)")
    summary = scores.groupby("metric")[["tft", "seasonal_naive", "naive", "coverage", "pinball_q10",
                                        "pinball_q50", "pinball_q90"]].mean()
    summary.loc["ALL"] = scores[summary.columns].mean()
    print("MASE (scaled by in-sample seasonal-naive MAE), coverage of p10-p90, scaled pinball loss:")
    print(summary.round(3).to_string())
    ratio = summary.loc["ALL", "tft"] / summary.loc["ALL", "seasonal_naive"]
    print(f"TFT MASE / seasonal naive MASE = {ratio:.2f} (goal <= 0.8); coverage {summary.loc['ALL', 'coverage']:.2f}"
          " (goal 0.75-0.85)")


def part_early_warning(model_dir: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    model = forecast.load_model(model_dir.parent, model_dir.name)
    demo = ROOT / "demo_data" / "incident"
    manifest = store.read_manifest(demo)
    frame = store.read(demo)
    truth = store.read_incidents(demo).iloc[0]
    server, metric, threshold = truth["server_name"], truth["metric"], truth["threshold"]
    phases = {p["name"]: p for p in manifest["scenario"]["phases"]}
    first_warning, false_alarms = None, set()
    previous: dict[str, str] = {}
    for as_of in pd.date_range(phases["baseline"]["start"], truth["breach_time"], freq="5min"):
        result = forecast.forecast_fleet(model, frame[frame[schema.TIMESTAMP] <= as_of])
        q = result.quantiles
        mine = q[(q[schema.SERVER] == server) & (q["metric"] == metric)]
        if first_warning is None and (mine["q90"] >= threshold).any():
            first_warning = as_of
        ranked = risk.fleet_risk(q, previous)
        previous = dict(zip(ranked[schema.SERVER], ranked["level"], strict=True))
        false_alarms |= set(ranked.loc[(ranked["level"] == "critical") & (ranked[schema.SERVER] != server),
                                       schema.SERVER])
    print(f"\n## Early warning on the scripted demo ({server}, {metric} >= {threshold:g})")
    print(f"actual breach: {truth['breach_time']}")
    if first_warning is None:
        print("the p90 forecast never crossed the critical threshold before the breach")
    else:
        lead = (truth["breach_time"] - first_warning) / pd.Timedelta("1min")
        print(f"p90 first crossed at {first_warning}: {lead:.0f} fleet-minutes of warning (goal >= 60)")
    print(f"other servers ever forecast critical: {sorted(false_alarms) or 'none'} (goal: none)")


def part_incidents(model_dir: Path, threads: int, every: str = "15min", seed: int = 99) -> None:
    """Early warning beyond the scripted demo: every incident of a simulated fleet the model never
    saw (seed 99, 9 days, incident rate 0.03), forecast every 15 fleet minutes. An alert is a
    (server, metric) below its critical threshold now whose p90 crosses it within the horizon;
    it is true when the actual series crosses within the horizon. Beside it, in the same run:
    the last hour's linear trend, extrapolated over the horizon, alerting the same way."""
    torch.set_num_threads(threads)
    model = forecast.load_model(model_dir.parent, model_dir.name)
    spec = model.spec
    step = pd.Timedelta(spec.step)
    sim = simulate_fleet(SimConfig(servers=90, hours=24 * 9, seed=seed, incident_rate=0.03))
    frame = schema.add_derived(sim.frame)
    critical = {m: spec.thresholds[m]["critical"] for m in spec.targets}
    wide = {m: frame.pivot(index=schema.TIMESTAMP, columns=schema.SERVER, values=m) for m in spec.targets}
    servers = wide[spec.targets[0]].columns.astype(str)
    start = frame[schema.TIMESTAMP].min() + pd.Timedelta("2D")
    origins = pd.date_range(start, frame[schema.TIMESTAMP].max() - step * spec.horizon, freq=every)
    # incidents whose whole warning window (the horizon before the breach) lies within the origins
    breach = pd.to_datetime(sim.incidents["breach_time"], utc=True)
    incidents = sim.incidents[sim.incidents["metric"].isin(spec.targets)
                              & (breach - step * spec.horizon >= origins[0]) & (breach <= origins[-1])]
    first_alert = {"tft": {}, "trend": {}}
    alerts = {"tft": [0, 0], "trend": [0, 0]}  # [true, false]
    hours = np.arange(1, spec.horizon + 1)
    started = time.perf_counter()
    for origin in origins:
        q = forecast.forecast_fleet(model, frame[frame[schema.TIMESTAMP] <= origin]).quantiles
        for metric in spec.targets:
            table = wide[metric]
            now = table.loc[origin].to_numpy()
            recent = table.loc[origin - step * 11: origin].to_numpy()  # the last hour, (12, S)
            future = table.loc[origin + step: origin + step * spec.horizon].to_numpy()  # (H, S)
            crosses = (future >= critical[metric]).any(axis=0)
            p90 = q[q["metric"] == metric].groupby(schema.SERVER)["q90"].max().reindex(servers).to_numpy()
            x = np.arange(len(recent)) - (len(recent) - 1) / 2
            slope = (x[:, None] * (recent - recent.mean(axis=0))).sum(axis=0) / (x ** 2).sum()
            trend = (now[None, :] + slope[None, :] * hours[:, None]).max(axis=0)
            below = now < critical[metric]
            for name, peak in (("tft", p90), ("trend", trend)):
                flagged = below & (peak >= critical[metric])
                alerts[name][0] += int((flagged & crosses).sum())
                alerts[name][1] += int((flagged & ~crosses).sum())
                for server in servers[flagged]:
                    first_alert[name].setdefault((server, metric), []).append(origin)
    print(f"\n## Early warning on every incident of a fleet the model never saw (seed {seed}, 90 servers, 9 days; "
          f"{len(origins)} origins every {every}, {time.perf_counter() - started:.0f} s)")
    print(f"{'incident':<42} {'breach':>17} {'TFT lead':>9} {'trend lead':>11}")
    leads = {"tft": [], "trend": []}
    for row in incidents.itertuples(index=False):
        breach = pd.Timestamp(row.breach_time)
        cells = []
        for name in ("tft", "trend"):
            seen = [o for o in first_alert[name].get((row.server_name, row.metric), [])
                    if breach - step * spec.horizon <= o < breach]
            lead = (breach - min(seen)) / pd.Timedelta("1min") if seen else None
            leads[name].append(lead)
            cells.append(f"{lead:.0f} min" if lead is not None else "missed")
        label = f"{row.server_name} {row.kind} ({row.metric})"
        print(f"{label:<42} {breach.strftime('%m-%d %H:%M'):>17} {cells[0]:>9} {cells[1]:>11}")
    for name in ("tft", "trend"):
        found = [v for v in leads[name] if v is not None]
        true, false = alerts[name]
        print(f"{name:>5}: {len(found)} of {len(leads[name])} incidents warned before the breach, median lead "
              f"{np.median(found) if found else float('nan'):.0f} min; alerts {true + false}, "
              f"{true / max(true + false, 1):.0%} followed by an actual crossing within the horizon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default=None, help="model id (default: the champion)")
    parser.add_argument("--part", default="inference,training,accuracy,early")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--training-configs", default=TRAINING_CONFIGS,
                        help="threads/other core of --part training, e.g. 1/idle,2/busy")
    parser.add_argument("--incident-seed", type=int, default=99, help="fleet seed of --part incidents")
    args = parser.parse_args()
    model_dir = args.models / forecast.resolve_model_id(args.models, args.model)
    parts = set(args.part.split(","))
    print(f"# bench_forecast: {model_dir.name}, {os.cpu_count()} cores, torch {torch.__version__}")
    if "inference" in parts:
        part_inference(model_dir, args.threads)
    if "early" in parts:
        part_early_warning(model_dir, args.threads)
    if "accuracy" in parts:
        part_accuracy(model_dir, args.threads)
    if "incidents" in parts:
        part_incidents(model_dir, args.threads, seed=args.incident_seed)
    if "training" in parts:
        part_training(model_dir, configs=args.training_configs)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
