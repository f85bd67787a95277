"""Bring your own data: CSV or Parquet files, long form or one file per series, into a dataset.

Two layouts are read:

- long form: ``timestamp, server_name`` then any numeric metric columns (names mapped by the
  mapping file's ``[columns]`` table);
- one file per series: ``timestamp, value``, the server and metric named by the file name
  (``file_pattern``, a regular expression with ``server`` and ``metric`` groups, or a
  ``[files."name.csv"]`` entry), as in NAB's AWS CloudWatch set.

Real data is irregular, and the import says what it did with it instead of hiding it:
duplicate timestamps are averaged or rejected (``duplicates``); times off the dataset's grid
are averaged into it or rejected (``resample``); gaps stay gaps and are counted (short ones are
filled for model input only, at training and forecast time). ``ImportReport`` holds the
figures the CLI prints. Any file that cannot be read cleanly stops the whole import: nothing is
written, and every problem of every file is reported at once.

The mapping file (TOML), every table optional::

    step = "5min"
    duplicates = "mean"          # or "reject"
    resample = "mean"            # or "none": times off the grid are an error
    file_pattern = '^(?P<metric>.+)_(?P<server>[0-9a-f]+)\\.csv$'
    labels = "anomaly_windows.json"   # next to the files: {file name: [[start, end], ...]}, or a
                                      # CSV/Parquet table server_name, start, end[, metric] (labels.py)
    label_column = "Label"       # a per-point label column inside the data files (1/0): its runs
                                 # of anomalous points become labelled windows, not a metric

    [columns]                    # long form: your column -> Argus name
    host = "server_name"

    [metrics.cpu_utilization_pct]     # an Argus metric: unit, kind, thresholds
    unit = "%"
    kind = "percent"             # percent (0..100), rate (>= 0) or count
    warning = 85
    critical = 95

    [sources.ec2_cpu_utilization]     # a metric as named in your files -> Argus metric
    metric = "cpu_utilization_pct"
    server_prefix = "ec2-"
    profile = "GENERIC"

    [files."grok_asg_anomaly.csv"]    # a file the pattern cannot name
    server = "asg-grok"
    source = "ec2_cpu_utilization"

    [servers]                    # server -> profile (else inferred from the name)
    "db-7" = "DATABASE"
"""

from __future__ import annotations

import csv
import difflib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import labels as labelled
from argus_core.data import schema, store
from argus_core.data.files import read_table
from argus_core.data.profiles import PROFILE_NAMES, infer_profiles
from argus_core.data.schema import Problem
from argus_core.errors import ArgusError, SchemaError, SettingsError

SUFFIXES = (".csv", ".parquet", ".pq")
MIN_ROWS = schema.MIN_ROWS


@dataclass
class MetricInfo:
    unit: str = ""
    kind: str = "rate"
    warning: float | None = None
    critical: float | None = None


@dataclass
class Mapping:
    step: str = ""  # "": the data's own cadence when it is coarser than 5min and divides a day (infer_step)
    duplicates: str = "mean"
    resample: str = "none"
    file_pattern: str | None = None
    labels: str | None = None
    label_column: str | None = None  # a per-point label column of the data files (1/0)
    columns: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    sources: dict[str, dict] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)

    def kind_of(self, metric: str) -> str:
        if metric in self.metrics:
            return self.metrics[metric].kind
        return "percent" if metric.endswith("_pct") else "rate"


@dataclass
class FileReport:
    path: str
    rows_read: int = 0
    rows_kept: int = 0  # distinct (server, time) rows
    values_kept: int = 0  # metric values: a long-form row holds one per metric column
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> values
    averaged: dict[str, int] = field(default_factory=dict)  # how -> values merged into others (kept, as a mean)
    notes: list[str] = field(default_factory=list)
    points: pd.DataFrame | None = None  # per-point labels of the mapping's label column
    problems: list[Problem] = field(default_factory=list)
    series: list[tuple[str, str]] = field(default_factory=list)  # (server, metric)


