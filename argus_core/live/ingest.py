"""Request bodies -> rows for the live dataset, under the rules ``import`` applies to files.

A batch is JSON (a list of records, or ``{"samples": [...]}``) or CSV with a header, in the data
contract or in the dataset's own metric set. Every problem of a batch is reported at once and a
batch with any problem stores nothing (``SchemaError``). Rows already stored or already waiting
are dropped, not refused, so a client that retries a batch stores nothing twice.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from argus_core.data import schema, store
from argus_core.data.profiles import infer_profiles
from argus_core.data.schema import Problem
from argus_core.errors import SchemaError

MAX_BODY_BYTES = 16 * 1024 * 1024  # a batch larger than this is refused (413) before it is parsed
# a server name is shown in terminals, pages and metric labels: no control characters, no markup
# nor "/", which no URL path (GET /api/v1/servers/{name}) could carry
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


@dataclass(frozen=True)
class Rules:
    """What a batch must satisfy besides the data contract."""

    step: str = schema.DEFAULT_STEP
    metrics: dict[str, str] | None = None  # the dataset's own metric set (None: schema v1)
    late: pd.Timedelta = pd.Timedelta("24h")  # how far before the newest stored sample a row may be
    future: pd.Timedelta = pd.Timedelta("10min")  # how far past "now" a row may be (clock skew)


def parse_body(body: bytes, content_type: str | None) -> pd.DataFrame:
    """The rows of a request body; SchemaError when it is not UTF-8, JSON records or CSV."""
    if body[:2] == b"\x1f\x8b":
        raise SchemaError([Problem("compressed", None, 1, ("the body is gzip: compression is not supported, send it "
                                                           "uncompressed",))], "the request")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError([Problem("not UTF-8", None, 1, (f"byte {exc.start}: the body must be UTF-8 text",))],
                          "the request") from exc
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        try:
            return pd.read_csv(io.StringIO(text), dtype={schema.SERVER: str, schema.STATUS: str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise SchemaError([Problem("unreadable CSV", None, 1, (str(exc).splitlines()[0],))], "the request") \
                from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError([Problem("unreadable JSON", None, 1, (f"{exc.msg} at line {exc.lineno} column "
                                                               f"{exc.colno}",))], "the request") from exc
    except RecursionError as exc:
        raise SchemaError([Problem("unreadable JSON", None, 1, ("nested too deeply",))], "the request") from exc
    records = payload.get("samples") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SchemaError([Problem("wrong shape", None, 1, ('send a JSON list of records, or {"samples": [...]}, '
                                                            "one object per (server_name, timestamp)",))],
                          "the request")
    return pd.DataFrame.from_records(records)


def validate_batch(raw: pd.DataFrame, rules: Rules, newest: pd.Timestamp | None,
                   now: pd.Timestamp, profiles: dict[str, str] | None = None,
                   last_sample: dict[str, str] | None = None) -> pd.DataFrame:
    """The batch in canonical form; SchemaError listing every problem (nothing is stored then).

    ``newest`` is the newest stored sample: rows more than ``rules.late`` before it are refused;
    rows more than ``rules.future`` after ``now`` are refused. ``profiles``: the dataset's servers
    and their profiles (a known server keeps its profile when the batch names none, and a batch
    naming another is refused). ``last_sample``: a stored sample's time per server (ISO text), whose time grid a
    pushed row must keep. Both are checked here because the cycle stores the batch later: a batch
    the dataset refuses then would be refused after the pusher was told it was accepted."""
    problems: list[Problem] = []
    if raw.empty:
        raise SchemaError([Problem("empty", None, 0, ("the batch has no rows",))], "the request")
    allowed = {schema.TIMESTAMP, schema.SERVER, schema.STATUS, schema.PROFILE,
               *(rules.metrics or schema.METRIC_COLUMNS)}
    unknown = [str(c) for c in raw.columns if c not in allowed]
    other = next((d for d in (";", "\t", "|") if len(unknown) == 1 and d in unknown[0]), None)
    if other is not None:
        shown = {";": "semicolons", "\t": "tabs", "|": "bars"}[other]
        raise SchemaError([Problem("not comma-separated", None, 1, (
            f"the header {unknown[0][:80]!r} is one field: its fields are separated by {shown}",
            "separate the fields with commas"))], "the request")
    if unknown:
        problems.append(Problem("unknown field", None, len(unknown), tuple(unknown[:5])
                                + (f"the dataset's fields: {', '.join(sorted(allowed))}",)))
    if schema.SERVER in raw.columns:
        names = raw[schema.SERVER]
        bad = ~names.map(lambda n: isinstance(n, str) and bool(SERVER_NAME.fullmatch(n))).to_numpy(dtype=bool)
        if bad.any():
            where = np.flatnonzero(bad)[:3]
            problems.append(Problem("bad server name", schema.SERVER, int(bad.sum()), tuple(
                f"row {i + 1}: {names.iloc[i]!r}".encode("unicode_escape").decode("ascii") for i in where)
                + ("letters, digits and . _ : @ - only (no /: it could not be looked up by URL), at most 128, starting "
                   "with a letter or digit",)))
    if problems:
        raise SchemaError(problems, "the request")
    frame = raw.copy()
    known = profiles or {}
    if schema.PROFILE not in frame.columns:
        names = frame[schema.SERVER].astype(str).to_numpy()
        frame[schema.PROFILE] = [known.get(n, p) for n, p in zip(names, infer_profiles(names), strict=True)]
    canonical, problems = schema.check(frame, step=rules.step, metrics=rules.metrics)
    if problems:
        raise SchemaError(problems, "the request")
    assert canonical is not None
    problems += _against_the_dataset(canonical, known, last_sample or {}, str(rules.step))
    stamps = canonical[schema.TIMESTAMP]
    future = (stamps > now + rules.future).to_numpy()
    if future.any():
        problems.append(Problem("in the future", schema.TIMESTAMP, int(future.sum()), (
            f"latest {stamps.max()}", f"the service's clock says {now:%Y-%m-%d %H:%M:%S} UTC; at most "
            f"{rules.future} ahead is accepted")))
    if newest is not None:
        late = (stamps < newest - rules.late).to_numpy()
        if late.any():
            problems.append(Problem("too late", schema.TIMESTAMP, int(late.sum()), (
                f"earliest {stamps.min()}", f"the dataset already runs to {newest}; samples up to {rules.late} "
                "older than that are placed, older ones belong in `import`")))
    if problems:
        raise SchemaError(problems, "the request")
    return canonical


def _against_the_dataset(batch: pd.DataFrame, profiles: dict[str, str], last_sample: dict[str, str],
                         step: str) -> list[Problem]:
    """A known server's profile and time grid, as the dataset holds them."""
    problems: list[Problem] = []
    servers = batch[schema.SERVER].astype(str)
    stored = servers.map(profiles)
    given = batch[schema.PROFILE].astype(str)
    clash = (stored.notna() & (stored != given)).to_numpy()
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        problems.append(Problem("profile differs from the dataset", schema.PROFILE, int(clash.sum()), (
            f"{servers.iloc[i]}: {stored.iloc[i]} in the dataset, {given.iloc[i]} in the batch",
            "leave the profile out, or send the dataset's")))
    anchor = pd.to_datetime(servers.map(last_sample), utc=True)
    stamps = pd.to_datetime(batch[schema.TIMESTAMP], utc=True)
    off = (anchor.notna() & ((stamps - anchor) % pd.Timedelta(step) != pd.Timedelta(0))).to_numpy()
    if off.any():
        i = int(np.flatnonzero(off)[0])
        problems.append(Problem("off the dataset's time grid", schema.TIMESTAMP, int(off.sum()), (
            f"{servers.iloc[i]} at {stamps.iloc[i]}", f"its stored samples are {step} apart, one at {anchor.iloc[i]}; "
            "send times on that grid (rounded to the step)")))
    return problems


