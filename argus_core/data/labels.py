"""Labelled anomaly windows that come with imported data.

Three forms are read:

- a table (CSV or Parquet): ``server_name, start, end`` and, optionally, ``metric``. A row with no
  metric labels every metric of its server: an incident log names a host, rarely a metric
  (JumpStarter's ``anomaly_windows.csv`` is this form);
- a table of per-point labels, as most public sets ship them: ``timestamp, server_name, anomaly``
  and, optionally, ``metric``; ``anomaly`` is 1/0 (or true/false). Each run of anomalous points
  of a series (consecutive in time, no normal point between) becomes one window from its first
  point to its last;
- NAB's JSON: ``{file name: [[start, end], ...]}``, each file's server and metric named by the
  import mapping (``mappings/nab-aws.toml``).

Either way the windows land in the dataset's manifest as ``labels``, a list of
``{server_name, metric, start, end}`` (``metric`` null for a whole server, times UTC ISO 8601).
``backtest`` scores error and coverage inside them apart from outside (Model quality's "Labelled
anomalies"), and the abnormal-now detector leaves them out of the nominal data it is fitted on.

A labels file with a problem (unreadable, a column missing, a time that is not a time, an end
before its start, a metric the import does not carry) stops the import like a bad data file:
every problem at once, nothing written. Windows of servers the import does not hold are left out
with a note, since a labels file often covers more hosts than one import brings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.data.files import read_table
from argus_core.data.schema import Problem
from argus_core.errors import SchemaError

COLUMNS = (schema.SERVER, "start", "end")  # and "metric", optional
POINT_COLUMNS = (schema.TIMESTAMP, schema.SERVER, "anomaly")  # per-point labels; "metric" optional
TRUE, FALSE = {"1", "1.0", "true", "yes", "t", "y"}, {"0", "0.0", "false", "no", "f", "n"}
SHOWN = 3  # examples per problem


@dataclass
class Labels:
    """What a labels file gave: the windows to store, and what was wrong or left out."""

    path: str
    rows_read: int = 0
    windows: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    per_point: bool = False  # read from per-point labels: a window of one point covers that sample

    def line(self) -> str:
        status = "REJECTED" if self.problems else "ok"
        return f"{status:<8} {self.path} (labels): read {self.rows_read:,} window(s), kept {len(self.windows):,}"


def read(path: str | Path, servers: set[str], metrics: set[str],
         series_of_file: Mapping[str, tuple[str, str]] | None = None,
         span: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Labels:
    """The windows of ``path`` for an import holding ``servers`` and ``metrics``.

    ``series_of_file`` maps a data file's name to its (server, metric), for NAB's JSON form.
    ``span``: the imported data's first and last time; windows wholly outside it, and windows of
    zero length, are kept but noted (they can score nothing)."""
    path = Path(path)
    out = Labels(str(path))
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, series_of_file or {}, out)
    else:
        rows = _table_rows(path, out)
    return _finish(rows, out, servers, metrics, span)


def from_points(points: pd.DataFrame, where: str, servers: set[str], metrics: set[str],
                span: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Labels:
    """Windows from per-point labels that came inside the data files (a label column the mapping
    names): ``timestamp, server_name, anomaly`` rows, read as a per-point labels file is."""
    out = Labels(where)
    return _finish(_point_rows(points.reset_index(drop=True), out), out, servers, metrics, span)


def _finish(rows: pd.DataFrame | None, out: Labels, servers: set[str], metrics: set[str],
            span: tuple[pd.Timestamp, pd.Timestamp] | None) -> Labels:
    out.rows_read = 0 if rows is None else len(rows)
    if rows is None or out.problems:
        return out
    _check(rows, metrics, out)
    if out.problems:
        return out
    unknown = sorted(set(rows[schema.SERVER]) - servers)
    if unknown:
        left = rows[schema.SERVER].isin(unknown)
        out.notes.append(f"{int(left.sum())} window(s) of {len(unknown)} server(s) this import does not hold "
                         f"left out: {', '.join(unknown[:SHOWN])}{', ...' if len(unknown) > SHOWN else ''}")
        rows = rows[~left]
    empty = (rows["end"] == rows["start"]).to_numpy() & (not out.per_point)  # one anomalous point is a sample
    if empty.any():
        out.notes.append(f"{int(empty.sum())} window(s) of zero length (start = end): they cover no sample")
    if span is not None and len(rows):
        first, last = (pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else
                       pd.Timestamp(t).tz_localize("UTC") for t in span)
        outside = ((rows["end"] < first) | (rows["start"] > last)).to_numpy()
        if outside.any():
            out.notes.append(f"{int(outside.sum())} window(s) wholly outside the data ({first:%Y-%m-%d %H:%M} .. "
                             f"{last:%Y-%m-%d %H:%M} UTC): they cover no sample of this import")
    out.windows = [{schema.SERVER: str(r.server_name), "metric": None if pd.isna(r.metric) else str(r.metric),
                    "start": r.start.isoformat(), "end": r.end.isoformat()}
                   for r in rows.itertuples(index=False)]
    return out


def _table_rows(path: Path, out: Labels) -> pd.DataFrame | None:
    try:
        raw = read_table(path)
    except FileNotFoundError:
        out.problems.append(Problem("no such labels file", None, 0, (str(path),)))
        return None
    except SchemaError as exc:
        out.problems += exc.problems
        return None
    raw.columns = [str(c).strip() for c in raw.columns]
    if all(c in raw.columns for c in POINT_COLUMNS) and "start" not in raw.columns:
        return _point_rows(raw, out)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        out.problems.append(Problem("missing column", ", ".join(missing), len(raw), (
            f"a labels table needs {', '.join(COLUMNS)} (and may give metric), or per-point labels "
            f"{', '.join(POINT_COLUMNS)}; it has "
            f"{', '.join(map(str, raw.columns[:8]))}",)))
        return None
    rows = pd.DataFrame({schema.SERVER: raw[schema.SERVER].astype("string").str.strip(),
                         "metric": raw["metric"].astype("string").str.strip() if "metric" in raw else pd.NA})
    rows["metric"] = rows["metric"].replace("", pd.NA)
    for column in ("start", "end"):
        rows[column] = _times(raw, column, out)
    _no_blank_servers(rows[schema.SERVER], out)
    return rows


def _times(raw: pd.DataFrame, column: str, out: Labels) -> pd.Series:
    """A column of times, parsed as the data contract parses them; its problems noted in ``out``."""
    parsed, bad, mixed = schema.parse_times(raw[column])
    for mask, kind in ((bad | raw[column].isna().to_numpy(), "unreadable time"), (mixed, "mixed time zones")):
        if mask.any():
            where = np.flatnonzero(mask)[:SHOWN]
            out.problems.append(Problem(kind, column, int(mask.sum()),
                                        tuple(f"row {i + 2}: {raw[column].iloc[i]!r}" for i in where)))
    return parsed


def _no_blank_servers(servers: pd.Series, out: Labels) -> None:
    blank = (servers.isna() | (servers == "")).to_numpy()
    if blank.any():
        out.problems.append(Problem("missing value", schema.SERVER, int(blank.sum()),
                                    tuple(f"row {i + 2}" for i in np.flatnonzero(blank)[:SHOWN])))


def _point_rows(raw: pd.DataFrame, out: Labels) -> pd.DataFrame | None:
    """Per-point labels -> one window per run of anomalous points of a series."""
    out.per_point = True
    flag_text = raw["anomaly"].astype("string").str.strip().str.lower()
    bad_flag = ~(flag_text.isin(TRUE | FALSE)).fillna(False).to_numpy()
    if bad_flag.any():
        where = np.flatnonzero(bad_flag)[:SHOWN]
        out.problems.append(Problem("unreadable label", "anomaly", int(bad_flag.sum()), tuple(
            f"row {i + 2}: {raw['anomaly'].iloc[i]!r} (1/0 or true/false)" for i in where)))
    parsed = _times(raw, schema.TIMESTAMP, out)
    server = raw[schema.SERVER].astype("string").str.strip()
    _no_blank_servers(server, out)
    if out.problems:
        return None
    metric = raw["metric"].astype("string").str.strip().replace("", pd.NA) if "metric" in raw else \
        pd.Series(pd.NA, index=raw.index, dtype="string")
    points = pd.DataFrame({schema.SERVER: server, "metric": metric, "t": parsed,
                           "on": flag_text.isin(TRUE).to_numpy()})
    points = points.sort_values([schema.SERVER, "metric", "t"], kind="stable", na_position="first")
    key = (points[schema.SERVER].fillna("") + "\x00" + points["metric"].fillna("")).to_numpy(dtype=object)
    new_series = np.r_[True, key[1:] != key[:-1]]
    on = points["on"].to_numpy()
    starts = on & (new_series | ~np.r_[False, on[:-1]])  # an anomalous point after a normal one or a new series
    run = np.cumsum(starts)
    anomalous = points[on].assign(run=run[on])
    windows = anomalous.groupby("run", sort=True).agg(**{schema.SERVER: (schema.SERVER, "first"),
                                                         "metric": ("metric", "first"), "start": ("t", "min"),
                                                         "end": ("t", "max")})
    out.notes.append(f"{int(on.sum()):,} anomalous point(s) of {len(points):,} read as {len(windows):,} window(s) "
                     "(one per run of consecutive anomalous points)")
    return windows.reset_index(drop=True)[[schema.SERVER, "metric", "start", "end"]]


def _json_rows(path: Path, series_of_file: Mapping[str, tuple[str, str]], out: Labels) -> pd.DataFrame | None:
    try:
        spans_of = json.loads(path.read_text())
        if not isinstance(spans_of, dict) or not all(isinstance(v, list) for v in spans_of.values()):
            raise ValueError("expected NAB's windows: an object {file name: [[start, end], ...]}")
        ours = [name for name in spans_of if Path(name).name in series_of_file]
        if spans_of and not ours:
            raise ValueError(f"no entry names a file of this import (entries: {', '.join(list(spans_of)[:3])}"
                             f"{', ...' if len(spans_of) > 3 else ''}; files: "
                             f"{', '.join(sorted(series_of_file)[:3])}): expected NAB's windows, "
                             "{file name: [[start, end], ...]}")
        rows = []
        for name in ours:
            for span in spans_of[name]:
                if not isinstance(span, list) or len(span) != 2:
                    raise ValueError(f"{name}: {str(span)[:60]} is not a window [start, end] (NAB's "
                                     "combined_windows.json holds windows; combined_labels.json holds single times)")
                rows.append((*series_of_file[Path(name).name], *span))
    except FileNotFoundError:
        out.problems.append(Problem("no such labels file", None, 0, (str(path),)))
        return None
    except (OSError, ValueError, TypeError) as exc:  # not JSON, or a span that is not [start, end]
        out.problems.append(Problem("unreadable labels file", None, 0, (str(exc).splitlines()[0],)))
        return None
    frame = pd.DataFrame(rows, columns=[schema.SERVER, "metric", "start", "end"])
    for column in ("start", "end"):
        parsed, bad, _ = schema.parse_times(frame[column].astype("string"))
        if bad.any():
            out.problems.append(Problem("unreadable time", column, int(bad.sum()),
                                        tuple(repr(v) for v in frame[column][bad].head(SHOWN))))
        frame[column] = parsed
    return frame


def _check(rows: pd.DataFrame, metrics: set[str], out: Labels) -> None:
    backwards = (rows["end"] < rows["start"]).to_numpy()
    if backwards.any():
        out.problems.append(Problem("end before start", "end", int(backwards.sum()), tuple(
            f"{r.server_name}: {r.start} .. {r.end}" for r in rows[backwards].head(SHOWN).itertuples())))
    named = rows["metric"].dropna()
    unknown = sorted(set(named) - metrics)
    if unknown:
        out.problems.append(Problem("unknown metric", "metric", int(named.isin(unknown).sum()), (
            f"{', '.join(unknown[:SHOWN])}: this import carries {', '.join(sorted(metrics)[:8])}",)))


def merged(known: list[dict] | None, new: list[dict]) -> list[dict]:
    """The windows already stored, then the new ones not among them (an import run twice adds none)."""
    known = list(known or [])
    return known + [window for window in new if window not in known]
