"""The running scorer the live service keeps between cycles: fed a fleet in uneven pieces, primed
from a stored baseline, or handed a late row, it says what scoring everything from scratch says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argus_core.anomaly import detector as anomaly
from argus_core.anomaly.running import RunningScorer
from argus_core.data import schema, store


@pytest.fixture(scope="module")
def fleet(small_sim):
    """small_sim's fleet with gaps: missing values, a server that reports only its CPU, and a
    server that stops for two hours; the detector fitted on its first four days."""
    frame = small_sim.frame.copy()
    rng = np.random.default_rng(3)
    frame.loc[rng.random(len(frame)) < 0.02, "mem_used_pct"] = np.nan
    names = sorted(frame[schema.SERVER].astype(str).unique())
    only_cpu = (frame[schema.SERVER] == names[0]).to_numpy()
    for metric in schema.METRIC_COLUMNS:
        if metric not in ("cpu_idle_pct", "cpu_user_pct", "cpu_sys_pct"):
            frame.loc[only_cpu, metric] = np.nan
    pause = (frame[schema.SERVER] == names[1]) & frame[schema.TIMESTAMP].between(
        pd.Timestamp("2026-01-10T03:00Z"), pd.Timestamp("2026-01-10T05:00Z"))
    frame = frame[~pause.to_numpy()].reset_index(drop=True)
    metrics = anomaly.dataset_metrics({"metrics": list(schema.METRIC_COLUMNS)})
    windows = pd.DataFrame({"server_name": small_sim.incidents["server_name"],
                            "start": small_sim.incidents["precursor_start"], "end": small_sim.incidents["end_time"]})
    model = anomaly.fit(frame[frame[schema.TIMESTAMP] < pd.Timestamp("2026-01-09T00:00Z")], metrics, windows=windows)
    return frame, model


def assert_same(running: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = running.set_index(schema.SERVER).loc[expected.index]
    np.testing.assert_allclose(got["deviation"], expected["deviation"], rtol=0, atol=1e-6)
    assert got["abnormal"].tolist() == expected["abnormal"].tolist()
    assert got["drivers"].tolist() == expected["drivers"].tolist()
    for column in ("abnormal_since", schema.TIMESTAMP):
        pd.testing.assert_series_equal(got[column].astype("datetime64[ns, UTC]"),
                                       expected[column].astype("datetime64[ns, UTC]"))


def test_fed_in_uneven_pieces_it_says_what_scoring_everything_says(fleet):
    frame, model = fleet
    scored = anomaly.score(model, frame)
    stamps = np.sort(frame[schema.TIMESTAMP].unique())
    scorer = RunningScorer(model)
    cuts = [0, 1, 40, 41, 300, 1100, 1101, 1500, 1501, len(stamps)]  # a step, a day, a few hours
    abnormal_seen = 0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        piece = frame[frame[schema.TIMESTAMP].isin(stamps[a:b])]
        assert scorer.update(piece) == len(piece)
        assert scorer.update(piece) == 0  # rows already taken in are skipped
        expected = anomaly.summarise(scored[scored[schema.TIMESTAMP] <= stamps[b - 1]]).set_index(schema.SERVER)
        assert_same(scorer.summary(), expected)
        abnormal_seen += int(expected["abnormal"].sum())
    assert abnormal_seen > 0  # the comparison covered abnormal servers, not only quiet ones


def test_primed_from_a_stored_baseline_it_scores_from_the_window_as_the_pages_do(fleet, tmp_path):
    frame, model = fleet
    dataset = tmp_path / "fleet"
    store.write_dataset(dataset, frame, kind="simulated", step="5min")
    since = pd.Timestamp("2026-01-10T12:00Z")
    window = store.read(dataset, start=since)
    scorer = RunningScorer(model)
    expected = anomaly.summarise(anomaly.score(model, store.read(dataset), since)).set_index(schema.SERVER)
    assert_same(scorer.follow(window, dataset), expected)
    # the next step arrives, and one server's row two hours back, stored late: that server is fed again
    later = frame[frame[schema.TIMESTAMP] > window[schema.TIMESTAMP].max()]
    step = later[later[schema.TIMESTAMP] == later[schema.TIMESTAMP].min()]
    held_back = frame.iloc[[0]].copy()
    late_server = str(held_back[schema.SERVER].iloc[0])
    stored = store.read(dataset)
    late_at = pd.Timestamp("2026-01-11T10:00Z")
    late_row = stored[(stored[schema.SERVER].astype(str) == late_server) & (stored[schema.TIMESTAMP] == late_at)]
    without = stored.drop(late_row.index)
    gap = tmp_path / "gap"
    store.write_dataset(gap, without, kind="simulated", step="5min")
    scorer = RunningScorer(model)
    scorer.follow(store.read(gap, start=since), gap)
    both = tmp_path / "both"
    store.write_dataset(both, pd.concat([stored, step], ignore_index=True), kind="simulated", step="5min")
    window = store.read(both, start=since)
    assert scorer.stale_servers(window) == [late_server]
    expected = anomaly.summarise(anomaly.score(model, store.read(both), since)).set_index(schema.SERVER)
    assert_same(scorer.follow(window, both), expected)
