"""The training console page through AppTest: history, live panel, comparison, promotion."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from argus_core.model import registry
from argus_core.runs.store import RunStore, default_path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHIPPED = ROOT / "models" / registry.champion_model_id(ROOT / "models")


def scored(model_dir: Path, factor: float) -> None:
    """The model's own backtest summary: the shipped one's with every MASE times ``factor``."""
    summary = json.loads((SHIPPED / "backtest.json").read_text())
    summary["model_id"] = model_dir.name
    for figures in summary["overall"].values():
        for name in ("mean_mase", "median_mase", "geo_mean_relative"):
            figures[name] *= factor
    for row in summary["per_metric"]:
        row["mase"] *= factor
    (model_dir / "backtest.json").write_text(json.dumps(summary))


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """Two finished runs, each with a model (copies of the shipped one); the first is champion."""
    root = tmp_path / "models"
    runs = RunStore(default_path(root))
    for index, (model_id, lr) in enumerate((("tft-run-a", 0.003), ("tft-run-b", 0.001))):
        shutil.copytree(SHIPPED, root / model_id)
        scored(root / model_id, 1.0 - 0.1 * index)  # run b's backtest beats run a's on the same windows
        registry.register(root, model_id, {"val_loss": 0.1 + index})
        run_id = runs.create(f"run {model_id}", {"epochs": 3, "learning_rate": lr, "horizon": 96 - 96 * index},
                             "demo_data/fleet", status="running")
        for epoch in range(3):
            runs.log_metrics(run_id, (epoch + 1) * 10, epoch,
                             {"train_loss": 0.5 - 0.1 * epoch, "val_loss": 0.4 - 0.05 * epoch - 0.01 * index,
                              "learning_rate": lr})
        runs.finish(run_id, "completed", model_id=model_id)
    monkeypatch.setenv("ARGUS_MODELS", str(root))
    monkeypatch.setenv("ARGUS_THREADS", "1")
    return root


def open_console() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("app_pages/training_console.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_console_shows_history_compares_and_promotes(models):
    at = open_console()
    history = at.dataframe[0].value
    assert list(history["id"]) == [2, 1] and set(history["status"]) == {"completed"}
    assert history.set_index("id").loc[2, "best_val_loss"] == pytest.approx(0.29)
    assert "Run 2: run tft-run-b" in [s.value for s in at.subheader]
    settings = next(d.value for d in at.dataframe if "differs" in d.value.columns)
    verdict = next(d.value for d in at.dataframe if "candidate" in d.value.columns)
    # the promotion guard's table: the candidate's backtest against the champion's, same windows
    geo = verdict.loc["served MASE / seasonal naive (geometric mean)"]
    assert geo["candidate"] == pytest.approx(0.9 * geo["champion"])
    assert bool(settings.loc["learning_rate", "differs"]) and not bool(settings.loc["epochs", "differs"])
    # the default horizon (0) reads as what it means
    assert settings.loc["horizon", "run 1"] == "96" and settings.loc["horizon", "run 2"] == "8 h at the step"
    curves = at.get("plotly_chart")
    assert len(curves) == 2  # the live run's curves and the comparison

    at.selectbox(key="console-promote-id").set_value("tft-run-b")
    at.button(key="promote").click().run()
    assert not at.exception
    assert registry.champion_model_id(models) == "tft-run-b"
    at.switch_page("app_pages/fleet_overview.py").run()
    assert not at.exception and not at.error
    assert any("Model tft-run-b" in c.value for c in at.caption)  # the forecast pages follow the champion

    at.switch_page("app_pages/training_console.py").run()
    at.button(key="rollback").click().run()
    assert registry.champion_model_id(models) == "tft-run-a"
    # the page names one champion, the one the registry holds (it named both after a roll back)
    assert [t.value for t in at.text if t.value.startswith("champion:")] == ["champion: tft-run-a"]
    assert [s.value for s in at.success] == ["Rolled back: tft-run-a is the champion again."]


def test_a_completed_run_shows_a_full_progress_bar(models):
    runs = RunStore(default_path(models))
    runs.log_metrics(2, 30, 2, {"progress": 0.5})  # its last report came halfway through
    at = open_console()
    bar = at.get("progress")[0]
    assert bar.value == 100 and bar.proto.text.startswith("completed")


def test_the_smallest_form_settings_are_checked_before_a_run_starts(models):
    at = open_console()
    at.number_input(key="console-epochs").set_value(1)
    at.number_input(key="console-batch").set_value(1)
    at.number_input(key="console-batches").set_value(1)
    at.number_input(key="console-hidden").set_value(3)  # not a multiple of the attention heads
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("hidden_size must be a multiple of the 2 attention heads" in e.value for e in at.error)
    assert [r.id for r in RunStore(default_path(models)).list()] == [2, 1]  # nothing was started


def test_console_refuses_a_second_training_naming_the_running_one(models):
    runs = RunStore(default_path(models))
    busy = runs.create("nightly", {"epochs": 3}, "demo_data/fleet", status="running")
    runs.update(busy, pid=os.getpid())  # alive: this test process stands in for the training
    at = open_console()
    at.button[0].click().run()  # the form's submit button comes first on the page
    assert not at.exception
    assert any(f"run {busy} (nightly) is running" in e.value for e in at.error)
    assert [r.id for r in runs.list()] == [busy, 2, 1]  # nothing new was started


def test_console_marks_a_dead_run_interrupted_and_offers_resume(models):
    runs = RunStore(default_path(models))
    run_id = runs.create("died", {"epochs": 3}, str(ROOT / "demo_data" / "incident"), status="running")
    runs.update(run_id, pid=2**22 + 777)
    at = open_console()
    assert runs.get(run_id).status == "interrupted"
    assert any("interrupted" in e.value for e in at.error)  # the live panel shows why it stopped
    # it died before its first epoch ended: nothing to resume from, so Resume is not offered
    assert not [s for s in at.selectbox if s.key == "console-resume"]
    assert any("stopped before its first step" in c.value for c in at.caption)  # no empty chart
    from argus_core.data import store
    from argus_core.model import config as train_config
    from argus_core.runs import jobs

    config, _ = jobs.run_config(runs, run_id)
    folder = train_config.checkpoint_dir(models, ROOT / "demo_data" / "incident",
                                         store.read_manifest(ROOT / "demo_data" / "incident"), config)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text('{"epoch": 0}')  # an epoch was saved before it died
    at = open_console()
    assert at.selectbox(key="console-resume").value == run_id


def test_the_form_offers_the_recipe_search_gradient_accumulation_and_devices():
    from argus_core.views import console

    config = console.form_config(epochs=3.0, batch_size=16.0, hidden_size=8.0, learning_rate=0.01,
                                 batches_per_epoch=5.0, streaming=False, fresh=True, time_limit_minutes=0.0,
                                 recipe="auto", accumulate=2.0, find_lr="use", devices=2.0)
    assert config.recipe == "auto" and config.accumulate == 2 and config.time_limit_minutes is None
    assert config.devices == 2
    assert config.find_lr == "use"
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app_pages" / "training_console.py"),
                           default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="console-recipe").options == ["these settings", "chosen by validation"]
    assert at.number_input(key="console-accumulate").value == 1
    assert at.checkbox(key="console-find-lr").value is False
    assert at.number_input(key="console-devices").value == 1



def test_the_console_promotes_only_past_the_guard(models):
    """A candidate whose backtest does not beat the champion's gets no Promote button and says
    why; one with no backtest of its own gets "Score both", which backtests both on the same data,
    after which the guard judges them."""
    scored(models / "tft-run-b", 1.2)  # worse than the champion everywhere
    at = open_console()
    at.selectbox(key="console-promote-id").set_value("tft-run-b").run()
    assert "promote" not in {b.key for b in at.button}
    assert any("does not beat the champion" in w.value for w in at.warning)
    (models / "tft-run-b" / "backtest.json").unlink()
    at.run()
    assert "promote" not in {b.key for b in at.button}
    assert any("has no backtest of its own" in w.value for w in at.warning)
    at.button(key="promote-score").click().run(timeout=300)
    assert not at.exception
    from argus_core.model import guard
    assert guard.summary_of(models, "tft-run-b") is not None and guard.summary_of(models, "tft-run-a") is not None
    assert guard.judge(models, "tft-run-b").scored  # the same windows now: judged (two copies of one model tie)
    assert registry.champion_model_id(models) == "tft-run-a"
