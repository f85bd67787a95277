from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema, store
from tests.test_store import snapshot

DEMO = Path(__file__).resolve().parents[1] / "demo_data" / "incident"


@pytest.fixture(scope="module")
def demo() -> tuple[dict, pd.DataFrame]:
    return store.read_manifest(DEMO), store.read(DEMO)


def phase_rows(frame: pd.DataFrame, phase: dict, server: str) -> pd.DataFrame:
    start, end = pd.Timestamp(phase["start"]), pd.Timestamp(phase["end"])
    rows = frame[(frame["server_name"] == server) & (frame["timestamp"] >= start) & (frame["timestamp"] < end)]
    return rows.set_index("timestamp")


def test_committed_demo_data_is_what_the_command_writes(tmp_path: Path) -> None:
    assert main(["demo-data", "--output", str(tmp_path / "incident")]) == 0
    assert snapshot(tmp_path / "incident") == snapshot(DEMO)


def test_small_fleet_with_two_days_of_history(demo: tuple[dict, pd.DataFrame]) -> None:
    manifest, frame = demo
    assert 10 <= len(manifest["servers"]) <= 20
    first_phase = pd.Timestamp(manifest["scenario"]["phases"][0]["start"])
    assert first_phase - frame["timestamp"].min() >= pd.Timedelta("2D")
    assert [p["name"] for p in manifest["scenario"]["phases"]] == ["baseline", "escalation", "critical", "recovery"]


def test_four_phases_where_the_manifest_says(demo: tuple[dict, pd.DataFrame]) -> None:
    manifest, frame = demo
    server = manifest["scenario"]["incident_server"]
    phases = {p["name"]: p for p in manifest["scenario"]["phases"]}
    thresholds = schema.THRESHOLDS

    baseline = phase_rows(frame, phases["baseline"], server)
    assert (baseline["status"].astype(str) != "critical").all()
    assert baseline["mem_used_pct"].max() < thresholds["mem_used_pct"].warning
    assert baseline["swap_used_pct"].max() < 5

    escalation = phase_rows(frame, phases["escalation"], server)
    first_hour, last_hour = escalation.iloc[:12], escalation.iloc[-12:]
    assert last_hour["mem_used_pct"].mean() > first_hour["mem_used_pct"].mean() + 15
    assert last_hour["swap_used_pct"].mean() > first_hour["swap_used_pct"].mean() + 20
    assert last_hour["back_close_wait"].mean() > 3 * first_hour["back_close_wait"].mean()
    assert escalation["mem_used_pct"].iloc[:-6].max() < thresholds["mem_used_pct"].critical  # warning signs only

    critical = phase_rows(frame, phases["critical"], server)
    assert (critical["mem_used_pct"] >= thresholds["mem_used_pct"].critical).mean() > 0.9
    assert (critical["status"].astype(str) == "critical").mean() > 0.9
    assert critical["swap_used_pct"].max() >= thresholds["swap_used_pct"].critical

    recovery = phase_rows(frame, phases["recovery"], server)
    assert recovery["mem_used_pct"].iloc[:3].max() < thresholds["mem_used_pct"].warning
    assert recovery["swap_used_pct"].iloc[-12:].max() < 5
    assert (recovery["status"].astype(str).iloc[:6] == "recovery").all()
    assert recovery["uptime_days"].iloc[0] < 0.01  # restarted

    truth = store.read_incidents(DEMO)
    assert len(truth) == 1 and truth["server_name"].iloc[0] == server
    breach = truth["breach_time"].iloc[0]
    assert pd.Timestamp(phases["escalation"]["start"]) < breach <= pd.Timestamp(phases["critical"]["start"])


def test_harmless_spike_stays_harmless(demo: tuple[dict, pd.DataFrame]) -> None:
    manifest, frame = demo
    spike = manifest["scenario"]["harmless_spike"]
    rows = frame[frame["server_name"] == spike["server_name"]].set_index("timestamp")
    busy = 100.0 - rows["cpu_idle_pct"]
    start = pd.Timestamp(spike["start"])
    during = busy.loc[start: start + pd.Timedelta(minutes=spike["minutes"])]
    assert during.max() > schema.THRESHOLDS[schema.CPU_BUSY].warning  # it does look alarming ...
    assert busy.max() < schema.THRESHOLDS[schema.CPU_BUSY].critical  # ... but never critical
    assert busy.loc[start + pd.Timedelta("1h"): start + pd.Timedelta("2h")].max() < 70  # and it is gone
    assert not (rows["status"].astype(str) == "critical").any()


def test_only_the_incident_server_goes_critical(demo: tuple[dict, pd.DataFrame]) -> None:
    manifest, frame = demo
    critical_servers = set(frame.loc[frame["status"].astype(str) == "critical", "server_name"].astype(str))
    assert critical_servers == {manifest["scenario"]["incident_server"]}
