"""Abnormal now at the data's own cadence: a fleet sampled every minute, with hand-made anomalies
whose start and end are known. The detector's windows are times (the recent mean over half an
hour, abnormal after 15 minutes over its threshold or at once over the persistent one, normal
after 30 minutes under it), so one-minute data is judged as five-minute data is; the running
scorer says what scoring from scratch says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argus_core.anomaly import detector as anomaly
from argus_core.anomaly.running import RunningScorer
from argus_core.data import schema

START = pd.Timestamp("2026-02-02", tz="UTC")
DAYS = 3
METRICS = ["cpu_user_pct", "mem_used_pct", "load_average"]
# (server, start, minutes, metric, jump): known anomalies of the third day
ANOMALIES = [("m-1", START + pd.Timedelta("2 days 03:10:00"), 8, "mem_used_pct", 30.0),
             ("m-2", START + pd.Timedelta("2 days 14:00:00"), 20, "load_average", 12.0),
             ("m-3", START + pd.Timedelta("2 days 09:30:00"), 12, "cpu_user_pct", 45.0)]


@pytest.fixture(scope="module")
def minute_fleet():
    rng = np.random.default_rng(11)
    stamps = pd.date_range(START, periods=DAYS * 1440, freq="1min")
    hours = (stamps.hour + stamps.minute / 60).to_numpy()
    pieces = []
    for i, server in enumerate(["m-0", "m-1", "m-2", "m-3"]):
        daily = np.sin(2 * np.pi * hours / 24)
        frame = pd.DataFrame({schema.TIMESTAMP: stamps, schema.SERVER: server, schema.PROFILE: "GENERIC",
                              "cpu_user_pct": 30 + 10 * daily + rng.normal(0, 2, len(stamps)),
                              "mem_used_pct": 50 + 2 * i + rng.normal(0, 1, len(stamps)),
                              "load_average": 4 + 2 * daily + rng.normal(0, 0.4, len(stamps))})
        pieces.append(frame)
    frame = pd.concat(pieces, ignore_index=True)
    for server, start, minutes, metric, jump in ANOMALIES:
        inside = (frame[schema.SERVER] == server) & frame[schema.TIMESTAMP].between(
            start, start + pd.Timedelta(minutes=minutes - 1))
        frame.loc[inside, metric] += jump
    frame[METRICS] = frame[METRICS].astype(np.float32)  # as the store holds metrics
    split = START + pd.Timedelta("2D")
    model = anomaly.fit(frame[frame[schema.TIMESTAMP] < split], METRICS, step="1min")
    return frame, model, split


def test_the_detector_keeps_its_windows_in_time_at_one_minute(minute_fleet):
    _, model, _ = minute_fleet
    assert model.step == "1min" and model.baseline_steps == 1440  # a day (the fit holds two)
    assert model.recent_steps == 30  # half an hour, as 6 steps are at 5 minutes
    assert (model.settings.fast_steps, model.settings.clear_steps) == (15, 30)
    assert anomaly.settings_at(anomaly.AnomalySettings(), "5min").fast_steps == 3


def test_hand_made_anomalies_at_one_minute_are_found_from_their_start_and_nothing_else(minute_fleet, tmp_path):
    frame, model, split = minute_fleet
    scored = anomaly.score(model, frame, since=split)
    for server, start, minutes, _, _ in ANOMALIES:
        mine = scored[scored[schema.SERVER] == server]
        inside = mine[mine[schema.TIMESTAMP].between(start, start + pd.Timedelta(minutes=minutes - 1))]
        assert inside["abnormal"].any(), f"{server}: the anomaly at {start:%H:%M} was not found"
        first = inside.loc[inside["abnormal"], schema.TIMESTAMP].min()
        assert first - start <= pd.Timedelta("3min"), f"{server}: found {first - start} after its start"
        assert not mine[mine[schema.TIMESTAMP] < start]["abnormal"].any()  # nothing before it
    calm = scored[scored[schema.SERVER] == "m-0"]
    assert not calm["abnormal"].any()  # the server with no anomaly is never flagged
    model.save(tmp_path)
    assert anomaly.AnomalyModel.load(tmp_path).recent_steps == 30  # kept in its plain JSON


def test_the_running_scorer_at_one_minute_says_what_scoring_from_scratch_says(minute_fleet):
    frame, model, split = minute_fleet
    part = frame[frame[schema.TIMESTAMP] >= split - pd.Timedelta("1 days 01:00:00")].reset_index(drop=True)
    scored = anomaly.score(model, part)
    stamps = np.sort(part[schema.TIMESTAMP].unique())
    scorer = RunningScorer(model)
    cuts = [0, 1500, 1501, 1530, 2100, 2300, len(stamps)]  # a day and more, then a minute, half an hour, ...
    abnormal_seen = 0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        scorer.update(part[part[schema.TIMESTAMP].isin(stamps[a:b])])
        expected = anomaly.summarise(scored[scored[schema.TIMESTAMP] <= stamps[b - 1]]).set_index(schema.SERVER)
        got = scorer.summary().set_index(schema.SERVER).loc[expected.index]
        np.testing.assert_allclose(got["deviation"], expected["deviation"], rtol=0, atol=1e-6)
        assert got["abnormal"].tolist() == expected["abnormal"].tolist()
        abnormal_seen += int(expected["abnormal"].sum())
    assert abnormal_seen > 0