@dataclass
class ImportReport:
    files: list[FileReport]
    step: str
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)
    servers: dict[str, str] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    written: bool = False
    dataset: str = ""
    labels: labelled.Labels | None = None  # the labels file's windows, when the import names one

    @property
    def ok(self) -> bool:
        return not any(f.problems for f in self.files) and not (self.labels and self.labels.problems)

    def to_json(self) -> dict:
        gaps = self.gaps
        return {
            "files": len(self.files),
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_kept": sum(f.rows_kept for f in self.files),
            "values_kept": sum(f.values_kept for f in self.files),
            "dropped": _sum_dicts(f.dropped for f in self.files),
            "averaged": _sum_dicts(f.averaged for f in self.files),
            "gaps": int(len(gaps)),
            "missing_steps": int(gaps["missing_steps"].sum()) if len(gaps) else 0,
            "longest_gap_steps": int(gaps["missing_steps"].max()) if len(gaps) else 0,
            "servers": len(self.servers),
            "metrics": self.metrics,
        }

    def lines(self) -> list[str]:
        out = []
        for f in self.files:
            status = "REJECTED" if f.problems else "ok"
            dropped = ", ".join(f"{n:,} {why}" for why, n in f.dropped.items()) or "none"
            averaged = "; averaged " + ", ".join(f"{n:,} values {how}" for how, n in f.averaged.items()) \
                if f.averaged else ""
            out.append(f"{status:<8} {f.path}: read {f.rows_read:,} rows, kept {f.rows_kept:,} rows "
                       f"({f.values_kept:,} values), dropped {dropped}{averaged}")
            out += [f"         - {problem}" for problem in f.problems]
            out += [f"         . {note}" for note in f.notes]
        if self.labels:
            out.append(self.labels.line())
            out += [f"         - {problem}" for problem in self.labels.problems]
            out += [f"         . {note}" for note in self.labels.notes]
        summary = self.to_json()
        out.append(f"total: {summary['rows_read']:,} rows read, {summary['rows_kept']:,} rows kept "
                   f"({summary['values_kept']:,} values), {sum(summary['dropped'].values()):,} values dropped"
                   + (" (" + ", ".join(f"{n:,} {why}" for why, n in summary["dropped"].items()) + ")"
                      if summary["dropped"] else "")
                   + (", " + ", ".join(f"{n:,} values averaged {how}" for how, n in summary["averaged"].items())
                      if summary["averaged"] else ""))
        if self.ok:
            out.append(f"gaps: {summary['gaps']} gap(s), {summary['missing_steps']:,} missing {self.step} step(s), "
                       f"longest {summary['longest_gap_steps']} step(s); kept as gaps (filled for model input only)")
            profiles = pd.Series(self.servers).value_counts()
            out.append(f"servers: {len(self.servers)} (" + ", ".join(f"{p} {n}" for p, n in profiles.items()) + ")")
            out.append(f"metrics: {', '.join(self.metrics)}")
        return out


TOP_KEYS = ("step", "duplicates", "resample", "file_pattern", "labels", "label_column", "columns", "metrics",
            "sources", "files", "servers")
TABLES = ("columns", "metrics", "sources", "files", "servers")
METRIC_KEYS = ("unit", "kind", "warning", "critical")
SOURCE_KEYS = ("metric", "server_prefix", "profile")
FILE_KEYS = ("server", "source", "metric", "profile")


def _unknown(keys, allowed: tuple[str, ...], where: str) -> list[Problem]:
    """A problem for each key not in ``allowed``, naming the nearest valid one."""
    out = []
    for key in sorted(k for k in keys if k not in allowed):
        # also against each name's last word: "prefx" is meant for "server_prefix"
        words = {name.rsplit("_", 1)[-1]: name for name in allowed}
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) or \
            [words[w] for w in difflib.get_close_matches(key, list(words), n=1, cutoff=0.6)]
        hint = f"did you mean {near[0]!r}?" if near else f"valid: {', '.join(allowed)}"
        out.append(Problem("unknown key", where, 1, (f"{key!r}: {hint}",)))
    return out


def _typed(raw: dict, key: str, kinds: tuple[type, ...], where: str, problems: list[Problem], default=None):
    """``raw[key]`` when it has one of ``kinds`` (a problem naming the key otherwise)."""
    value = raw.get(key, default)
    if value is None or (isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)):
        return value
    names = " or ".join("a number" if k in (int, float) else {str: "text", dict: "a table"}.get(k, k.__name__)
                        for k in dict.fromkeys(kinds))
    problems.append(Problem("wrong type", f"{where}{key}", 1, (f"{value!r}: must be {names}",)))
    return default


