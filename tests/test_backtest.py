"""Real data end to end with a tiny model: import NAB files, train in the series layout with a
hold-out, forecast, backtest against the baselines, and the model quality page. Plus the
baselines and scores on hand-made numbers with known answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from argus_core.cli.main import main
from argus_core.data import importer, store
from argus_core.model import backtest, forecast, layout
from argus_core.model.train import train
from tests import support

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT / "tests" / "data" / "nab"
TINY = replace(support.TINY, val_batches=2, holdout=0.3)


@pytest.fixture(scope="module")
def nab_model(tmp_path_factory):
    """(dataset, models dir, model id) of a tiny TFT trained on three real NAB files."""
    root = tmp_path_factory.mktemp("nab")
    report = importer.import_files([NAB], root / "ds", importer.load_mapping(ROOT / "mappings" / "nab-aws.toml"))
    assert report.ok, report.lines()
    result = train(root / "ds", root / "models", TINY, log=lambda line: None)
    return root / "ds", root / "models", result.model_id


def test_the_series_layout_model_forecasts_each_server_metric_by_name(nab_model):
    dataset, models, model_id = nab_model
    model = forecast.load_model(models, model_id)
    assert model.spec.layout == "series" and model.spec.targets == (layout.VALUE,)
    assert model.spec.forecast_metrics == ("cpu_utilization_pct", "disk_write_bytes")
    info = model.training_info
    assert info["holdout"] == 0.3 and set(info["evaluation_start"]) == {
        "ec2-24ae8d | cpu_utilization_pct", "rds-e47b3b | cpu_utilization_pct", "ec2-1ef3de | disk_write_bytes"}
    # forecast each server as of the start of its hold-out: names and metrics come back as imported
    frame = store.read(dataset)
    for key, start in info["evaluation_start"].items():
        server, metric = key.split(" | ")
        history = frame[(frame["server_name"] == server) & (frame["timestamp"] < pd.Timestamp(start))]
        result = forecast.forecast_fleet(model, history)
        q = result.quantiles
        assert set(q["server_name"]) == {server} and set(q["metric"]) == {metric}
        assert len(q) == model.spec.horizon
        assert (q["q10"] <= q["q50"]).all() and (q["q50"] <= q["q90"]).all()
        level = history[metric].iloc[-288:].astype(float)
        # unit-free inside, the metric's own units outside: even a barely trained model's median
        # stays within a few spreads of the recent level (bytes ~1e7, percent ~1e1 alike)
        gap = abs(float(q["q50"].median()) - float(level.median()))
        assert gap <= 5 * float(level.std()) + 0.05 * abs(float(level.median())), (key, gap, level.std())


def test_training_never_sees_the_hold_out(nab_model):
    dataset, models, model_id = nab_model
    model = forecast.load_model(models, model_id)
    prepared = layout.prepare(store.read(dataset), model.spec)
    trainable, validation, held = layout.split_per_series(prepared, model.spec, 0.3, 0.15)
    for key, start in held.items():
        rows = trainable[trainable["server_name"] == key]
        assert rows[layout.TIME_IDX].max() < start <= validation[key] + model.spec.horizon * 100
        assert validation[key] < start
    assert pd.Timestamp(model.training_info["evaluation_start"]["ec2-24ae8d | cpu_utilization_pct"]) == \
        layout.EPOCH + pd.Timedelta("5min") * held["ec2-24ae8d | cpu_utilization_pct"]


def test_backtest_scores_the_tft_beside_the_baselines_and_saves_them(nab_model, capsys):
    dataset, models, model_id = nab_model
    code = main(["backtest", "--dataset", str(dataset), "--models", str(models), "--classical", "none", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["models"] == ["tft", "naive", "seasonal_naive", "served"]
    assert summary["series"] == 3 and summary["evaluation"] == "per-series hold-out"
    for scores in summary["overall"].values():
        assert 0 < scores["mean_mase"] < 50 and 0 <= scores["coverage"] <= 1 and scores["series"] == 3
    assert summary["anomaly_windows"]["tft"]["inside"]["points"] > 0  # the labelled windows lie in the hold-out
    saved = backtest.load(models / model_id)
    assert saved is not None and saved.summary["model_id"] == model_id
    forecasts = saved.forecasts
    # origins every horizon from each series' hold-out start; no forecast reaches back into training
    starts = forecast.load_model(models, model_id).training_info["evaluation_start"]
    for key, start in starts.items():
        server, metric = key.split(" | ")
        mine = forecasts[(forecasts["server_name"] == server) & (forecasts["metric"] == metric)]
        assert mine["timestamp"].min() >= pd.Timestamp(start)
        assert (mine.groupby(["model", "origin"]).size() == 96).all()


def test_the_model_quality_page_shows_the_saved_backtest(nab_model, open_page):
    dataset, models, model_id = nab_model
    if backtest.load(models / model_id) is None:
        backtest.run(dataset, models, model_id, classical="none")
    at = open_page("model_quality", models, dataset)
    assert at.title[0].value == "Model quality"
    assert len(at.dataframe) >= 2 and len(at.get("plotly_chart")) == 2
    window = json.loads(at.get("plotly_chart")[1].proto.spec)
    first_series = {t.get("name") for t in window["data"]}
    assert "actual" in first_series and "tft p50" in first_series
    before = window["data"][-1]["y"]
    at.selectbox(key="quality-series").select_index(1).run()
    after = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][-1]["y"]
    assert before != after  # another series' actuals
    at.radio(key="quality-by").set_value("profile").run()
    assert not at.exception
    assert "DATABASE" in at.dataframe[1].value.index
    # the continuity board: every model's first hour against naive's, naive's own exactly 1
    board = next(d.value for d in at.dataframe if "first hour / naive" in getattr(d.value, "columns", []))
    assert set(board["model"]) >= {"tft", "naive", "seasonal_naive", "served"}
    assert board.set_index("model").loc["naive", "first hour / naive"] == pytest.approx(1.0)


def test_the_model_quality_page_says_how_to_get_a_backtest(tmp_path, monkeypatch):
    monkeypatch.setenv("ARGUS_MODELS", str(tmp_path / "models"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/model_quality.py")
    at.run()
    assert not at.exception
    assert any("backtest" in info.value or "train" in info.value for info in at.info)


# --- known answers ------------------------------------------------------------------------------------------

def test_baselines_on_hand_made_series():
    sample = np.arange(10, dtype=float)  # a ramp: every h-step change is exactly h
    bands = backtest.change_quantiles(sample, 3)
    assert np.allclose(bands, [[1, 1], [2, 2], [3, 3]])
    q = backtest.naive_forecast(np.array([1.0, 2.0, np.nan]), bands)  # the last real value is 2
    assert np.allclose(q, [[3, 2, 3], [4, 2, 4], [5, 2, 5]])
    values = np.arange(20, dtype=float)
    q = backtest.seasonal_forecast(values, origin=12, horizon=2, season=10, band=np.array([[-1.0, 1.0]]))
    assert np.allclose(q, [[1, 2, 3], [2, 3, 4]])


def test_scores_on_hand_made_forecasts():
    stamps = pd.date_range("2024-01-01", periods=4, freq="5min", tz="UTC")
    rows = []
    for model, q50 in (("perfect", [1, 2, 3, 4]), ("off_by_two", [3, 4, 5, 6])):
        rows.append(pd.DataFrame({"server_name": "a", "metric": "m", "profile": "GENERIC", "model": model,
                                  "origin": stamps[0], "step": [1, 2, 3, 4], "timestamp": stamps,
                                  "actual": [1.0, 2.0, 3.0, 4.0], "q10": np.array(q50) - 1.0, "q50": q50,
                                  "q90": np.array(q50) + 1.0}))
    summary = backtest.summarise(pd.concat(rows, ignore_index=True), {("a", "m"): 2.0}, backtest.incident_labels({}))
    assert summary["overall"]["perfect"]["mean_mase"] == 0
    assert summary["overall"]["perfect"]["coverage"] == 1
    assert summary["overall"]["off_by_two"]["mean_mase"] == pytest.approx(1.0)  # |2| / scale 2
    assert summary["overall"]["off_by_two"]["coverage"] == 0  # actual below p10 = q50 - 1 every time
    # pinball at p90 when the actual is 3 below it: 0.1 * 3 / scale 2
    assert summary["overall"]["off_by_two"]["pinball_q90"] == pytest.approx(0.15)


def test_continuity_and_incident_windows_on_a_known_climb():
    """A series climbing 10 a step from 100: naive (the last value, 100) errs 10, 20, 30, ...; a
    forecast that snaps back to the usual level (50) errs 60, 70, 80, ...; one that follows the
    climb errs 0. The simulated incident's precursor-to-breach window holds the climb."""
    stamps = pd.date_range("2024-01-01 00:05", periods=24, freq="5min", tz="UTC")
    actual = 100.0 + 10.0 * np.arange(1, 25)
    paths = {"naive": np.full(24, 100.0), "snaps_back": np.full(24, 50.0), "follows": actual.copy()}
    rows = [pd.DataFrame({"server_name": "db1", "metric": "back_close_wait", "profile": "DATABASE", "model": model,
                          "origin": stamps[0], "step": np.arange(1, 25), "timestamp": stamps, "actual": actual,
                          "q10": q50 - 5.0, "q50": q50, "q90": q50 + 5.0}) for model, q50 in paths.items()]
    incidents = pd.DataFrame({"server_name": ["db1"], "kind": ["close_wait_pileup"], "metric": ["back_close_wait"],
                              "threshold": [500.0], "precursor_start": [stamps[0]], "breach_time": [stamps[11]],
                              "end_time": [stamps[-1]]})
    labels = backtest.incident_windows(incidents)
    summary = backtest.summarise(pd.concat(rows, ignore_index=True), {("db1", "back_close_wait"): 10.0}, labels,
                                 first_hour_steps=12)
    c = summary["continuity"]
    assert c["naive"]["first_step"] == pytest.approx(1.0) and c["naive"]["first_hour_vs_naive"] == pytest.approx(1.0)
    assert c["snaps_back"]["first_step"] == pytest.approx(6.0)  # |50 - 110| / 10
    assert c["snaps_back"]["first_hour"] == pytest.approx(np.mean(np.arange(6, 18)))  # 60..170 / 10
    assert c["snaps_back"]["first_hour_vs_naive"] == pytest.approx(11.5 / 6.5)
    assert c["follows"]["first_hour_vs_naive"] == 0 and c["snaps_back"]["points"] == 12
    inside = summary["anomaly_windows"]["snaps_back"]["inside"]
    assert inside["points"] == 12 and inside["series"] == 1 and inside["coverage"] == 0
    assert summary["anomaly_windows"]["follows"]["inside"]["coverage"] == 1
    assert summary["unscored_series"] == 0
    assert any("continuity" in line for line in backtest.table({**summary, "series": 1, "origins": 1, "horizon": 24,
                                                                  "evaluation": "test"}))


