"""The charts as an SRE reads them: every forecast chart marks "now" and gives its unit; the
heat map marks abnormal servers on any fleet size and says which server a click lands on; the
demo's labels do not sit on each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema
from argus_core.views import charts, dashboard

ROOT = Path(__file__).resolve().parents[1]
NOW = pd.Timestamp("2026-01-06T12:00Z")


def history_and_band(metric: str = "mem_used_pct") -> tuple[pd.DataFrame, pd.DataFrame]:
    past = pd.date_range(NOW - pd.Timedelta("6h"), NOW, freq="5min")
    ahead = pd.date_range(NOW + pd.Timedelta("5min"), periods=12, freq="5min")
    history = pd.DataFrame({schema.TIMESTAMP: past, "value": np.linspace(40, 60, len(past)), metric: 50.0,
                            "net_in_mb_s": 5.0})
    band = pd.DataFrame({schema.TIMESTAMP: ahead, "metric": metric, "q10": 55.0, "q50": 60.0, "q90": 65.0,
                         schema.SERVER: "db1", schema.PROFILE: "DATABASE"})
    return history, band


def vertical_lines(fig) -> list[pd.Timestamp]:
    return [pd.Timestamp(s.x0) for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1 and s.x0 is not None]


def test_every_forecast_chart_marks_now_and_gives_the_unit():
    history, band = history_and_band()
    single = charts.forecast_chart(history, band, "mem_used_pct")
    assert NOW in vertical_lines(single) and single.layout.yaxis.title.text == "mem_used_pct (%)"

    grid = charts.metric_grid(history, band, pd.DataFrame(index=["mem_used_pct"], data={"breach_p50": [None],
                                                                                         "breach_p90": [None]}),
                              ["mem_used_pct", "net_in_mb_s"], {})
    assert vertical_lines(grid).count(NOW) == 2  # one per panel
    titles = [a.text for a in grid.layout.annotations]
    assert "mem_used_pct (%)" in titles and "net_in_mb_s (MB/s)" in titles

    future = band.rename(columns={})[[schema.TIMESTAMP, schema.PROFILE, "q10", "q50", "q90"]]
    past = history.assign(**{schema.PROFILE: "DATABASE"})[[schema.TIMESTAMP, schema.PROFILE, "value"]]
    bands = charts.profile_bands(past, future, "back_close_wait")
    assert NOW in vertical_lines(bands) and bands.layout.yaxis.title.text == "back_close_wait (sockets)"

    window = band.assign(model="tft", actual=61.0, origin=NOW)
    backtest = charts.backtest_window(window)
    assert NOW in vertical_lines(backtest) and backtest.layout.yaxis.title.text == "mem_used_pct (%)"


def test_units_of_the_contract_s_metrics_and_none_for_an_imported_one():
    assert [charts.unit_of(m) for m in ("cpu_user_pct", "net_out_mb_s", "load_average", "front_close_wait",
                                        "uptime_days", "m01")] == ["%", "MB/s", "runnable processes", "sockets",
                                                                    "days", ""]


def wide_ranking(servers: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    profiles = ["DATABASE", "WEB_API", "DATA_INGEST"]
    return pd.DataFrame({schema.SERVER: [f"s{i:03d}" for i in range(servers)],
                         schema.PROFILE: [profiles[i % 3] for i in range(servers)],
                         "score": rng.uniform(0, 100, servers), "level": "healthy", "driver": "cpu_user_pct",
                         "p_critical": 0.1, "abnormal": [i == 7 for i in range(servers)],
                         "abnormal_metrics": ["mem_used_pct" if i == 7 else "" for i in range(servers)]})


def test_the_abnormal_mark_shows_on_a_wide_heat_map_and_a_click_names_its_server():
    ranked = wide_ranking()
    fig = charts.fleet_heatmap(ranked)
    heat = fig.data[0]
    marks = [(r, c) for r, row in enumerate(heat.text) for c, text in enumerate(row) if text == "◆"]
    assert len(marks) == 1  # drawn, not only in the hover: 30 servers a row hide the names, not the mark
    r, c = marks[0]
    assert charts.heatmap_server(ranked, {"x": c, "y": heat.y[r]}) == "s007"
    assert list(heat.y) == ["Data ingest", "Database", "Web API"]  # names people read, not DATA_INGEST
    assert charts.heatmap_server(ranked, {"x": 99, "y": "Database"}) is None


def test_the_demo_s_labels_sit_at_different_heights():
    from argus_core.views import replay

    scenario = replay.load_scenario(ROOT / "demo_data" / "incident")
    history, band = history_and_band()
    tick = type("Tick", (), {"now": scenario.breach_time + pd.Timedelta("15min"), "actual": history,
                             "band": band})()
    fig = charts.demo_chart(tick, scenario, scenario.breach_time - pd.Timedelta("3h"))
    heights = {a.text: a.y for a in fig.layout.annotations if a.text in ("now", "model predicts the breach",
                                                                           "breach")}
    assert len(heights) == 3 and len(set(heights.values())) == 3


@pytest.mark.parametrize("profile, shown", [("DATA_INGEST", "Data ingest"), ("WEB_API", "Web API"),
                                            ("edge_cache", "Edge cache")])
def test_profiles_are_shown_as_people_read_them(profile, shown):
    from argus_core.data.profiles import display_name

    assert display_name(profile) == shown
    assert dashboard.display_name is display_name


def test_a_tie_on_every_model_marks_no_best_and_the_board_fits_a_page():
    from argus_core.views import quality

    by_metric = pd.DataFrame({"tft": [0.0, 0.8], "naive": [0.0, 1.0], "seasonal_naive": [0.0, 0.9]},
                             index=["swap_used_pct", "mem_used_pct"])
    marks = quality.best_cells(by_metric)
    assert not marks.loc["swap_used_pct"].any()  # all zero: no model is best there
    assert marks.loc["mem_used_pct"].tolist() == [True, False, False]
    summary = {"overall": {m: {"geo_mean_relative": g, "mean_mase": g, "median_mase": g, "share_best": b,
                               "pinball_q10": g, "pinball_q50": g, "pinball_q90": g, "coverage": c, "series": 9}
                           for m, g, b, c in (("tft", 0.7, 0.6, 0.8), ("naive", 1.2, 0.1, 0.5),
                                              ("seasonal_naive", 1.0, 0.3, 0.7))}}
    board = quality.board(summary)
    assert list(board.columns) == ["tft", "naive", "seasonal_naive"]  # methods across, figures down
    marks = quality.best_cells(board, quality.LOWER_IS_BETTER)
    assert marks.loc["share best", "tft"] and marks.loc["coverage gap", "tft"]
    assert not marks.loc["series"].any() and not marks.loc["p10-p90 coverage"].any()
