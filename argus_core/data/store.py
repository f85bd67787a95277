"""Datasets on disk: parquet partitioned by UTC day, a JSON manifest, incident ground truth.

    DIR/
      manifest.json          schema version, servers and profiles, span, rows, generator settings
      incidents.parquet      ground truth (simulated data only)
      date=YYYY-MM-DD/part-0.parquet

Every file is written under a temporary name and renamed into place, so a crash never leaves a
half-written file visible. A new dataset is built in a sibling directory and swapped in whole.
Readers name a time window and servers and open only the day partitions that overlap it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

from argus_core import atomic
from argus_core.data import schema
from argus_core.errors import DatasetError, SchemaError

MANIFEST = "manifest.json"
INCIDENTS = "incidents.parquet"
PART = "part-0.parquet"
LABEL_COLUMNS = (schema.SERVER, schema.STATUS, schema.PROFILE)


def is_dataset(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def looks_like_dataset(directory: str | Path) -> bool:
    """True when ``directory`` holds an Argus manifest (not just any manifest.json)."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "schema_version" in manifest and "servers" in manifest


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a dataset; DatasetError when there is none or it is unreadable."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{directory} is not an Argus dataset (no {MANIFEST}); create one with "
                           "`python -m argus_core generate --output DIR` or `import FILE --dataset DIR`")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def write_dataset(
    directory: str | Path,
    frame: pd.DataFrame,
    *,
    kind: str,
    step: str = schema.DEFAULT_STEP,
    incidents: pd.DataFrame | None = None,
    extra: dict | None = None,
    progress: bool = False,
) -> dict:
    """Write a new dataset from a canonical frame, replacing any dataset already at ``directory``.

    The dataset is built beside the target and swapped in at the end. A directory that exists
    but is not a dataset is never touched (DatasetError)."""
    target = Path(directory)
    if target.exists() and not is_dataset(target) and (not target.is_dir() or any(target.iterdir())):
        raise DatasetError(f"{target} exists and is not an Argus dataset; refusing to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    os.chmod(staging, 0o777 & ~atomic.UMASK)
    try:
        partitions = _write_partitions(staging, frame, progress=progress)
        if incidents is not None:
            _write_parquet(pa.Table.from_pandas(incidents, preserve_index=False), staging / INCIDENTS)
        manifest = _manifest(frame, partitions, kind=kind, step=step,
                             incidents=None if incidents is None else len(incidents), extra=extra)
        atomic.write_json(staging / MANIFEST, manifest)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def append(directory: str | Path, frame: pd.DataFrame, *, source: str, step: str | None = None,
           progress: bool = False) -> dict:
    """Add a canonical frame to a dataset (created when missing, with ``step``: the default 5min
    when None); returns the new manifest. An existing dataset keeps its own step.

    Rows that already exist for the same (server, timestamp) are refused, as is a server whose
    profile disagrees with the manifest. Nothing is written until every check has passed."""
    target = Path(directory)
    if not is_dataset(target):
        return write_dataset(target, frame, kind="imported", step=step or schema.DEFAULT_STEP,
                             extra={"sources": [source]}, progress=progress)
    manifest = read_manifest(target)
    known = manifest.get("servers", {})
    new_profiles = frame.groupby(schema.SERVER, observed=True)[schema.PROFILE].first().astype(str)
    clashes = [f"{name}: {known[name]} in the dataset, {profile} in {source}"
               for name, profile in new_profiles.items() if name in known and known[name] != profile]
    if clashes:
        raise SchemaError([schema.Problem("profile differs from the dataset", schema.PROFILE, len(clashes),
                                          tuple(clashes[:3]))], source)
    days = _day_keys(frame)
    touched = sorted(set(days))
    merged: dict[str, pd.DataFrame] = {}
    for day in touched:
        new_rows = frame[days == day]
        path = partition_file(target, manifest, day)
        old_rows = _read_files([path]) if day in manifest.get("partitions", {}) and path.exists() else None
        combined = new_rows if old_rows is None else pd.concat([old_rows, new_rows], ignore_index=True)
        # in (server, time) order, as a day's file is kept: a late row for a server goes between its
        # stored rows, not after them (validation checks each server's order as given)
        combined = combined.sort_values([schema.SERVER, schema.TIMESTAMP], kind="stable").reset_index(drop=True)
        keys = combined[[schema.SERVER, schema.TIMESTAMP]].astype({schema.SERVER: str})
        dup = keys.duplicated(keep=False).to_numpy()
        if dup.any():
            examples = tuple(f"server_name={s!r} timestamp={t}" for s, t in keys[dup].head(3).itertuples(index=False))
            raise SchemaError([schema.Problem("rows already in the dataset", None, int(dup.sum()) // 2, examples)],
                              source)
        merged[day] = combined
    step = manifest.get("step", schema.DEFAULT_STEP)
    kinds = manifest.get("metric_kinds")
    if kinds is not None and set(kinds) != set(_metric_columns(frame)):
        raise SchemaError([schema.Problem("metric set differs from the dataset", None, len(frame),
                                          (f"dataset: {', '.join(kinds)}",
                                           f"{source}: {', '.join(_metric_columns(frame))}"))], source)
    everything = pd.concat(list(merged.values()), ignore_index=True)
    # the merged days must still be a valid series
    schema.validate(everything, step=step, source=source, metrics=kinds)
    _remove_unlisted(target, manifest)  # what an append killed before its commit left behind
    # New day files get names no manifest has listed; the manifest's rename is the one commit
    # point. Killed before it, the dataset reads as before (the new files are unlisted and go at
    # the next append); after it, it reads the new rows (the old files go right after).
    generation = int(manifest.get("generation", 0)) + 1
    files = dict(manifest.get("files", {}))
    written: list[Path] = []
    superseded: list[Path] = []
    rows = dict(manifest.get("partitions", {}))
    try:
        for day, combined in tqdm(merged.items(), desc="writing", unit="day", disable=not progress):
            canonical = schema.validate(combined, step=step, source=source, metrics=kinds)
            name = f"date={day}/part-{generation}.parquet"
            tmp, final = _stage_parquet(_to_table(canonical), target / name)
            written.append(final)
            atomic.publish(tmp, final)
            if day in rows:
                superseded.append(partition_file(target, manifest, day))
            files[day], rows[day] = name, len(canonical)
        servers = {**known, **new_profiles.to_dict()}
        updated = {
            **manifest,
            "servers": dict(sorted(servers.items())),
            "rows": int(sum(rows.values())),
            "partitions": dict(sorted(rows.items())),
            "files": dict(sorted(files.items())),
            "generation": generation,
            "start": min(manifest["start"], _iso(frame[schema.TIMESTAMP].min())),
            "end": max(manifest["end"], _iso(frame[schema.TIMESTAMP].max())),
            "sources": [*manifest.get("sources", []), source],
        }
        atomic.write_json(target / MANIFEST, updated)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
        raise
    for path in superseded:
        path.unlink(missing_ok=True)
    return updated


def partition_file(directory: str | Path, manifest: dict, day: str) -> Path:
    """The file holding day ``day``: the one the manifest lists (appends write new names), else
    the name a new dataset gives it."""
    return Path(directory) / manifest.get("files", {}).get(day, f"date={day}/{PART}")


def _remove_unlisted(directory: Path, manifest: dict) -> None:
    """Delete partition files (and temporary files) the manifest does not list."""
    listed = {partition_file(directory, manifest, day) for day in manifest.get("partitions", {})}
    for tmp in directory.glob(f".{MANIFEST}.*.tmp"):  # a manifest staged but never renamed
        tmp.unlink(missing_ok=True)
    for part in directory.glob("date=*"):
        for path in part.iterdir():
            if path.is_file() and path not in listed and (path.suffix in (".parquet", ".tmp")):
                path.unlink(missing_ok=True)
        if part.is_dir() and not any(part.iterdir()):
            part.rmdir()


def partitions_for_window(directory: str | Path, start: pd.Timestamp | None = None,
                          end: pd.Timestamp | None = None, manifest: dict | None = None) -> list[Path]:
    """The partition files that can hold rows in [start, end] (UTC days), oldest first: the ones
    the manifest lists, so files of an append that never committed are never read."""
    manifest = read_manifest(directory) if manifest is None else manifest
    first = None if start is None else _utc(start).strftime("%Y-%m-%d")
    last = None if end is None else _utc(end).strftime("%Y-%m-%d")
    files = []
    for day in sorted(manifest.get("partitions", {})):
        path = partition_file(directory, manifest, day)
        if (first is None or day >= first) and (last is None or day <= last) and path.exists():
            files.append(path)
    return files


def read(
    directory: str | Path,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    servers: Iterable[str] | None = None,
    columns: list[str] | None = None,
    manifest: dict | None = None,
) -> pd.DataFrame:
    """Rows with start <= timestamp <= end for ``servers`` (all when None), sorted by server and time.
    ``manifest``: the dataset's, when the caller has read it already (otherwise read here, so that a
    directory that is not a dataset is a DatasetError)."""
    manifest = read_manifest(directory) if manifest is None else manifest
    start_ts = None if start is None else _utc(start)
    end_ts = None if end is None else _utc(end)
    files = partitions_for_window(directory, start_ts, end_ts, manifest)
    condition = None
    if start_ts is not None:
        condition = pc.field(schema.TIMESTAMP) >= pa.scalar(start_ts.as_unit("ns"), pa.timestamp("ns", "UTC"))
    if end_ts is not None:
        upper = pc.field(schema.TIMESTAMP) <= pa.scalar(end_ts.as_unit("ns"), pa.timestamp("ns", "UTC"))
        condition = upper if condition is None else condition & upper
    if servers is not None:
        wanted = pc.field(schema.SERVER).isin(pa.array(sorted(set(servers)), pa.string()))
        condition = wanted if condition is None else condition & wanted
    frame = _read_files(files, condition, columns)
    if frame is None:
        cols = columns or list(schema.COLUMNS)
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    sort_by = [c for c in (schema.SERVER, schema.TIMESTAMP) if c in frame.columns]
    if len(files) > 1 and sort_by:
        frame = frame.sort_values(sort_by, kind="stable").reset_index(drop=True)
    return frame


LATE_SLACK = 24  # steps of extra history a forecast reads: real series that report late still get a full window


def read_recent(directory: str | Path, steps: int, end: str | pd.Timestamp | None = None,
                manifest: dict | None = None) -> pd.DataFrame:
    """The last ``steps`` steps up to and including ``end`` (default: the dataset's last
    timestamp), read from the day partitions that hold them: what a forecast needs."""
    manifest = read_manifest(directory) if manifest is None else manifest
    end_ts = _utc(end if end is not None else manifest["end"])
    step = pd.Timedelta(manifest.get("step", schema.DEFAULT_STEP))
    return read(directory, start=end_ts - step * (steps - 1), end=end_ts, manifest=manifest)


def read_incidents(directory: str | Path) -> pd.DataFrame:
    """The incident ground truth; an empty frame for datasets without one (imported data)."""
    path = Path(directory) / INCIDENTS
    if not path.exists():
        return pd.DataFrame(columns=["server_name", "kind", "metric", "threshold",
                                     "precursor_start", "breach_time", "end_time"])
    return pq.read_table(path).to_pandas()


# --- internals --------------------------------------------------------------------------------------

def _read_files(files: list[Path], condition=None, columns: list[str] | None = None) -> pd.DataFrame | None:
    if not files:
        return None
    table = ds.dataset([str(f) for f in files], format="parquet").to_table(filter=condition, columns=columns)
    table = table.unify_dictionaries()
    frame = table.to_pandas()
    for col in LABEL_COLUMNS:
        if col in frame.columns and isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].cat.remove_unused_categories()
    return frame


def _day_keys(frame: pd.DataFrame) -> np.ndarray:
    days = frame[schema.TIMESTAMP].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    return np.datetime_as_string(days, unit="D")


def _write_partitions(directory: Path, frame: pd.DataFrame, progress: bool) -> dict[str, int]:
    days = frame[schema.TIMESTAMP].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    order = np.argsort(days, kind="stable")  # keeps server-then-time order inside each day
    sorted_days = days[order]
    boundaries = np.flatnonzero(sorted_days[1:] != sorted_days[:-1]) + 1
    table = _to_table(frame)
    chunks = np.split(order, boundaries)

    def write_day(chunk: np.ndarray) -> tuple[str, int]:
        day = str(days[chunk[0]])
        part = directory / f"date={day}"
        part.mkdir()
        _write_parquet(table.take(pa.array(chunk)), part / PART)
        return day, len(chunk)

    # parquet encoding releases the GIL: two writers keep both cores busy
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = tqdm(pool.map(write_day, chunks), total=len(chunks), desc="writing", unit="day",
                    disable=not progress)
        return dict(done)


def _to_table(frame: pd.DataFrame) -> pa.Table:
    """A table with one fixed arrow type per column, so every partition has the same schema."""
    fields = []
    for col in frame.columns:
        if col in LABEL_COLUMNS:
            fields.append(pa.field(col, pa.dictionary(pa.int32(), pa.string())))
        elif col == schema.TIMESTAMP:
            fields.append(pa.field(col, pa.timestamp("ns", "UTC")))
        else:
            fields.append(pa.field(col, pa.from_numpy_dtype(frame[col].dtype)))
    return pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)


def _stage_parquet(table: pa.Table, final: Path) -> tuple[Path, Path]:
    tmp = atomic.stage(final)
    pq.write_table(table, tmp, compression="zstd")
    return tmp, final


def _write_parquet(table: pa.Table, final: Path) -> None:
    with atomic.staged(final) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames only; the old dataset goes last."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def _manifest(frame: pd.DataFrame, partitions: dict[str, int], *, kind: str, step: str,
              incidents: int | None, extra: dict | None) -> dict:
    servers = frame.groupby(schema.SERVER, observed=True)[schema.PROFILE].first().astype(str)
    manifest = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": kind,
        "step": step,
        "start": _iso(frame[schema.TIMESTAMP].min()),
        "end": _iso(frame[schema.TIMESTAMP].max()),
        "rows": int(len(frame)),
        "servers": dict(sorted(servers.to_dict().items())),
        "metrics": _metric_columns(frame),
        "partitions": partitions,
    }
    if incidents is not None:
        manifest["incidents"] = incidents
    manifest.update(extra or {})
    return manifest


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (schema.TIMESTAMP, schema.SERVER, schema.STATUS, schema.PROFILE)]


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(value: pd.Timestamp) -> str:
    return _utc(value).isoformat()


def fingerprint(manifest: dict) -> str:
    """A short hash of what a dataset holds (rows, span, servers, partitions, generator)."""
    import hashlib

    keys = {k: manifest.get(k) for k in ("rows", "start", "end", "servers", "partitions", "generator")}
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:16]


def update_manifest(directory: str | Path, fields: dict) -> dict:
    """Set ``fields`` in a dataset's manifest (atomic rewrite); returns the new manifest."""
    manifest = read_manifest(directory)
    manifest.update(fields)
    atomic.write_json(Path(directory) / MANIFEST, manifest)
    return manifest