def test_a_flat_series_left_out_of_the_boards_is_counted():
    stamps = pd.date_range("2024-01-01", periods=4, freq="5min", tz="UTC")
    rows = [pd.DataFrame({"server_name": name, "metric": "m", "profile": "GENERIC", "model": "naive",
                          "origin": stamps[0], "step": [1, 2, 3, 4], "timestamp": stamps, "actual": 1.0,
                          "q10": 0.0, "q50": 1.0, "q90": 2.0}) for name in ("a", "flat")]
    summary = backtest.summarise(pd.concat(rows, ignore_index=True), {("a", "m"): 1.0, ("flat", "m"): 0.0},
                                 backtest.incident_labels({}))
    assert summary["overall"]["naive"]["series"] == 1 and summary["unscored_series"] == 1


def test_relative_scores_have_known_answers():
    """Geometric mean of MASE / seasonal naive's per series, seasonal-exact series left out, and who wins."""
    from argus_core.model.backtest import relative_scores

    rows = []
    for server, tft, seasonal, naive in (("a", 0.5, 1.0, 2.0), ("b", 2.0, 1.0, 1.0), ("c", 0.3, 0.0, 0.6),
                                         ("d", 1.0, 4.0, 4.0)):
        rows += [{"server_name": server, "metric": "m", "model": model, "mase": value}
                 for model, value in (("tft", tft), ("seasonal_naive", seasonal), ("naive", naive))]
    relative, best, left_out = relative_scores(pd.DataFrame(rows), ["tft", "seasonal_naive", "naive"])
    assert left_out == 1  # c: seasonal naive was exact on the hold-out
    assert relative["tft"] == pytest.approx((0.5 * 2.0 * 0.25) ** (1 / 3))
    assert relative["seasonal_naive"] == pytest.approx(1.0)
    assert relative["naive"] == pytest.approx((2.0 * 1.0 * 1.0) ** (1 / 3))
    assert best == {"tft": 0.5, "seasonal_naive": 0.5, "naive": 0.25}  # b is a tie: both count


