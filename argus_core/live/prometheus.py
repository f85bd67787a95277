"""Prometheus (or anything that speaks its query API: Thanos, Mimir, VictoriaMetrics) as the
live service's source: ``serve --source prometheus --prometheus-url URL [--mapping FILE]``.

    mapping     which PromQL gives each Argus metric (TOML; ``mappings/node_exporter.toml`` ships),
                which label names the server (``instance`` by default, port stripped) and which
                one, when present, its profile (else the name patterns decide)
    client      ``query_range`` paged under Prometheus's 11,000 points per series, retried with
                backoff on connection errors and 5xx; a refused query raises PrometheusError
                naming the PromQL and Prometheus's own message
    fetch       every mapped query over a time range -> one canonical frame on the dataset's grid;
                metrics no series answers are reported once and left out, never invented; NaN
                and infinities (a division by zero in PromQL) are gaps, carried forward at most
                ``FILL_STEPS`` steps and otherwise left out, never zeros or spikes
    source      a ``Source`` for the service: each cycle fetches from a little before the newest
                stored sample to now, so a gap while Prometheus was away is filled from its
                history when it returns; after a failure it waits (doubling, up to ``MAX_BACKOFF``)
                before asking again
    backfill    a new live dataset from the last ``span`` of Prometheus's history
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from argus_core.data import schema, store
from argus_core.data.files import read_toml
from argus_core.errors import ArgusError, SettingsError

log = logging.getLogger("argus.prometheus")

MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series
PAGE_POINTS = 10_000
FILL_STEPS = 2  # a missing value is carried forward this many steps at most
LAG_STEPS = 2  # a metric missing only in a server's last steps may still arrive; older, it is a gap
MAX_BACKOFF = 300.0  # seconds between attempts after failures, at most
DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "node_exporter.toml"


class PrometheusError(ArgusError):
    """Prometheus could not be reached, or refused a query (the message says which and why)."""


@dataclass(frozen=True)
class MappedMetric:
    name: str
    kind: str  # percent, rate, count
    query: str | None = None
    rest_of: tuple[str, ...] = ()  # derived: ``total`` minus these (idle CPU as the rest)
    total: float = 100.0
    unit: str = ""
    warning: float | None = None
    critical: float | None = None


@dataclass(frozen=True)
class Mapping:
    metrics: dict[str, MappedMetric]
    server_label: str = "instance"
    strip_port: bool = True
    profile_label: str | None = "argus_profile"
    step: str = schema.DEFAULT_STEP
    source: str = "mapping"

    @property
    def by(self) -> str:
        return ", ".join([self.server_label, *([self.profile_label] if self.profile_label else [])])

    def promql(self, metric: MappedMetric) -> str:
        return (metric.query or "").replace("$by", self.by)

    def kinds(self, present) -> dict[str, str]:
        return {m: self.metrics[m].kind for m in self.metrics if m in set(present)}


MAPPING_KEYS = {"step", "server", "metrics"}
METRIC_KEYS = {"kind", "query", "rest_of", "total", "unit", "warning", "critical"}


def load_mapping(path: str | Path | None = None) -> Mapping:
    """A Prometheus mapping file parsed and checked; SettingsError naming every problem."""
    path = Path(path) if path is not None else DEFAULT_MAPPING
    return parse_mapping(read_toml(path, "mapping", f"start from {DEFAULT_MAPPING}"), str(path))


def parse_mapping(raw: dict, source: str = "mapping") -> Mapping:
    problems = []
    if set(raw) - MAPPING_KEYS:
        problems.append(f"unknown key(s) {', '.join(sorted(set(raw) - MAPPING_KEYS))}; use step, [server], "
                        "[metrics.NAME]")
    server = raw.get("server", {})
    if not isinstance(server, dict) or set(server) - {"label", "strip_port", "profile_label"}:
        problems.append("[server] takes label, strip_port and profile_label")
        server = {}
    step = raw.get("step", schema.DEFAULT_STEP)
    try:
        schema.parse_step(step)
    except (SettingsError, ValueError) as exc:
        problems.append(f"step: {exc}")
    metrics: dict[str, MappedMetric] = {}
    table = raw.get("metrics", {})
    if not isinstance(table, dict) or not table:
        problems.append("give at least one [metrics.NAME] with a query")
        table = {}
    for name, entry in table.items():
        where = f"metrics.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a table")
            continue
        if set(entry) - METRIC_KEYS:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(set(entry) - METRIC_KEYS))}; known: "
                            f"{', '.join(sorted(METRIC_KEYS))}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            problems.append(f"{where}: metric names are lower-case letters, digits and _")
        kind = entry.get("kind", schema.V1_KINDS.get(name))
        if kind not in schema.METRIC_KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(schema.METRIC_KINDS)}, not {kind!r}")
        query, rest_of = entry.get("query"), entry.get("rest_of", [])
        if (query is None) == (not rest_of):
            problems.append(f"{where}: give either query (PromQL) or rest_of (a derived remainder)")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            problems.append(f"{where}.query must be PromQL text")
        if not isinstance(rest_of, list) or not all(isinstance(m, str) for m in rest_of):
            problems.append(f"{where}.rest_of must be a list of metric names")
            rest_of = []
        limits = [entry.get("warning"), entry.get("critical")]
        if (limits[0] is None) != (limits[1] is None) or any(
                v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v))
                for v in limits):
            problems.append(f"{where}: give both warning and critical as numbers, or neither")
            limits = [None, None]
        metrics[name] = MappedMetric(name=name, kind=kind, query=query, rest_of=tuple(rest_of),
                                     total=float(entry.get("total", 100.0)), unit=str(entry.get("unit", "")),
                                     warning=limits[0], critical=limits[1])
    for metric in metrics.values():
        missing = [m for m in metric.rest_of if m not in metrics or metrics[m].query is None]
        if missing:
            problems.append(f"metrics.{metric.name}.rest_of names {', '.join(missing)}, which have no query here")
    if problems:
        raise SettingsError(f"{source}: " + "; ".join(problems))
    label = server.get("label", "instance")
    profile_label = server.get("profile_label", "argus_profile")
    return Mapping(metrics=metrics, server_label=label, strip_port=bool(server.get("strip_port", True)),
                   profile_label=profile_label or None, step=step, source=source)


# --- the client -----------------------------------------------------------------------------------

class PrometheusClient:
    """``/api/v1/query_range`` and ``/api/v1/query`` with paging, timeouts and retries."""

    def __init__(self, url: str, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 sleep=time.sleep) -> None:
        if not re.match(r"^https?://[^/\s]+", url or ""):
            raise SettingsError(f"--prometheus-url must be http(s)://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        self._http = httpx.Client(timeout=timeout)
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def query_range(self, query: str, start: pd.Timestamp, end: pd.Timestamp,
                    step: pd.Timedelta) -> list[tuple[dict, np.ndarray, np.ndarray]]:
        """(labels, Unix seconds, values) per series over [start, end] at ``step``, pages joined."""
        seconds = step.total_seconds()
        found: dict[tuple, tuple[dict, list, list]] = {}
        page_start = start
        while page_start <= end:
            page_end = min(end, page_start + step * (PAGE_POINTS - 1))
            data = self._get("/api/v1/query_range", {"query": query, "start": page_start.timestamp(),
                                                     "end": page_end.timestamp(), "step": seconds}, query)
            if data.get("resultType") != "matrix":
                raise PrometheusError(f"query {query!r} gave a {data.get('resultType')}, not a range vector")
            for labels, times, values in _series(data, query, self.url):
                entry = found.setdefault(tuple(sorted(labels.items())), (labels, [], []))
                entry[1].extend(times)
                entry[2].extend(values)
            page_start = page_end + step
        return [(labels, np.array(ts, dtype=np.float64), np.array(vs, dtype=np.float64))
                for labels, ts, vs in found.values()]

    def ready(self) -> str | None:
        """None when Prometheus answers a trivial query, else why not."""
        try:
            self._get("/api/v1/query", {"query": "1"}, "1", retries=0)
        except PrometheusError as exc:
            return str(exc)
        return None

    def _get(self, path: str, params: dict, query: str, retries: int | None = None) -> dict:
        retries = self.retries if retries is None else retries
        wait = self.backoff
        for attempt in range(retries + 1):
            self.requests += 1
            try:
                response = self._post(path, params)  # POST: long PromQL fits
            except httpx.HTTPError as exc:
                problem = f"Prometheus at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return _payload(response, query, self.url)
                problem = f"Prometheus at {self.url} answered {response.status_code} to {query!r}: " \
                          f"{_error_text(response)}"
            if attempt < retries:
                self.sleep(wait)
                wait *= 2
        raise PrometheusError(problem)


    def _post(self, path: str, params: dict) -> httpx.Response:
        """The answer, read up to ``MAX_ANSWER_BYTES`` (PrometheusError past that: a query or span too
        wide would otherwise be held in memory whole)."""
        with self._http.stream("POST", self.url + path, data=params) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise PrometheusError(_too_large(self.url, int(declared)))
            body, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise PrometheusError(_too_large(self.url, size, at_least=True))
                body.append(chunk)
        plain = {k: v for k, v in response.headers.items()  # the bytes above are decoded already
                 if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
        return httpx.Response(response.status_code, headers=plain, content=b"".join(body), request=response.request)


MAX_ANSWER_BYTES = 128 * 1024 * 1024  # one Prometheus answer; a page of 11,000 points per series stays far below


def _too_large(url: str, size: int, at_least: bool = False) -> str:
    return (f"{url} answered {'more than ' if at_least else ''}{size / 2**20:,.0f} MB; Argus reads at most "
            f"{MAX_ANSWER_BYTES / 2**20:,.0f} MB per answer: narrow the mapping's queries (fewer series) or the span")


def _series(data: dict, query: str, url: str):
    """(labels, times, values) of each series of a range answer; PrometheusError naming the first
    malformed point (the cycle counts it as a source failure, as it does an unreachable server)."""
    result = data.get("result", [])
    if not isinstance(result, list):
        raise PrometheusError(f"{url} gave a malformed answer to {query!r}: result is not a list")
    for series in result:
        labels = series.get("metric", {}) if isinstance(series, dict) else None
        values = series.get("values", []) if isinstance(series, dict) else None
        if not isinstance(labels, dict) or not isinstance(values, list):
            raise PrometheusError(f"{url} gave a malformed answer to {query!r}: a series without metric and values")
        times, numbers = [], []
        for point in values:
            try:
                stamp, value = point
                times.append(float(stamp))
            except (TypeError, ValueError) as exc:
                raise PrometheusError(f"{url} gave a malformed answer to {query!r}: the point {str(point)[:60]} is "
                                      "not [unix time, \"value\"]") from exc
            if not math.isfinite(times[-1]):
                raise PrometheusError(f"{url} gave a malformed answer to {query!r}: a point's time is {stamp!r}")
            numbers.append(_number(value))
        yield {str(k): str(v) for k, v in labels.items()}, times, numbers


def _payload(response: httpx.Response, query: str, url: str) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise PrometheusError(f"{url} did not answer like Prometheus to {query!r} (HTTP {response.status_code}, "
                              "not JSON)") from exc
    if not isinstance(body, dict) or "status" not in body:
        raise PrometheusError(f"{url} did not answer like Prometheus to {query!r}: JSON without a status field "
                              "(is the URL Prometheus's, without /api/v1?)")
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus refused {query!r}: {body.get('errorType', 'error')}: "
                              f"{body.get('error', 'no message')}")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise PrometheusError(f"{url} gave a malformed answer to {query!r}: data is not an object")
    return data


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text[:200]))
    except ValueError:
        return response.text[:200] or response.reason_phrase


def _number(text) -> float:
    try:
        value = float(text)  # Prometheus writes NaN, +Inf and -Inf as strings too
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


# --- fetching -------------------------------------------------------------------------------------

@dataclass
class Fetched:
    frame: pd.DataFrame  # canonical for the dataset (may be empty)
    absent: list[str] = field(default_factory=list)  # mapped metrics no series answered
    series: int = 0


def server_name(labels: dict, mapping: Mapping) -> str | None:
    name = labels.get(mapping.server_label)
    if not name:
        return None
    if mapping.strip_port:  # host:9100 -> host, [::1]:9100 -> ::1 (a bare IPv6 address stays whole)
        found = re.fullmatch(r"\[(.+)\]:\d+|([^:]+):\d+", name)
        if found:
            name = found.group(1) or found.group(2)
    return name


def fetch(client: PrometheusClient, mapping: Mapping, start: pd.Timestamp, end: pd.Timestamp,
          metrics: dict[str, str] | None, only: list[str] | None = None) -> Fetched:
    """Every mapped metric over [start, end] on the grid, as rows the dataset accepts. ``metrics``
    is the dataset's metric set (None: the built-in one); ``only`` limits the queries."""
    raw = fetch_wide(client, mapping, start, end, only)
    frame = _canonical(raw.frame, raw.profiles, metrics, mapping) if len(raw.frame) else pd.DataFrame()
    return Fetched(frame, raw.absent, raw.series)


