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


def test_the_shipped_champion_sees_the_close_wait_pile_up_coming() -> None:
    """The demo fleet's database piles up CLOSE_WAIT sockets and breaches critical (500) at 23:50.
    From 60 minutes before, the forecast itself (p90) crosses critical, starts where the series
    is, and the server ranks first as the one critical server; at 21:30 nothing is critical yet."""
    import torch

    from argus_core.views import dashboard

    torch.set_num_threads(1)
    breach = pd.Timestamp("2026-01-06 23:50", tz="UTC")
    for minutes_before in (60, 40, 20, 5):
        as_of = breach - pd.Timedelta(minutes=minutes_before)
        view = dashboard.fleet_view(ROOT / "demo_data" / "fleet", MODELS, as_of=as_of)
        q = view.forecast.quantiles
        mine = q[(q[schema.SERVER] == "ppdb002") & (q["metric"] == "back_close_wait")]
        assert (mine["q90"] >= 500).any(), f"{minutes_before} min before: the p90 path never reaches 500"
        last = view.history[view.history[schema.SERVER] == "ppdb002"]["back_close_wait"].iloc[-1]
        assert abs(mine["q50"].iloc[0] - last) < 0.1 * last  # continuous with the present
        ranked = view.assessment.ranking
        assert ranked[schema.SERVER].iloc[0] == "ppdb002" and ranked["level"].iloc[0] == "critical"
        assert ranked.loc[ranked["level"] == "critical", schema.SERVER].tolist() == ["ppdb002"]
    calm = dashboard.fleet_view(ROOT / "demo_data" / "fleet", MODELS, as_of=pd.Timestamp("2026-01-06 21:30", tz="UTC"))
    assert not (calm.assessment.ranking["level"] == "critical").any()


def test_the_incident_demos_risk_never_falls_while_the_leak_climbs() -> None:
    """The presenter's table: once the leaking database is critical, its P(critical) stays at the
    top until the breach, every 15 minutes of the replay (it fell from 100% to 57% at 16:15 when
    the network's first step leapt above the present and its band widened)."""
    import torch

    from argus_core.model.forecaster import Forecaster
    from argus_core.views import replay

    torch.set_num_threads(1)
    dataset = ROOT / "demo_data" / "incident"
    scenario, frame = replay.load_scenario(dataset), store.read(dataset)
    model = Forecaster.champion(MODELS, None)
    levels: dict[str, str] = {}
    seen_critical = False
    now = pd.Timestamp("2026-03-11 14:30", tz="UTC")
    while now < scenario.breach_time:
        tick = replay.tick(frame, scenario, model, now, levels)
        levels = dict(zip(tick.ranking[schema.SERVER], tick.ranking["level"], strict=True))
        row = tick.ranking[tick.ranking[schema.SERVER] == scenario.server].iloc[0]
        if seen_critical:
            assert row["level"] == "critical" and row["p_critical"] >= 0.95, f"{now:%H:%M}: {row['p_critical']:.2f}"
        seen_critical = seen_critical or row["level"] == "critical"
        now += pd.Timedelta("15min")
    assert seen_critical
