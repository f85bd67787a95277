"""Training defects found by trying Argus as a new user would (issue 15, items 1, 4, 8, 11):
untrained models crowned, short runs crashing, failed checkpoints resumed silently, a kill during
the final save training on and registering a second model."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
import pytest

from argus_core import atomic
from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.data.simulate import SimConfig, simulate_fleet
from argus_core.errors import ArgusError, DatasetError
from argus_core.model import artifacts, registry
from argus_core.model.train import TrainConfig, train
from tests import support

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
TINY = replace(support.TINY, epochs=2, encoder_length=96, horizon=24, fresh=True, seed=1)
TINY_ARGS = ["--epochs", "1", "--batches-per-epoch", "3", "--hidden-size", "8", "--batch-size", "16",
             "--encoder-length", "96", "--horizon", "24", "--threads", "1", "--fresh"]


def quiet(line: str) -> None:
    pass


@pytest.mark.parametrize("steps", ["0", "-5", "-2"])
def test_max_steps_is_validated_and_nothing_is_written(tmp_path, capsys, steps):
    models = tmp_path / "models"
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS, "--max-steps", steps]) == 2
    err = capsys.readouterr().err
    assert "max_steps must be -1 (no limit) or a positive whole number" in err and "Traceback" not in err
    assert not models.exists()


def test_no_model_without_a_finite_validation_loss_is_registered(tmp_path):
    registry.register(tmp_path, "tft-good", {"val_loss": 0.5})
    before = (tmp_path / registry.REGISTRY).read_bytes()
    for bad in (math.inf, math.nan, None):
        with pytest.raises(ArgusError, match="no finite validation loss"):
            registry.register(tmp_path, "tft-bad", {"val_loss": bad})
    assert (tmp_path / registry.REGISTRY).read_bytes() == before
    with pytest.raises(ValueError):
        atomic.write_json(tmp_path / "x.json", {"val_loss": math.inf})  # never "Infinity" in a JSON file
    assert not (tmp_path / "x.json").exists()


def test_registry_writes_keep_the_files_readable(tmp_path):
    registry.register(tmp_path, "tft-a", {"val_loss": 0.5})
    (tmp_path / "tft-a").mkdir()
    registry.register(tmp_path, "tft-b", {"val_loss": 0.4})
    (tmp_path / "tft-b").mkdir()
    registry.promote(tmp_path, "tft-b")
    assert (tmp_path / registry.REGISTRY).stat().st_mode & 0o777 == 0o666 & ~atomic.UMASK


def test_a_run_shorter_than_one_epoch_validates_at_its_end(tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS, "--batches-per-epoch", "50",
                 "--max-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "val_loss" not in out.lower() or "Traceback" not in out
    entry = registry.read(models)["models"][registry.champion_model_id(models)]
    assert math.isfinite(entry["val_loss"])
    assert (models / registry.champion_model_id(models) / "anomaly.json").is_file()  # fitted beside it
    info = json.loads((models / registry.champion_model_id(models) / "training_info.json").read_text())
    assert info["steps"] == 3


class FailOnSecondEpoch(pl.Callback):
    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("disk full (simulated)")


def test_a_failed_runs_checkpoint_is_not_resumed_silently(tmp_path):
    models = tmp_path / "models"
    with pytest.raises(RuntimeError, match="disk full"):
        train(DEMO, models, TINY, log=quiet, extra_callbacks=[FailOnSecondEpoch()])
    lines: list[str] = []
    result = train(DEMO, models, TINY, log=lines.append)  # the same command again
    assert any("from a run that failed" in line and "starting over" in line for line in lines)
    assert not any(line.startswith("resuming from checkpoint") for line in lines)
    assert any(line.startswith("epoch   1/2") for line in lines)
    assert result.epochs == 2


def test_an_explicit_resume_takes_the_failed_runs_checkpoint(tmp_path):
    models = tmp_path / "models"
    with pytest.raises(RuntimeError):
        train(DEMO, models, TINY, log=quiet, extra_callbacks=[FailOnSecondEpoch()])
    lines: list[str] = []
    train(DEMO, models, TINY, log=lines.append, resume_failed=True)
    assert any(line.startswith("resuming from checkpoint: epoch 1 done") for line in lines)
    assert not any(line.startswith("epoch   1/2") for line in lines)


def test_a_kill_between_save_and_registration_saves_the_same_model_on_the_rerun(tmp_path, monkeypatch):
    models = tmp_path / "models"
    real_register = registry.register

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies here: after the model directory, before the registry

    monkeypatch.setattr(registry, "register", killed)
    with pytest.raises(KeyboardInterrupt):
        train(DEMO, models, TINY, log=quiet)
    saved = [p.name for p in models.iterdir() if p.name.startswith("tft-")]
    assert len(saved) == 1 and registry.champion_model_id(models) is None
    monkeypatch.setattr(registry, "register", real_register)
    lines: list[str] = []
    result = train(DEMO, models, TINY, log=lines.append)
    assert result.model_id == saved[0]  # that model, not a second one
    assert not any(line.startswith("epoch") for line in lines)  # no extra epoch
    assert list(registry.read(models)["models"]) == saved
    assert result.epochs == TINY.epochs


def test_a_kill_during_the_save_leaves_no_staging_and_the_rerun_stops_at_its_epochs(tmp_path, monkeypatch):
    models = tmp_path / "models"
    real_save = artifacts.save

    def killed(model_root, model_id, *args, **kwargs):
        staging = Path(model_root) / f".{model_id}.x1y2z3"
        staging.mkdir(parents=True)
        (staging / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # SIGKILL skips the cleanup: its staging directory stays

    monkeypatch.setattr(artifacts, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        train(DEMO, models, TINY, log=quiet)
    assert list(models.glob(".tft-*"))
    monkeypatch.setattr(artifacts, "save", real_save)
    lines: list[str] = []
    result = train(DEMO, models, TINY, log=lines.append)
    assert not list(models.glob(".tft-*"))
    assert not any(line.startswith("epoch") for line in lines)
    assert result.epochs == TINY.epochs and len(registry.read(models)["models"]) == 1


def test_streaming_on_a_one_day_dataset_is_a_clear_error(tmp_path, capsys):
    sim = simulate_fleet(SimConfig(servers=3, hours=20, seed=2))
    dataset = tmp_path / "day"
    store.write_dataset(dataset, sim.frame, kind="simulated", step="5min")
    with pytest.raises(DatasetError, match="at least two day partitions"):
        train(dataset, tmp_path / "models", replace(TINY, streaming=True), log=quiet)
    assert main(["train", "--dataset", str(dataset), "--models", str(tmp_path / "m2"), "--streaming",
                 *TINY_ARGS]) == 1
    err = capsys.readouterr().err
    assert "streaming needs at least two day partitions" in err and "Traceback" not in err


def test_gradient_accumulation_steps_the_optimiser_once_per_k_batches(tmp_path, capsys):
    """`train --accumulate 2`: four batches an epoch are two optimiser steps; a bad K is refused."""
    models = tmp_path / "models"
    args = [a if a != "3" else "4" for a in TINY_ARGS]  # four batches per epoch
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *args, "--accumulate", "2",
                 "--seasonal-inputs", "none"]) == 0
    capsys.readouterr()
    model_id = registry.champion_model_id(models)
    info = json.loads((models / model_id / "training_info.json").read_text())
    config = json.loads((models / model_id / "config.json").read_text())["training"]
    assert info["steps"] == 2 and info["epochs"] == 1 and config["accumulate"] == 2
    assert main(["train", "--dataset", str(DEMO), "--models", str(tmp_path / "m2"), *TINY_ARGS,
                 "--accumulate", "0"]) == 2
    err = capsys.readouterr().err
    assert "accumulate must be a positive whole number" in err and "Traceback" not in err
    assert not (tmp_path / "m2").exists() or not any((tmp_path / "m2").glob("tft-*"))


def test_the_learning_rate_finder_records_its_sweep_and_auto_trains_at_it(tmp_path, capsys):
    """`train --find-lr` sweeps, prints and records the suggestion and the curve and trains nothing;
    `--learning-rate auto` trains at the suggestion and records it with the model."""
    models = tmp_path / "models"
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS, "--find-lr",
                 "--seasonal-inputs", "none"]) == 0
    out = capsys.readouterr().out
    assert "learning-rate finder: suggestion" in out and "recorded in" in out
    [record] = list((models / ".lr-find").glob("*.json"))
    sweep = json.loads(record.read_text())
    assert 1e-5 <= sweep["suggestion"] <= 1e-1 and len(sweep["curve"]) >= 10
    lrs = [lr for lr, _ in sweep["curve"]]
    assert lrs == sorted(lrs) and lrs[0] < 1e-4  # an exponential sweep upward
    assert not list(models.glob("tft-*")) and registry.champion_model_id(models) is None

    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS, "--learning-rate", "auto",
                 "--seasonal-inputs", "none"]) == 0
    capsys.readouterr()
    model_id = registry.champion_model_id(models)
    info = json.loads((models / model_id / "training_info.json").read_text())
    suggestion = info["lr_find"]["suggestion"]
    assert 1e-5 <= suggestion <= 1e-1
    config = json.loads((models / model_id / "config.json").read_text())
    assert artifacts.decode(config["hparams"])["learning_rate"] == pytest.approx(suggestion)
    with pytest.raises(SystemExit) as caught:
        main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS, "--learning-rate", "fast"])
    assert caught.value.code == 2 and "neither a number nor auto" in capsys.readouterr().err


def test_training_windows_are_sharded_across_ranks_without_overlap(monkeypatch):
    """Two ranks draw the same order and each takes every other window: disjoint shares, the same
    number of batches each (a rank with one more would wait for the others forever)."""
    from argus_core.model import datasets, distributed, layout
    from argus_core.model.batches import WindowBatches
    from argus_core.model.spec import spec_for, with_spreads
    from argus_core.model.train import build_network

    frame = store.read(DEMO)
    spec = spec_for(list(schema.METRIC_COLUMNS), 96, 24, "5min")
    prepared = layout.prepare(frame, spec)
    spec = with_spreads(spec, prepared)
    train_ds, _ = datasets.training_datasets(prepared, spec, 0.15, None)
    parameters = train_ds.get_parameters()
    network = build_network(parameters, spec, TINY)
    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "shard", lambda rank=rank: (rank, 2))
        batches = WindowBatches(prepared, spec, datasets.reusable(parameters), list(network.hparams.x_reals),
                                list(network.hparams.x_categoricals), batch_size=16, shuffle=True, seed=3,
                                shard=True)
        captured = []
        monkeypatch.setattr(batches, "batch", lambda chosen, captured=captured: captured.append(chosen) or chosen)
        assert sum(1 for _ in batches) == len(batches)
        seen[rank] = {tuple(w) for chosen in captured for w in chosen}
        total = len(batches.windows)
    assert len(seen[0]) == len(seen[1]) == total // 2
    assert not seen[0] & seen[1]


def test_several_processes_refuse_what_runs_on_one(tmp_path, capsys):
    """Streaming and the learning-rate finder run in one process: with --devices 2 they are refused
    before anything starts, with the reason; so is a device count of 0."""
    for extra, reason in ((["--streaming"], "streaming training runs in one process"),
                          (["--find-lr"], "the learning-rate finder runs on one device"),
                          (["--devices", "0"], "devices must be a positive whole number")):
        devices = [] if "--devices" in extra else ["--devices", "2"]
        assert main(["train", "--dataset", str(DEMO), "--models", str(tmp_path / "m"), *TINY_ARGS, *devices,
                     *extra]) == 2
        err = capsys.readouterr().err
        assert reason in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["wide", "series"])
def test_batches_gathered_on_the_device_match_the_host_ones(kind):
    """The device route (every array on the training device, a batch cut there by indexing) gives
    the numbers of the host route (numpy gathering) for the same windows: inputs, targets, scales,
    seasonal paths and the incident windows mixed into each batch. Checked with the CPU as the device."""
    import numpy as np
    import torch

    from argus_core.model import datasets, layout
    from argus_core.model.batches import WindowBatches
    from argus_core.model.spec import spec_for, with_spreads
    from argus_core.model.train import build_network, parameter_dataset

    frame = store.read(DEMO)
    spec = spec_for(list(schema.METRIC_COLUMNS), 96, 24, "5min", layout=kind)
    from dataclasses import replace as replace_spec
    spec = replace_spec(spec, seasonal_lags=(288,))
    prepared = layout.prepare(frame, spec)
    spec = with_spreads(spec, prepared)
    parameters = parameter_dataset(prepared, spec, None).get_parameters()
    network = build_network(parameters, spec, TINY)
    incidents = store.read_incidents(DEMO)
    if kind == "series":
        incidents = incidents.assign(server_name=[layout.series_key(s, m) for s, m in
                                                  zip(incidents["server_name"], incidents["metric"], strict=True)])
    routes = {}
    for device in (None, "cpu"):
        batches = WindowBatches(prepared, spec, datasets.reusable(parameters), list(network.hparams.x_reals),
                                list(network.hparams.x_categoricals), batch_size=32, shuffle=True, seed=5,
                                incidents=incidents, incident_share=0.25, device=device)
        routes[device] = [b for _, b in zip(range(3), batches, strict=False)]
    assert len(routes[None]) == len(routes["cpu"]) == 3
    for (x_host, (y_host, w_host)), (x_dev, (y_dev, w_dev)) in zip(routes[None], routes["cpu"], strict=True):
        assert set(x_host) == set(x_dev)
        for key in x_host:
            host, dev = x_host[key], x_dev[key]
            for a, b in zip(host if isinstance(host, list) else [host], dev if isinstance(dev, list) else [dev],
                            strict=True):
                assert a.dtype == b.dtype and a.shape == b.shape, key
                # numpy and torch sum a window's spread in another order: the last float32 bit of a
                # series window's scale can differ, which a flat window's floored target scale turns
                # into up to 4e-4 of its normalised units (nothing the network could notice)
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3, msg=key)
        for a, b in zip(y_host if isinstance(y_host, list) else [y_host], y_dev if isinstance(y_dev, list) else [y_dev],
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert (w_host is None) == (w_dev is None)
    assert np.isfinite(routes["cpu"][0][0]["encoder_cont"].numpy()).all()


def test_batch_size_auto_keeps_the_cpu_batch_and_refuses_words(tmp_path, capsys):
    """`--batch-size auto` trains at 64 windows on the CPU (1,024 and a scaled learning rate only on a
    GPU); a batch size that is neither a number nor auto is refused by name."""
    models = tmp_path / "models"
    args = [a for a in TINY_ARGS]
    args[args.index("--batch-size") + 1] = "auto"
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *args, "--seasonal-inputs", "none",
                 "--accelerator", "cpu"]) == 0
    capsys.readouterr()
    training = json.loads((models / registry.champion_model_id(models) / "config.json").read_text())["training"]
    assert training["batch_size"] == 64 and training["batch_size_auto"] is True
    assert training["learning_rate"] == TrainConfig().learning_rate
    with pytest.raises(SystemExit):
        main(["train", "--dataset", str(DEMO), "--models", str(models), "--batch-size", "lots"])
    assert "'lots' is neither a whole number nor auto" in capsys.readouterr().err


def test_each_launcher_s_process_knows_its_rank(monkeypatch):
    """Lightning's own launcher, torchrun and SLURM each say differently which process this is;
    only rank 0 records the run and saves the model, and each process trains on its own GPU."""
    from argus_core.model import distributed

    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.global_rank(4) == 0 and distributed.local_rank() == 0  # alone, or Lightning's rank 0
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setenv("NODE_RANK", "1")
    assert distributed.global_rank(4) == 6 and distributed.local_rank() == 2  # Lightning's child, second node
    monkeypatch.setenv("RANK", "5")
    assert distributed.global_rank(4) == 5  # torchrun says it outright
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert distributed.global_rank(4) == 0  # a one-task SLURM job is not a distributed one
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert distributed.global_rank(4) == 3 and distributed.local_rank() == 1


def test_data_sampled_coarser_than_its_step_is_a_clear_error_naming_the_cadence(tmp_path, capsys):
    # 15-minute values in a 5-minute dataset: two steps in three are gaps, and the stock dataset
    # behind training cut no window at all from it (a bare AssertionError reached the terminal)
    sim = simulate_fleet(SimConfig(servers=3, hours=72, seed=2))
    sparse = sim.frame[sim.frame[schema.TIMESTAMP].dt.minute % 15 == 0]
    dataset = tmp_path / "sparse"
    store.write_dataset(dataset, sparse, kind="imported", step="5min")
    models = tmp_path / "models"
    with pytest.raises(DatasetError, match="values arrive every 3 steps"):
        train(dataset, models, replace(TINY, layout="series", holdout=0.3), log=quiet)
    assert main(["train", "--dataset", str(dataset), "--models", str(models), "--holdout", "0.3", "--epochs", "1",
                 "--fresh", "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert "import the data again with --step 15min" in err and "no recipe could be trained" in err
    assert "Traceback" not in err and "AssertionError" not in err
    assert not registry.read(models).get("models")