def _table_of(raw: dict, key: str, problems: list[Problem], values: tuple[type, ...]) -> dict:
    """A table whose values each have one of ``values``; problems name what is off."""
    table = _typed(raw, key, (dict,), "", problems, {})
    out = {}
    for name, value in (table or {}).items():
        if isinstance(value, values) and not isinstance(value, bool):
            out[str(name)] = value
        else:
            kind = "a table" if values == (dict,) else "text"
            problems.append(Problem("wrong type", f"{key}.{name}", 1, (f"{value!r}: must be {kind}",)))
    return out


def load_mapping(path: str | Path | None) -> Mapping:
    """The mapping file as a ``Mapping``; SchemaError naming the file and every problem in it:
    unknown keys (with the nearest valid one), values of the wrong type, unknown options."""
    if path is None:
        return Mapping()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError([Problem("unreadable mapping file", None, 0, (str(exc),))], str(path)) from exc
    problems = _unknown(raw, TOP_KEYS, "mapping")
    text = (str,)
    mapping = Mapping(
        step=_typed(raw, "step", text, "", problems, ""),
        duplicates=_typed(raw, "duplicates", text, "", problems, "mean"),
        resample=_typed(raw, "resample", text, "", problems, "none"),
        file_pattern=_typed(raw, "file_pattern", text, "", problems),
        labels=_typed(raw, "labels", text, "", problems),
        label_column=_typed(raw, "label_column", text, "", problems),
        columns=_table_of(raw, "columns", problems, text),
        sources=_table_of(raw, "sources", problems, (dict,)),
        files=_table_of(raw, "files", problems, (dict,)),
        servers=_table_of(raw, "servers", problems, text),
    )
    for table, allowed in (("sources", SOURCE_KEYS), ("files", FILE_KEYS)):
        for name, entry in getattr(mapping, table).items():
            problems += _unknown(entry, allowed, f"{table}.{name}")
            for key in allowed:
                _typed(entry, key, text, f"{table}.{name}.", problems)
    number = (int, float)
    for name, info in _table_of(raw, "metrics", problems, (dict,)).items():
        where = f"metrics.{name}."
        problems += _unknown(info, METRIC_KEYS, f"metrics.{name}")
        metric = MetricInfo(unit=_typed(info, "unit", text, where, problems, ""),
                            kind=_typed(info, "kind", text, where, problems, "rate"),
                            warning=_typed(info, "warning", number, where, problems),
                            critical=_typed(info, "critical", number, where, problems))
        if metric.kind not in schema.METRIC_KINDS:
            problems.append(Problem("unknown kind", f"metrics.{name}", 1, (f"{metric.kind!r}; use one of "
                                                                           f"{', '.join(schema.METRIC_KINDS)}",)))
        if (metric.warning is None) != (metric.critical is None) or (
                metric.warning is not None and not metric.warning < metric.critical):
            problems.append(Problem("thresholds", f"metrics.{name}", 1, ("give both warning and critical, "
                                                                         "warning below critical",)))
        mapping.metrics[name] = metric
    for option, allowed in (("duplicates", ("mean", "reject")), ("resample", ("mean", "none"))):
        if getattr(mapping, option) not in allowed:
            problems.append(Problem("unknown option", option, 1, (f"{getattr(mapping, option)!r}; use "
                                                                  f"{' or '.join(allowed)}",)))
    bad_profiles = {s: p for s, p in mapping.servers.items() if p not in PROFILE_NAMES}
    bad_profiles |= {k: v["profile"] for k, v in {**mapping.sources, **mapping.files}.items()
                     if "profile" in v and v["profile"] not in PROFILE_NAMES}
    if bad_profiles:
        problems.append(Problem("unknown profile", "profile", len(bad_profiles),
                                tuple(f"{k} = {v!r}" for k, v in list(bad_profiles.items())[:3])
                                + (f"allowed: {', '.join(PROFILE_NAMES)}",)))
    try:
        if mapping.step:
            schema.parse_step(mapping.step)
    except SettingsError as exc:
        problems.append(Problem("unknown step", "step", 1, (str(exc),)))
    if mapping.file_pattern:
        try:
            re.compile(mapping.file_pattern)
        except re.error as exc:
            problems.append(Problem("bad file_pattern", "file_pattern", 1, (str(exc),)))
    if problems:
        raise SchemaError(problems, str(path))
    return mapping


