from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema
from argus_core.data.profiles import PROFILES
from argus_core.data.simulate import SimConfig, Simulation, simulate_fleet


def local_hours(frame: pd.DataFrame) -> pd.Series:
    return frame["timestamp"].dt.tz_convert("America/New_York")


def busy(frame: pd.DataFrame) -> pd.Series:
    return 100.0 - frame["cpu_idle_pct"]


def healthy(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"].isin(["healthy", "morning_spike", "heavy_load"])]


def test_same_seed_same_frame_other_seed_differs() -> None:
    config = SimConfig(servers=12, hours=48, seed=3)
    first, second = simulate_fleet(config), simulate_fleet(config)
    assert first.frame.equals(second.frame)
    assert first.incidents.equals(second.incidents)
    other = simulate_fleet(SimConfig(servers=12, hours=48, seed=4))
    assert not first.frame.equals(other.frame)


def test_frame_honours_the_contract(small_sim: Simulation) -> None:
    frame = small_sim.frame
    assert len(frame) == 30 * 24 * 7 * 12
    assert list(frame.columns) == list(schema.COLUMNS)
    schema.validate(frame)  # raises on any contract problem


def test_cpu_columns_add_up(small_sim: Simulation) -> None:
    f = small_sim.frame
    total = f["cpu_user_pct"] + f["cpu_sys_pct"] + f["cpu_iowait_pct"] + f["cpu_idle_pct"]
    assert np.allclose(total, 100.0, atol=0.02)
    assert (f["java_cpu_pct"] <= f["cpu_user_pct"] + 1e-3).all()


def test_swap_only_under_memory_pressure(small_sim: Simulation) -> None:
    f = small_sim.frame
    n_servers = f["server_name"].nunique()
    mem = f["mem_used_pct"].to_numpy().reshape(n_servers, -1)
    swap = f["swap_used_pct"].to_numpy().reshape(n_servers, -1)
    # recent pressure: the highest memory over the last two hours (swap drains slowly)
    recent_mem = pd.DataFrame(mem.T).rolling(24, min_periods=1).max().to_numpy().T
    swapping = swap > 10.0
    assert swapping.any(), "the incidents of this fleet should make some server swap"
    assert (recent_mem[swapping] >= 85.0).all()
    assert np.median(swap[recent_mem < 80.0]) < 2.5


def test_load_follows_cpu(small_sim: Simulation) -> None:
    f = healthy(small_sim.frame)
    for profile, group in f.groupby("profile", observed=True):
        corr = np.corrcoef(busy(group), group["load_average"] / PROFILES[profile].cores)[0, 1]
        assert corr > 0.8, profile


def test_database_memory_within_its_band(small_sim: Simulation) -> None:
    spec = PROFILES["DATABASE"]
    f = healthy(small_sim.frame)
    db = f[f["profile"] == "DATABASE"]
    ordinary = db[~db["server_name"].isin(small_sim.problem_children)]
    assert spec.mem_mean - spec.mem_spread <= ordinary["mem_used_pct"].mean() <= spec.mem_mean + spec.mem_spread
    per_server = ordinary.groupby("server_name", observed=True)["mem_used_pct"].median()
    assert per_server.between(spec.mem_mean - spec.mem_spread - 2, spec.mem_mean + spec.mem_spread + 2).all()


def test_rhythms_follow_the_trading_day(small_sim: Simulation) -> None:
    f = healthy(small_sim.frame)
    local = local_hours(f)
    weekday = local.dt.weekday < 5
    market = weekday & local.dt.hour.between(10, 15)
    night = local.dt.hour.between(0, 4)
    eod = weekday & local.dt.hour.between(16, 18)

    def mean_busy(profile: str, when: pd.Series) -> float:
        return float(busy(f[(f["profile"] == profile) & when]).mean())

    assert mean_busy("WEB_API", market) > mean_busy("WEB_API", night) + 20
    assert mean_busy("ML_COMPUTE", night) > mean_busy("ML_COMPUTE", market) + 20
    assert mean_busy("RISK_ANALYTICS", eod) > mean_busy("RISK_ANALYTICS", night) + 20
    # the weekend is quiet for the web tier
    weekend_day = (local.dt.weekday >= 5) & local.dt.hour.between(10, 15)
    assert mean_busy("WEB_API", market) > mean_busy("WEB_API", weekend_day) + 20


def test_incidents_are_typical_of_their_profile(small_sim: Simulation) -> None:
    truth = small_sim.incidents
    assert len(truth) >= 5 and truth["kind"].nunique() >= 3
    for row in truth.itertuples():
        assert row.kind in PROFILES[row.profile].incident_kinds
        assert row.precursor_start < row.breach_time <= row.end_time


def metric_values(frame: pd.DataFrame, server: str, metric: str) -> pd.Series:
    rows = frame[frame["server_name"] == server].set_index("timestamp")
    return busy(rows) if metric == schema.CPU_BUSY else rows[metric]


@pytest.mark.parametrize("hours_before", [1.0])
def test_incidents_show_precursors_before_the_breach(small_sim: Simulation, hours_before: float) -> None:
    f = small_sim.frame
    for row in small_sim.incidents.itertuples():
        values = metric_values(f, row.server_name, row.metric)
        at_breach = values.loc[row.breach_time]
        assert at_breach >= row.threshold
        before_start = values.loc[row.precursor_start - pd.Timedelta("1h"): row.precursor_start].mean()
        before_breach = values.loc[row.breach_time - pd.Timedelta(hours=hours_before): row.breach_time].iloc[:-1]
        assert (before_breach < row.threshold).mean() > 0.5, row  # not yet breached ...
        # ... but already well on the way: at least halfway from normal to the threshold
        assert before_breach.mean() > before_start + 0.5 * (row.threshold - before_start), row
        status = f[(f["server_name"] == row.server_name) & (f["timestamp"] == row.breach_time)]["status"]
        assert status.iloc[0] == "critical"


def test_problem_children_carry_their_chronic_issue() -> None:
    sim = simulate_fleet(SimConfig(servers=40, hours=48, seed=5, problem_child_share=1.0, incident_rate=0.0))
    assert len(sim.problem_children) == 40
    f = healthy(sim.frame)
    for server, issue in sim.problem_children.items():
        rows = f[f["server_name"] == server]
        profile = PROFILES[sim.servers[server]]
        if issue == "high_memory":
            assert rows["mem_used_pct"].mean() > profile.mem_mean + 4
        if issue == "leaky_connections":
            assert rows["back_close_wait"].mean() > 3 * profile.close_wait_base


def test_maintenance_reboots_reset_uptime(small_sim: Simulation) -> None:
    f = small_sim.frame
    n_servers = f["server_name"].nunique()
    uptime = f["uptime_days"].to_numpy().reshape(n_servers, -1)
    status = f["status"].astype(str).to_numpy().reshape(n_servers, -1)
    after_maintenance = (status[:, :-1] == "maintenance") & (status[:, 1:] != "maintenance")
    assert after_maintenance.any()
    assert (uptime[:, 1:][after_maintenance] == 0.0).all()
    step_days = 5 / (24 * 60)
    steady = np.diff(uptime, axis=1)
    assert np.isclose(np.median(steady), step_days, atol=2e-4)  # float32 days, 4 decimals
