"""The abnormal-now detector: hysteresis on hand-made deviations with known answers, a fit whose
thresholds mean what they say on nominal data, an incident flagged, the JSON file loaded without
pickle, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.anomaly import detector as anomaly
from argus_core.cli.main import main
from argus_core.data import schema
from argus_core.errors import ModelDirectoryError

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = anomaly.AnomalySettings(fast_steps=3, clear_steps=2)


@pytest.mark.parametrize("deviation, expected", [
    # two steps over tau_fast (1.0) are not enough; the third makes it abnormal
    ([0.5, 1.2, 1.3, 0.4, 1.1, 1.2, 1.5, 0.2, 0.3, 0.1], [0, 0, 0, 0, 0, 0, 1, 1, 0, 0]),
    # one step over tau_persist (2.0) is enough; it clears after two steps under tau_fast
    ([0.1, 2.5, 0.2, 1.1, 0.3, 0.2, 0.1], [0, 1, 1, 1, 1, 0, 0]),
    # a dip of one step under tau_fast does not clear it
    ([2.1, 0.5, 1.4, 0.6, 0.4], [1, 1, 1, 1, 0]),
    # a missing step breaks a run over tau_fast: three over are counted again after it
    ([1.2, 1.3, float("nan"), 1.4, 1.5, 1.6, 0.2], [0, 0, 0, 0, 0, 1, 1]),
])
def test_hysteresis_on_known_deviations(deviation, expected):
    d = np.array(deviation)
    flags = anomaly.abnormal_states(d, np.full(len(d), 1.0), np.full(len(d), 2.0), SETTINGS)
    assert flags.astype(int).tolist() == expected


@pytest.fixture(scope="module")
def fitted(small_sim):
    windows = pd.DataFrame({"server_name": small_sim.incidents["server_name"],
                            "start": small_sim.incidents["precursor_start"], "end": small_sim.incidents["end_time"]})
    metrics = anomaly.dataset_metrics({"metrics": list(schema.METRIC_COLUMNS)})
    return anomaly.fit(small_sim.frame, metrics, windows=windows), windows


def test_thresholds_are_the_nominal_percentiles(fitted, small_sim):
    model, windows = fitted
    assert model.profiles and all(len(p.centres) in model.settings.clusters for p in model.profiles.values())
    scored = anomaly.deviations(model, small_sim.frame)
    nominal = scored[anomaly.nominal_mask(scored, windows)]
    fitted = model.profiles["DATABASE"]
    assert 0.95 <= fitted.fast_quantile < fitted.persist_quantile < 1  # raised from p95/p98 to the budget
    database = nominal[nominal["profile"] == "DATABASE"]
    over_fast = (database["deviation"] >= database["tau_fast"]).mean()
    assert over_fast == pytest.approx(1 - fitted.fast_quantile, abs=0.01)
    assert set(scored["drivers"].iloc[0].split(", ")) <= set(model.metrics)


def test_an_incident_makes_its_server_abnormal_and_names_its_metric(fitted, small_sim):
    model, _ = fitted
    scored = anomaly.score(model, small_sim.frame)
    found = 0
    for incident in small_sim.incidents.itertuples(index=False):
        start, end = pd.Timestamp(incident.precursor_start), pd.Timestamp(incident.end_time)
        rows = scored[(scored["server_name"] == incident.server_name) & (scored["timestamp"] >= start)
                      & (scored["timestamp"] <= end)]
        hit = rows[rows["abnormal"]]
        metric = schema.CPU_BUSY if incident.metric == schema.CPU_BUSY else incident.metric
        found += bool(len(hit)) and metric in " ".join(hit["drivers"])
    # thresholds are raised until nominal data gives 0.5 false events per server-week: quiet, so the
    # slow precursors of some incidents stay under them (bench/bench_anomaly.py has the figures)
    assert found >= len(small_sim.incidents) // 3


def test_servers_reporting_other_metrics_are_modelled_apart():
    # one series per host, as an import of CloudWatch files gives: a CPU host and a disk host of
    # the same profile must not share a threshold set by the burstier of them
    stamps = pd.date_range("2026-01-01", periods=2000, freq="5min", tz="UTC")
    rng = np.random.default_rng(4)
    rows = []
    for server, metric, values in (("cpu-1", "cpu", 20 + rng.normal(0, 1, 2000)),
                                   ("cpu-2", "cpu", 30 + rng.normal(0, 1, 2000)),
                                   ("disk-1", "disk", rng.lognormal(10, 2, 2000))):
        rows.append(pd.DataFrame({schema.TIMESTAMP: stamps, schema.SERVER: server, schema.PROFILE: "GENERIC",
                                  "cpu": values if metric == "cpu" else np.nan,
                                  "disk": values if metric == "disk" else np.nan}))
    frame = pd.concat(rows, ignore_index=True)
    groups = anomaly.groups_of(frame, ["cpu", "disk"])
    assert set(groups) == {"GENERIC (cpu)", "GENERIC (disk)"}
    model = anomaly.fit(frame, ["cpu", "disk"])
    assert set(model.profiles) == {"GENERIC (cpu)", "GENERIC (disk)"}
    assert model.profiles["GENERIC (disk)"].tau_fast != model.profiles["GENERIC (cpu)"].tau_fast
    # a server reporting both is scored in its profile's group when that was never fitted: GENERIC
    # here is not, so it takes the first fitted group; its rows keep their real profile
    both = frame[frame[schema.SERVER] == "cpu-1"].assign(disk=1.0, **{schema.SERVER: "new"})
    scored = anomaly.deviations(model, both)
    assert scored[schema.PROFILE].eq("GENERIC").all() and scored["deviation"].notna().all()


def test_the_detector_file_is_json_and_loads_without_pickle(fitted, small_sim, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path)
    payload = json.loads(path.read_text())  # plain JSON: numbers and names, nothing executable
    assert payload["format_version"] == anomaly.FORMAT_VERSION
    again = anomaly.AnomalyModel.load(tmp_path)
    frame = small_sim.frame.head(2000)
    pd.testing.assert_frame_equal(anomaly.deviations(again, frame), anomaly.deviations(model, frame))
    payload["profiles"]["DATABASE"]["centres"] = "os.system('rm -rf /')"
    path.write_text(json.dumps(payload))
    with pytest.raises(ModelDirectoryError, match="not a readable anomaly detector"):
        anomaly.AnomalyModel.load(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ModelDirectoryError, match="not a readable anomaly detector"):
        anomaly.AnomalyModel.load(tmp_path)
    with pytest.raises(ModelDirectoryError, match="anomaly fit"):
        anomaly.AnomalyModel.load(tmp_path / "none")


def test_cli_fits_and_names_the_leaking_database(tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*", "anomaly.json"))
    demo = str(ROOT / "demo_data" / "incident")
    assert main(["anomaly", "score", "--dataset", demo, "--models", str(models)]) == 1
    assert "anomaly fit" in capsys.readouterr().err
    assert main(["status", "--dataset", demo, "--models", str(models)]) == 0
    assert "abnormal now: not known" in capsys.readouterr().out  # never "none" when nothing can tell
    assert main(["anomaly", "fit", "--dataset", demo, "--models", str(models)]) == 0
    assert "nominal rows" in (out := capsys.readouterr().out) and "previous 1 day" in out  # 2 days: a day's baseline
    assert main(["anomaly", "score", "--dataset", demo, "--models", str(models), "--as-of", "2026-03-11T17:30Z"]) == 0
    out = capsys.readouterr().out
    assert "ppdb001" in out and "mem_used_pct" in out.split("ppdb001", 1)[1].splitlines()[0]
    assert main(["anomaly", "score", "--dataset", demo, "--models", str(models), "--as-of", "2026-03-11T08:00Z"]) == 0
    assert "ppdb001" not in capsys.readouterr().out  # before the leak it is normal


def test_pages_show_abnormal_now(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ARGUS_THREADS", "1")
    monkeypatch.setenv("ARGUS_DATASETS", str(ROOT / "demo_data" / "incident"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["argus.follow_latest"] = False
    cursor = pd.Timestamp("2026-03-11 17:30").to_pydatetime()
    at.session_state[f"argus.as_of.{ROOT / 'demo_data' / 'incident'}"] = cursor
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    line = next(m.value for m in at.markdown if "Abnormal now" in m.value)
    assert "ppdb001" in line and "**Abnormal now: 1**" in line
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert any("ppdb001 ◆" in cell for row in heat["text"] for cell in row if cell)
    at.switch_page("app_pages/critical_servers.py").run()
    table = at.dataframe[0].value
    assert table.set_index("server_name").loc["ppdb001", "abnormal"] and "abnormal_metrics" in table
    at.toggle(key="critical-abnormal").set_value(True).run()
    assert at.dataframe[0].value["server_name"].tolist() == ["ppdb001"]


def test_status_names_the_abnormal_servers(capsys):
    assert main(["status", "--dataset", str(ROOT / "demo_data" / "fleet"), "--models", str(ROOT / "models")]) == 0
    assert "abnormal now:" in capsys.readouterr().out


def test_a_detector_of_an_older_format_is_refused_and_the_overview_says_nothing_is_known(fitted, tmp_path):
    from argus_core.views import dashboard

    model, _ = fitted
    path = model.save(tmp_path)
    payload = json.loads(path.read_text())
    payload["format_version"] = 1  # the one-step-change features: its centres mean other things
    path.write_text(json.dumps(payload))
    with pytest.raises(ModelDirectoryError, match="refit it with"):
        anomaly.AnomalyModel.load(tmp_path)
    ranked = pd.DataFrame({"server_name": ["a"], "abnormal": [False]})
    assert "not known" in dashboard.abnormal_text(ranked, detector=False)
    assert "none" in dashboard.abnormal_text(ranked)


def _weekly_fleet(days: int, seed: int = 5) -> pd.DataFrame:
    """Four servers busy on weekday business hours and quiet at weekends, as a trading fleet is."""
    stamps = pd.date_range("2026-01-05", periods=days * 288, freq="5min", tz="UTC")  # a Monday
    busy = ((stamps.weekday < 5) & (stamps.hour >= 9) & (stamps.hour < 17)).astype(float)
    rng = np.random.default_rng(seed)
    return pd.concat([pd.DataFrame({schema.TIMESTAMP: stamps, schema.SERVER: f"web{i}", schema.PROFILE: "WEB_API",
                                    "cpu": 15 + 50 * busy + rng.normal(0, 2, len(stamps)),
                                    "mem": 40 + 5 * busy + rng.normal(0, 0.5, len(stamps))})
                      for i in range(4)], ignore_index=True)


def test_the_baseline_is_a_week_when_the_fit_holds_two_and_a_day_otherwise(small_sim):
    assert anomaly.baseline_steps_for(small_sim.frame, "5min") == 288  # a week of data: a day
    assert anomaly.baseline_steps_for(_weekly_fleet(15), "5min") == 7 * 288
    assert anomaly.baseline_steps_for(_weekly_fleet(15), "1min") == 7 * 1440


def test_a_weekly_rhythm_is_nominal_and_a_leak_on_top_of_it_is_not():
    # Monday's open after a quiet weekend looks like an anomaly against the previous day; against
    # the previous week it is the rhythm. A leak starting on the fourth Monday still stands out.
    frame = _weekly_fleet(28)
    model = anomaly.fit(frame[frame[schema.TIMESTAMP] < "2026-01-26"], ["cpu", "mem"])
    assert model.baseline_steps == 7 * 288 and model.history_steps > 7 * 288
    leak = (frame[schema.SERVER] == "web0") & (frame[schema.TIMESTAMP] >= "2026-01-28")
    frame.loc[leak, "mem"] += np.linspace(0, 30, leak.sum())
    scored = anomaly.score(model, frame)
    fourth = scored[scored[schema.TIMESTAMP] >= "2026-01-26"]
    healthy = fourth[fourth[schema.SERVER] != "web0"]
    assert not healthy["abnormal"].any()
    flagged = fourth[fourth["abnormal"]]
    assert set(flagged[schema.SERVER]) == {"web0"}
    assert flagged[schema.TIMESTAMP].min() >= pd.Timestamp("2026-01-28", tz="UTC")
    assert "mem" in flagged["drivers"].iloc[0]


def test_a_format_2_detector_still_reads_with_its_day_baseline(fitted, small_sim, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path)
    payload = json.loads(path.read_text())
    assert payload["baseline_steps"] == 288
    payload["format_version"] = 2
    del payload["baseline_steps"]
    path.write_text(json.dumps(payload))
    again = anomaly.AnomalyModel.load(tmp_path)
    assert again.baseline_steps == 288
    frame = small_sim.frame.head(3000)
    pd.testing.assert_frame_equal(anomaly.deviations(again, frame), anomaly.deviations(model, frame))


def test_the_product_scores_abnormal_now_against_the_whole_baseline():
    # the pages and the service hand over a forecast's window; the detector reads the rest of its
    # baseline from the dataset, so "abnormal now" is the same however short that window is
    from argus_core import anomaly as wing
    from argus_core.data import store

    dataset = ROOT / "demo_data" / "fleet"
    model_dir = ROOT / "models" / json.loads((ROOT / "models" / "registry.json").read_text())["champion"]
    detector = anomaly.AnomalyModel.load(model_dir)
    everything = store.read(dataset)
    expected = anomaly.abnormal_now(detector, everything).set_index(schema.SERVER)
    short = store.read_recent(dataset, 24)
    now, shown = wing.window_judge(model_dir, dataset)(short)
    got = now.set_index(schema.SERVER).loc[expected.index]
    np.testing.assert_allclose(got["deviation"], expected["deviation"])
    assert got["abnormal"].tolist() == expected["abnormal"].tolist()
    assert shown[schema.TIMESTAMP].min() == short[schema.TIMESTAMP].min()  # the chart keeps the window's span


def test_scoring_from_a_time_on_reads_the_rows_before_it_as_baseline_only(small_sim):
    # the pages and the service score only the rows they show; each must read exactly as it does
    # when everything is scored, a server that stops two steps after that time included
    frame = small_sim.frame.sort_values([schema.SERVER, schema.TIMESTAMP], kind="stable")  # as features() wants it
    since = pd.Timestamp("2026-01-08T10:00Z")
    first = frame[schema.SERVER].iloc[0]
    frame = frame[~((frame[schema.SERVER] == first) & (frame[schema.TIMESTAMP] > since + pd.Timedelta("10min")))]
    frame = frame.reset_index(drop=True)
    metrics = anomaly.dataset_metrics({"metrics": list(schema.METRIC_COLUMNS)})
    shown = (frame[schema.TIMESTAMP] >= since).to_numpy()
    # equal up to rounding: the half-hour means come from running sums that start at other rows
    np.testing.assert_allclose(anomaly.features(frame, metrics, 288, since),
                               anomaly.features(frame, metrics, 288)[shown], rtol=0, atol=1e-9)