def expand(paths: list[Path]) -> list[Path]:
    """Files to read: each file as given, the data files inside each directory (sorted)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
        else:
            found.append(path)
    return found


def import_files(paths: list[Path], dataset: str | Path, mapping: Mapping | None = None,
                 dry_run: bool = False, progress=None) -> ImportReport:
    """Read, check and write ``paths`` into ``dataset``; the report says what happened.

    Nothing is written when any file has a problem (``report.ok`` is False) or on ``dry_run``.
    ``progress(done, total, path)`` is called after each file is read (a long import says where it is)."""
    mapping = mapping or Mapping()
    files = expand(paths)
    if not files:
        raise ArgusError("no CSV or Parquet files to import in " + ", ".join(str(p) for p in paths))
    step_note = ""
    if store.is_dataset(dataset):  # more data for a dataset: its step
        stored = store.read_manifest(dataset).get("step", schema.DEFAULT_STEP)
        if mapping.step and stored != mapping.step:
            raise ArgusError(f"{dataset} has a {stored} step; the import uses {mapping.step}: "
                             "set `step` in the mapping file (or --step) to match")
        mapping = replace(mapping, step=stored)
    read: list[tuple[FileReport, pd.DataFrame | None]] = []
    for done, path in enumerate(files, start=1):
        report = FileReport(str(path))
        read.append((report, _read_one(path, mapping, report)))
        if progress is not None:
            progress(done, len(files), path)
    if not mapping.step:
        step = infer_step([frame for _, frame in read if frame is not None])
        mapping = replace(mapping, step=step)
        step_note = (f"step {step}: the data's cadence (--step, or `step` in the mapping, sets another)"
                     if step != schema.DEFAULT_STEP else "")
    reports, pieces = [], []
    for file_report, frame in read:
        reports.append(file_report)
        if frame is not None and not file_report.problems:
            frame = _on_grid(frame, mapping, file_report)
        if frame is not None and not file_report.problems:
            file_report.values_kept = int(len(frame))
            file_report.rows_kept = int(len(frame[[schema.SERVER, schema.TIMESTAMP]].drop_duplicates()))
            file_report.series = sorted(set(zip(frame[schema.SERVER], frame["metric"], strict=True)))
            pieces.append(frame[[schema.SERVER, "metric", schema.TIMESTAMP, "value", "source"]])
    report = ImportReport(reports, mapping.step, dataset=str(dataset))
    if step_note and reports:
        reports[0].notes.append(step_note)
    if not report.ok:
        return report
    long = pd.concat(pieces, ignore_index=True)
    clash = long.duplicated([schema.SERVER, "metric", schema.TIMESTAMP], keep=False)
    if clash.any():
        examples = long[clash].head(3)
        reports[0].problems.append(Problem(
            "the same server, metric and time in two files", None, int(clash.sum()),
            tuple(f"{r.server_name} {r.metric} {r.timestamp}" for r in examples.itertuples())))
        return report
    wide = long.pivot(index=[schema.SERVER, schema.TIMESTAMP], columns="metric", values="value").reset_index()
    wide.columns.name = None
    metrics = sorted(long["metric"].unique())
    profile_of = _profiles(long, mapping)
    wide[schema.PROFILE] = wide[schema.SERVER].map(profile_of)
    kinds = {m: mapping.kind_of(m) for m in metrics}
    canonical, problems = schema.check(wide, step=mapping.step, metrics=kinds)
    if problems:
        reports[0].problems += problems
        return report
    report.gaps = schema.find_gaps(canonical, mapping.step)
    report.servers, report.metrics = dict(sorted(profile_of.items())), metrics
    report.labels = _labels(files, mapping, long)
    points = [f.points for f in reports if f.points is not None]
    if points:  # the label column's runs of anomalous points, with the labels file's windows if any
        span = (long[schema.TIMESTAMP].min(), long[schema.TIMESTAMP].max())
        from_column = labelled.from_points(pd.concat(points, ignore_index=True), f"column {mapping.label_column}",
                                           set(long[schema.SERVER].unique()), set(long["metric"].unique()), span)
        if report.labels is None:
            report.labels = from_column
        else:
            report.labels.problems += from_column.problems
            report.labels.notes += from_column.notes
            report.labels.windows = labelled.merged(report.labels.windows, from_column.windows)
    if dry_run or not report.ok:
        return report
    extra = {
        "metric_kinds": kinds,
        "units": {m: mapping.metrics[m].unit for m in metrics if m in mapping.metrics},
        "thresholds": {m: {"warning": float(mapping.metrics[m].warning), "critical": float(mapping.metrics[m].critical)}
                       for m in metrics if m in mapping.metrics and mapping.metrics[m].warning is not None},
        "import_report": report.to_json(),
        "labels": report.labels.windows if report.labels else [],
    }
    if store.is_dataset(dataset):
        store.append(dataset, canonical, source=", ".join(str(p) for p in paths))
        update = {"import_report": extra["import_report"]}
        if extra["labels"]:  # windows already stored stay; the same window given again is kept once
            update["labels"] = labelled.merged(store.read_manifest(dataset).get("labels"), extra["labels"])
        store.update_manifest(dataset, update)
    else:
        store.write_dataset(dataset, canonical, kind="imported", step=mapping.step,
                            extra={"sources": [str(p) for p in paths], **extra})
    report.written = True
    return report


# --- one file ------------------------------------------------------------------------------------------

def _read_one(path: Path, mapping: Mapping, report: FileReport) -> pd.DataFrame | None:
    """One file as long rows ``server_name, metric, timestamp, value, source`` as read (``_on_grid``
    puts them on the step's grid once the step is known), or None."""
    try:
        raw = read_table(path)
    except FileNotFoundError as exc:
        report.problems.append(Problem("missing file", None, 0, (str(exc),)))
        return None
    except SchemaError as exc:
        report.problems += exc.problems
        return None
    report.rows_read = len(raw)
    raw = raw.rename(columns={c: str(c).strip() for c in raw.columns}).rename(columns=mapping.columns)
    if schema.TIMESTAMP not in raw.columns:
        report.problems.append(_no_timestamp(path, raw))
        return None
    if schema.SERVER in raw.columns:
        value_cols = [c for c in raw.columns if c not in (schema.TIMESTAMP, schema.SERVER, schema.STATUS,
                                                          schema.PROFILE)]
        if mapping.label_column and mapping.label_column in value_cols:  # per-point labels, not a metric
            value_cols.remove(mapping.label_column)
            report.points = pd.DataFrame({schema.TIMESTAMP: raw[schema.TIMESTAMP],
                                          schema.SERVER: raw[schema.SERVER].map(
                                              lambda v: _server_name(str(v).strip(), "", mapping)),
                                          "anomaly": raw[mapping.label_column]})
        if mapping.sources:  # a mapping that names its sources: any other column is said, not read
            named = set(mapping.sources) | set(mapping.metrics) | set(mapping.columns.values()) \
                | set(schema.METRIC_COLUMNS)
            ignored = [c for c in value_cols if c not in named]
            if ignored:
                report.notes.append(f"ignored: {', '.join(map(str, ignored[:8]))}{', ...' if len(ignored) > 8 else ''}"
                                    " (columns the mapping's [sources] and [metrics] do not name; name them there "
                                    "to import them" + (", or set label_column" if len(ignored) == 1 else "") + ")")
                value_cols = [c for c in value_cols if c in named]
        if not value_cols:
            report.problems.append(Problem("no metric columns", None, 0, (f"columns: {', '.join(raw.columns)}",)))
            return None
        long = raw.melt(id_vars=[schema.TIMESTAMP, schema.SERVER], value_vars=value_cols,
                        var_name="source", value_name="value")
        long[schema.SERVER] = long[schema.SERVER].astype("string").str.strip()
    else:
        named = _name_from_file(path, mapping)
        if named is None:
            report.problems.append(Problem(
                "cannot tell server and metric", None, 0,
                (f"{path.name} has no server_name column and its name does not match file_pattern; "
                 "add a [files.\"" + path.name + "\"] entry (server, source) to the mapping file",)))
            return None
        value_col = "value" if "value" in raw.columns else None
        others = [c for c in raw.columns if c != schema.TIMESTAMP]
        if value_col is None and len(others) == 1:
            value_col = others[0]
        if value_col is None:
            report.problems.append(Problem("missing column", "value", report.rows_read,
                                           (f"columns: {', '.join(map(str, raw.columns))}",)))
            return None
        server, source = named
        long = pd.DataFrame({schema.TIMESTAMP: raw[schema.TIMESTAMP], schema.SERVER: server, "source": source,
                             "value": raw[value_col]})
    if report.rows_read < MIN_ROWS:
        report.problems.append(Problem("too short", None, report.rows_read,
                                       (f"{report.rows_read} row(s): a series needs at least {MIN_ROWS} rows "
                                        "to have a cadence",)))
        return None
    long["metric"] = [_metric_of(s, mapping) for s in long["source"]]
    long[schema.SERVER] = [_server_name(srv, src, mapping) for srv, src in zip(long[schema.SERVER], long["source"],
                                                                                strict=True)]
    stamps = _timestamps(long[schema.TIMESTAMP], report)
    values = _values(long, report)
    if report.problems:
        return None
    long = long.assign(**{schema.TIMESTAMP: stamps, "value": values})
    missing = long["value"].isna()
    if missing.any():
        report.dropped["empty value"] = int(missing.sum())
        long = long[~missing]
    return long


def infer_step(frames: list[pd.DataFrame]) -> str:
    """The step of a new dataset whose import names none: the data's cadence (the median time between
    a series' values) when it is a whole number of minutes, coarser than the default 5min and a
    divisor of a day (so "same time yesterday" exists); the default otherwise. Finer data stays at
    5min: it is averaged onto that grid or refused (``resample``), as before."""
    gaps = [np.diff(np.sort(group.to_numpy("datetime64[ns]").astype(np.int64)))
            for frame in frames for _, group in frame.groupby([schema.SERVER, "metric"], sort=False)[schema.TIMESTAMP]
            if len(group) > 1]
    gaps = [g[g > 0] for g in gaps]
    every = np.concatenate(gaps) if gaps else np.array([], dtype=np.int64)
    if not len(every):
        return schema.DEFAULT_STEP
    cadence = pd.Timedelta(int(np.median(every)), unit="ns")
    if (cadence % pd.Timedelta("1min") != pd.Timedelta(0) or cadence <= pd.Timedelta(schema.DEFAULT_STEP)
            or pd.Timedelta("1D") % cadence != pd.Timedelta(0)):
        return schema.DEFAULT_STEP
    return schema.duration_text(cadence)


def _no_timestamp(path: Path, raw: pd.DataFrame) -> Problem:
    header = ",".join(map(str, raw.columns))
    hint = []
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="") as handle:
                dialect = csv.Sniffer().sniff(handle.readline(), delimiters=";\t|,")
            if dialect.delimiter != ",":
                hint.append(f"the header splits on {dialect.delimiter!r}: Argus reads comma-separated files; "
                            "save it with commas")
        except (csv.Error, OSError, UnicodeDecodeError):
            pass
    return Problem("missing column", schema.TIMESTAMP, len(raw), (f"header: {header[:80]!r}", *hint))


