"""Labelled anomaly windows brought with an import (``import --labels FILE``): a table of
server_name, start, end[, metric] as JumpStarter ships it, stored in the manifest, scored by
backtest inside and outside the windows; a bad labels file stops the import and writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import store
from argus_core.model import backtest

START = pd.Timestamp("2024-03-01", tz="UTC")


def long_form(tmp_path: Path) -> Path:
    """Two services, two unnamed metrics, a day at 5 minutes: the shape of JumpStarter's file."""
    stamps = pd.date_range(START, periods=288, freq="5min")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"timestamp": np.tile(stamps, 2), "server_name": np.repeat(["svc-00", "svc-01"], 288),
                          "m01": rng.random(576), "m02": rng.random(576) * 100})
    path = tmp_path / "metrics.parquet"
    frame.to_parquet(path)
    return path


def labels_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anomaly_windows.csv"
    path.write_text(text)
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_labels_table_comes_with_the_import_and_a_window_without_metric_labels_the_whole_server(tmp_path, capsys):
    data = long_form(tmp_path)
    labels = labels_file(tmp_path, "server_name,start,end,metric\n"
                                   "svc-00,2024-03-01 02:00:00,2024-03-01 03:00:00,\n"
                                   "svc-01,2024-03-01T05:00:00,2024-03-01T05:30:00,m02\n"
                                   "svc-99,2024-03-01 06:00:00,2024-03-01 07:00:00,\n")
    dataset = tmp_path / "ds"
    assert main(["import", str(data), "--labels", str(labels), "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "(labels): read 3 window(s), kept 2" in out and "svc-99" in out  # a server not imported is said, not kept
    stored = store.read_manifest(dataset)["labels"]
    assert stored == [
        {"server_name": "svc-00", "metric": None, "start": "2024-03-01T02:00:00+00:00",
         "end": "2024-03-01T03:00:00+00:00"},
        {"server_name": "svc-01", "metric": "m02", "start": "2024-03-01T05:00:00+00:00",
         "end": "2024-03-01T05:30:00+00:00"}]
    # importing the same windows again (with more data) keeps each window once
    more = tmp_path / "more.parquet"
    frame = pd.read_parquet(data)
    frame["timestamp"] = frame["timestamp"] + pd.Timedelta("1D")
    frame.to_parquet(more)
    assert main(["import", str(more), "--labels", str(labels), "--dataset", str(dataset)]) == 0
    assert store.read_manifest(dataset)["labels"] == stored

    # backtest scores every metric of svc-00 inside its window, and only m02 of svc-01 inside its own:
    # the forecast errs by 1 at the labelled points, by 0 elsewhere
    labelled = backtest.incident_labels(store.read_manifest(dataset))
    series = [("svc-00", "m01"), ("svc-00", "m02"), ("svc-01", "m01"), ("svc-01", "m02")]
    stamps = pd.date_range("2024-03-01 01:30", periods=12, freq="5min", tz="UTC").append(
        pd.date_range("2024-03-01 05:00", periods=6, freq="5min", tz="UTC"))
    rows = []
    for server, metric in series:
        for t in stamps:
            inside = (server == "svc-00" and t.hour == 2) or (server, metric) == ("svc-01", "m02") and t.hour == 5
            rows.append({"model": "tft", "server_name": server, "metric": metric, "profile": "GENERIC",
                         "timestamp": t, "actual": 1.0 if inside else 0.0, "q10": -1.0, "q50": 0.0, "q90": 0.5})
    summary = backtest.summarise(pd.DataFrame(rows), dict.fromkeys(series, 1.0), labelled)
    assert summary["labelled_series"] == 3  # svc-00's two metrics and svc-01's m02
    windows = summary["anomaly_windows"]["tft"]
    # pinball inside: actual 1 above every quantile, (0.1 * 2 + 0.5 * 1 + 0.9 * 0.5) / 3
    assert windows["inside"] == {"mase": 1.0, "coverage": 0.0, "points": 2 * 6 + 6, "series": 3,
                                 "pinball": pytest.approx((0.1 * 2 + 0.5 * 1 + 0.9 * 0.5) / 3)}
    assert windows["outside"]["mase"] == 0.0


BAD_LABELS = {
    "missing column": ("server_name,begin,end\nsvc-00,2024-03-01 02:00,2024-03-01 03:00\n", "missing column"),
    "unreadable time": ("server_name,start,end\nsvc-00,yesterday,2024-03-01 03:00\n", "unreadable time"),
    "end before start": ("server_name,start,end\nsvc-00,2024-03-01 03:00,2024-03-01 02:00\n", "end before start"),
    "unknown metric": ("server_name,start,end,metric\nsvc-00,2024-03-01 02:00,2024-03-01 03:00,cpu\n",
                       "unknown metric"),
    "no such file": (None, "no such labels file"),
    "per-point label not 1/0": ("timestamp,server_name,anomaly\n2024-03-01 02:00,svc-00,maybe\n",
                                "unreadable label"),
    "per-point unreadable time": ("timestamp,server_name,anomaly\nnoon,svc-00,1\n", "unreadable time"),
    "per-point unknown metric": ("timestamp,server_name,anomaly,metric\n2024-03-01 02:00,svc-00,1,cpu\n",
                                 "unknown metric"),
}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_a_bad_labels_file_stops_the_import_and_changes_nothing(case, tmp_path, capsys):
    data = long_form(tmp_path)
    dataset = tmp_path / "ds"
    assert main(["import", str(data), "--dataset", str(dataset)]) == 0
    before = snapshot(dataset)
    capsys.readouterr()
    text, expected = BAD_LABELS[case]
    labels = labels_file(tmp_path, text) if text is not None else tmp_path / "missing.csv"
    code = main(["import", str(data), "--labels", str(labels), "--dataset", str(dataset)])
    captured = capsys.readouterr()
    assert code == 1
    assert expected in captured.out and "REJECTED" in captured.out, captured.out
    assert "nothing was written" in captured.err and "Traceback" not in captured.out + captured.err
    assert snapshot(dataset) == before


def test_contract_files_take_labels_too_and_refuse_bad_ones(tmp_path, capsys):
    from argus_core.data.simulate import SimConfig, simulate_fleet

    frame = simulate_fleet(SimConfig(servers=2, hours=6, seed=1, incident_rate=0.0)).frame
    data = tmp_path / "fleet.csv"
    frame.to_csv(data, index=False)
    server = str(frame["server_name"].iloc[0])
    good = labels_file(tmp_path, f"server_name,start,end,metric\n{server},{frame['timestamp'].iloc[3]},"
                                 f"{frame['timestamp'].iloc[9]},mem_used_pct\n")
    dataset = tmp_path / "ds"
    assert main(["import", str(data), "--labels", str(good), "--dataset", str(dataset)]) == 0
    assert [w["metric"] for w in store.read_manifest(dataset)["labels"]] == ["mem_used_pct"]
    before = snapshot(dataset)
    bad = labels_file(tmp_path, f"server_name,start,end,metric\n{server},2024-01-01,2024-01-02,no_such_metric\n")
    assert main(["import", str(data), "--labels", str(bad), "--dataset", str(dataset)]) == 1
    captured = capsys.readouterr()
    assert "unknown metric" in captured.err and "nothing was written" in captured.err
    assert snapshot(dataset) == before


def test_server_detail_shades_the_server_s_labelled_windows(open_page, tmp_path):
    """A whole-server window shades every metric's panel; a window of one metric shades only its own."""
    import json
    import shutil

    root = Path(__file__).resolve().parents[1]
    dataset = tmp_path / "fleet"
    shutil.copytree(root / "demo_data" / "fleet", dataset)
    manifest = store.read_manifest(dataset)
    windows = []
    for server in manifest["servers"]:
        windows += [{"server_name": server, "metric": None, "start": manifest["start"], "end": manifest["end"]},
                    {"server_name": server, "metric": "mem_used_pct", "start": manifest["start"],
                     "end": manifest["end"]}]
    store.update_manifest(dataset, {"labels": windows})
    at = open_page("server_detail", root / "models", dataset)
    assert any("2 labelled anomaly window(s)" in c.value for c in at.caption)
    grid = next(json.loads(chart.proto.spec) for chart in at.get("plotly_chart")
                if len(json.loads(chart.proto.spec)["data"]) > 8)  # the per-metric grid
    rects = [s for s in grid["layout"]["shapes"] if s["type"] == "rect"]
    panels = len(grid["layout"]["annotations"])  # one subplot title per metric
    assert len(rects) == panels + 1


def test_a_mapping_s_labels_file_that_is_missing_or_not_json_is_refused(tmp_path, capsys):
    """It used to be ignored in silence: the import went ahead without the windows it named."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "nab"
    folder.mkdir()
    shutil.copy(root / "tests" / "data" / "nab" / "ec2_cpu_utilization_24ae8d.csv", folder)
    mapping = root / "mappings" / "nab-aws.toml"
    code = main(["import", str(folder), "--mapping", str(mapping), "--dataset", str(tmp_path / "ds")])
    captured = capsys.readouterr()
    assert code == 1 and "no such labels file" in captured.out and not (tmp_path / "ds").exists()
    (folder / "anomaly_windows.json").write_text("{not json")
    code = main(["import", str(folder), "--mapping", str(mapping), "--dataset", str(tmp_path / "ds")])
    captured = capsys.readouterr()
    assert code == 1 and "unreadable labels file" in captured.out and not (tmp_path / "ds").exists()
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("text, says", [
    ('{"windows": [["2014-02-19 00:00", "2014-02-19 01:00"]]}', "no entry names a file of this import"),
    ('{"ec2_cpu_utilization_24ae8d.csv": ["2014-02-19 00:22:00"]}', "is not a window [start, end]"),
    ('{"ec2_cpu_utilization_24ae8d.csv": "2014-02-19"}', "expected NAB's windows"),
])
def test_nab_labels_of_the_wrong_shape_are_refused_not_read_as_no_windows(tmp_path, capsys, text, says):
    import shutil

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "nab"
    folder.mkdir()
    shutil.copy(root / "tests" / "data" / "nab" / "ec2_cpu_utilization_24ae8d.csv", folder)
    (folder / "anomaly_windows.json").write_text(text)
    code = main(["import", str(folder), "--mapping", str(root / "mappings" / "nab-aws.toml"),
                 "--dataset", str(tmp_path / "ds")])
    captured = capsys.readouterr()
    assert code == 1 and says in captured.out, captured.out
    assert not (tmp_path / "ds").exists() and "Traceback" not in captured.out + captured.err


def test_windows_outside_the_data_or_of_zero_length_are_noted(tmp_path, capsys):
    data = long_form(tmp_path)
    labels = labels_file(tmp_path, "server_name,start,end\n"
                                   "svc-00,2024-03-01 02:00,2024-03-01 03:00\n"
                                   "svc-00,2024-03-01 04:00,2024-03-01 04:00\n"
                                   "svc-01,2023-01-01 00:00,2023-01-02 00:00\n")
    assert main(["import", str(data), "--labels", str(labels), "--dataset", str(tmp_path / "ds")]) == 0
    said = capsys.readouterr().out
    assert "1 window(s) of zero length" in said and "1 window(s) wholly outside the data" in said


def test_per_point_labels_become_one_window_per_run_of_anomalous_points(tmp_path, capsys):
    """timestamp, server_name, anomaly[, metric], as most public sets ship their labels: each run
    of consecutive anomalous points of a series is one window, first point to last."""
    data = long_form(tmp_path)
    stamps = pd.date_range(START, periods=288, freq="5min")
    flags = np.zeros(288, dtype=int)
    flags[24:30] = 1  # 02:00 .. 02:25
    flags[31] = 1  # a single point after one normal one: its own window
    flags[100:103] = 1  # 08:20 .. 08:30
    points = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "server_name": "svc-01",
                           "anomaly": flags})
    metric_points = pd.DataFrame({"timestamp": stamps[:3].strftime("%Y-%m-%dT%H:%M:%SZ"), "server_name": "svc-00",
                                  "anomaly": ["true", "true", "false"], "metric": "m02"})
    labels = tmp_path / "labels.csv"
    pd.concat([points.assign(metric=""), metric_points]).sample(frac=1.0, random_state=0).to_csv(labels, index=False)
    dataset = tmp_path / "ds"
    assert main(["import", str(data), "--labels", str(labels), "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "12 anomalous point(s) of 291 read as 4 window(s)" in out
    stored = store.read_manifest(dataset)["labels"]
    assert stored == [
        {"server_name": "svc-00", "metric": "m02", "start": "2024-03-01T00:00:00+00:00",
         "end": "2024-03-01T00:05:00+00:00"},
        {"server_name": "svc-01", "metric": None, "start": "2024-03-01T02:00:00+00:00",
         "end": "2024-03-01T02:25:00+00:00"},
        {"server_name": "svc-01", "metric": None, "start": "2024-03-01T02:35:00+00:00",
         "end": "2024-03-01T02:35:00+00:00"},
        {"server_name": "svc-01", "metric": None, "start": "2024-03-01T08:20:00+00:00",
         "end": "2024-03-01T08:30:00+00:00"}]


def test_a_label_column_named_in_the_mapping_becomes_windows_and_an_unmapped_column_is_said(tmp_path, capsys):
    """A file with its per-point labels in a column (SMD's and many sets' form): with
    ``label_column`` its runs of anomalous points become windows, not a metric; without it, a
    mapping that names its metrics says the column is ignored. Averaging one-minute samples onto
    the five-minute grid is reported as averaging, not as values dropped."""
    stamps = pd.date_range(START, periods=300, freq="1min")
    flags = np.zeros(300, dtype=int)
    flags[60:67] = 1  # 01:00 .. 01:06
    rng = np.random.default_rng(5)
    data = tmp_path / "machine.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "server_name": "machine-1",
                  "cpu": rng.random(300) * 100, "Label": flags}).to_csv(data, index=False)
    base = ('step = "5min"\nresample = "mean"\n{extra}[metrics.cpu_pct]\nkind = "percent"\n'
            '[sources.cpu]\nmetric = "cpu_pct"\n')
    mapping = tmp_path / "with.toml"
    mapping.write_text(base.format(extra='label_column = "Label"\n'))
    assert main(["import", str(data), "--mapping", str(mapping), "--dataset", str(tmp_path / "with")]) == 0
    out = capsys.readouterr().out
    manifest = store.read_manifest(tmp_path / "with")
    assert manifest["metrics"] == ["cpu_pct"]  # the label column is not a metric
    assert manifest["labels"] == [{"server_name": "machine-1", "metric": None, "start": "2024-03-01T01:00:00+00:00",
                                   "end": "2024-03-01T01:06:00+00:00"}]
    assert "column Label (labels): read 1 window(s), kept 1" in out
    assert "dropped none; averaged 240 values into 5min steps" in out
    assert manifest["import_report"]["averaged"] == {"into 5min steps": 240}
    mapping.write_text(base.format(extra=""))
    assert main(["import", str(data), "--mapping", str(mapping), "--dataset", str(tmp_path / "without")]) == 0
    out = capsys.readouterr().out
    assert "ignored: Label" in out and store.read_manifest(tmp_path / "without")["metrics"] == ["cpu_pct"]
