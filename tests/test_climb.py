"""The climb rule: a forecast continuous with the present during a climb the network does not
follow, on hand-made series whose right answer is known, and left alone everywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from argus_core.model import climb

H = 96


def tft_paths(level: float, width: float = 60.0, series: int = 1) -> np.ndarray:
    """A TFT that forecasts the usual level: p50 flat at ``level``, p10/p90 at -/+ width/2."""
    path = np.stack([np.full(H, level - width / 2), np.full(H, level), np.full(H, level + width / 2)], axis=-1)
    return np.repeat(path[None], series, axis=0)


def test_a_climb_above_anything_before_is_served_from_where_the_series_is():
    rng = np.random.default_rng(0)
    calm = 100 + rng.normal(0, 3, 276)  # 23 h around 100
    rising = 150 + 12.0 * np.arange(12) + rng.normal(0, 2, 12)  # the last hour: 12 a step
    history = np.concatenate([calm, rising])[None]
    out, served = climb.apply(tft_paths(100.0), history)
    assert served.tolist() == [True]
    slope, line_now, _, _ = climb.recent_lines(history, 12)
    assert slope[0] == pytest.approx(12.0, abs=1.0)
    # continuous with the present: the first step is one damped step above the line's value now
    assert out[0, 0, 1] == pytest.approx(line_now[0] + slope[0] * climb.DEFAULT.damping)
    assert abs(out[0, 0, 1] - history[0, -1]) < 3 * 12.0
    assert (np.diff(out[0, :, 1]) > 0).all() and (out[0, :, 0] <= out[0, :, 1]).all()
    assert (out[0, :, 1] <= out[0, :, 2]).all()
    # the damped trend levels off: it never climbs past line_now + slope * damping / (1 - damping)
    d = climb.DEFAULT.damping
    assert out[0, -1, 1] < line_now[0] + slope[0] * d / (1 - d)


@pytest.mark.parametrize("case", ["flat", "rhythm_seen_yesterday", "tft_follows", "falling", "level_step"])
def test_everything_else_is_left_as_the_network_forecast_it(case):
    rng = np.random.default_rng(1)
    steps = np.arange(288)
    if case == "flat":
        history, tft = 100 + rng.normal(0, 3, 288), tft_paths(100.0)
    elif case == "rhythm_seen_yesterday":  # a daily ramp: yesterday it reached the same level
        day = 50 + 40 * np.clip(np.sin(2 * np.pi * (steps % 288) / 288 - np.pi / 2), 0, None)
        history = np.concatenate([day, day])[-288 - 60:-60] + rng.normal(0, 1, 288)
        tft = tft_paths(50.0)
    elif case == "tft_follows":  # a climb the network follows: no gap between it and the present
        history = np.concatenate([100 + rng.normal(0, 3, 276), 150 + 12.0 * np.arange(12)])
        tft = tft_paths(history[-1] + 12)
    elif case == "falling":
        history, tft = np.concatenate([100 + rng.normal(0, 3, 276), 100 - 5.0 * np.arange(12)]), tft_paths(100.0)
    else:  # a level that jumped half an hour ago and stays: a record, but no climb to extend
        history = np.concatenate([100 + rng.normal(0, 1, 282), 200 + rng.normal(0, 1, 6)])
        tft = tft_paths(100.0)
        assert climb.step_fits_better(history[None], 12).tolist() == [True]
    out, served = climb.apply(tft, history[None])
    assert served.tolist() == [False]
    np.testing.assert_array_equal(out, tft)


def test_missing_steps_and_too_short_a_history_serve_nothing():
    history = np.full((2, 288), np.nan)
    history[1, -3:] = [1.0, 2.0, 3.0]  # three real steps of the hour: fewer than half
    out, served = climb.apply(tft_paths(0.0, series=2), history)
    assert not served.any() and np.isfinite(out).all()


def test_the_rule_follows_the_models_step():
    assert climb.for_step("5min").window_steps == 12
    assert climb.for_step("15min").window_steps == 6
    assert climb.for_step("1min").window_steps == 60


def test_a_network_that_jumps_far_above_the_present_is_served_from_where_the_series_is_too():
    """Inside a climb the network may also leap up at "now" (the Incident demo's leak at 87%: its
    first step 96, its band 72-125): a forecast that disagrees with the present either way is
    replaced by the climb, which starts at the line's value now."""
    rng = np.random.default_rng(2)
    history = np.concatenate([60 + rng.normal(0, 1, 276), 80 + 0.5 * np.arange(12) + rng.normal(0, 0.05, 12)])[None]
    out, served = climb.apply(tft_paths(history[0, -1] + 9, width=50), history)
    assert served.tolist() == [True]
    assert abs(out[0, 0, 1] - history[0, -1]) < 1.0
    below_only = climb.ClimbRule(both_sides=False)
    assert climb.apply(tft_paths(history[0, -1] + 9, width=50), history, below_only)[1].tolist() == [False]
