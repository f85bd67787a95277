"""Reading user files (CSV or Parquet into frames, TOML settings into dicts), with clear errors
instead of tracebacks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from argus_core.data.schema import Problem
from argus_core.errors import SchemaError

PARQUET_MAGIC = b"PAR1"


def read_toml(path: Path, what: str, hint: str = "") -> dict:
    """A settings file as a dict; SettingsError saying which file, and why, when it cannot be."""
    from argus_core.errors import SettingsError

    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SettingsError(f"{what} {path} not found" + (f"; {hint}" if hint else "")) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{what} {path} is not valid TOML: {exc}") from exc


def read_columns(path: str | Path) -> list[str]:
    """A file's column names from its header or parquet schema, without reading its rows."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(4)
    if path.suffix.lower() in (".parquet", ".pq") or head == PARQUET_MAGIC:
        return list(pq.read_schema(path).names)
    return [str(c).strip() for c in pd.read_csv(path, nrows=0, skipinitialspace=True).columns]


def read_table(path: str | Path) -> pd.DataFrame:
    """A file as a raw frame (not yet validated). Parquet is recognised by name or by its magic
    bytes, anything else is read as CSV. Raises SchemaError for empty or unreadable files,
    FileNotFoundError when there is no such file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise SchemaError([Problem("not a file", None, 0, (f"{path} is a directory",))], str(path))
    if path.stat().st_size == 0:
        raise SchemaError([Problem("empty file", None, 0, ("the file has no bytes",))], str(path))
    with path.open("rb") as handle:
        head = handle.read(4)
    if path.suffix.lower() in (".parquet", ".pq") or head == PARQUET_MAGIC:
        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise SchemaError([Problem("not a parquet file", None, 0, (str(exc).splitlines()[0],))],
                              str(path)) from exc
    try:
        return pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise SchemaError([Problem("empty file", None, 0, ("no header and no rows",))], str(path)) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError([Problem("unreadable CSV", None, 0, (str(exc).splitlines()[0],))], str(path)) from exc
