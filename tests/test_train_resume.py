"""A training killed with SIGKILL and started again resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.model import registry

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
TINY_ARGS = ["--epochs", "3", "--batches-per-epoch", "3", "--hidden-size", "8", "--batch-size", "16",
             "--encoder-length", "96", "--horizon", "24", "--threads", "1", "--fresh"]


def train_command(models: Path) -> list[str]:
    return [sys.executable, "-m", "argus_core", "train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS]


def test_sigkill_then_restart_resumes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    child = subprocess.Popen(train_command(models), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith("epoch   1/3"):
                os.killpg(child.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert registry.champion_model_id(models) is None  # nothing was saved as a model

    rerun = subprocess.run(train_command(models), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert "resuming from checkpoint: epoch 1 done" in rerun.stdout
    assert "epoch   1/3" not in rerun.stdout  # not started over
    assert "epoch   2/3" in rerun.stdout and "epoch   3/3" in rerun.stdout
    assert registry.champion_model_id(models) is not None


def test_predict_and_models_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    models = tmp_path / "models"
    assert main(["predict", "--dataset", str(DEMO), "--models", str(models), "--output", str(tmp_path / "f.parquet")]) \
        == 1
    assert "no model" in capsys.readouterr().err
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY_ARGS[:1], "1", *TINY_ARGS[2:]]) == 0
    out = tmp_path / "forecast.parquet"
    assert main(["predict", "--dataset", str(DEMO), "--models", str(models), "--as-of", "2026-03-11T15:00Z",
                 "--output", str(out)]) == 0
    forecast = pd.read_parquet(out)
    assert forecast[schema.SERVER].nunique() == 14
    assert forecast.groupby([schema.SERVER, "metric"]).size().eq(24).all()
    assert forecast[schema.TIMESTAMP].min() == pd.Timestamp("2026-03-11T15:05Z")
    capsys.readouterr()
    assert main(["models", "--models", str(models), "list"]) == 0
    assert "champion" in capsys.readouterr().out
    assert main(["models", "--models", str(models), "rollback"]) == 1
    assert "no earlier champion" in capsys.readouterr().err
    assert main(["models", "--models", str(models), "promote", "tft-missing"]) == 1
    assert main(["train", "--dataset", str(tmp_path / "nope"), "--models", str(models)]) == 1
    assert "not an Argus dataset" in capsys.readouterr().err


def test_two_cpu_processes_over_gloo_train_one_model_and_resume(tmp_path: Path) -> None:
    """`train --devices 2` on the CPU: two processes (DDP over gloo) train one run. Killed after its
    first epoch, the same command resumes from rank 0's checkpoint; the result is an ordinary model
    directory that forecasts, and the run store holds one run per command, not one per process."""
    from argus_core.model import artifacts, forecast
    from argus_core.runs.store import RunStore, default_path

    models = tmp_path / "models"
    command = [*train_command(models), "--devices", "2", "--accelerator", "cpu", "--seasonal-inputs", "none"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    seen = []
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith("epoch   1/3"):
                os.killpg(child.pid, signal.SIGKILL)  # both processes: they share the session
                break
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert any("Starting with 2 processes" in line for line in seen), "".join(seen[-20:])
    assert registry.champion_model_id(models) is None

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    out = rerun.stdout
    assert "resuming from checkpoint: epoch 1 done" in out and "epoch   1/3" not in out
    assert out.count("epoch   3/3") == 1 and out.count("saved tft-") == 1  # one voice, one writer
    assert "on 2 x cpu" in out and "Traceback" not in rerun.stderr
    model_id = registry.champion_model_id(models)
    loaded = artifacts.load(models / model_id)
    assert loaded.config["training"]["devices"] == 2
    assert "(ddp)" in json.loads((models / model_id / "training_info.json").read_text())["device"]
    history = store.read(DEMO)
    quantiles = forecast.forecast_fleet(loaded, history).quantiles
    assert quantiles["q50"].notna().all() and set(quantiles["server_name"]) == set(history["server_name"])
    assert len(RunStore(default_path(models)).list()) == 2  # the killed command's run and this one
    assert not [p for p in models.glob("tft-*") if p.name != model_id]