def _name_from_file(path: Path, mapping: Mapping) -> tuple[str, str] | None:
    if path.name in mapping.files:
        entry = mapping.files[path.name]
        return str(entry["server"]), str(entry.get("source", entry.get("metric", "value")))
    if mapping.file_pattern:
        match = re.match(mapping.file_pattern, path.name)
        if match and "server" in match.groupdict() and "metric" in match.groupdict():
            return match["server"], match["metric"]
    return None


def _metric_of(source: str, mapping: Mapping) -> str:
    return str(mapping.sources.get(source, {}).get("metric", source))


def _server_name(server: str, source: str, mapping: Mapping) -> str:
    return str(mapping.sources.get(source, {}).get("server_prefix", "")) + str(server)


def _timestamps(raw: pd.Series, report: FileReport) -> pd.Series:
    parsed, bad, mixed = schema.parse_times(raw)  # the contract's rules (schema.validate reads times alike)
    text = raw.astype("string").str.strip()
    if mixed.any():
        where = np.flatnonzero(mixed)[:3]
        report.problems.append(Problem(
            "mixed time zones", schema.TIMESTAMP, int(mixed.sum()),
            tuple(f"row {i + 2}: {text.iloc[i]!r}" for i in where)
            + ("some times carry a UTC offset and some do not: give every time the same form (Argus reads "
               "times without an offset as UTC)",)))
    if bad.any():
        where = np.flatnonzero(bad)[:3]
        report.problems.append(Problem(
            "unreadable time", schema.TIMESTAMP, int(bad.sum()),
            tuple(f"row {i + 2}: {text.iloc[i]!r}" for i in where)
            + ("expected ISO 8601 between 1677 and 2262, e.g. 2014-02-14 14:30:00",)))
    if raw.isna().any():
        report.problems.append(Problem("missing value", schema.TIMESTAMP, int(raw.isna().sum())))
    return parsed


