"""The model committed under models/ serves the shipped demo data with no training first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.fleet import risk
from argus_core.model import forecast, registry

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def test_champion_is_shipped() -> None:
    champion = registry.champion_model_id(MODELS)
    assert champion, "models/registry.json names no champion"
    assert sum(p.stat().st_size for p in (MODELS / champion).iterdir()) < 5_000_000  # a few MB at most


@pytest.mark.parametrize("dataset", ["incident", "fleet"])
def test_predict_every_server_of_the_demo_data(dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    assert main(["predict", "--dataset", str(ROOT / "demo_data" / dataset), "--models", str(MODELS),
                 "--output", str(out)]) == 0
    result = pd.read_parquet(out)
    model = forecast.load_model(MODELS)
    servers = store.read_manifest(ROOT / "demo_data" / dataset)["servers"]
    assert set(result[schema.SERVER]) == set(servers)
    assert set(result["metric"]) == set(model.spec.targets)
    assert result.groupby([schema.SERVER, "metric"]).size().eq(96).all()
    assert (result["q10"] <= result["q50"]).all() and (result["q50"] <= result["q90"]).all()
    ranked = risk.fleet_risk(result)
    assert len(ranked) == len(servers) and set(ranked["level"]) <= set(risk.LEVELS)
