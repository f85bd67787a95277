"""Training paths with a tiny TFT (hidden size 8, a handful of batches), model directories,
the registry and fleet forecasts."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema, store
from argus_core.errors import ArgusError, ModelNotFound
from argus_core.model import artifacts, datasets, forecast, layout, registry
from argus_core.model.spec import spec_for, with_spreads
from argus_core.model.train import TrainConfig, train
from tests import support

DEMO = Path(__file__).resolve().parents[1] / "demo_data" / "incident"
TINY = replace(support.TINY, encoder_length=96, horizon=24, fresh=True, seed=1, seasonal_inputs="none")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    root = tmp_path_factory.mktemp("models")
    lines: list[str] = []
    result = train(DEMO, root, TINY, log=lines.append)
    return root, result.model_id, lines


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return store.read(DEMO, start="2026-03-11T00:00Z", end="2026-03-11T14:00Z")


def test_training_writes_a_complete_model_and_crowns_the_first(trained: tuple[Path, str, list[str]]) -> None:
    root, model_id, lines = trained
    # the model's files, the abnormal-now detector fitted beside it (model.anomaly) and what serves each series
    files = sorted(p.name for p in (root / model_id).iterdir())
    assert files == sorted([*artifacts.FILES, "anomaly.json", "serving.json"])
    assert registry.champion_model_id(root) == model_id
    assert any(line.startswith("epoch   1/1") and "BEST" in line and "ETA" in line for line in lines)
    info = (root / model_id / "training_info.json").read_text()
    assert "data_fingerprint" in info and "pytorch_forecasting" in info
    assert not (root / ".checkpoints").exists() or not any((root / ".checkpoints").iterdir())


def test_forecast_covers_every_server_metric_and_step(trained: tuple[Path, str, list[str]],
                                                      history: pd.DataFrame) -> None:
    root, model_id, _ = trained
    model = forecast.load_model(root)
    result = forecast.forecast_fleet(model, history)
    q = result.quantiles
    assert set(q[schema.SERVER]) == set(history[schema.SERVER].astype(str))
    assert set(q["metric"]) == set(model.spec.targets)
    assert q.groupby([schema.SERVER, "metric"]).size().eq(TINY.horizon).all()
    assert (q["q10"] <= q["q50"]).all() and (q["q50"] <= q["q90"]).all()
    assert q[schema.TIMESTAMP].min() == history[schema.TIMESTAMP].max() + pd.Timedelta("5min")
    assert np.isfinite(q[list(schema.QUANTILE_COLUMNS)].to_numpy()).all()
    top = result.importance.groupby(schema.SERVER).head(1)
    assert len(top) == q[schema.SERVER].nunique() and (result.importance["importance"] >= 0).all()


def test_loading_never_unpickles(trained: tuple[Path, str, list[str]], history: pd.DataFrame,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    root, model_id, _ = trained
    expected = forecast.forecast_fleet(artifacts.load(root / model_id), history).quantiles

    def refuse(*args, **kwargs):
        raise AssertionError("a model directory was unpickled")

    for target, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(target, name, refuse)
    loaded = artifacts.load(root / model_id)
    again = forecast.forecast_fleet(loaded, history).quantiles
    pd.testing.assert_frame_equal(again, expected)


def test_never_seen_servers_are_forecast_from_their_profile(trained: tuple[Path, str, list[str]],
                                                            history: pd.DataFrame) -> None:
    from dataclasses import replace

    root, _, _ = trained
    # the network alone: the serving table may give a known series a simple method (chosen on its
    # validation window) that a never-seen server, not in the table, does not get
    model = replace(forecast.load_model(root), serving=None)
    one = history[history[schema.SERVER] == "ppdb001"].copy()
    renamed = one.assign(**{schema.SERVER: "ppdb777"})
    mystery = one.assign(**{schema.SERVER: "mystery01", schema.PROFILE: "MAINFRAME"})
    frame = pd.concat([one, renamed], ignore_index=True)
    result = forecast.forecast_fleet(model, frame).quantiles
    original = result[result[schema.SERVER] == "ppdb001"].reset_index(drop=True)
    new = result[result[schema.SERVER] == "ppdb777"].reset_index(drop=True)
    # same history, same profile -> same forecast: the name is not an input, the scale is global
    np.testing.assert_allclose(new[list(schema.QUANTILE_COLUMNS)], original[list(schema.QUANTILE_COLUMNS)],
                               rtol=1e-4, atol=1e-3)
    unknown = forecast.forecast_fleet(model, mystery).quantiles
    assert unknown[schema.SERVER].unique().tolist() == ["mystery01"]
    assert layout.prepare(mystery, model.spec)[schema.PROFILE].unique().tolist() == ["GENERIC"]


def test_short_history_is_skipped_with_a_reason(trained: tuple[Path, str, list[str]],
                                                history: pd.DataFrame) -> None:
    root, _, _ = trained
    model = forecast.load_model(root)
    short = history[(history[schema.SERVER] != "ppweb001")
                    | (history[schema.TIMESTAMP] > history[schema.TIMESTAMP].max() - pd.Timedelta("2h"))]
    result = forecast.forecast_fleet(model, short)
    assert "ppweb001" in result.skipped and "ppweb001" not in set(result.quantiles[schema.SERVER])
    with pytest.raises(ArgusError, match="no data"):
        forecast.forecast_fleet(model, history, as_of="2020-01-01")


def test_forecast_cache_follows_the_data(trained: tuple[Path, str, list[str]], history: pd.DataFrame) -> None:
    root, _, _ = trained
    model = forecast.load_model(root)
    assert forecast.load_model(root) is model  # loaded once
    first = forecast.cached_forecast(model, history)
    assert forecast.cached_forecast(model, history) is first
    later = forecast.cached_forecast(model, history, as_of=history[schema.TIMESTAMP].max() - pd.Timedelta("1h"))
    assert later is not first and later.as_of < first.as_of


def test_broken_model_directories_give_clear_errors(trained: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    root, model_id, _ = trained
    with pytest.raises(ModelNotFound, match="no model"):
        artifacts.load(tmp_path / "nothing-here")
    cases = {}
    for case in ("missing", "corrupt", "version"):
        copy = tmp_path / case
        shutil.copytree(root / model_id, copy)
        cases[case] = copy
    (cases["missing"] / "dataset.json").unlink()
    weights = cases["corrupt"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    config = cases["version"] / "config.json"
    config.write_text(config.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(artifacts.ModelDirectoryError, match="incomplete: missing dataset.json"):
        artifacts.load(cases["missing"])
    with pytest.raises(artifacts.ModelDirectoryError, match="corrupt"):
        artifacts.load(cases["corrupt"])
    with pytest.raises(artifacts.ModelDirectoryError, match="format version 99"):
        artifacts.load(cases["version"])


def test_codec_refuses_classes_outside_the_allow_list() -> None:
    payload = {"__object__": "os.system", "state": {"__dict__": {}}}
    with pytest.raises(artifacts.ModelDirectoryError, match="not allowed"):
        artifacts.decode(payload)
    value = {"a": (1, 2.5, float("nan")), 3: np.arange(4, dtype=np.int16),
             "f": pd.DataFrame({"x": [1.0, 2.0]}, index=["p", "q"])}
    back = artifacts.decode(artifacts.encode(value))
    assert back["a"][:2] == (1, 2.5) and np.isnan(back["a"][2])
    assert back[3].dtype == np.int16 and back[3].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(back["f"], value["f"])


def test_incremental_training_continues_from_the_champion(trained: tuple[Path, str, list[str]],
                                                          tmp_path: Path) -> None:
    root, champion, _ = trained
    models = tmp_path / "models"
    shutil.copytree(root, models)
    lines: list[str] = []
    config = TrainConfig(**{**TINY.__dict__, "fresh": False, "streaming": True, "seed": 2})
    result = train(DEMO, models, config, log=lines.append)
    assert any(f"continuing from champion {champion}" in line for line in lines)
    assert registry.champion_model_id(models) == champion  # a candidate waits for promotion
    registry.promote(models, result.model_id)
    assert registry.champion_model_id(models) == result.model_id
    registry.rollback(models)
    assert registry.champion_model_id(models) == champion
    with pytest.raises(ModelNotFound):
        registry.promote(models, "tft-nope")


@pytest.mark.parametrize("center", ["mean", "last", "recent"])
def test_fast_inputs_match_the_stock_dataset_route(trained: tuple[Path, str, list[str]],
                                                   history: pd.DataFrame, center: str) -> None:
    root, _, _ = trained
    model = forecast.load_model(root)
    normalizers = datasets.target_normalizers(model.dataset_parameters)
    holed = history.drop(index=history.index[[50, 51, 52, 400]])  # gaps are filled for model input alike
    try:
        for normalizer in normalizers:  # where each window is centred (train --center)
            normalizer.center_on = center
        forecast.clear_caches()
        for frame in (history, holed):
            fast = forecast.forecast_fleet(model, frame, engine="fast")
            stock = forecast.forecast_fleet(model, frame, engine="stock")
            pd.testing.assert_frame_equal(fast.quantiles, stock.quantiles, rtol=1e-4, atol=1e-3)
            pd.testing.assert_frame_equal(fast.importance, stock.importance, rtol=1e-4, atol=1e-4)
    finally:
        for normalizer in normalizers:
            normalizer.center_on = "mean"
        forecast.clear_caches()


def test_training_with_another_centre_records_it_and_continuing_keeps_it(tmp_path: Path,
                                                                        history: pd.DataFrame) -> None:
    root = tmp_path / "models"
    first = train(DEMO, root, TrainConfig(**{**TINY.__dict__, "center": "recent"}), log=lambda line: None)
    model = artifacts.load(root / first.model_id)
    assert model.spec.center == "recent"
    assert {n.center_on for n in datasets.target_normalizers(model.dataset_parameters)} == {"recent"}
    assert not forecast.forecast_fleet(model, history).quantiles.empty
    again = train(DEMO, root, TrainConfig(**{**TINY.__dict__, "fresh": False}), log=lambda line: None)
    continued = artifacts.load(root / again.model_id)  # continued from the champion: its centre stays
    assert continued.spec.center == "recent"
    assert {n.center_on for n in datasets.target_normalizers(continued.dataset_parameters)} == {"recent"}


def test_window_centre_choices() -> None:
    import torch

    from argus_core.model.normalizers import RECENT_STEPS, FlooredEncoderNormalizer, window_center

    ramp = torch.arange(48, dtype=torch.float32)  # a climb: its mean lags far behind its last value
    expected = {"mean": 23.5, "last": 47.0, "recent": float(np.mean(np.arange(48 - RECENT_STEPS, 48)))}
    for center, value in expected.items():
        normalizer = FlooredEncoderNormalizer(min_scale=0.5, center_on=center).fit(ramp)
        assert float(normalizer.center_) == pytest.approx(value)
        assert float(normalizer.scale_) == pytest.approx(float(ramp.std()), rel=1e-5)  # the spread is the same
        assert float(window_center(ramp.numpy()[None, :], center)[0]) == pytest.approx(value)
    flat = FlooredEncoderNormalizer(min_scale=0.5, center_on="last").fit(torch.full((48,), 7.0))
    assert float(flat.scale_) == 0.5 and float(flat.center_) == 7.0  # the floor holds whatever the centre


def test_streaming_reads_a_few_days_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core.data.simulate import SimConfig, simulate_fleet

    sim = simulate_fleet(SimConfig(servers=6, hours=24 * 8, seed=4))
    dataset = tmp_path / "week"
    store.write_dataset(dataset, sim.frame, kind="simulated")
    spans: list[pd.Timedelta] = []
    real_read = store.read

    def recording_read(directory, start=None, end=None, *args, **kwargs):
        first = pd.Timestamp(start) if start is not None else sim.frame[schema.TIMESTAMP].min()
        last = pd.Timestamp(end) if end is not None else sim.frame[schema.TIMESTAMP].max()
        spans.append(last - first)
        return real_read(directory, start, end, *args, **kwargs)

    monkeypatch.setattr(store, "read", recording_read)
    config = TrainConfig(**{**TINY.__dict__, "streaming": True, "batches_per_epoch": 4})
    result = train(dataset, tmp_path / "models", config, log=lambda line: None)
    assert registry.champion_model_id(tmp_path / "models") == result.model_id
    assert spans and max(spans) <= pd.Timedelta("3D")  # never the whole 8 days at once


@pytest.fixture(scope="module")
def small_setup():
    """The demo data prepared for a 96/24-step spec, its stock training dataset and a tiny network."""
    from argus_core.model.train import TrainConfig as Config
    from argus_core.model.train import build_network

    frame = store.read(DEMO)
    from dataclasses import replace

    # per-target weights fixed over the training data ("global"), as the library's own loss has them
    spec = replace(spec_for(list(schema.METRIC_COLUMNS), encoder_length=96, horizon=24), loss_scale="global")
    prepared = layout.prepare(frame, spec)
    spec = with_spreads(spec, prepared)
    train_ds, _ = datasets.training_datasets(prepared, spec)
    network = build_network(train_ds.get_parameters(), spec, Config(hidden_size=8, attention_heads=1))
    return prepared, spec, train_ds, network


def test_training_windows_match_the_stock_dataset(small_setup) -> None:
    from argus_core.model.batches import WindowBatches

    prepared, spec, train_ds, network = small_setup
    parameters = train_ds.get_parameters()
    x, (y, _) = next(iter(train_ds.to_dataloader(train=False, batch_size=6, num_workers=0)))
    index = train_ds.x_to_index(x)
    windows = WindowBatches(prepared, spec, datasets.reusable(parameters), list(network.hparams.x_reals),
                            list(network.hparams.x_categoricals), batch_size=6)
    names = sorted(prepared[schema.SERVER].unique())
    chosen = np.stack([[names.index(s) for s in index[schema.SERVER]],
                       index[layout.TIME_IDX].to_numpy() - spec.encoder_length - windows.t0], axis=1)
    mine, (my_y, _) = windows.batch(chosen)
    for key in ("encoder_cont", "decoder_cont", "encoder_cat", "decoder_cat", "encoder_lengths", "decoder_lengths"):
        np.testing.assert_allclose(mine[key].numpy(), x[key].numpy(), rtol=1e-4, atol=1e-4, err_msg=key)
    for mine_scale, stock_scale in zip(mine["target_scale"], x["target_scale"], strict=True):
        np.testing.assert_allclose(mine_scale.numpy(), stock_scale.numpy(), rtol=1e-5)
    for mine_target, stock_target in zip(my_y, y, strict=True):
        np.testing.assert_allclose(mine_target.numpy(), stock_target.numpy(), rtol=1e-6)


def test_training_batches_oversample_incident_windows(small_setup) -> None:
    from argus_core.model.batches import WindowBatches

    prepared, spec, train_ds, network = small_setup
    parameters = datasets.reusable(train_ds.get_parameters())
    common = dict(spec=spec, parameters=parameters, x_reals=list(network.hparams.x_reals),
                  categoricals=list(network.hparams.x_categoricals), batch_size=32)
    incidents = store.read_incidents(DEMO)
    boosted = WindowBatches(prepared, incidents=incidents, incident_share=0.5, seed=3, **common)
    plain = WindowBatches(prepared, seed=3, **common)
    assert 0 < len(boosted.hot) < len(boosted.windows) / 10  # the leak is a small part of the data

    def share_from_incident_server(batches: WindowBatches) -> float:
        x, _ = next(iter(batches))
        server = sorted(prepared[schema.SERVER].unique()).index("ppdb001")
        return float((x["groups"][:, 0] == server).float().mean())

    assert share_from_incident_server(boosted) >= 0.5
    assert share_from_incident_server(plain) < 0.25


def test_faster_network_modules_match_the_library(trained: tuple[Path, str, list[str]],
                                                             history: pd.DataFrame) -> None:
    import torch

    from argus_core.model import inputs as forecast_inputs
    from argus_core.model.fast_tft import AccumulatingVariableSelection, fusable, stock

    root, _, _ = trained
    model = artifacts.load(root / registry.champion_model_id(root))
    network = model.network
    selections = [m for m in network.modules() if isinstance(m, AccumulatingVariableSelection)]
    assert len(selections) == 3  # static, encoder and decoder selection: all switched on load
    assert fusable(network.encoder_variable_selection) and fusable(network.decoder_variable_selection)
    keys = list(network.state_dict())
    encoder, _ = forecast.encoder_windows(history, model.spec)
    x, *_ = forecast_inputs.build(encoder, model.spec, model.dataset_parameters, list(network.hparams.x_reals),
                                  list(network.hparams.x_categoricals))
    with torch.inference_mode():
        fast = network(x)
        stock(network)
        library = network(x)
    assert list(network.state_dict()) == keys  # same weights under the same names
    for mine, theirs in zip(fast["prediction"], library["prediction"], strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast["encoder_variables"].numpy(), library["encoder_variables"].numpy(), atol=1e-5)
    for part in ("encoder_attention", "decoder_attention"):  # forecasts keep the attention weights ("why")
        np.testing.assert_allclose(fast[part].numpy(), library[part].numpy(), atol=1e-5)

    # training: the same gradients for every weight (dropout off, so both passes see the same network)
    from argus_core.model.fast_tft import speed_up
    network.train()
    rates = {m: m.p for m in network.modules() if isinstance(m, torch.nn.Dropout)}
    for module in rates:
        module.p = 0.0

    def gradients() -> dict[str, np.ndarray]:
        network.zero_grad()
        output = network(x)
        (sum(p.square().sum() for p in output["prediction"]) + output["encoder_variables"].sum()).backward()
        return {name: p.grad.numpy().copy() for name, p in network.named_parameters() if p.grad is not None}

    try:
        theirs = gradients()
        speed_up(network)
        mine = gradients()
    finally:
        for module, rate in rates.items():
            module.p = rate
        network.eval()
    assert mine.keys() == theirs.keys() and len(mine) > 50
    # a key bias adds the same q.b to every score of a query: softmax cancels it, so its gradient is
    # zero but for rounding, in either implementation
    mismatched = []
    for name in theirs:
        if ".k_layers." in name and name.endswith(".bias"):
            continue
        scale = max(float(np.abs(theirs[name]).max()), 1e-3)
        if not np.allclose(mine[name] / scale, theirs[name] / scale, atol=2e-4):
            mismatched.append((name, float(np.abs(mine[name] - theirs[name]).max()), scale))
    assert not mismatched


def test_lean_dropout_drops_p_of_the_values_and_keeps_the_mean() -> None:
    import torch

    from argus_core.model.fast_tft import LeanDropout, SplitGatedLinearUnit

    dropout = LeanDropout(0.1).train()
    torch.manual_seed(3)
    first = dropout(torch.ones(200_000))
    assert float((first == 0).float().mean()) == pytest.approx(0.1, abs=0.003)
    assert float(first.max()) == pytest.approx(1 / 0.9, rel=1e-4)  # kept values scaled by 1 / (1 - p)
    assert float(first.mean()) == pytest.approx(1.0, abs=0.01)
    torch.manual_seed(3)
    assert torch.equal(dropout(torch.ones(200_000)), first)  # seeded by torch's generator
    assert torch.equal(dropout.eval()(first), first)  # off outside training

    unit = SplitGatedLinearUnit(8, 4, dropout=0.1)  # the GLU takes the scale into its weight instead
    unit.dropout.__class__ = LeanDropout
    x = torch.randn(64, 8)
    torch.manual_seed(5)
    folded = unit(x)
    torch.manual_seed(5)
    keep, scale = unit.dropout.keep(x)
    reference = torch.nn.functional.glu(unit.fc(x * keep * scale), dim=-1)
    np.testing.assert_allclose(folded.detach().numpy(), reference.detach().numpy(), atol=1e-5)


def test_window_loss_scale_counts_every_window_in_its_own_spread(small_setup) -> None:
    import torch
    from pytorch_forecasting.metrics import QuantileLoss

    from argus_core.model.batches import WindowBatches
    from argus_core.model.losses import PerTargetWeights

    quantiles = [0.1, 0.5, 0.9]
    loss = PerTargetWeights([QuantileLoss(quantiles), QuantileLoss(quantiles)], weights=[1.0, 1.0])
    target = torch.zeros(2, 4)

    def both(miss: float, spread: float) -> tuple[float, float]:
        # window 0 misses by 1 spread of 1; window 1 misses by ``miss`` in a window of spread ``spread``
        prediction = torch.stack([torch.full((4, 3), 1.0), torch.full((4, 3), miss)])
        weights = [1.0 / torch.tensor([1.0, spread])] * 2
        per_window = float(loss([prediction] * 2, ([target] * 2, weights)))
        fixed = float(loss([prediction] * 2, ([target] * 2, None)))
        return per_window, fixed

    per_window_a, fixed_a = both(10.0, 10.0)
    per_window_b, fixed_b = both(40.0, 40.0)
    assert per_window_a == pytest.approx(per_window_b)  # one spread of error counts the same anywhere
    assert fixed_b > 3 * fixed_a  # in metric units the wide window's error dominates
    assert per_window_a == pytest.approx(both(1.0, 1.0)[0])

    # training batches carry those weights: 1 / the scale each window's normaliser used
    prepared, spec, train_ds, network = small_setup
    from dataclasses import replace
    windowed = replace(spec, loss_scale="window")
    batches = WindowBatches(prepared, windowed, datasets.reusable(train_ds.get_parameters()),
                            list(network.hparams.x_reals), list(network.hparams.x_categoricals), batch_size=8)
    x, (_, weight) = next(iter(batches))
    assert len(weight) == len(spec.targets)
    for scale, w in zip(x["target_scale"], weight, strict=True):
        np.testing.assert_allclose(w.numpy(), 1.0 / scale[:, 1].numpy(), rtol=1e-6)
    assert isinstance(datasets.quantile_loss(windowed, train_ds.get_parameters()), PerTargetWeights)
    _, (_, plain) = next(iter(WindowBatches(prepared, spec, datasets.reusable(train_ds.get_parameters()),
                                            list(network.hparams.x_reals), list(network.hparams.x_categoricals),
                                            batch_size=8)))
    assert plain is None  # a "global" spec keeps the fixed per-target weights


def test_interpolation_matrix_matches_torch_and_trains_after_a_forecast() -> None:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from argus_core.model import fast_tft as network

    network.clear_interpolation_cache()
    x = torch.randn(40, 16)
    with torch.inference_mode():  # the first use is often a forecast
        fast = x @ network.interpolation_matrix(16, 32, x.dtype, x.device)
    reference = F.interpolate(x.unsqueeze(1), 32, mode="linear", align_corners=True).squeeze(1)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), atol=1e-5)
    weights = torch.randn(40, 16, requires_grad=True)  # then training in the same process
    (weights @ network.interpolation_matrix(16, 32, x.dtype, x.device)).sum().backward()
    assert weights.grad is not None


def test_forecast_does_not_depend_on_the_server_column_type(trained: tuple[Path, str, list[str]],
                                                            history: pd.DataFrame) -> None:
    root, _, _ = trained
    model = forecast.load_model(root)
    plain = forecast.forecast_fleet(model, history.assign(server_name=history["server_name"].astype(str)))
    names = sorted(history["server_name"].astype(str).unique(), reverse=True) + ["never-reports"]
    categorical = history.assign(server_name=pd.Categorical(history["server_name"].astype(str), categories=names))
    pd.testing.assert_frame_equal(forecast.forecast_fleet(model, categorical).quantiles, plain.quantiles)
    assert plain.quantiles["server_name"].is_monotonic_increasing  # servers in name order


def test_too_little_history_is_said_in_words():
    """The message a young fleet gets names the history needed as a duration a person reads."""
    from argus_core.model import Forecaster

    root = Path(__file__).resolve().parents[1]
    model = Forecaster.champion(root / "models", None)
    frame = store.read(root / "demo_data" / "fleet")
    young = frame[frame[schema.TIMESTAMP] > frame[schema.TIMESTAMP].max() - pd.Timedelta("2h")]
    with pytest.raises(ArgusError) as caught:
        model.forecast(young)
    said = str(caught.value)
    assert "1 day of history the model needs (288 steps of 5min)" in said and "00:00:00" not in said