def keys_of(frame: pd.DataFrame) -> pd.MultiIndex:
    """(server, timestamp) of each row, comparable across frames (server as text, times in UTC)."""
    return pd.MultiIndex.from_arrays([frame[schema.SERVER].astype(str).to_numpy(),
                                      pd.to_datetime(frame[schema.TIMESTAMP], utc=True).to_numpy()])


def new_rows(batch: pd.DataFrame, stored: pd.DataFrame | pd.MultiIndex | None) -> pd.DataFrame:
    """The rows of ``batch`` whose (server, timestamp) is not in ``stored`` (a frame or keys)."""
    if stored is None or len(stored) == 0 or batch.empty:
        return batch
    seen = stored if isinstance(stored, pd.MultiIndex) else keys_of(stored)
    return batch[~keys_of(batch).isin(seen)].reset_index(drop=True)


def append_new(dataset, rows: pd.DataFrame, source: str, step: str | None = None,
               metrics: dict[str, str] | None = None) -> int:
    """Validate ``rows`` and append those the dataset does not hold yet; returns how many. Only the
    stored keys of the rows' time range are read, and a batch taken twice stores nothing twice."""
    rows = rows.drop_duplicates([schema.SERVER, schema.TIMESTAMP], keep="last")
    canonical = schema.validate(rows, step=step or schema.DEFAULT_STEP, source=source, metrics=metrics)
    stored = store.read(dataset, start=canonical[schema.TIMESTAMP].min(), end=canonical[schema.TIMESTAMP].max(),
                        columns=[schema.SERVER, schema.TIMESTAMP])
    fresh = new_rows(canonical, stored)
    if len(fresh):  # append validates the merged days itself
        store.append(dataset, fresh, source=source)
    return len(fresh)
