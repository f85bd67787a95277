from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from argus_core.data import schema, store
from argus_core.data.simulate import Simulation
from argus_core.errors import DatasetError, SchemaError


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under a directory and a hash of its bytes."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset(tmp_path: Path, small_sim: Simulation) -> Path:
    directory = tmp_path / "fleet"
    store.write_dataset(directory, small_sim.frame, kind="simulated", incidents=small_sim.incidents,
                        extra={"generator": small_sim.settings})
    return directory


def test_layout_and_manifest(dataset: Path, small_sim: Simulation) -> None:
    days = sorted(p.name for p in dataset.glob("date=*"))
    assert days[0] == "date=2026-01-05" and len(days) == 7
    manifest = store.read_manifest(dataset)
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["rows"] == len(small_sim.frame) == sum(manifest["partitions"].values())
    assert manifest["servers"] == dict(sorted(small_sim.servers.items()))
    assert manifest["generator"]["seed"] == 11
    assert manifest["start"].startswith("2026-01-05T00:00") and manifest["end"].startswith("2026-01-11T23:55")
    assert store.read_incidents(dataset).equals(small_sim.incidents)
    assert not list(dataset.rglob("*.tmp")) and not list(dataset.parent.glob(".fleet.*"))


def test_round_trip(dataset: Path, small_sim: Simulation) -> None:
    back = store.read(dataset)
    expected = small_sim.frame
    assert len(back) == len(expected)
    for col in expected.columns:
        assert back[col].astype(str).equals(expected[col].astype(str)) if col in store.LABEL_COLUMNS else \
            back[col].equals(expected[col]), col


def test_window_reads_only_the_days_it_needs(dataset: Path) -> None:
    files = store.partitions_for_window(dataset, pd.Timestamp("2026-01-07T22:00Z"), pd.Timestamp("2026-01-08T03:00Z"))
    assert [f.parent.name for f in files] == ["date=2026-01-07", "date=2026-01-08"]
    window = store.read(dataset, "2026-01-07T22:00Z", "2026-01-08T03:00Z", servers=["ppdb001", "ppweb002"])
    assert set(window["server_name"].astype(str)) == {"ppdb001", "ppweb002"}
    assert window["timestamp"].min() == pd.Timestamp("2026-01-07T22:00Z")
    assert window["timestamp"].max() == pd.Timestamp("2026-01-08T03:00Z")
    assert len(window) == 2 * (5 * 12 + 1)
    assert store.read(dataset, servers=["nobody"]).empty


def test_rewrite_replaces_and_refuses_foreign_directories(tmp_path: Path, small_sim: Simulation) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(DatasetError, match="not an Argus dataset"):
        store.write_dataset(foreign, small_sim.frame, kind="simulated")
    assert snapshot(foreign) == {"cat.jpg": hashlib.sha256(b"meow").hexdigest()}


def test_append_adds_days_and_servers(tmp_path: Path, small_sim: Simulation) -> None:
    frame = small_sim.frame
    first_day = frame[frame["timestamp"] < pd.Timestamp("2026-01-06T00:00Z")]
    second_day = frame[(frame["timestamp"] >= pd.Timestamp("2026-01-06T00:00Z"))
                       & (frame["timestamp"] < pd.Timestamp("2026-01-07T00:00Z"))]
    target = tmp_path / "imported"
    store.append(target, schema.validate(first_day), source="day1.parquet")
    manifest = store.append(target, schema.validate(second_day), source="day2.parquet")
    assert manifest["rows"] == len(first_day) + len(second_day)
    assert manifest["sources"] == ["day1.parquet", "day2.parquet"]
    assert len(store.read(target)) == manifest["rows"]


def test_a_late_row_is_placed_between_its_servers_stored_rows(tmp_path: Path, small_sim: Simulation) -> None:
    # a live push may carry a sample an exporter sent late: it belongs between rows already stored
    day = small_sim.frame[small_sim.frame["timestamp"] < pd.Timestamp("2026-01-06T00:00Z")]
    late = (day["server_name"] == day["server_name"].iloc[0]) & (day["timestamp"] == pd.Timestamp("2026-01-05T10:00Z"))
    target = tmp_path / "live"
    store.append(target, schema.validate(day[~late.to_numpy()]), source="live push")
    store.append(target, schema.validate(day[late.to_numpy()]), source="live push")
    stored = store.read(target)
    expected = day.sort_values(["server_name", "timestamp"]).reset_index(drop=True)
    assert stored["timestamp"].tolist() == expected["timestamp"].tolist()
    assert stored["server_name"].astype(str).tolist() == expected["server_name"].astype(str).tolist()


def test_append_of_existing_rows_changes_nothing(dataset: Path, small_sim: Simulation) -> None:
    before = snapshot(dataset)
    overlap = small_sim.frame[small_sim.frame["timestamp"] < pd.Timestamp("2026-01-05T01:00Z")]
    with pytest.raises(SchemaError, match="already in the dataset"):
        store.append(dataset, schema.validate(overlap), source="again.csv")
    assert snapshot(dataset) == before


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not an Argus dataset"):
        store.read(tmp_path / "nothing")
