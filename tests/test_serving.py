"""Seasonal inputs and the served forecast: the day-old value handed to the network as a known
input (the same numbers in training batches and in fleet forecasts), and per-series serving by
the TFT, a simple method or a blend, chosen on the validation window and used by forecasts and
backtests. A tiny TFT on hand-made series whose best simple method is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from argus_core.data import importer, store
from argus_core.model import backtest, datasets, forecast, layout, serving
from argus_core.model.batches import WindowBatches
from argus_core.model.spec import seasonal_lags_for
from argus_core.model.train import train
from tests import support

DAY = 288
TINY = replace(support.TINY, val_batches=2, holdout=0.25, validation_fraction=0.3, encoder_length=48, seed=3)


def test_seasonal_paths_look_back_and_never_ahead() -> None:
    values = np.arange(12, dtype=np.float32)[None, :].repeat(2, axis=0)
    values[1, 7] = np.nan  # a gap
    paths = layout.seasonal_paths(values, (3, 5))
    # three steps back; the first three steps take the series' first value
    assert paths[0, :, 0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    # five steps back, and where that is missing the three-step value stands in
    assert paths[0, :, 1].tolist() == [0, 0, 0, 0, 1, 0, 1, 2, 3, 4, 5, 6]
    # a gap three steps back: the value before it is carried, never the step's own value
    assert paths[1, 10, 0] == 6 and paths[1, 11, 0] == 8
    assert (paths <= np.arange(12)[None, :, None]).all()


def test_auto_adds_the_week_only_where_the_history_holds_it() -> None:
    assert seasonal_lags_for("auto", "5min", 96, 10 * DAY, 48) == (DAY,)
    assert seasonal_lags_for("auto", "5min", 96, 30 * DAY, 48) == (DAY, 7 * DAY)
    assert seasonal_lags_for("none", "5min", 96, 30 * DAY, 48) == ()
    assert seasonal_lags_for("week", "5min", 96, 3 * DAY, 48) == (DAY, 7 * DAY)
    assert seasonal_lags_for("auto", "7min", 96, 30 * DAY, 48) == ()  # no whole day of 7-minute steps
    assert seasonal_lags_for("auto", "1h", 96, 30 * DAY, 48) == ()  # a day (24 steps) inside the horizon


def test_the_tft_band_is_stretched_to_hold_eighty_percent() -> None:
    rng = np.random.default_rng(5)
    actual = rng.normal(0.0, 1.0, 20_000)
    # a band of +-0.64 around the truth holds only about half; p10-p90 of N(0, 1) is +-1.28
    q = np.stack([np.full_like(actual, -0.64), np.zeros_like(actual), np.full_like(actual, 0.64)], axis=1)
    factor = serving.band_scale(q, actual)
    assert factor == pytest.approx(2.0, abs=0.06)
    wide = serving.widen(q, factor)
    assert np.mean((actual >= wide[:, 0]) & (actual <= wide[:, 2])) == pytest.approx(0.8, abs=0.02)
    assert serving.band_scale(serving.widen(q, 2.0), actual) == pytest.approx(1.0, abs=0.06)


def test_a_simple_method_serves_only_on_enough_consistent_evidence() -> None:
    tft = [1.0] * 8
    steady = {"tft": tft, "seasonal_naive": [0.8] * 6 + [1.1] * 2}  # better at 6 of 8 origins
    assert serving.winner({"tft": 1.0, "seasonal_naive": 0.875}, steady) == "seasonal_naive"
    assert serving.winner({"tft": 1.0, "seasonal_naive": 0.98}, steady) == "tft"  # within the margin
    short = {name: errors[:4] for name, errors in steady.items()}
    assert serving.winner({"tft": 1.0, "seasonal_naive": 0.8}, short) == "tft"  # four origins are too few
    lucky = {"tft": tft, "seasonal_naive": [0.1, 0.1, 0.1] + [1.05] * 5}  # three good days, then worse
    assert serving.winner({"tft": 1.0, "seasonal_naive": 0.69}, lucky) == "tft"


def test_series_too_short_to_decide_alone_are_decided_together() -> None:
    """Three series of two validation origins each: six origins together. Errors are in each series'
    own units (1, 100 and 0.01), so only ratios to the TFT's can be pooled."""
    def series(unit: float, seasonal: list[float], naive: list[float]) -> tuple[dict, dict]:
        origins = {"tft": [unit, unit], "seasonal_naive": [unit * e for e in seasonal],
                   "naive": [unit * e for e in naive]}
        return {name: float(np.mean(errors)) for name, errors in origins.items()}, origins

    plain = [series(1.0, [0.5, 0.6], [1.2, 1.3]), series(100.0, [0.7, 0.5], [1.1, 0.9]),
             series(0.01, [0.6, 1.1], [2.0, 2.0])]
    scores, origins = zip(*plain, strict=True)
    assert serving.pooled_winner(list(scores), list(origins)) == "seasonal_naive"  # 0.63x, 5 of 6 origins
    # alone, none of them has the origins to leave the TFT
    assert all(serving.winner(s, o) == "tft" for s, o in plain)
    assert serving.pooled_winner(list(scores[:2]), list(origins[:2])) == "tft"  # four origins are too few
    close = [series(1.0, [0.97, 0.97], [1.5, 1.5])] * 3  # 3% better: inside the margin
    assert serving.pooled_winner(*map(list, zip(*close, strict=True))) == "tft"
    # one series that seasonal naive gets exactly right does not carry the others: it wins 2 of 6 origins
    exact = [series(1.0, [0.0, 0.0], [1.5, 1.5]), series(1.0, [1.6, 1.6], [1.5, 1.5]),
             series(1.0, [1.6, 1.6], [1.5, 1.5])]
    assert serving.pooled_winner(*map(list, zip(*exact, strict=True))) == "tft"


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    """A tiny TFT on three servers x two metrics: ``rhythm`` repeats a day exactly (seasonal naive
    has no error), ``steps`` holds a level for hours at a time (the last value is right)."""
    root = tmp_path_factory.mktemp("serving")
    rng = np.random.default_rng(11)
    stamps = pd.date_range("2026-03-02", periods=12 * DAY, freq="5min", tz="UTC")
    phase = np.arange(len(stamps)) % DAY / DAY
    frames = []
    for i in range(3):
        levels = np.repeat(rng.normal(50, 10, len(stamps) // 36 + 1), 36)[:len(stamps)]
        frames.append(pd.DataFrame({
            "timestamp": stamps, "server_name": f"host-{i}",
            "rhythm": 40 + 25 * np.sin(2 * np.pi * phase) + 10 * (phase > 0.6) + i,
            "steps": levels,
        }))
    source = root / "metrics.parquet"
    pd.concat(frames).to_parquet(source, index=False)
    report = importer.import_files([source], root / "ds")
    assert report.ok, report.lines()
    lines: list[str] = []
    result = train(root / "ds", root / "models", TINY, log=lines.append)
    return root / "ds", root / "models", result.model_id, lines


def test_training_hands_the_network_the_day_old_value(served_model) -> None:
    dataset, models, model_id, _ = served_model
    model = forecast.load_model(models, model_id)
    spec = model.spec
    assert spec.seasonal_lags == (DAY,) and spec.lag_inputs == ("value_lag_288",)
    assert "value_lag_288" in model.network.hparams.time_varying_reals_decoder
    # the fleet forecast's inputs are the training batches' inputs for the same window
    frame = store.read(dataset)
    prepared = layout.prepare(frame, spec)
    windows = WindowBatches(prepared, spec, datasets.reusable(model.dataset_parameters),
                            list(model.network.hparams.x_reals), list(model.network.hparams.x_categoricals), 8,
                            complete=False, shuffle=False)
    key = "host-1 | rhythm"
    s = list(windows.names).index(key)
    origin = 7 * DAY + 17  # array position of the first forecast step
    x_batch, _, _ = windows.window_inputs(np.array([[s, origin - spec.encoder_length]]))
    cut = windows.t0 + origin  # time_idx of the origin
    history = frame[(frame["server_name"] == "host-1")
                    & (layout.time_index(frame["timestamp"], spec.step) < cut)][["timestamp", "server_name",
                                                                                  "rhythm"]]
    rows = layout.to_series(history, ("rhythm",))
    encoder, _ = forecast.encoder_windows(rows, spec)
    from argus_core.model import inputs
    x_fleet, names, *_ = inputs.build(encoder, spec, model.dataset_parameters, list(model.network.hparams.x_reals),
                                      list(model.network.hparams.x_categoricals))
    assert names == [key]
    column = list(model.network.hparams.x_reals).index("value_lag_288")
    np.testing.assert_allclose(x_fleet["decoder_cont"][0, :, column], x_batch["decoder_cont"][0, :, column],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x_fleet["encoder_cont"], x_batch["encoder_cont"], rtol=1e-5, atol=1e-5)


def test_each_series_is_served_by_what_won_its_validation_window(served_model) -> None:
    _, models, model_id, lines = served_model
    model = forecast.load_model(models, model_id)
    table = model.serving
    assert table is not None and table.season == DAY and model.spec.fallback_season == DAY
    assert any(line.startswith("serving (chosen per series") for line in lines)
    assert set(table.series) == {f"host-{i} | {m}" for i in range(3) for m in ("rhythm", "steps")}
    for key, entry in table.series.items():
        scores = entry["scores"]
        assert set(scores) >= {"tft", "seasonal_naive", "naive", "blend 0.50"}
        assert entry["origins"] >= serving.MIN_ORIGINS  # 2.7 days of validation: 8 origins
        # another candidate serves only when it is the best and clears the margin against the TFT
        if entry["by"] != "tft":
            assert scores[entry["by"]] == min(scores.values()), key
            assert scores[entry["by"]] <= (1 - serving.MARGIN) * scores["tft"], key
    # a day that repeats exactly: seasonal naive makes no error there, a barely trained TFT does
    for i in range(3):
        assert table.series[f"host-{i} | rhythm"]["by"] == "seasonal_naive"
        assert table.series[f"host-{i} | steps"]["by"] != "seasonal_naive"
    assert model.training_info["serving"]["seasonal_naive"] == 3


def test_forecasts_and_backtests_use_what_serves(served_model) -> None:
    dataset, models, model_id, _ = served_model
    model = forecast.load_model(models, model_id)
    frame = store.read(dataset)
    result = forecast.forecast_fleet(model, frame)
    assert result.served_by["host-0 | rhythm"] == "seasonal_naive"
    # seasonal naive: the value one day before each forecast step
    mine = result.quantiles[(result.quantiles["server_name"] == "host-0") & (result.quantiles["metric"] == "rhythm")]
    day_before = frame.set_index("timestamp").loc[mine["timestamp"] - pd.Timedelta("1D")]
    day_before = day_before[day_before["server_name"] == "host-0"]["rhythm"].to_numpy()
    np.testing.assert_allclose(mine["q50"].to_numpy(), day_before, rtol=1e-5)
    assert (mine["q10"] <= mine["q50"]).all() and (mine["q50"] <= mine["q90"]).all()

    run = backtest.run(dataset, models, model_id, classical="none")
    assert run.summary["models"] == ["tft", "naive", "seasonal_naive", "served"]
    f = run.forecasts
    rhythm = f[(f["metric"] == "rhythm")]
    np.testing.assert_allclose(rhythm[rhythm["model"] == "served"]["q50"].to_numpy(),
                               rhythm[rhythm["model"] == "seasonal_naive"]["q50"].to_numpy(), rtol=1e-5)
    for key, entry in model.serving.series.items():
        if entry["by"] == "tft":
            server, metric = key.split(" | ")
            mine = f[(f["server_name"] == server) & (f["metric"] == metric)]
            np.testing.assert_allclose(mine[mine["model"] == "served"]["q50"].to_numpy(),
                                       mine[mine["model"] == "tft"]["q50"].to_numpy(), rtol=1e-6)
    served_rhythm = rhythm[rhythm["model"] == "served"]
    assert np.abs(served_rhythm["q50"] - served_rhythm["actual"]).max() < 1e-3  # the day repeats exactly


def test_a_model_without_a_serving_table_is_served_by_the_tft(served_model, tmp_path: Path) -> None:
    import shutil

    dataset, models, model_id, _ = served_model
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    (copy / model_id / serving.FILE).unlink()
    forecast.clear_caches()
    model = forecast.load_model(copy, model_id)
    assert model.serving is None
    result = forecast.forecast_fleet(model, store.read(dataset))
    assert result.served_by == {}


def test_your_own_data_in_one_command_chooses_its_recipe(tmp_path: Path, capsys, monkeypatch, open_page) -> None:
    """The README's "Your own data": import, train with no tuning flags (the recipe is chosen on
    validation), backtest, and the model quality page, on three real NAB files."""
    from argus_core.cli.main import main
    from argus_core.model import registry
    from argus_core.model import train as training

    root = Path(__file__).resolve().parents[1]
    dataset, models = tmp_path / "ds", tmp_path / "models"
    assert main(["import", str(root / "tests" / "data" / "nab"), "--mapping", str(root / "mappings" / "nab-aws.toml"),
                 "--dataset", str(dataset)]) == 0
    monkeypatch.setattr(training, "RECIPES", (  # the shipped recipes' shapes, at test size
        {"encoder_length": 48, "hidden_size": 8, "center": "mean"},
        {"encoder_length": 288, "hidden_size": 8, "center": "recent"}))
    assert main(["train", "--dataset", str(dataset), "--models", str(models), "--holdout", "0.3", "--epochs", "1",
                 "--batches-per-epoch", "2", "--batch-size", "16", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "recipe 1/2: encoder_length 48" in out and "recipe: chose" in out
    entries = registry.read(models)["models"]
    assert len(entries) == 1  # only the chosen recipe's model is registered; the others are gone
    assert not list((models / ".recipes").glob("*/tft-*"))
    model_id = next(iter(entries))
    info = forecast.load_model(models, model_id).training_info
    tried = info["recipe"]["candidates"]
    assert [t["encoder_length"] for t in tried] == [48, 288]
    # the second recipe replaces the first only with a validation MASE 5 % lower and a median series no worse
    first, second = tried
    best = second if training.replaces(second, first) else first
    assert second["validation_median"] is not None
    assert info["recipe"]["chosen"]["encoder_length"] == best["encoder_length"]
    assert forecast.load_model(models, model_id).spec.encoder_length == best["encoder_length"]

    assert main(["backtest", "--dataset", str(dataset), "--models", str(models), "--classical", "none"]) == 0
    assert "served" in capsys.readouterr().out
    at = open_page("model_quality", models, dataset)
    assert "What forecasts each series" in [s.value for s in at.subheader]
    assert "served" in at.dataframe[0].value.columns  # the board: one column per method
    # the page states the rule that chose (the margin was once said as 2 % while 5 % applied)
    assert any("Chosen per series" in c.value and f"at least {serving.MARGIN:.0%} lower" in c.value
               for c in at.caption)


@pytest.mark.parametrize("damage", ["{not json", '{"season": 288, "series": {"h | m": {"by": "oracle"}}}'])
def test_a_damaged_serving_table_is_refused_by_name(served_model, tmp_path: Path, damage: str) -> None:
    import shutil

    from argus_core.errors import ModelDirectoryError

    _, models, model_id, _ = served_model
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    (copy / model_id / serving.FILE).write_text(damage)
    forecast.clear_caches()
    with pytest.raises(ModelDirectoryError, match="serving.json is damaged"):
        forecast.load_model(copy, model_id)



def test_level_shift_windows_step_once_and_stay_to_the_end_of_the_horizon(served_model) -> None:
    dataset, models, model_id, _ = served_model
    model = forecast.load_model(models, model_id)
    spec = model.spec
    prepared = layout.prepare(store.read(dataset), spec)
    common = (prepared, spec, datasets.reusable(model.dataset_parameters), list(model.network.hparams.x_reals),
              list(model.network.hparams.x_categoricals), 8)
    plain = WindowBatches(*common, shuffle=False, seed=5)
    shifted = WindowBatches(*common, shuffle=False, seed=5, level_shifts=1.0)
    chosen = plain.windows[:: max(1, len(plain.windows) // 40)][:40]
    _, values_plain, scales = plain.window_inputs(chosen)
    _, values_shift, scales_shift = shifted.window_inputs(chosen)
    enc = spec.encoder_length
    change = values_shift[:, :, 0] * scales_shift[:, None] - values_plain[:, :, 0] * scales[:, None]  # raw units
    for row, window in zip(change, values_plain[:, :enc, 0] * scales[:, None], strict=True):
        moved = np.flatnonzero(np.abs(row) > 1e-3)
        assert len(moved), "every window steps at level_shifts=1"
        first = moved[0]
        assert enc // 2 <= first < enc  # in the encoder's second half
        np.testing.assert_allclose(row[first:], row[first], rtol=1e-4)  # and stays to the end of the horizon
        spread = max(float(np.std(window)), 1e-3)
        assert 3.0 * spread * 0.99 <= abs(row[first]) <= 10.0 * spread * 1.01
    # share 0 leaves every window as it is, and the order of windows does not depend on the share
    untouched = WindowBatches(*common, shuffle=False, seed=5, level_shifts=0.0)
    np.testing.assert_array_equal(untouched.window_inputs(chosen)[1], values_plain)
    np.testing.assert_array_equal(shifted.windows, plain.windows)


def test_level_shift_windows_gathered_on_a_device_step_as_on_the_host(served_model) -> None:
    # the GPU path (batches gathered on the device) is run here on the CPU device: same windows,
    # same seed, so the same steps in the same places
    dataset, models, model_id, _ = served_model
    model = forecast.load_model(models, model_id)
    spec = model.spec
    prepared = layout.prepare(store.read(dataset), spec)
    common = (prepared, spec, datasets.reusable(model.dataset_parameters), list(model.network.hparams.x_reals),
              list(model.network.hparams.x_categoricals), 8)
    host = WindowBatches(*common, shuffle=False, seed=5, level_shifts=0.5)
    device = WindowBatches(*common, shuffle=False, seed=5, level_shifts=0.5, device="cpu")
    plain = WindowBatches(*common, shuffle=False, seed=5, device="cpu")
    chosen = host.windows[:: max(1, len(host.windows) // 40)][:40]
    _, on_host, _ = host.window_inputs(chosen)
    _, on_device, _ = device.device_inputs(torch.as_tensor(chosen))
    _, unshifted, _ = plain.device_inputs(torch.as_tensor(chosen))
    np.testing.assert_allclose(on_device.numpy(), on_host, rtol=1e-4, atol=1e-4)
    moved = (np.abs(on_device.numpy() - unshifted.numpy())[:, :, 0] > 1e-4).any(axis=1)
    assert 0 < moved.sum() < len(chosen)  # about half of them at a share of 0.5


def test_level_shifts_outside_zero_to_one_are_refused() -> None:
    from argus_core.model.config import check

    for bad in (-0.1, 1.5, float("nan")):
        assert any("level_shifts" in p for p in check(replace(TINY, level_shifts=bad)))
    assert not check(replace(TINY, level_shifts=0.2))


def test_a_series_training_never_saw_is_served_by_its_targets_default() -> None:
    horizon, season = 4, 8
    tft = np.stack([np.full(horizon, 9.0), np.full(horizon, 10.0), np.full(horizon, 11.0)], axis=1)[None]  # (1, H, 3)
    day = np.arange(season, dtype=np.float64)
    history = np.concatenate([day, day, day[:5]])[None, :]  # two days and five steps, a repeating day
    known = {"old | cpu": {"by": "tft", "scores": {"tft": 1.0}, "seasonal_band": [0.0, 0.0], "naive_band": []}}
    table = serving.Serving(season, known, {}, {"cpu": "seasonal_naive"})
    out, by = serving.apply(table, tft.copy(), ["new | cpu"], history, "cpu")
    assert by == {"new | cpu": "seasonal_naive"}
    np.testing.assert_allclose(out[0, :, 1], (5 + np.arange(horizon)) % season)  # the same steps a day earlier
    # its band comes from its own history: a day that repeats exactly has no seasonal error
    np.testing.assert_allclose(out[0, :, 0], out[0, :, 2])
    # a newcomer with less than a day of real values: the TFT until "same time yesterday" exists
    young = np.concatenate([np.full(2 * season, np.nan), day[:5]])[None, :]
    out, by = serving.apply(table, tft.copy(), ["new | cpu"], young, "cpu")
    assert by == {"new | cpu": "tft"} and np.allclose(out, tft)
    # no default for the target (a model from before defaults): the TFT
    out, by = serving.apply(serving.Serving(season, known, {}), tft.copy(), ["new | cpu"], history, "cpu")
    assert by == {"new | cpu": "tft"} and np.allclose(out, tft)


def test_training_records_the_default_and_a_never_seen_dataset_is_served_by_it(served_model, tmp_path) -> None:
    from argus_core.views import quality

    dataset, models, model_id, _ = served_model
    model = forecast.load_model(models, model_id)
    default = model.serving.defaults["value"]
    assert default in serving.candidates()
    assert serving.load(models / model_id).defaults == model.serving.defaults  # kept in serving.json
    words = serving.candidates()[default].label
    assert words in quality.serving_defaults(models / model_id) or default == "tft"
    # the same servers under new names: no series of theirs is in the table
    frame = store.read(dataset)
    renamed = frame.assign(server_name=frame["server_name"].astype(str).str.replace("host-", "new-"))
    renamed[["timestamp", "server_name", "rhythm", "steps"]].to_parquet(tmp_path / "new.parquet", index=False)
    assert importer.import_files([tmp_path / "new.parquet"], tmp_path / "new").ok
    renamed = store.read(tmp_path / "new")
    run = backtest.run(tmp_path / "new", models, model_id, classical="none")
    # the model's own hold-out names other series: a dataset it never saw is scored on its last 30%
    assert "never trained on" in run.summary["evaluation"]
    f = run.forecasts
    served = f[f["model"] == "served"].reset_index(drop=True)
    reference = f[f["model"] == ("tft" if default == "tft" else default)].reset_index(drop=True)
    if default in ("tft", "seasonal_naive", "naive"):
        np.testing.assert_allclose(served["q50"].to_numpy(), reference["q50"].to_numpy(), rtol=1e-5)
    result = forecast.forecast_fleet(model, renamed)
    assert set(result.served_by.values()) <= {default}
    assert bool(result.served_by) == (default != "tft")


def test_a_near_constant_series_cannot_choose_the_recipe():
    """Two recipes over the same three series: recipe B is worse on the two that move and wins only
    on a near-constant one (a near-zero in-sample scale makes its MASE tiny). The geometric mean
    alone picks B; with the median guard recipe A stays."""
    from argus_core.model import train as training

    def recipe(errors: list[float]) -> dict:
        series = {f"s{i} | m": {"by": serving.TFT, "scale": scale, "scores": {serving.TFT: e}}
                  for i, (e, scale) in enumerate(zip(errors, (1.0, 1.0, 1e-6), strict=True))}
        table = serving.Serving(288, series)
        return {"validation_mase": table.validation_mase(), "validation_median": table.validation_median()}

    a = recipe([0.6, 0.6, 1e-6])  # ratio 1 on the flat series
    b = recipe([0.75, 0.75, 1e-9])  # ratio 0.001 there: the geometric mean drops below A's
    assert b["validation_mase"] <= (1 - training.RECIPE_MARGIN) * a["validation_mase"]
    assert not training.replaces(b, a)
    c = recipe([0.5, 0.5, 1e-6])  # better where the series move: it replaces A
    assert training.replaces(c, a)
