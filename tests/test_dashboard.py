"""The dashboard's data layer and figures, without Streamlit: views, rankings, aggregates,
server detail, the demo replay, and names shown as text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core import fleet
from argus_core.data import schema, store
from argus_core.errors import ArgusError, DatasetError
from argus_core.fleet import risk
from argus_core.model import Forecaster
from argus_core.views import charts, dashboard, replay

ROOT = Path(__file__).resolve().parents[1]
FLEET, DEMO, MODELS = ROOT / "demo_data" / "fleet", ROOT / "demo_data" / "incident", ROOT / "models"


@pytest.fixture(scope="module")
def view() -> dashboard.FleetView:
    import torch

    torch.set_num_threads(1)
    return dashboard.fleet_view(FLEET, MODELS, as_of=pd.Timestamp("2026-01-07 12:00", tz="UTC"))


def test_view_forecasts_every_server_from_the_cursor(view):
    assert view.as_of == pd.Timestamp("2026-01-07 12:00", tz="UTC")
    assert view.history[schema.TIMESTAMP].max() == view.as_of  # nothing after the cursor is read
    q = view.forecast.quantiles
    assert q[schema.SERVER].nunique() == 90 and q[schema.TIMESTAMP].min() == view.as_of + view.step
    assert set(view.metrics) == set(view.thresholds)


def test_ranking_orders_by_score_and_explains(view):
    ranked = dashboard.ranking(view)
    assert len(ranked) == 90 and ranked["score"].is_monotonic_decreasing
    assert ranked["profile"].notna().all() and ranked["drivers"].str.contains("%").all()
    counts = fleet.level_counts(ranked)
    assert list(counts) == list(risk.LEVELS) and sum(counts.values()) == 90
    breach = ranked.dropna(subset=["breach_p90"])
    expected = ((breach["breach_p90"] - view.as_of) / pd.Timedelta("1h")).round(1)
    assert (breach["hours_to_breach_p90"] == expected).all()


def test_ranking_keeps_levels_with_hysteresis(view):
    per_metric = view.per_metric.copy()
    server = per_metric["server_name"].iloc[0]
    per_metric.loc[per_metric["server_name"] == server, "score"] = 0.0
    per_metric.loc[per_metric.index[0], "score"] = 40.0  # a watch score, inside warning's hysteresis band
    fresh = risk.rank_servers(per_metric).set_index("server_name")
    held = risk.rank_servers(per_metric, {server: "warning"}).set_index("server_name")
    assert fresh.loc[server, "level"] == "watch" and held.loc[server, "level"] == "warning"
    view_ranked = dashboard.ranking(view, {server: "critical"}).set_index("server_name")
    assert view_ranked.loc[server, "level"] == risk.level_with_hysteresis(view_ranked.loc[server, "score"], "critical")


def test_profile_aggregates_are_means_per_profile(view):
    past, future = dashboard.profile_aggregates(view, "mem_used_pct")
    db = view.history[view.history[schema.PROFILE] == "DATABASE"]
    last = db[db[schema.TIMESTAMP] == view.as_of]["mem_used_pct"].mean()
    row = past[(past[schema.PROFILE] == "DATABASE") & (past[schema.TIMESTAMP] == view.as_of)]
    assert row["value"].iloc[0] == pytest.approx(last, rel=1e-5)
    assert (future["q10"] <= future["q50"]).all() and (future["q50"] <= future["q90"]).all()
    assert future[schema.PROFILE].nunique() == 7


def test_sparklines_join_history_and_forecast(view):
    ranked = dashboard.ranking(view).head(5)
    lines = dashboard.sparklines(view, ranked)
    steps = dashboard.SPARK_HOURS * 12 + view.horizon
    assert set(lines) == set(ranked["server_name"])
    assert all(len(v) == len(range(0, steps, 3)) for v in lines.values())


def test_server_detail_and_unknown_server(view):
    detail = dashboard.server_detail(view, "ppdb001")
    assert detail.profile == "DATABASE" and not detail.unseen
    assert set(detail.risk.index) == set(view.metrics)
    assert len(detail.quantiles) == len(view.metrics) * view.horizon
    assert detail.importance["importance"].is_monotonic_decreasing
    with pytest.raises(ArgusError, match="no server named 'nosuch001'"):
        dashboard.server_detail(view, "nosuch001")


def test_missing_dataset_and_model_give_commands(tmp_path):
    with pytest.raises(DatasetError, match="not an Argus dataset"):
        dashboard.fleet_view(tmp_path / "none", MODELS)
    with pytest.raises(ArgusError, match="python -m argus_core train"):
        dashboard.fleet_view(FLEET, tmp_path / "no-models")


def test_find_datasets_lists_the_demo_fleet_first(tmp_path):
    found = dashboard.find_datasets(ROOT)
    assert found[0] == FLEET and DEMO in found
    assert dashboard.find_datasets(tmp_path) == []


def test_server_names_are_escaped_in_figures():
    ranked = pd.DataFrame({
        "server_name": ["<b>evil</b>", "ppweb001"], "profile": ["WEB_API", "WEB_API"], "score": [80.0, 5.0],
        "level": ["critical", "healthy"], "driver": ["cpu_busy_pct"] * 2, "p_critical": [0.9, 0.0],
    })
    fig = json.loads(charts.fleet_heatmap(ranked).to_json())
    cell = fig["data"][0]
    assert "&lt;b&gt;evil&lt;/b&gt;" in cell["customdata"][0][0] and "<b>evil" not in json.dumps(cell)


def test_forecast_chart_marks_thresholds_and_breach():
    stamps = pd.date_range("2026-01-01", periods=20, freq="5min", tz="UTC")
    history = pd.DataFrame({"timestamp": stamps[:10], "value": np.linspace(80, 90, 10)})
    q = pd.DataFrame({"timestamp": stamps[10:], "q10": 88.0, "q50": np.linspace(90, 99, 10), "q90": 100.0})
    breach = q["timestamp"][q["q50"] >= 95].iloc[0]
    fig = charts.forecast_chart(history, q, "mem_used_pct", schema.THRESHOLDS["mem_used_pct"], breach, stamps[10])
    names = [t.name for t in fig.data]
    assert {"actual", "p10-p90", "p50", "breach at p50", "breach at p90"} <= set(names)
    assert {s.y0 for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1} == {85.0, 95.0}


def test_replay_is_deterministic_and_sees_the_leak_coming():
    import torch

    torch.set_num_threads(1)
    scenario = replay.load_scenario(DEMO)
    assert scenario.server == "ppdb001" and scenario.metric == "mem_used_pct"
    assert scenario.phase_at(pd.Timestamp("2026-03-11 13:00", tz="UTC"))["name"] == "escalation"
    assert replay.tick_after(scenario, scenario.start, 15) == scenario.start + pd.Timedelta("15min")
    assert replay.tick_after(scenario, scenario.end, 15) == scenario.end
    frame = store.read(DEMO)
    model = Forecaster.champion(MODELS)
    calm = replay.tick(frame, scenario, model, pd.Timestamp("2026-03-11 08:00", tz="UTC"))
    assert not calm.predicted and not calm.breached and calm.actual["timestamp"].max() == calm.now
    late = pd.Timestamp("2026-03-11 17:00", tz="UTC")
    first, again = replay.tick(frame, scenario, model, late), replay.tick(frame, scenario, model, late)
    assert first.predicted and not first.breached
    assert first.ranking["server_name"].iloc[0] == "ppdb001"
    pd.testing.assert_frame_equal(first.band, again.band)


def test_dataset_without_scenario_says_how_to_write_one():
    with pytest.raises(DatasetError, match="demo-data"):
        replay.load_scenario(FLEET)


def test_a_dataset_named_both_ways_is_listed_once(tmp_path, monkeypatch):
    """`make live-demo` names data/live-demo in ARGUS_DATASETS, and the sidebar finds it under data/ too."""
    from ui.state import available_datasets

    data = tmp_path / "data" / "live-demo"
    shutil.copytree(ROOT / "demo_data" / "incident", data)
    monkeypatch.setenv("ARGUS_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARGUS_DATASETS", "data/live-demo")
    assert available_datasets() == [data.resolve()]


def test_make_run_s_launcher_forecasts_the_default_fleet_before_serving(monkeypatch):
    """`make run` starts the dashboard through ui.launch: the first page finds the model loaded and
    the default fleet forecast in the process's caches."""
    from argus_core.model import forecast
    from ui import launch

    monkeypatch.setenv("ARGUS_THREADS", "1")
    forecast.clear_caches()
    launch.warm()
    assert forecast.cache_info()["forecasts"] == 1 and forecast.cache_info()["models"] >= 1
    monkeypatch.setenv("ARGUS_MODELS", "/nonexistent/models")
    launch.warm()  # a missing model: nothing raised, the page will say what is wrong
