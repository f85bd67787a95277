from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argus_core.data import schema
from argus_core.errors import SchemaError


def kinds(problems: list[schema.Problem]) -> set[tuple[str, str | None]]:
    return {(p.kind, p.column) for p in problems}


def test_valid_frame_becomes_canonical(valid_frame: pd.DataFrame) -> None:
    shuffled = valid_frame.sample(frac=1.0, random_state=0).sort_values("timestamp", kind="stable")
    out = schema.validate(shuffled)
    assert list(out.columns) == list(schema.COLUMNS)
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["back_close_wait"].dtype == np.int32
    assert set(out["profile"].astype(str)) <= set(schema.PROFILE_NAMES)
    # canonical order: server, then time
    assert out[["server_name", "timestamp"]].astype({"server_name": str}).equals(
        out[["server_name", "timestamp"]].astype({"server_name": str}).sort_values(["server_name", "timestamp"])
    )


def test_text_timestamps_and_naive_times_are_utc(valid_frame: pd.DataFrame) -> None:
    text = valid_frame.assign(timestamp=valid_frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    naive = valid_frame.assign(timestamp=valid_frame["timestamp"].dt.tz_convert(None))
    assert schema.validate(text)["timestamp"].equals(schema.validate(valid_frame)["timestamp"])
    assert schema.validate(naive)["timestamp"].equals(schema.validate(valid_frame)["timestamp"])


def test_every_problem_is_reported_at_once(valid_frame: pd.DataFrame) -> None:
    bad = valid_frame.copy()
    bad["mem_used_pct"] = bad["mem_used_pct"].astype("float64")
    bad.loc[3, "mem_used_pct"] = 140.0
    bad.loc[4, "swap_used_pct"] = np.nan
    bad.loc[5, "net_in_mb_s"] = np.inf
    bad["back_close_wait"] = bad["back_close_wait"].astype("int64")
    bad.loc[6, "back_close_wait"] = -3
    bad.loc[7, "status"] = "on_fire"
    bad = bad.drop(columns=["uptime_days"])
    with pytest.raises(SchemaError) as info:
        schema.validate(bad, source="bad.csv")
    found = kinds(info.value.problems)
    assert {
        ("percent outside 0..100", "mem_used_pct"),
        ("NaN", "swap_used_pct"),
        ("inf", "net_in_mb_s"),
        ("negative count", "back_close_wait"),
        ("unknown status", "status"),
        ("missing column", "uptime_days"),
    } <= found
    message = str(info.value)
    assert "bad.csv" in message and "on_fire" in message and "row 8" in message


def test_order_problems(valid_frame: pd.DataFrame) -> None:
    dup = pd.concat([valid_frame, valid_frame.iloc[[10]]], ignore_index=True)
    _, problems = schema.check(dup)
    assert ("duplicate (server_name, timestamp)", None) in kinds(problems)

    order = list(range(len(valid_frame)))
    order[20], order[21] = order[21], order[20]
    swapped = valid_frame.iloc[order].reset_index(drop=True)
    _, problems = schema.check(swapped)
    assert ("unsorted time", "timestamp") in kinds(problems)

    shifted = valid_frame.copy()
    shifted.loc[30, "timestamp"] = shifted.loc[30, "timestamp"] + pd.Timedelta("2min")
    _, problems = schema.check(shifted)
    assert ("irregular time", "timestamp") in kinds(problems)


def test_gaps_are_kept_and_reported(valid_frame: pd.DataFrame) -> None:
    holed = valid_frame.drop(index=range(40, 46)).reset_index(drop=True)
    out = schema.validate(holed)
    assert len(out) == len(valid_frame) - 6  # nothing invented
    gaps = schema.find_gaps(out)
    assert len(gaps) == 1 and gaps["missing_steps"].iloc[0] == 6
    assert gaps["gap_start"].iloc[0] == valid_frame.loc[40, "timestamp"]


def test_wrong_types_in_text_columns(valid_frame: pd.DataFrame) -> None:
    text = valid_frame.astype({"cpu_user_pct": object, "back_close_wait": "float64"})
    text.loc[2, "cpu_user_pct"] = "lots"
    text.loc[3, "back_close_wait"] = 2.5
    text["timestamp"] = text["timestamp"].astype(str)
    text.loc[4, "timestamp"] = "yesterday-ish"
    _, problems = schema.check(text)
    assert {("wrong type", "cpu_user_pct"), ("wrong type", "back_close_wait"), ("wrong type", "timestamp")} <= kinds(
        problems
    )


def test_profile_is_inferred_or_checked(valid_frame: pd.DataFrame) -> None:
    inferred = schema.validate(valid_frame)
    names = inferred["server_name"].astype(str)
    assert (inferred["profile"].astype(str) == [schema.infer_profiles([n])[0] for n in names]).all()
    wrong = valid_frame.assign(profile="MAINFRAME")
    _, problems = schema.check(wrong)
    assert ("unknown profile", "profile") in kinds(problems)


def test_empty_frame() -> None:
    _, problems = schema.check(pd.DataFrame(columns=list(schema.COLUMNS)))
    assert [p.kind for p in problems] == ["empty"]


@pytest.mark.parametrize("span, words", [("10min", "10 min"), ("8h", "8 h"), ("90min", "1 h 30 min"),
                                         ("1D", "1 day"), ("52h", "2 days 4 h"), ("30s", "30 s")])
def test_durations_read_as_a_person_reads_them(span, words):
    """Never "next 0.166667 h" or "(1 days 00:00:00)" on a page or in a message."""
    assert schema.span_words(pd.Timedelta(span)) == words
