"""Bring-your-own-data import: real NAB files through a TOML mapping, the import report, and
malformed files that each get a clear report and change nothing stored."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import importer, store

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT / "tests" / "data" / "nab"  # three NAB files, vendored (MIT); the full set: ../shared/data/nab-aws
MAPPING = ROOT / "mappings" / "nab-aws.toml"
# one file on the grid, one off it (times at :02, :07 ...), one with duplicate timestamps
FEW = ["ec2_cpu_utilization_24ae8d.csv", "rds_cpu_utilization_e47b3b.csv", "ec2_disk_write_bytes_1ef3de.csv"]


def nab_copy(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "nab"
    folder.mkdir()
    for name in names:
        shutil.copy(NAB / name, folder / name)
    shutil.copy(NAB / "anomaly_windows.json", folder / "anomaly_windows.json")
    return folder


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_nab_files_import_with_the_mapping_and_a_report(tmp_path, capsys):
    folder = nab_copy(tmp_path, FEW)
    dataset = tmp_path / "ds"
    assert main(["import", str(folder), "--mapping", str(MAPPING), "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    manifest = store.read_manifest(dataset)
    assert set(manifest["servers"]) == {"ec2-24ae8d", "rds-e47b3b", "ec2-1ef3de"}
    assert manifest["servers"]["rds-e47b3b"] == "DATABASE"  # profile from the mapping's source entry
    assert manifest["metrics"] == ["cpu_utilization_pct", "disk_write_bytes"]
    assert manifest["thresholds"] == {"cpu_utilization_pct": {"warning": 85.0, "critical": 95.0}}
    assert manifest["units"]["disk_write_bytes"] == "bytes"
    report = manifest["import_report"]
    assert report["rows_read"] == 4032 + 4032 + 4730
    assert report["averaged"]["with their duplicates (the same time twice)"] == 11  # averaged, not "dropped"
    assert report["rows_kept"] == report["rows_read"] - sum(report["dropped"].values()) \
        - sum(report["averaged"].values())
    assert "moved onto it" in out and "gaps:" in out and "servers: 3" in out
    # labelled anomaly windows follow the files to their server and metric
    labels = pd.DataFrame(manifest["labels"])
    assert set(labels["server_name"]) == {"ec2-24ae8d", "rds-e47b3b", "ec2-1ef3de"}
    frame = store.read(dataset)
    # every kept time is on the 5-minute grid; a host has NaN for the metric it does not carry
    assert (frame["timestamp"].dt.minute % 5 == 0).all()
    cpu_host = frame[frame["server_name"] == "ec2-24ae8d"]
    assert cpu_host["disk_write_bytes"].isna().all() and cpu_host["cpu_utilization_pct"].notna().all()
    raw = pd.read_csv(NAB / FEW[0])
    assert np.allclose(cpu_host["cpu_utilization_pct"].to_numpy(), raw["value"].to_numpy(), atol=1e-4)


def test_duplicates_can_be_refused_and_then_nothing_is_written(tmp_path, capsys):
    folder = nab_copy(tmp_path, ["ec2_disk_write_bytes_1ef3de.csv"])
    dataset = tmp_path / "ds"
    code = main(["import", str(folder), "--mapping", str(MAPPING), "--dataset", str(dataset),
                 "--duplicates", "reject"])
    captured = capsys.readouterr()
    assert code == 1
    assert "duplicate timestamps" in captured.out and "nothing was written" in captured.err
    assert not dataset.exists()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_series(n: int = 12, start: str = "2024-03-01 00:00:00") -> str:
    stamps = pd.date_range(start, periods=n, freq="5min")
    return "timestamp,value\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{i * 1.5:.1f}\n" for i, t in enumerate(stamps))


MALFORMED = {
    "wrong delimiter": ("cpu_aaa111.csv", good_series().replace(",", ";"), "the header splits on ';'"),
    "text in a value column": ("cpu_bbb222.csv", good_series().replace(",4.5\n", ",n/a\n").replace(",6.0\n", ",high\n"),
                               "text in a value column"),
    "mixed formats": ("cpu_ccc333.csv", good_series().replace("2024-03-01 00:10:00", "03/01/2024 00:10"),
                      "unreadable time"),
    "mixed time zones": ("cpu_ddd444.csv", good_series().replace("2024-03-01 00:15:00", "2024-03-01 01:15:00+01:00"),
                         "mixed time zones"),
    "one row": ("cpu_eee555.csv", "timestamp,value\n2024-03-01 00:00:00,3.0\n", "too short"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_gets_a_clear_report_and_changes_nothing(case, tmp_path, capsys):
    mapping = write(tmp_path / "map.toml", "file_pattern = '^(?P<metric>[a-z]+)_(?P<server>[a-z0-9]+)\\.csv$'\n"
                                           "[metrics.cpu]\nkind = 'percent'\nwarning = 85\ncritical = 95\n")
    dataset = tmp_path / "ds"
    assert main(["import", str(write(tmp_path / "cpu_fff000.csv", good_series())), "--mapping", str(mapping),
                 "--dataset", str(dataset)]) == 0
    before = snapshot(dataset)
    capsys.readouterr()
    name, text, expected = MALFORMED[case]
    bad = write(tmp_path / name, text)
    # the malformed file comes with a good one: the whole import is refused, not half of it
    other = write(tmp_path / "cpu_ggg777.csv", good_series())
    code = main(["import", str(other), str(bad), "--mapping", str(mapping), "--dataset", str(dataset)])
    captured = capsys.readouterr()
    assert code == 1
    assert expected in captured.out, captured.out
    assert "REJECTED" in captured.out and "nothing was written" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert snapshot(dataset) == before


def test_long_form_with_own_columns_and_a_coarser_cadence(tmp_path):
    stamps = pd.date_range("2024-03-01", periods=6, freq="10min", tz="UTC")
    frame = pd.DataFrame({"time": np.tile(stamps, 2), "host": np.repeat(["db-1", "web-1"], 6),
                          "cpu": np.arange(12.0), "queue": np.arange(12) * 2})
    path = tmp_path / "metrics.parquet"
    frame.to_parquet(path)
    mapping = write(tmp_path / "map.toml", "[columns]\ntime = 'timestamp'\nhost = 'server_name'\ncpu = 'cpu_pct'\n"
                                           "[metrics.queue]\nkind = 'count'\n[servers]\n'db-1' = 'DATABASE'\n")
    report = importer.import_files([path], tmp_path / "ds", importer.load_mapping(mapping))
    assert report.ok and report.written
    manifest = store.read_manifest(tmp_path / "ds")
    assert manifest["metric_kinds"] == {"cpu_pct": "percent", "queue": "count"}
    assert manifest["servers"] == {"db-1": "DATABASE", "web-1": "GENERIC"}
    # no step named anywhere: the dataset takes the data's own 10-minute cadence, and says so
    assert manifest["step"] == "10min"
    assert any("step 10min: the data's cadence" in note for f in report.files for note in f.notes)
    assert report.to_json()["gaps"] == 0
    # a 5-minute step named for the same data: every other step is a gap, reported and not filled
    report = importer.import_files([path], tmp_path / "ds5", replace(importer.load_mapping(mapping), step="5min"))
    assert report.ok and store.read_manifest(tmp_path / "ds5")["step"] == "5min"
    assert any("coarser" in note for f in report.files for note in f.notes)
    assert report.to_json()["gaps"] == 10 and report.to_json()["missing_steps"] == 10
    # more data for the 10-minute dataset keeps its step without naming it again
    later = frame.assign(time=frame["time"] + pd.Timedelta("1h"))
    later.to_parquet(tmp_path / "later.parquet")
    report = importer.import_files([tmp_path / "later.parquet"], tmp_path / "ds", importer.load_mapping(mapping))
    assert report.ok and store.read_manifest(tmp_path / "ds")["step"] == "10min" and report.to_json()["gaps"] == 0


@pytest.mark.parametrize(("every", "expected"), [("1min", "5min"), ("5min", "5min"), ("15min", "15min"),
                                                 ("1h", "1h"), ("7min", "5min"), ("90s", "5min")])
def test_a_new_dataset_takes_a_coarser_cadence_as_its_step_when_it_divides_a_day(every, expected):
    stamps = pd.date_range("2024-03-01", periods=50, freq=every, tz="UTC")
    frame = pd.DataFrame({importer.schema.SERVER: "db-1", "metric": "cpu", importer.schema.TIMESTAMP: stamps,
                          "value": 1.0})
    assert importer.infer_step([frame]) == expected


def test_a_bad_mapping_file_is_reported(tmp_path, capsys):
    mapping = write(tmp_path / "map.toml", "duplicates = 'sometimes'\n[metrics.x]\nkind = 'volume'\nwarning = 9\n")
    assert main(["import", str(write(tmp_path / "x_a.csv", good_series())), "--mapping", str(mapping),
                 "--dataset", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "unknown option" in err and "unknown kind" in err and "thresholds" in err
    assert not (tmp_path / "ds").exists()


def test_a_dataset_of_its_own_metrics_passes_argus_s_own_validate(tmp_path, capsys):
    """A dataset an import (or a Prometheus pull) made with its own metric set, and any of its
    partition files, pass `validate` under that dataset's contract (they failed as "missing
    column" against the built-in one)."""
    stamps = pd.date_range("2024-03-01", periods=288, freq="5min", tz="UTC")
    frame = pd.DataFrame({"timestamp": stamps, "server_name": "db-1", "queue": np.arange(288) % 7})
    frame.to_parquet(tmp_path / "q.parquet")
    assert main(["import", str(tmp_path / "q.parquet"), "--dataset", str(tmp_path / "ds")]) == 0
    capsys.readouterr()
    part = next((tmp_path / "ds").rglob("*.parquet"))
    for target in (tmp_path / "ds", part):
        assert main(["validate", str(target)]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].endswith("its own 1 metrics") and "OK " in out


def test_a_long_import_says_where_it_is(tmp_path):
    """Each file read is reported to the progress callback (the CLI draws it on a terminal)."""
    for i in range(3):
        stamps = pd.date_range("2024-03-01", periods=50, freq="5min", tz="UTC")
        frame = pd.DataFrame({"timestamp": stamps, "server_name": f"h{i}", "cpu_pct": 1.0})
        frame.to_parquet(tmp_path / f"{i}.parquet")
    seen = []
    report = importer.import_files([tmp_path], tmp_path / "ds", progress=lambda done, total, path: seen.append(
        (done, total, Path(path).name)))
    assert report.ok and seen == [(1, 3, "0.parquet"), (2, 3, "1.parquet"), (3, 3, "2.parquet")]