@dataclass
class Wide:
    frame: pd.DataFrame  # server_name, timestamp and one column per metric that answered (NaN: a gap)
    profiles: dict
    absent: list[str]
    series: int


def fetch_wide(client: PrometheusClient, mapping: Mapping, start: pd.Timestamp, end: pd.Timestamp,
               only: list[str] | None = None) -> Wide:
    """The mapped queries over [start, end] on the grid, derived metrics added, not yet validated."""
    step = pd.Timedelta(mapping.step)
    start, end = start.floor(step), end.floor(step)
    wanted = [m for m in mapping.metrics.values() if m.query is not None and (only is None or m.name in only)]
    names, metric_names, stamp_parts, value_parts = [], [], [], []
    profiles, absent, count = {}, [], 0
    for metric in wanted:
        series = client.query_range(mapping.promql(metric), start, end, step)
        if not series:
            absent.append(metric.name)
            continue
        for labels, stamps, values in series:
            server = server_name(labels, mapping)
            if server is None:
                continue
            count += 1
            if mapping.profile_label and labels.get(mapping.profile_label):
                profiles[server] = labels[mapping.profile_label]
            names.append((server, len(stamps)))
            metric_names.append((metric.name, len(stamps)))
            stamp_parts.append(stamps)
            value_parts.append(values)
    if not names:
        return Wide(pd.DataFrame(), profiles, absent, 0)
    # one frame from flat arrays (a frame per series cost ~0.6 ms each: 8 s at 1,000 servers)
    rows = pd.DataFrame({
        schema.SERVER: np.repeat(np.array([n for n, _ in names], dtype=object), [k for _, k in names]),
        "metric": np.repeat(np.array([m for m, _ in metric_names], dtype=object), [k for _, k in metric_names]),
        schema.TIMESTAMP: pd.to_datetime(np.concatenate(stamp_parts), unit="s", utc=True),
        "value": np.concatenate(value_parts)})
    wide = rows.groupby([schema.SERVER, schema.TIMESTAMP, "metric"], sort=True)["value"].mean().unstack("metric")
    wide.columns.name = None  # one host behind two exporters: the mean
    wide = on_grid(wide, step)
    for metric in mapping.metrics.values():
        if metric.rest_of and all(m in wide.columns for m in metric.rest_of):
            wide[metric.name] = (metric.total - wide[list(metric.rest_of)].sum(axis=1, min_count=len(metric.rest_of)))
    for name in [c for c in wide.columns if c in mapping.metrics]:
        kind = mapping.metrics[name].kind
        upper = 100.0 if kind == "percent" else None
        wide[name] = wide[name].clip(lower=0.0, upper=upper)  # float error past 0 or 100, never a spike
        if kind == "count":
            wide[name] = wide[name].round()
    return Wide(wide, profiles, absent, count)