def _values(long: pd.DataFrame, report: FileReport) -> pd.Series:
    raw = long["value"]
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype("float64")
    else:
        text = raw.astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = (values.isna() & text.notna() & (text != "")).to_numpy()
        if bad.any():
            where = np.flatnonzero(bad)[:3]
            report.problems.append(Problem(
                "text in a value column", str(long["source"].iloc[where[0]]), int(bad.sum()),
                tuple(f"row {i + 2}: {text.iloc[i]!r}" for i in where)))
    inf = np.isinf(values.to_numpy())
    if inf.any():
        report.problems.append(Problem("inf", "value", int(inf.sum())))
    return values


def _on_grid(long: pd.DataFrame, mapping: Mapping, report: FileReport) -> pd.DataFrame | None:
    """Duplicates and off-grid times, handled as the mapping says and counted in the report."""
    step = pd.Timedelta(mapping.step)
    keys = [schema.SERVER, "metric", schema.TIMESTAMP]
    dup = long.duplicated(keys, keep=False)
    if dup.any():
        extra = int(long.duplicated(keys).sum())
        if mapping.duplicates == "reject":
            where = long[dup].head(3)
            report.problems.append(Problem("duplicate timestamps", schema.TIMESTAMP, extra,
                                           tuple(str(t) for t in where[schema.TIMESTAMP])
                                           + ("set duplicates = \"mean\" in the mapping (or --duplicates mean) "
                                              "to average them",)))
            return None
        long = long.groupby(keys, as_index=False, sort=False).agg(value=("value", "mean"), source=("source", "first"))
        report.averaged["with their duplicates (the same time twice)"] = extra
    off = (long[schema.TIMESTAMP] - long[schema.TIMESTAMP].dt.floor(step)) != pd.Timedelta(0)
    if off.any():
        if mapping.resample != "mean":
            where = long[off].head(3)
            report.problems.append(Problem(
                "off the grid", schema.TIMESTAMP, int(off.sum()),
                tuple(str(t) for t in where[schema.TIMESTAMP])
                + (f"times are not on the {mapping.step} grid; set resample = \"mean\" in the mapping (or --resample "
                   "mean) to average them into it",)))
            return None
        before = len(long)
        long = long.assign(**{schema.TIMESTAMP: long[schema.TIMESTAMP].dt.floor(step)})
        long = long.groupby(keys, as_index=False, sort=False).agg(value=("value", "mean"), source=("source", "first"))
        report.notes.append(f"{int(off.sum()):,} time(s) off the {mapping.step} grid moved onto it")
        if before > len(long):
            report.averaged[f"into {mapping.step} steps"] = before - len(long)
    diffs = long.sort_values(keys)[schema.TIMESTAMP].diff().dropna()
    if len(diffs):
        cadence = diffs[diffs > pd.Timedelta(0)].median()
        if pd.notna(cadence) and cadence > step:
            report.notes.append(f"cadence {cadence} is coarser than the {mapping.step} step: the steps between "
                                "are gaps")
    return long


