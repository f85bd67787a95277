"""One assessment path: the pages, the live cycle, the Incident demo and ``status`` give the same
fleet, model and rules to ``fleet.assess`` and so rank it the same way, with the same levels,
what breaches now (the rules' own thresholds included) and who is abnormal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from argus_core import fleet
from argus_core.cli.main import main
from argus_core.data import schema, store
from argus_core.errors import ArgusError
from argus_core.fleet import alerting, live_state
from argus_core.live.service import Service, Settings
from argus_core.model import Forecaster
from argus_core.views import dashboard, replay

ROOT = Path(__file__).resolve().parents[1]
FLEET, MODELS = ROOT / "demo_data" / "fleet", ROOT / "models"
AS_OF = pd.Timestamp("2026-01-06 23:30", tz="UTC")  # ppdb002's CLOSE_WAIT climbs towards critical
RULES = """
[thresholds.profile.WEB_API]
cpu_user_pct = { warning = 20, critical = 30 }
[thresholds.server.ppdb002]
back_close_wait = { warning = 200, critical = 400 }
"""


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("assess")
    dataset = tmp / "fleet"
    frame = store.read(FLEET, end=AS_OF)
    store.write_dataset(dataset, frame, kind="simulated", step="5min")
    models = tmp / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    return dataset, models, rules, frame


def _top(ranking: pd.DataFrame, n: int = 10) -> list[tuple]:
    return [(r.server_name, r.level, round(float(r.score), 3), r.driver, r.now or "")
            for r in ranking.head(n).itertuples(index=False)]


def test_pages_live_cycle_demo_and_status_rank_the_fleet_alike(setting, capsys):
    dataset, models, rules_path, frame = setting
    # the live cycle first: it records the rules it runs beside the data, where the pages read them
    service = Service(Settings(dataset=dataset, models=models, threads=1, rules=rules_path))
    live = service.cycle().assessment
    page = dashboard.fleet_view(dataset, models).assessment
    scenario = replay.Scenario("the fleet", "ppdb002", "back_close_wait", 500.0, AS_OF + pd.Timedelta("20min"),
                               ({"name": "all", "start": AS_OF - pd.Timedelta("1D"), "end": AS_OF, "narrative": ""},))
    forecaster = Forecaster.champion(models)
    detector_dir = forecaster.path
    from argus_core import anomaly

    demo = replay.tick(frame, scenario, forecaster, AS_OF, detector=anomaly.AnomalyModel.load(detector_dir),
                       rules=alerting.load_rules(rules_path)).assessment
    assert main(["status", "--dataset", str(dataset), "--models", str(models)]) == 0
    printed = capsys.readouterr().out

    assert live.as_of == page.as_of == demo.as_of == AS_OF
    expected = _top(page.ranking, len(page.ranking))
    assert _top(live.ranking, len(live.ranking)) == expected
    assert _top(demo.ranking, len(demo.ranking)) == expected
    # status prints the first ten as the pages rank them
    shown = [line.split()[:2] for line in printed.splitlines() if line.startswith("    ") and "score" in line]
    assert shown == [[name, level] for name, level, *_ in expected[:10]]

    # the rules' thresholds reach every caller: ppdb002 is over its own critical (400) now
    for found in (page, live, demo):
        row = found.ranking.set_index(schema.SERVER).loc["ppdb002"]
        assert row["level"] == "critical" and row["now"] == "breaching now (critical)"
        assert found.thresholds.for_server("ppdb002")["back_close_wait"] == schema.Threshold(200, 400)
    assert "breaching now (critical)" in printed
    # and abnormal now is judged alike (the service by its running scorer, the others by the window)
    flags = [found.abnormal.set_index(schema.SERVER)["abnormal"].sort_index() for found in (page, live, demo)]
    pd.testing.assert_series_equal(flags[0], flags[1])
    pd.testing.assert_series_equal(flags[0], flags[2])


def test_the_live_snapshot_is_the_saved_assessment(setting):
    dataset, models, rules_path, _ = setting
    from argus_core.live import snapshot

    service = Service(Settings(dataset=dataset, models=models, threads=1, rules=rules_path))
    published = service.cycle()
    again = snapshot.load(live_state.state_dir(dataset))
    assert isinstance(again.assessment, fleet.Assessment)
    assert again.assessment.thresholds == published.assessment.thresholds
    assert again.assessment.profiles == published.assessment.profiles
    assert again.levels == published.levels and again.assessment.horizon == published.assessment.horizon
    assert _top(again.ranking, 90) == _top(published.ranking, 90)
    pd.testing.assert_frame_equal(again.quantiles, published.quantiles, check_dtype=False)


def test_a_session_memory_of_levels_reranks_through_the_same_path(setting):
    from argus_core.fleet import risk

    dataset, models, _, _ = setting
    page = dashboard.fleet_view(dataset, models).assessment
    remembered = {name: "critical" for name in page.ranking[schema.SERVER]}
    again = page.ranked(remembered)
    for row in again.itertuples(index=False):
        floor = row.breaching_now if isinstance(row.breaching_now, str) else "healthy"
        assert row.level == max(risk.level_with_hysteresis(row.score, "critical"), floor, key=risk.LEVELS.index)
    assert page.ranked({}) is page.ranking


def test_a_forecast_is_reused_only_for_the_same_rows(setting):
    # the pages and the demo reuse a forecast while nothing changed; a corrected value, or a
    # dataset of other metrics with the same servers and times, must be forecast again
    _, models, _, frame = setting
    forecaster = Forecaster.champion(models)
    window = frame[frame[schema.TIMESTAMP] > AS_OF - pd.Timedelta("25h")]
    first = forecaster.forecast(window)
    assert forecaster.forecast(window.copy()) is first
    corrected = window.copy()
    last = corrected.index[(corrected[schema.SERVER] == "ppdb002") & (corrected[schema.TIMESTAMP] == AS_OF)]
    corrected.loc[last, "back_close_wait"] = 5.0
    again = forecaster.forecast(corrected)
    assert again is not first
    mine = (again.quantiles[schema.SERVER] == "ppdb002") & (again.quantiles["metric"] == "back_close_wait")
    assert not again.quantiles[mine]["q50"].equals(first.quantiles[mine]["q50"])
    with pytest.raises(ArgusError, match="java_cpu_pct"):
        forecaster.forecast(window.drop(columns=["java_cpu_pct"]))


def test_a_snapshot_written_before_it_held_an_assessment_still_loads(tmp_path):
    """A service upgraded in place reads the last snapshot of the release before: levels keep
    their hysteresis and the pages show it until the next cycle writes a whole assessment."""
    import json

    from argus_core.live import snapshot

    folder = tmp_path / "snapshot-7"
    folder.mkdir()
    ranking = pd.DataFrame({"server_name": ["db1"], "score": [80.0], "level": ["critical"], "driver": ["mem_used_pct"]})
    per_metric = pd.DataFrame({"server_name": ["db1"], "metric": ["mem_used_pct"], "warning": [85.0],
                               "critical": [95.0], "score": [80.0]})
    quantiles = pd.DataFrame({"server_name": ["db1"], "metric": ["mem_used_pct"],
                              "timestamp": [AS_OF + pd.Timedelta("5min")], "q10": [90.0], "q50": [93.0], "q90": [96.0]})
    importance = pd.DataFrame({"server_name": ["db1"], "variable": ["mem_used_pct"], "importance": [1.0]})
    for name, frame in (("ranking", ranking), ("per_metric", per_metric), ("quantiles", quantiles),
                        ("importance", importance)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (tmp_path / snapshot.POINTER).write_text(json.dumps({
        "generation": 7, "model_id": "tft-old", "data_end": AS_OF.isoformat(), "as_of": AS_OF.isoformat(),
        "created": AS_OF.isoformat(), "cycle_seconds": 0.5, "horizon_seconds": 28800.0,
        "levels": {"db1": "critical"}, "last_sample": {"db1": AS_OF.isoformat()}, "skipped": {},
        "model_error": None, "accepted": 3, "every_seconds": 300.0, "served_by": {}, "forecast_by": {},
        "frames": "snapshot-7"}))
    old = snapshot.load(tmp_path)
    assert old.generation == 7 and old.levels == {"db1": "critical"} and old.model_id == "tft-old"
    assert old.assessment.horizon == 96 and old.assessment.step == pd.Timedelta("5min")
    assert old.assessment.thresholds.by_metric == {"mem_used_pct": schema.Threshold(85.0, 95.0)}
    assert old.horizon_seconds == 28800.0 and old.as_of == AS_OF.isoformat()
