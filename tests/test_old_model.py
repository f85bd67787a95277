"""A model directory written by an earlier release (the retired D2 model, whose dataset.json
names ``argus_core.normalizers.FlooredEncoderNormalizer``) still loads and forecasts exactly what
that release forecast (``expected_forecast.parquet``, written before the package layout moved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import store
from argus_core.model import forecast

FIXTURE = Path(__file__).parent / "data" / "old_model"
FLEET = Path(__file__).resolve().parents[1] / "demo_data" / "fleet"
MODEL_ID = "tft-20261123-174546-87bea4"
SERVERS = ["ppdb001", "ppweb001", "ppml0001", "ppetl001", "ppcon001"]


def test_old_model_directory_names_the_old_class_path():
    assert "argus_core.normalizers.FlooredEncoderNormalizer" in (FIXTURE / MODEL_ID / "dataset.json").read_text()


def test_old_model_loads_and_forecasts_as_it_did():
    frame = store.read(FLEET)
    frame = frame[frame["server_name"].isin(SERVERS)]
    model = forecast.load_model(FIXTURE, MODEL_ID)
    got = forecast.forecast_fleet(model, frame).quantiles
    expected = pd.read_parquet(FIXTURE / "expected_forecast.parquet")
    key = ["server_name", "metric", "timestamp"]
    got = got.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).equals(expected[key].astype(str))
    for column in ("q10", "q50", "q90"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-5, atol=1e-5)