def _profiles(long: pd.DataFrame, mapping: Mapping) -> dict[str, str]:
    servers = long.groupby(schema.SERVER)["source"].first()
    by_source = {s: v["profile"] for s, v in mapping.sources.items() if "profile" in v}
    by_file = {str(v["server"]): v["profile"] for v in mapping.files.values() if "profile" in v and "server" in v}
    inferred = dict(zip(servers.index, infer_profiles(servers.index.to_numpy()), strict=True))
    return {name: mapping.servers.get(name) or by_file.get(name) or by_source.get(source) or inferred[name]
            for name, source in servers.items()}


def _labels(files: list[Path], mapping: Mapping, long: pd.DataFrame) -> labelled.Labels | None:
    """The mapping's labels file (next to the data files, or a path given on the command line),
    read for the servers and metrics this import holds; None when the import names none."""
    if not mapping.labels or not files:
        return None
    series_of_file = {}
    for path in files:
        named = _name_from_file(path, mapping)
        if named:
            series_of_file[path.name] = (_server_name(named[0], named[1], mapping), _metric_of(named[1], mapping))
    return labelled.read(files[0].parent / mapping.labels, set(long[schema.SERVER].unique()),
                         set(long["metric"].unique()), series_of_file,
                         span=(long[schema.TIMESTAMP].min(), long[schema.TIMESTAMP].max()))


def _sum_dicts(dicts) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0) + value
    return total
