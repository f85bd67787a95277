"""Defects a new user met (issue 15) that the bad-input corpus does not cover: a step lost on
import, a breach now ranked as a forecast, an empty Model quality page, a console that writes
when it reads, raw escape sequences in a terminal, &quot; in heat-map cells, an import report that
counted values as rows and dropped columns without a word."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from argus_core.cli.main import main
from argus_core.data import store
from argus_core.model import Forecaster
from argus_core.views import charts, replay

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
MODELS = ROOT / "models"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("ARGUS_THREADS", "1")


def test_import_into_a_new_dataset_records_its_step(tmp_path, capsys):
    frame = store.read(DEMO, end=pd.Timestamp("2026-03-09T06:00Z"))
    coarse = frame[frame["timestamp"].dt.minute % 10 == 0]
    path = tmp_path / "ten-minutes.csv"
    coarse.to_csv(path, index=False)
    assert main(["import", str(path), "--dataset", str(tmp_path / "ds"), "--step", "10min"]) == 0
    assert store.read_manifest(tmp_path / "ds")["step"] == "10min"


def test_a_server_over_its_critical_threshold_now_is_critical_and_says_so():
    scenario, frame = replay.load_scenario(DEMO), store.read(DEMO)
    tick = replay.tick(frame, scenario, Forecaster.champion(MODELS), pd.Timestamp("2026-03-11 17:35", tz="UTC"))
    row = tick.ranking.set_index("server_name").loc["ppdb001"]
    assert frame[(frame["server_name"] == "ppdb001")
                 & (frame["timestamp"] == pd.Timestamp("2026-03-11 17:35", tz="UTC"))]["mem_used_pct"].iloc[0] >= 95
    assert row["level"] == "critical" and row["breaching_now"] == "critical"
    assert row["p_critical"] == 1.0 and row["driver"] == "mem_used_pct"
    assert tick.ranking.iloc[0]["server_name"] == "ppdb001"


def test_model_quality_shows_the_shipped_backtest_on_a_fresh_checkout():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("app_pages/model_quality.py").run()
    assert not at.exception and not at.error
    assert not any("No model has a backtest yet" in i.value for i in at.info)
    assert at.title[0].value == "Model quality" and len(at.dataframe) >= 2
    assert "tft" in at.dataframe[0].value.columns  # the scoreboard: the TFT beside the simple methods
    champion = json.loads((MODELS / "registry.json").read_text())["champion"]
    summary = json.loads((MODELS / champion / "backtest.json").read_text())
    assert summary["dataset"] == "demo_data/fleet"  # the same on every checkout


def test_opening_the_training_console_writes_nothing(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    before = sorted(p.name for p in models.rglob("*"))
    monkeypatch.setenv("ARGUS_MODELS", str(models))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("app_pages/training_console.py").run()
    assert not at.exception and not at.error
    assert sorted(p.name for p in models.rglob("*")) == before  # no runs.sqlite, no .runs/


def test_terminal_output_escapes_control_characters(tmp_path, capsys):
    frame = store.read(DEMO, end=pd.Timestamp("2026-03-09T02:00Z"))
    frame = frame.assign(server_name=frame["server_name"].astype(str).str.replace(
        "ppdb001", "ppdb001\x1b[2J\x1b]0;owned\x07", regex=False))
    store.write_dataset(tmp_path / "ds", frame, kind="imported")
    assert main(["status", "--dataset", str(tmp_path / "ds"), "--models", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert main(["validate", str(tmp_path / "missing\x1b[31m.csv")]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b" in err


def test_heatmap_cells_show_quotes_as_quotes():
    ranked = pd.DataFrame({"server_name": ['web"1', "db<2>"], "profile": ["WEB_API", "DATABASE"],
                           "score": [50.0, 10.0], "level": ["warning", "healthy"], "driver": ["cpu", "mem"],
                           "p_critical": [0.2, 0.0]})
    cells = [c for row in charts.fleet_heatmap(ranked).data[0].text for c in row if c]
    assert 'web"1' in cells and "db&lt;2&gt;" in cells and not any("&quot;" in c for c in cells)


def test_import_report_counts_rows_and_notes_ignored_columns(tmp_path, capsys):
    long = pd.DataFrame({"timestamp": pd.date_range("2026-03-10", periods=4, freq="5min", tz="UTC").astype(str),
                         "host": ["db-7"] * 4, "cpu": [1.0, 2, 3, 4], "mem": [5.0, 6, 7, 8], "disk": [9.0, 9, 9, 9]})
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\nhost = "server_name"\n')
    assert main(["import", str(path), "--dataset", str(tmp_path / "ds"), "--mapping", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert "read 4 rows, kept 4 rows (12 values)" in out
    frame = store.read(DEMO, end=pd.Timestamp("2026-03-09T01:00Z"))
    wide = frame.assign(**{f"extra_{i}": 1.0 for i in range(500)})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    assert main(["import", str(tmp_path / "wide.csv"), "--dataset", str(tmp_path / "ds2")]) == 0
    out = capsys.readouterr().out
    assert "ignored 500 column(s) that are not in the data contract: extra_0" in out