def test_mstl_copies_a_clean_daily_rhythm():
    """MSTL (a one-day season, AutoETS trend) on a noiseless daily wave forecasts the wave itself."""
    pytest.importorskip("statsforecast", reason="statsforecast is the optional extra (make extras)")
    season = 288
    t = np.arange(7 * season, dtype=float)
    wave = 50 + 10 * np.sin(2 * np.pi * t / season)
    q = backtest.fit_classical("mstl", wave, 96, season)
    ahead = 50 + 10 * np.sin(2 * np.pi * (t[-1] + 1 + np.arange(96)) / season)
    assert q.shape == (96, 3) and np.abs(q[:, 1] - ahead).max() < 0.5
    assert (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()
    short = backtest.fit_classical("mstl", wave[:season], 12, season)  # under two seasons: a non-seasonal fit
    assert short.shape == (12, 3) and np.isfinite(short).all()


def test_the_last_origins_of_each_series_are_kept_for_the_classical_fits():
    chosen = np.array([[0, 10], [0, 30], [0, 20], [1, 5], [2, 7], [2, 9]])
    np.testing.assert_array_equal(backtest.last_origins(chosen, 1), [False, True, False, True, False, True])
    np.testing.assert_array_equal(backtest.last_origins(chosen, 2), [False, True, True, True, True, True])
    assert backtest.last_origins(chosen, 9).all()


def test_a_classical_model_on_fewer_origins_is_scored_beside_the_others_there(nab_model, monkeypatch):
    """AutoARIMA at the last origin of each series only: kept off the main scoreboard (whose origins it
    did not see) and scored beside every model on its own origins."""
    pytest.importorskip("statsforecast", reason="statsforecast is the optional extra (make extras)")
    dataset, models, model_id = nab_model
    result = backtest.run(dataset, models, model_id, classical="autoarima", classical_origins=1)
    summary = result.summary
    assert "autoarima" not in summary["overall"]
    paired = summary["classical_origins"]
    assert paired["model"] == "autoarima" and paired["per_series"] == 1 and paired["origins"] == 3
    assert set(paired["overall"]) == {"tft", "naive", "seasonal_naive", "served", "autoarima"}
    assert {v["series"] for v in paired["overall"].values()} == {3}
    f = result.forecasts
    fitted = f[f["model"] == "autoarima"]
    assert fitted.groupby(["server_name", "metric"])["origin"].nunique().eq(1).all()
    last = f[f["model"] == "tft"].groupby(["server_name", "metric"])["origin"].max()
    assert (fitted.groupby(["server_name", "metric"])["origin"].max() == last).all()
    lines = backtest.table(summary)
    assert any(line.startswith("on the last 1 origin(s) of each series (3 origins), where autoarima") for line in lines)
    # Model quality shows that second board too
    monkeypatch.setenv("ARGUS_MODELS", str(models))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/model_quality.py")
    at.run()
    assert not at.exception
    assert any("where autoarima was fitted" in c.value for c in at.caption)
    assert "autoarima" in at.dataframe[1].value.columns  # the board: one column per method


def test_series_that_make_the_mean_mase_meaningless_are_named():
    """One series scoring thousands for every model (a tiny in-sample scale) is named, with each
    model's mean without it; an ordinary bad series is not."""
    from argus_core.views import quality

    rows = []
    for i in range(20):
        for model, mase in (("tft", 0.7 + 0.01 * i), ("naive", 1.2 + 0.01 * i), ("seasonal_naive", 1.0)):
            rows.append({"model": model, "server_name": f"s{i}", "metric": "cpu", "mase": mase})
    rows += [{"model": m, "server_name": "flat", "metric": "swap", "mase": v}
             for m, v in (("tft", 8900.0), ("naive", 8950.0), ("seasonal_naive", 8800.0))]
    rows += [{"model": m, "server_name": "hard", "metric": "cpu", "mase": v}
             for m, v in (("tft", 15.0), ("naive", 2.0), ("seasonal_naive", 3.0))]  # bad for one model only
    found = backtest.outliers(pd.DataFrame(rows))
    assert [(o["server_name"], o["metric"]) for o in found["series"]] == [("flat", "swap")] and found["count"] == 1
    assert found["mean_without"]["tft"] == pytest.approx(pd.DataFrame(rows).query(
        "model == 'tft' and server_name != 'flat'")["mase"].mean())
    summary = {"outliers": found}
    assert "flat swap (8,900)" in quality.outlier_note(summary)
    assert backtest.outliers(pd.DataFrame(rows[:-6]))["series"] == []
