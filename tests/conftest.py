"""Fixtures every test file may use. Plain helpers (the tiny TFT's settings ``TINY``, ``wait_for``)
live in ``support.py``, imported as ``tests.support``: a module-level constant
can feed ``parametrize`` and module-scoped fixtures, which a fixture cannot."""

from __future__ import annotations

import pandas as pd
import pytest

from argus_core.data.simulate import SimConfig, Simulation, simulate_fleet


@pytest.fixture(scope="session")
def small_sim() -> Simulation:
    """A week of a 30-server fleet with a raised incident rate: big enough to show rhythms."""
    return simulate_fleet(SimConfig(servers=30, hours=24 * 7, seed=11, incident_rate=0.15))


@pytest.fixture
def valid_frame(small_sim: Simulation) -> pd.DataFrame:
    """Two servers, one day: a small frame that passes validation, as a user's file would hold it."""
    frame = small_sim.frame
    names = sorted(frame["server_name"].unique())[:2]
    day = frame[frame["server_name"].isin(names) & (frame["timestamp"] < frame["timestamp"].min() + pd.Timedelta("1D"))]
    out = day.drop(columns=["profile"]).reset_index(drop=True)
    for col in ("server_name", "status"):
        out[col] = out[col].astype(str)
    return out


@pytest.fixture
def open_page(monkeypatch):
    """``open_page(page, models, dataset)``: the app (AppTest) switched to ``app_pages/<page>.py``
    with ARGUS_MODELS and ARGUS_DATASETS set, after checking it raised nothing."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    def open_(page: str, models, dataset):
        monkeypatch.setenv("ARGUS_MODELS", str(models))
        monkeypatch.setenv("ARGUS_DATASETS", str(dataset))
        monkeypatch.setenv("ARGUS_THREADS", "1")
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=240)
        at.run()
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_