def on_grid(wide: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """Each server's rows on its own grid, short gaps inside it carried forward (FILL_STEPS at
    most). The trailing edge is not filled: a metric missing there has not arrived yet, or its
    server is gone (Prometheus's 5-minute lookback already repeats a gauge's last value once).
    Vectorised over servers: a pull of 1,000 servers is one frame, not 1,000."""
    wide = wide.sort_index()
    servers = wide.index.get_level_values(0)
    stamps = wide.index.get_level_values(1)
    spans = pd.DataFrame({"first": stamps, "last": stamps, "n": 1}, index=servers).groupby(level=0).agg(
        first=("first", "min"), last=("last", "max"), n=("n", "size"))
    holes = spans[(spans["last"] - spans["first"]) / step + 1 > spans["n"]]
    if len(holes):  # rare: Prometheus answers every grid point a series has data for
        full = [(server, t) for server, row in holes.iterrows()
                for t in pd.date_range(row["first"], row["last"], freq=step)]
        missing = pd.MultiIndex.from_tuples(full, names=wide.index.names).difference(wide.index)
        wide = pd.concat([wide, pd.DataFrame(index=missing, columns=wide.columns, dtype=float)]).sort_index()
    by_server = wide.index.get_level_values(0)
    valid = wide.notna()
    filled = wide.groupby(level=0, sort=False).ffill(limit=FILL_STEPS)
    later = valid.iloc[::-1].groupby(by_server[::-1], sort=False).cummax().iloc[::-1]  # a real value at or after
    filled = filled.where(later.to_numpy())  # never past a metric's last real value
    reports = valid.groupby(by_server, sort=False).transform("any").to_numpy()
    complete = pd.Series((filled.notna().to_numpy() | ~reports).all(axis=1), index=wide.index)
    keep = complete.iloc[::-1].groupby(by_server[::-1], sort=False).cummax().iloc[::-1]  # up to the last complete row
    # ... and every row older than the server's last few: a metric that stopped answering there
    # (CLOSE_WAIT with no socket in the state) is a gap for that metric alone, never a host
    # whose other metrics stop being stored
    times = pd.Series(wide.index.get_level_values(1), index=wide.index)
    settled = times <= times.groupby(by_server, sort=False).transform("max") - LAG_STEPS * step
    keep = keep | settled
    out = filled[keep.to_numpy()]
    out.index = out.index.set_names([schema.SERVER, schema.TIMESTAMP])
    return out.reset_index()


def _canonical(wide: pd.DataFrame, profiles: dict, metrics: dict[str, str] | None, mapping: Mapping) -> pd.DataFrame:
    names = list(metrics) if metrics is not None else list(schema.METRIC_COLUMNS)
    frame = wide.reindex(columns=[schema.SERVER, schema.TIMESTAMP, *names])
    if metrics is None:  # the built-in set has no gaps: a row missing a metric is left out
        frame = frame.dropna(subset=names)
    else:
        frame = frame.dropna(subset=names, how="all")
    frame[schema.STATUS] = "healthy"  # Prometheus carries no operational state
    if profiles:
        frame[schema.PROFILE] = frame[schema.SERVER].map(profiles)
        if frame[schema.PROFILE].isna().any():
            from argus_core.data.profiles import infer_profile

            frame[schema.PROFILE] = frame[schema.PROFILE].fillna(frame[schema.SERVER].map(infer_profile))
    if frame.empty:
        return pd.DataFrame()
    return schema.validate(frame.reset_index(drop=True), step=mapping.step, source="prometheus", metrics=metrics)


def dataset_metrics(mapping: Mapping, present: list[str]) -> dict[str, str] | None:
    """The metric set of a dataset made from ``present``: None (the built-in set) when they are
    exactly the built-in metrics, else their kinds."""
    if set(present) == set(schema.METRIC_COLUMNS):
        return None
    return mapping.kinds(present)


def backfill(dataset: Path, client: PrometheusClient, mapping: Mapping, span: pd.Timedelta,
             now: pd.Timestamp) -> dict:
    """A new live dataset from the last ``span`` of Prometheus's history; returns its manifest."""
    probe = fetch_wide(client, mapping, now - span, now)
    if probe.frame.empty:
        raise PrometheusError(f"no series in Prometheus at {client.url} answers the mapping {mapping.source} over "
                              f"the last {span}; check the queries with Prometheus's own expression browser")
    present = [m for m in mapping.metrics if m not in probe.absent and m in probe.frame.columns
               and probe.frame[m].notna().any()]
    if probe.absent:
        log.warning("not in Prometheus, left out: %s", ", ".join(probe.absent))
    kinds = dataset_metrics(mapping, present)
    wide = probe.frame[[schema.SERVER, schema.TIMESTAMP, *present]]
    frame = _canonical(wide, probe.profiles, kinds, mapping)
    if frame.empty:
        raise PrometheusError(f"Prometheus at {client.url} answered, but no server had every metric at once")
    extra = {"sources": [f"prometheus {client.url}"], "prometheus": {"url": client.url, "mapping": mapping.source,
                                                                      "absent": probe.absent}}
    if kinds is not None:
        extra.update({"metric_kinds": kinds, "units": {m: mapping.metrics[m].unit for m in kinds},
                      "thresholds": {m: {"warning": float(mapping.metrics[m].warning),
                                         "critical": float(mapping.metrics[m].critical)}
                                     for m in kinds if mapping.metrics[m].warning is not None}})
    return store.write_dataset(dataset, frame, kind="prometheus", step=mapping.step, extra=extra)


class PrometheusSource:
    """Pulls what is new each cycle (see the module docstring)."""

    name = "prometheus"

    def __init__(self, client: PrometheusClient, mapping: Mapping, dataset: Path, clock, span: pd.Timedelta,
                 overlap_steps: int = 3, monotonic=time.monotonic) -> None:
        self.client, self.mapping, self.dataset, self.clock, self.span = client, mapping, dataset, clock, span
        self.step = pd.Timedelta(mapping.step)
        self.overlap = self.step * overlap_steps  # late scrapes of the last steps are picked up again
        self.monotonic = monotonic
        self.failures = 0
        self.next_try = 0.0
        self.last_error: str | None = None
        self.reported_absent: set[str] = set()
        self.last_fetch: dict = {}

    def pull(self) -> tuple[pd.DataFrame | None, None]:
        if self.failures and self.monotonic() < self.next_try:
            raise PrometheusError(f"{self.last_error} (next try in {self.next_try - self.monotonic():.0f} s)")
        manifest = store.read_manifest(self.dataset)
        now = self.clock()
        start = now - self.span
        if manifest.get("rows"):
            start = max(start, pd.Timestamp(manifest["end"]) - self.overlap)
        kinds = manifest.get("metric_kinds")
        started = time.perf_counter()
        try:
            got = fetch(self.client, self.mapping, start, now, metrics=kinds, only=list(kinds) if kinds else None)
        except PrometheusError as exc:
            self.failures += 1
            self.last_error = str(exc)
            self.next_try = self.monotonic() + min(MAX_BACKOFF, self.client.backoff * 2 ** self.failures)
            raise
        self.failures, self.last_error = 0, None
        fresh_absent = set(got.absent) - self.reported_absent
        if fresh_absent:
            log.warning("not in Prometheus, left out: %s", ", ".join(sorted(fresh_absent)))
            self.reported_absent |= fresh_absent
        self.last_fetch = {"start": start.isoformat(), "end": now.isoformat(), "series": got.series,
                           "rows": len(got.frame), "seconds": round(time.perf_counter() - started, 3),
                           "absent": sorted(self.reported_absent)}
        return (got.frame if len(got.frame) else None), None

    def done(self, token: None) -> None:
        return None
