"""The data contract (schema v1): column names, dtypes, ranges, status values, cadence.

Everything else imports names from here. ``validate(df)`` returns the frame in canonical form
(column order, dtypes, UTC timestamps, a ``profile`` for every row) or raises one
``SchemaError`` that lists every problem at once: kind, column, count and a few example rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from argus_core.data.profiles import PROFILE_NAMES, infer_profiles  # noqa: F401  (re-exported)
from argus_core.errors import SchemaError, SettingsError

SCHEMA_VERSION = 1
DEFAULT_STEP = "5min"
MIN_ROWS = 2  # a file of one row has no cadence: nothing to forecast from (both import paths)

TIMESTAMP = "timestamp"
SERVER = "server_name"
STATUS = "status"
PROFILE = "profile"

# Percentages of something, always within 0..100.
PERCENT_COLUMNS = (
    "cpu_user_pct",
    "cpu_sys_pct",
    "cpu_iowait_pct",
    "cpu_idle_pct",
    "java_cpu_pct",
    "mem_used_pct",
    "swap_used_pct",
    "disk_usage_pct",
)
# Non-negative real quantities.
RATE_COLUMNS = ("net_in_mb_s", "net_out_mb_s", "load_average", "uptime_days")
# Non-negative whole numbers (sockets stuck in CLOSE_WAIT on the back and front side).
COUNT_COLUMNS = ("back_close_wait", "front_close_wait")
COUNT_MAX = float(np.iinfo(np.int32).max)  # counts are stored as int32
FLOAT32_MAX = float(np.finfo(np.float32).max)

METRIC_COLUMNS = (
    "cpu_user_pct",
    "cpu_sys_pct",
    "cpu_iowait_pct",
    "cpu_idle_pct",
    "java_cpu_pct",
    "mem_used_pct",
    "swap_used_pct",
    "disk_usage_pct",
    "net_in_mb_s",
    "net_out_mb_s",
    "back_close_wait",
    "front_close_wait",
    "load_average",
    "uptime_days",
)
COLUMNS = (TIMESTAMP, SERVER, STATUS, *METRIC_COLUMNS, PROFILE)
REQUIRED_COLUMNS = COLUMNS[:-1]  # profile is inferred from the name when absent

METRIC_KINDS = ("percent", "rate", "count")
V1_KINDS: dict[str, str] = {
    **{c: "percent" for c in PERCENT_COLUMNS},
    **{c: "rate" for c in RATE_COLUMNS},
    **{c: "count" for c in COUNT_COLUMNS},
}

# Operational states, in the order the simulator ranks them (later wins when several apply).
STATUS_VALUES = (
    "healthy",
    "morning_spike",
    "heavy_load",
    "recovery",
    "critical",
    "maintenance",
    "offline",
)

# Derived metric: what forecasting and thresholds mean by "CPU".
CPU_BUSY = "cpu_busy_pct"

# Forecast quantiles and the column names every forecast frame uses.
QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_COLUMNS = ("q10", "q50", "q90")


@dataclass(frozen=True)
class Threshold:
    warning: float
    critical: float


# Default alert thresholds; risk scoring and incident ground truth both read these.
THRESHOLDS: dict[str, Threshold] = {
    CPU_BUSY: Threshold(85.0, 95.0),
    "mem_used_pct": Threshold(85.0, 95.0),
    "swap_used_pct": Threshold(25.0, 50.0),  # any real swapping hurts latency long before 100%
    "disk_usage_pct": Threshold(85.0, 95.0),
    "load_average": Threshold(30.0, 40.0),  # above the core count (16 to 32) processes queue
    "back_close_wait": Threshold(200.0, 500.0),
    "front_close_wait": Threshold(200.0, 500.0),
    "net_in_mb_s": Threshold(900.0, 1100.0),  # 10 GbE tops out near 1,250 MB/s
}

_EXAMPLES = 3


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one column, with how often it occurs and where."""

    kind: str
    column: str | None
    count: int
    examples: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        col = f" [{self.column}]" if self.column else ""
        text = f"{self.kind}{col}: {self.count} row(s)"
        if self.examples:
            text += "; e.g. " + "; ".join(self.examples)
        return text


