"""Per-server fine-tuning (`train --server`): a copy of the fleet model trained on one server, kept
only when it beats the fleet model on that server's hold-out, and used for that server's forecasts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.model import artifacts, forecast, registry, specialise

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo_data" / "incident"
SERVER = "ppdb001"
TINY = ["--hidden-size", "8", "--batch-size", "16", "--encoder-length", "96", "--horizon", "24", "--threads", "1",
        "--seasonal-inputs", "none"]
FINE = ["--epochs", "2", "--batches-per-epoch", "4", "--batch-size", "16", "--threads", "1"]


@pytest.fixture(scope="module")
def fleet_models(tmp_path_factory) -> Path:
    """A tiny fleet model trained on the demo scenario, kept out of the last 30% of every server."""
    models = tmp_path_factory.mktemp("fleet") / "models"
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), *TINY, "--epochs", "1",
                 "--batches-per-epoch", "3", "--fresh", "--holdout", "0.3"]) == 0
    return models


@pytest.fixture
def models(fleet_models, tmp_path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(fleet_models, copy)
    return copy


def test_a_fine_tuned_copy_is_kept_only_when_it_beats_the_fleet_model(models, monkeypatch, capsys):
    fleet_id = registry.champion_model_id(models)
    monkeypatch.setattr(specialise, "MARGIN", 1.0)  # the copy would have to err 100% less: never kept
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), "--server", SERVER, *FINE]) == 0
    out = capsys.readouterr().out
    assert f"{SERVER}: fine-tuning a copy of {fleet_id}" in out and "last 30% kept out" in out
    assert "not kept" in out and "0 of 1 server(s) now have their own model" in out
    assert registry.specialists(models, fleet_id) == {} and sorted(p.name for p in models.glob("tft-*")) == [fleet_id]
    assert not list((models / ".specialists").glob("*"))  # the scratch copy is gone

    monkeypatch.setattr(specialise, "MARGIN", -1e9)  # kept whatever it scores: the registration path
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), "--server", SERVER, *FINE]) == 0
    out = capsys.readouterr().out
    [own] = registry.specialists(models, fleet_id).values()
    assert f"kept as {own}" in out and f"{SERVER} ({own})" in out
    entry = registry.read(models)["models"][own]
    assert entry["status"] == "specialist" and entry["server"] == SERVER and entry["fleet_model"] == fleet_id
    assert entry["holdout_mase"]["origins"] > 0 and entry["holdout_mase"]["fleet"] > 0
    info = json.loads((models / own / "training_info.json").read_text())
    assert info["servers"] == [SERVER] and info["continued_from"] == fleet_id
    assert registry.champion_model_id(models) == fleet_id  # the champion is still the fleet model

    assert main(["models", "--models", str(models), "list"]) == 0
    assert f"{SERVER}'s own model (from {fleet_id})" in capsys.readouterr().out
    assert main(["models", "--models", str(models), "promote", own]) == 1
    err = capsys.readouterr().err
    assert "cannot be the fleet champion" in err and "Traceback" not in err


def test_the_scores_compare_both_models_on_the_same_held_out_origins(models):
    fleet = artifacts.load(models / registry.champion_model_id(models))
    frame = store.read(DEMO)
    frame = frame[frame[schema.SERVER] == SERVER]
    starts = {SERVER: int((pd.Timestamp(fleet.training_info["evaluation_start"][SERVER])
                           - pd.Timestamp("2000-01-01T00:00Z")) // pd.Timedelta("5min"))}
    score, origins = specialise.holdout_mase(fleet, frame, starts)
    span = frame[schema.TIMESTAMP]
    held = (span.max() - pd.Timestamp(fleet.training_info["evaluation_start"][SERVER])) / pd.Timedelta("5min")
    assert 0 < score < 10 and origins == int((held + 1 - 24) // 24) + 1


def test_forecasts_route_the_server_to_its_own_model(models, monkeypatch, tmp_path):
    fleet_id = registry.champion_model_id(models)
    monkeypatch.setattr(specialise, "MARGIN", -1e9)
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), "--server", SERVER, *FINE]) == 0
    own = registry.specialists(models, fleet_id)[SERVER]
    history = store.read(DEMO)
    fleet = forecast.load_model(models)
    result = forecast.forecast_fleet(fleet, history)
    assert result.forecast_by == {SERVER: own} and result.model_id == fleet_id
    assert set(result.quantiles[schema.SERVER]) == set(history[schema.SERVER])
    mine = result.quantiles[result.quantiles[schema.SERVER] == SERVER].reset_index(drop=True)
    alone = forecast.forecast_fleet(forecast.load_model_dir(models / own), history[history[schema.SERVER] == SERVER])
    pd.testing.assert_frame_equal(mine, alone.quantiles.reset_index(drop=True))
    others = result.quantiles[result.quantiles[schema.SERVER] != SERVER].reset_index(drop=True)
    fleet_alone = forecast.forecast_fleet(fleet, history[history[schema.SERVER] != SERVER]).quantiles
    pd.testing.assert_frame_equal(others, fleet_alone.reset_index(drop=True))

    # the live service's server detail says which model forecast the server
    from fastapi.testclient import TestClient

    from argus_core.live.api import Access, create_app
    from argus_core.live.service import Service, Settings

    dataset = tmp_path / "live"
    store.write_dataset(dataset, history, kind="simulated", step="5min")
    service = Service(Settings(dataset=dataset, models=models, threads=1), clock=lambda: history["timestamp"].max())
    client = TestClient(create_app(service, Access(token=None)))
    assert client.post("/api/v1/cycle").status_code == 200
    detail = client.get(f"/api/v1/servers/{SERVER}").json()
    assert detail["model_id"] == own and detail["own_model"] is True
    other = client.get("/api/v1/servers/ppweb001").json()
    assert other["model_id"] == fleet_id and other["own_model"] is False

    # a specialist whose directory is damaged: the fleet model forecasts the server instead
    (models / own / "model.safetensors").write_bytes(b"not weights")
    forecast.clear_caches()
    fallback = forecast.forecast_fleet(forecast.load_model(models), history)
    assert fallback.forecast_by == {} and set(fallback.quantiles[schema.SERVER]) == set(history[schema.SERVER])


def test_server_detail_names_the_server_s_own_model(models, monkeypatch, open_page):
    fleet_id = registry.champion_model_id(models)
    monkeypatch.setattr(specialise, "MARGIN", -1e9)
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), "--server", SERVER, *FINE]) == 0
    own = registry.specialists(models, fleet_id)[SERVER]
    at = open_page("server_detail", models, DEMO)
    at.selectbox(key="detail-server").set_value(SERVER).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert f"Model: {own}, this server's own (fine-tuned from {fleet_id}" in captions
    at.selectbox(key="detail-server").set_value("ppweb001").run()
    assert f"Model: the fleet model {fleet_id}." in " ".join(c.value for c in at.caption)


def test_bad_requests_are_refused_with_a_reason_and_change_nothing(models, tmp_path, capsys):
    before = (models / registry.REGISTRY).read_text()
    assert main(["train", "--dataset", str(DEMO), "--models", str(models), "--server", "nobody", *FINE]) == 1
    err = capsys.readouterr().err
    assert "no server named 'nobody'" in err and "ppdb001" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    assert main(["train", "--dataset", str(DEMO), "--models", str(empty), "--server", SERVER, *FINE]) == 1
    err = capsys.readouterr().err
    assert "no fleet model" in err and "Traceback" not in err
    assert (models / registry.REGISTRY).read_text() == before
