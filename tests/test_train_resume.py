"""A training killed with SIGKILL and started again resumes from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema
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