def cpu_busy(idle: np.ndarray | pd.Series) -> np.ndarray:
    """CPU busy % from idle %: the one place the derived metric is defined."""
    return 100.0 - np.asarray(idle, dtype=np.float64)


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with ``cpu_busy_pct`` (``cpu_busy`` of idle) added."""
    out = df.copy()
    out[CPU_BUSY] = cpu_busy(out["cpu_idle_pct"]).astype("float32")
    return out


def metric_values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """``metric`` of each row as float64; CPU busy derived from idle when the frame lacks it; NaN
    when the frame has neither."""
    if metric in frame.columns:
        return frame[metric].to_numpy(np.float64)
    if metric == CPU_BUSY and "cpu_idle_pct" in frame.columns:
        return cpu_busy(frame["cpu_idle_pct"])
    return np.full(len(frame), np.nan)


def check(df: pd.DataFrame, step: str = DEFAULT_STEP,
          metrics: dict[str, str] | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Check ``df`` against the contract; return (canonical frame or None, problems).

    ``metrics`` (name -> kind: percent, rate or count) names another metric set than schema
    v1's, as imported real data brings: then ``status`` is optional and a missing value is a
    measurement the server does not have (kept as NaN), not an error."""
    problems: list[Problem] = []
    if len(df) == 0:
        return None, [Problem("empty", None, 0, ("the data has no rows",))]
    custom = metrics is not None and dict(metrics) != V1_KINDS
    kinds = dict(metrics) if custom else V1_KINDS
    required = (TIMESTAMP, SERVER, *kinds) if custom else REQUIRED_COLUMNS
    missing = [c for c in required if c not in df.columns]
    for col in missing:
        problems.append(Problem("missing column", col, len(df)))

    out = pd.DataFrame(index=df.index)
    bad_rows = np.zeros(len(df), dtype=bool)  # rows whose key is unusable for order checks

    if TIMESTAMP in df.columns:
        ts, ts_problems, ts_bad = _parse_timestamps(df)
        problems += ts_problems
        bad_rows |= ts_bad
        out[TIMESTAMP] = ts
    if SERVER in df.columns:
        names = _labels(df[SERVER], strip=True)
        empty = names.isna().to_numpy()
        if empty.any():
            problems.append(Problem("missing value", SERVER, int(empty.sum()), _examples(df, empty, SERVER)))
        bad_rows |= empty
        out[SERVER] = names
    if STATUS in df.columns:
        status = _labels(df[STATUS])
        unknown = ~status.isin(STATUS_VALUES).to_numpy()
        if unknown.any():
            problems.append(
                Problem(
                    "unknown status",
                    STATUS,
                    int(unknown.sum()),
                    _examples(df, unknown, STATUS, note=f"allowed: {', '.join(STATUS_VALUES)}"),
                )
            )
        out[STATUS] = status
    for col in kinds:
        if col in df.columns:
            values, col_problems = _check_numeric(df, col, kinds[col], allow_nan=custom)
            problems += col_problems
            out[col] = values

    if SERVER in out.columns:
        server_names = out[SERVER].cat.categories.to_numpy()
        inferred_per_name = dict(zip(server_names, infer_profiles(server_names), strict=True))
        inferred = out[SERVER].map(inferred_per_name)
        if PROFILE in df.columns:
            given = _labels(df[PROFILE])
            unknown = given.notna().to_numpy() & ~given.isin(PROFILE_NAMES).to_numpy()
            if unknown.any():
                problems.append(
                    Problem(
                        "unknown profile",
                        PROFILE,
                        int(unknown.sum()),
                        _examples(df, unknown, PROFILE, note=f"allowed: {', '.join(PROFILE_NAMES)}"),
                    )
                )
            if given.isna().any():
                given = given.astype(object).fillna(inferred.astype(object))
            out[PROFILE] = given
        else:
            out[PROFILE] = inferred

    if TIMESTAMP in out.columns and SERVER in out.columns:
        problems += _check_time_order(df, out, ~bad_rows, pd.Timedelta(step))

    if problems:
        return None, problems
    return _canonical(out, kinds if custom else None), []


def validate(df: pd.DataFrame, step: str = DEFAULT_STEP, source: str | None = None,
             metrics: dict[str, str] | None = None) -> pd.DataFrame:
    """Return ``df`` in canonical form, or raise ``SchemaError`` listing every problem."""
    canonical, problems = check(df, step, metrics)
    if problems:
        raise SchemaError(problems, source)
    assert canonical is not None
    return canonical


