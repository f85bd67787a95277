from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema
from argus_core.fleet import risk

START = pd.Timestamp("2026-03-11T12:00Z")


def path(server: str, metric: str, q50: np.ndarray, spread: float = 5.0) -> pd.DataFrame:
    stamps = START + pd.to_timedelta(np.arange(1, len(q50) + 1) * 5, unit="min")
    return pd.DataFrame({"server_name": server, "metric": metric, "timestamp": stamps,
                         "q10": q50 - spread, "q50": q50, "q90": q50 + spread})


@pytest.mark.parametrize("threshold, expected", [(70, 1.0), (85, 0.7), (90, 0.5), (95, 0.3), (100, 0.1), (110, 0.0)])
def test_exceedance_probability_from_three_quantiles(threshold: float, expected: float) -> None:
    p = risk.exceedance_probability(np.array([80.0]), np.array([90.0]), np.array([100.0]), threshold)
    assert p[0] == pytest.approx(expected)


def test_rising_memory_breaches_when_the_paths_say() -> None:
    rising = path("ppdb001", "mem_used_pct", np.linspace(80, 100, 96))
    row = risk.metric_risk(rising).iloc[0]
    # q50 = 80 + 20 i / 95 reaches 95 at i = 72; q90 = q50 + 5 reaches 95 at i = 48
    assert row["breach_p50"] == START + pd.Timedelta(minutes=5 * 73)
    assert row["breach_p90"] == START + pd.Timedelta(minutes=5 * 49)
    assert row["p_critical"] == pytest.approx(0.9)
    assert row["p_warning"] == pytest.approx(1.0)
    flat = risk.metric_risk(path("ppweb001", "mem_used_pct", np.full(96, 50.0))).iloc[0]
    assert flat["p_critical"] == 0.0 and pd.isna(flat["breach_p50"]) and pd.isna(flat["breach_p90"])


def test_fleet_ranking_levels_and_drivers() -> None:
    quantiles = pd.concat([
        path("ppdb001", "mem_used_pct", np.linspace(80, 100, 96)),
        path("ppdb001", schema.CPU_BUSY, np.full(96, 30.0)),
        path("ppweb001", "mem_used_pct", np.full(96, 50.0)),
        path("ppweb001", schema.CPU_BUSY, np.full(96, 40.0)),
        path("ppetl001", "disk_usage_pct", np.linspace(80, 88, 96), spread=3.0),  # warning, not critical
    ], ignore_index=True)
    ranked = risk.fleet_risk(quantiles)
    assert ranked["server_name"].tolist() == ["ppdb001", "ppetl001", "ppweb001"]
    assert ranked["driver"].tolist()[0] == "mem_used_pct"
    assert ranked["level"].tolist() == ["critical", "watch", "healthy"]
    assert ranked["score"].is_monotonic_decreasing


def test_sooner_breach_ranks_higher() -> None:
    soon = path("a", "mem_used_pct", np.r_[np.full(10, 90.0), np.full(86, 99.0)])
    late = path("b", "mem_used_pct", np.r_[np.full(80, 90.0), np.full(16, 99.0)])
    ranked = risk.fleet_risk(pd.concat([late, soon], ignore_index=True))
    assert ranked["server_name"].tolist() == ["a", "b"]


def test_hysteresis_keeps_levels_from_flapping() -> None:
    levels, previous = [], None
    for score in (75, 65, 59, 40, 30, 50, 44, 36):
        previous = risk.level_with_hysteresis(score, previous)
        levels.append(previous)
    assert levels == ["critical", "critical", "warning", "warning", "watch", "warning", "warning", "warning"]
    # without history, the same scores would flap
    assert [risk.level_for(s) for s in (75, 65, 44, 46)] == ["critical", "warning", "watch", "warning"]


def test_a_metric_over_warning_and_climbing_gets_a_time_to_critical() -> None:
    """CLOSE_WAIT at 432 (warning 200, critical 500), climbing 120 an hour over the last hour,
    with a forecast that falls back to 130: the line reaches 500 in about 0.57 h, and that is the
    breach time every reader shows; a server over warning but flat keeps no breach time."""
    history_stamps = START - pd.to_timedelta(np.arange(12)[::-1] * 5, unit="min")  # the last hour, up to START
    climbing = 432.0 - 120.0 * (START - history_stamps) / pd.Timedelta("1h")
    creeping = 300.0 + 1e-6 * np.arange(12)  # over warning, rising so slowly its line reaches 500 in years
    history = pd.DataFrame({"server_name": ["db1"] * 12 + ["db2"] * 12 + ["db3"] * 12,
                            schema.TIMESTAMP: list(history_stamps) * 3,
                            "back_close_wait": np.concatenate([climbing.to_numpy(), np.full(12, 300.0), creeping])})
    forecast = pd.concat([path("db1", "back_close_wait", np.full(96, 130.0)),
                          path("db2", "back_close_wait", np.full(96, 290.0)),
                          path("db3", "back_close_wait", np.full(96, 290.0))])
    thresholds = {"back_close_wait": schema.Threshold(200.0, 500.0)}
    scored = risk.metric_risk(forecast, thresholds, risk.current_values(history, ["back_close_wait"]), None,
                              risk.recent_climb(history, ["back_close_wait"])).set_index("server_name")
    db1, db2 = scored.loc["db1"], scored.loc["db2"]
    assert db1["breaching_now"] == "warning" and db1["climb_per_h"] == pytest.approx(120.0)
    hours = (500.0 - 432.0) / 120.0
    assert db1["breach_p50"] == (START + pd.Timedelta(hours=hours)).round("s")
    assert db1["breach_p90"] == db1["breach_p50"]
    assert db1["critical_by"] == "climb"
    assert db2["breaching_now"] == "warning" and pd.isna(db2["breach_p50"]) and db2["critical_by"] is None
    db3 = scored.loc["db3"]
    assert db3["climb_per_h"] > 0 and db3["hours_to_critical"] > 1e4 and pd.isna(db3["breach_p50"])
    ranked = risk.rank_servers(scored.reset_index()).set_index("server_name")
    assert ranked.loc["db1", "breach_p50"] == db1["breach_p50"]