def _canonical(out: pd.DataFrame, custom: dict[str, str] | None = None) -> pd.DataFrame:
    codes = out[SERVER].cat.codes.to_numpy()
    stamps = out[TIMESTAMP].array.asi8
    in_order = np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (stamps[1:] > stamps[:-1])))
    if not in_order:
        out = out.sort_values([SERVER, TIMESTAMP], kind="stable")
    out = out.reset_index(drop=True)
    if custom is not None:  # imported metric sets: float32 throughout (NaN marks a metric not measured)
        for col in custom:
            out[col] = out[col].astype("float32")
        labels = [c for c in (SERVER, STATUS, PROFILE) if c in out.columns]
        for col in labels:
            out[col] = out[col].astype("category")
        return out[[TIMESTAMP, SERVER, *([STATUS] if STATUS in out.columns else []), *custom, PROFILE]]
    for col in PERCENT_COLUMNS + RATE_COLUMNS:
        out[col] = out[col].astype("float32")
    for col in COUNT_COLUMNS:
        out[col] = out[col].astype("int32")
    for col in (SERVER, STATUS, PROFILE):
        out[col] = out[col].astype("category")
    return out[list(COLUMNS)]


def _labels(raw: pd.Series, strip: bool = False) -> pd.Series:
    """Text labels as a categorical, working on distinct values only (fast on millions of rows).

    Blank labels become missing."""
    codes, uniques = pd.factorize(raw)
    text = pd.Index(uniques).astype(str)
    if strip:
        text = text.str.strip()
    text = np.asarray(text, dtype=object)
    usable = text != ""
    categories, inverse = np.unique(text[usable].astype(str), return_inverse=True)
    code_of_unique = np.full(len(text), -1, dtype=np.int64)
    code_of_unique[usable] = inverse
    new_codes = np.where(codes >= 0, code_of_unique[np.maximum(codes, 0)] if len(text) else -1, -1)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=categories), index=raw.index)


def duration_text(delta: pd.Timedelta) -> str:
    """A duration as ``parse_duration`` and ``--step`` read it: ``1h``, ``15min``, ``90s``."""
    seconds = int(pd.Timedelta(delta).total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min" if seconds and seconds % 60 == 0 else f"{seconds}s"


def span_words(span) -> str:
    """A duration as a person reads it: "10 min", "8 h", "1 h 30 min", "1 day", "2 days 4 h"
    (never "0.166667 h" or "1 days 00:00:00"); rounded to the minute."""
    minutes = int(round(pd.Timedelta(span).total_seconds() / 60))
    if minutes <= 0:
        seconds = int(round(pd.Timedelta(span).total_seconds()))
        return f"{max(seconds, 0)} s"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + ([f"{hours} h"] if hours else []) \
        + ([f"{mins} min"] if mins else [])
    return " ".join(parts)


def parse_duration(text: str, what: str = "duration", positive: bool = True) -> pd.Timedelta:
    """A positive duration with a unit (``5min``, ``30s``, ``24h``); SettingsError for a number
    without one (pandas would read ``5`` as five nanoseconds) or anything else."""
    raw = str(text).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]+", raw):
        raise SettingsError(f"{what} {raw!r} needs a number and a unit, such as 5min, 30s or 1h")
    try:
        value = pd.Timedelta(re.sub(r"(?<=[\d\s])d$", "D", raw))  # "30d": pandas deprecates the lower-case day
    except (OverflowError, pd.errors.OutOfBoundsTimedelta, pd.errors.OutOfBoundsDatetime) as exc:
        raise SettingsError(f"{what} {raw!r} is too long: at most {pd.Timedelta.max.days:,} days") from exc
    except ValueError as exc:
        raise SettingsError(f"{what} {raw!r} is not a duration (use e.g. 5min, 30s or 1h)") from exc
    if positive and value <= pd.Timedelta(0):
        raise SettingsError(f"{what} {raw!r} must be longer than zero")
    return value


def parse_step(text: str) -> pd.Timedelta:
    """A cadence (``parse_duration``) between a second and a day."""
    raw = str(text).strip()
    step = parse_duration(raw, "step", positive=False)  # the range below names the limits
    if not pd.Timedelta("1s") <= step <= pd.Timedelta("1D"):
        raise SettingsError(f"step {raw!r} must be between 1s and 1 day")
    return step


# Argus keeps times in nanoseconds: what pandas can hold that way (about 1677..2262)
_EARLIEST, _LATEST = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def parse_times(raw: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A time column as UTC nanosecond times, with the rules of the contract and of imports alike:
    naive times are UTC; text must be ISO 8601; a column must not mix times with and without a UTC
    offset. Returns (times, unreadable, mixed): ``unreadable`` marks non-empty values that are not
    times or lie outside 1677..2262 (NaT in ``times``), ``mixed`` the rows in the minority form."""
    none = np.zeros(len(raw), dtype=bool)
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed, text_given, mixed = raw.dt.tz_convert("UTC"), raw.notna().to_numpy(), none
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed, text_given, mixed = raw.dt.tz_localize("UTC"), raw.notna().to_numpy(), none
    else:
        text = raw.astype("string").str.strip()
        text_given = text.notna().to_numpy() & (text.str.len() > 0).fillna(False).to_numpy()
        zoned = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False).to_numpy()
        zoned_given, naive_given = zoned & text_given, ~zoned & text_given
        mixed = (naive_given if naive_given.sum() <= zoned_given.sum() else zoned_given) \
            if zoned_given.any() and naive_given.any() else none
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    in_range = (parsed >= _EARLIEST) & (parsed <= _LATEST)
    times = parsed.where(in_range).astype("datetime64[ns, UTC]")
    return times, text_given & times.isna().to_numpy(), mixed


def _parse_timestamps(df: pd.DataFrame) -> tuple[pd.Series, list[Problem], np.ndarray]:
    raw = df[TIMESTAMP]
    problems: list[Problem] = []
    ts, unparsed, mixed = parse_times(raw)
    if unparsed.any():
        problems.append(Problem("wrong type", TIMESTAMP, int(unparsed.sum()),
                                _examples(df, unparsed, TIMESTAMP, note="expected ISO 8601 times, 1677..2262")))
    if mixed.any():
        problems.append(Problem("mixed time zones", TIMESTAMP, int(mixed.sum()), _examples(
            df, mixed, TIMESTAMP, note="some times carry a UTC offset and some do not: give every time the same "
                                       "form (Argus reads times without an offset as UTC)")))
    missing = raw.isna().to_numpy()
    if missing.any():
        problems.append(Problem("missing value", TIMESTAMP, int(missing.sum()), _examples(df, missing, TIMESTAMP)))
    return ts, problems, ts.isna().to_numpy()


def _check_numeric(df: pd.DataFrame, col: str, kind: str,
                   allow_nan: bool = False) -> tuple[pd.Series, list[Problem]]:
    raw = df[col]
    problems: list[Problem] = []
    if pd.api.types.is_bool_dtype(raw.dtype) or not pd.api.types.is_numeric_dtype(raw.dtype):
        values = pd.to_numeric(raw.astype("string"), errors="coerce").astype("float64")
        not_numbers = values.isna().to_numpy() & raw.notna().to_numpy()
        # "nan"/"inf" spelled out in a text column are reported as NaN/inf below, not as text
        spelled = raw.astype("string").str.strip().str.lower().isin(["nan", "inf", "-inf", "infinity"])
        not_numbers &= ~spelled.fillna(False).to_numpy()
        chosen = spelled.fillna(False).to_numpy()
        values[chosen] = pd.to_numeric(raw[chosen].astype("string").str.strip().str.lower().replace(
            "infinity", "inf"), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if not_numbers.any():
            problems.append(
                Problem("wrong type", col, int(not_numbers.sum()), _examples(df, not_numbers, col, note="not a number"))
            )
    else:
        values = raw.astype("float64")
        not_numbers = np.zeros(len(df), dtype=bool)
    arr = values.to_numpy()
    nan = np.isnan(arr) & ~not_numbers
    if nan.any() and not allow_nan:
        problems.append(Problem("NaN", col, int(nan.sum()), _examples(df, nan, col)))
    inf = np.isinf(arr)
    if inf.any():
        problems.append(Problem("inf", col, int(inf.sum()), _examples(df, inf, col)))
    finite = np.isfinite(arr)
    if kind == "percent":
        out_of_range = finite & ((arr < 0) | (arr > 100))
        if out_of_range.any():
            problems.append(
                Problem("percent outside 0..100", col, int(out_of_range.sum()), _examples(df, out_of_range, col))
            )
    else:
        negative = finite & (arr < 0)
        if negative.any():
            problem = "negative count" if kind == "count" else "negative value"
            problems.append(Problem(problem, col, int(negative.sum()), _examples(df, negative, col)))
    # what storing keeps: counts as int32 (a larger one would wrap to a negative number in silence),
    # other metrics as float32 (a larger one would become inf)
    limit = COUNT_MAX if kind == "count" else FLOAT32_MAX
    too_large = finite & (np.abs(arr) > limit)
    if too_large.any():
        problems.append(Problem("too large", col, int(too_large.sum()),
                                _examples(df, too_large, col, note=f"at most {limit:,.0f} is stored")))
    if kind == "count":
        fractional = finite & (arr != np.round(arr))
        if fractional.any():
            problems.append(
                Problem("wrong type", col, int(fractional.sum()),
                        _examples(df, fractional, col, note="not a whole number"))
            )
    return values, problems


def _check_time_order(df: pd.DataFrame, out: pd.DataFrame, usable: np.ndarray, step: pd.Timedelta) -> list[Problem]:
    problems: list[Problem] = []
    keyed = pd.DataFrame({SERVER: out[SERVER], TIMESTAMP: out[TIMESTAMP]})[usable]
    dup = keyed.duplicated([SERVER, TIMESTAMP], keep="first").to_numpy()
    if dup.any():
        mask = np.zeros(len(df), dtype=bool)
        mask[np.flatnonzero(usable)[dup]] = True
        problems.append(Problem("duplicate (server_name, timestamp)", None, int(dup.sum()), _examples(df, mask)))
    # Order within each server, in file order.
    diffs = keyed.groupby(SERVER, sort=False)[TIMESTAMP].diff()
    unsorted = (diffs < pd.Timedelta(0)).to_numpy()
    if unsorted.any():
        mask = np.zeros(len(df), dtype=bool)
        mask[np.flatnonzero(usable)[unsorted]] = True
        problems.append(Problem("unsorted time", TIMESTAMP, int(unsorted.sum()), _examples(df, mask, TIMESTAMP)))
    positive = diffs > pd.Timedelta(0)
    off_grid = (positive & (diffs % step != pd.Timedelta(0))).to_numpy()
    if off_grid.any():
        mask = np.zeros(len(df), dtype=bool)
        mask[np.flatnonzero(usable)[off_grid]] = True
        problems.append(
            Problem(
                "irregular time",
                TIMESTAMP,
                int(off_grid.sum()),
                _examples(df, mask, TIMESTAMP, note=f"step between rows is not a multiple of {step}"),
            )
        )
    return problems


def find_gaps(df: pd.DataFrame, step: str = DEFAULT_STEP) -> pd.DataFrame:
    """Gaps in a canonical frame: one row per (server, gap start, gap end, missing steps).

    Gaps are reported, never filled: Argus does not invent data.
    """
    step_td = pd.Timedelta(step)
    stamps = df[TIMESTAMP]
    previous = stamps.groupby(df[SERVER], observed=True).shift()
    where = ((stamps - previous) > step_td).to_numpy()
    gaps = pd.DataFrame({
        SERVER: df[SERVER].astype(str).to_numpy()[where],
        "gap_start": previous[where].reset_index(drop=True) + step_td,
        "gap_end": stamps[where].reset_index(drop=True) - step_td,
    })
    gaps["missing_steps"] = ((gaps["gap_end"] - gaps["gap_start"]) // step_td + 1).astype(int)
    return gaps


def _examples(df: pd.DataFrame, mask: np.ndarray, col: str | None = None, note: str | None = None) -> tuple[str, ...]:
    rows = np.flatnonzero(mask)[:_EXAMPLES]
    found = []
    for pos in rows:
        parts = [f"row {int(pos) + 1}"]
        if SERVER in df.columns and col != SERVER:
            parts.append(f"server_name={df[SERVER].iloc[pos]!r}")
        if TIMESTAMP in df.columns and col != TIMESTAMP:
            parts.append(f"timestamp={str(df[TIMESTAMP].iloc[pos])!r}")
        if col is not None:
            value = df[col].iloc[pos]
            parts.append(f"{col}={(value.item() if isinstance(value, np.generic) else value)!r}")
        found.append(" ".join(parts))
    if note:
        found.append(note)
    return tuple(found)
