"""The dataset half of the command line: generate, demo-data, import, validate, status."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa

from argus_core.cli.output import EXIT_PROBLEM, EXIT_USAGE, printable
from argus_core.data import labels as labelled
from argus_core.data import schema, store
from argus_core.data.profiles import PROFILE_NAMES
from argus_core.data.simulate import SimConfig
from argus_core.errors import SchemaError, SettingsError
from argus_core.model.registry import DEFAULT_ROOT as DEFAULT_MODELS


def step_argument(text: str) -> str:
    """``--step``: a duration with a unit (``5`` alone would be five nanoseconds to pandas)."""
    try:
        schema.parse_step(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text.strip()


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    defaults = SimConfig()
    gen = sub.add_parser("generate", help="simulate a fleet into a dataset directory",
                         description="Simulate a fleet (profiles, rhythms, incidents with ground truth) "
                                     "and write it as a partitioned dataset. Same seed, same bytes.")
    gen.add_argument("--servers", type=int, default=None,
                     help="fleet size (default: 90, or the sum of the --num-* flags)")
    gen.add_argument("--hours", type=float, default=defaults.hours,
                     help=f"length of the history (default: {defaults.hours:g} = {defaults.hours / 24:g} days)")
    gen.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default: {defaults.seed})")
    gen.add_argument("--step", type=step_argument, default=defaults.step,
                     help=f"sampling cadence (default: {defaults.step})")
    gen.add_argument("--start", default=defaults.start, help="first timestamp, UTC (default: a Monday)")
    gen.add_argument("--incident-rate", type=float, default=defaults.incident_rate,
                     help=f"incidents per server-day (default: {defaults.incident_rate}, about 32 on 90 servers "
                          "x 30 days)")
    gen.add_argument("--output", required=True, type=Path, help="dataset directory to create or replace")
    for name in PROFILE_NAMES:
        gen.add_argument(f"--num-{name.lower().replace('_', '-')}", type=int, default=None, metavar="K",
                         dest=f"num_{name}", help=f"number of {name} servers")
    gen.set_defaults(handler=_generate)

    demo = sub.add_parser("demo-data", help="write the scripted incident scenario",
                          description="Write the fixed incident-demo scenario (14 servers, 72 h, "
                                      "a database memory leak) as a dataset.")
    demo.add_argument("--output", type=Path, default=Path("demo_data/incident"),
                      help="dataset directory (default: demo_data/incident)")
    demo.set_defaults(handler=_demo_data)

    imp = sub.add_parser("import", help="add CSV/Parquet files (the data contract, or your own metrics) to a dataset",
                         description="Validate the files, then add them to the dataset (created when "
                                     "missing). If any file has a problem, nothing is written. Files in the "
                                     "data contract go in as they are; other files (long form with your own "
                                     "metric columns, or one file per server and metric) are read with a "
                                     "mapping file and get an import report.")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files, or directories of .csv/.parquet")
    imp.add_argument("--dataset", required=True, type=Path, help="dataset directory")
    imp.add_argument("--step", type=step_argument, default=None,
                     help="cadence (default: the mapping's, the dataset's, else the data's own when it is coarser than "
                          "5min and divides a day, else 5min)")
    imp.add_argument("--mapping", type=Path, default=None,
                     help="TOML mapping: column and metric names, units, thresholds, profiles, file-name pattern")
    imp.add_argument("--duplicates", choices=("mean", "reject"), default=None,
                     help="repeated timestamps: average them or refuse the file (default: the mapping's, else mean)")
    imp.add_argument("--resample", choices=("mean", "none"), default=None,
                     help="times off the step's grid: average them onto it or refuse (default: the mapping's, "
                          "else none)")
    imp.add_argument("--labels", type=Path, default=None, metavar="FILE",
                     help="labelled anomaly windows: a CSV or Parquet table server_name, start, end[, metric] "
                          "(no metric: the whole server), or NAB's JSON (default: the mapping's `labels`)")
    imp.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    imp.set_defaults(handler=_import)

    val = sub.add_parser("validate", help="check a file against the data contract",
                         description="Print a validation report; exit 1 when the file has problems.")
    val.add_argument("file", type=Path, metavar="FILE", help="a CSV or Parquet file, or a dataset directory (or a "
                     "file inside one: then the dataset's own step and metric set, an import's or a pull's, apply)")
    val.add_argument("--step", type=step_argument, default=schema.DEFAULT_STEP, help="expected cadence (default: 5min)")
    val.set_defaults(handler=_validate)

    stat = sub.add_parser("status", help="datasets, servers per profile, time span, champion, riskiest servers",
                          description="Summarise one dataset (with the champion's ten riskiest servers), or "
                                      "every dataset found under --root.")
    stat.add_argument("--dataset", type=Path, default=None, help="one dataset directory")
    stat.add_argument("--root", type=Path, default=Path("."), help="where to look for datasets (default: .)")
    stat.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="models directory (default: models)")
    stat.set_defaults(handler=_status)


def _generate(args: argparse.Namespace) -> int:
    from argus_core.data.simulate import SimConfig, simulate_fleet

    fixed = {name: getattr(args, f"num_{name}") for name in PROFILE_NAMES if getattr(args, f"num_{name}") is not None}
    try:
        config = SimConfig(servers=args.servers, hours=args.hours, seed=args.seed, step=args.step,
                           start=args.start, composition=fixed, incident_rate=args.incident_rate)
        started = time.perf_counter()
        sim = simulate_fleet(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    simulated = time.perf_counter() - started
    manifest = store.write_dataset(
        args.output, sim.frame, kind="simulated", step=args.step, incidents=sim.incidents,
        extra={"generator": sim.settings, "problem_children": sim.problem_children}, progress=_tty(),
    )
    total = time.perf_counter() - started
    print(f"wrote {manifest['rows']:,} rows for {len(manifest['servers'])} servers to {args.output} "
          f"({manifest['start']} .. {manifest['end']}); simulated in {simulated:.2f} s, {total:.2f} s in all")
    kinds = Counter(sim.incidents["kind"])
    print(f"incidents: {len(sim.incidents)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'})")
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from argus_core.data.scenario import demo_manifest_extra, demo_simulation

    sim = demo_simulation()
    manifest = store.write_dataset(args.output, sim.frame, kind="demo", incidents=sim.incidents,
                                   extra=demo_manifest_extra(sim))
    print(f"wrote the incident demo ({manifest['rows']:,} rows, {len(manifest['servers'])} servers) to {args.output}")
    for phase in manifest["scenario"]["phases"]:
        print(f"  {phase['name']:<11} {phase['start']} .. {phase['end']}  {phase['narrative']}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from argus_core.data.files import read_table

    if args.mapping or any(p.is_dir() for p in args.files) or not _in_contract(args.files[0]):
        return _import_own(args)
    step = args.step or (store.read_manifest(args.dataset).get("step") if store.is_dataset(args.dataset) else None)
    frames, failures, notes = [], [], []
    for path in args.files:
        try:
            raw = read_table(path)
            if 0 < len(raw) < schema.MIN_ROWS:  # no rows at all: validate says the file is empty
                raise SchemaError([schema.Problem("too short", None, len(raw), (
                    f"{len(raw)} row(s): a series needs at least {schema.MIN_ROWS} rows to have a cadence",))],
                    str(path))
            cadence = _cadence(raw)
            if step is None:  # a new dataset: the data's own cadence, as a mapped import infers it
                step = _step_for(cadence)
            if args.resample == "mean":
                raw = _onto_grid(raw, step)
            try:
                frames.append(schema.validate(raw, step=step, source=str(path)))
            except SchemaError as exc:
                if cadence is not None and cadence < pd.Timedelta(step) and args.resample != "mean":
                    exc.problems.append(schema.Problem("finer than the step", schema.TIMESTAMP, 1, (
                        f"the data is {schema.duration_text(cadence)} apart, finer than the dataset's {step}",
                        f"import with --resample mean to average it onto the {step} grid")))
                    raise SchemaError(exc.problems, str(path)) from None
                raise
            extra = [str(c) for c in raw.columns if c not in schema.COLUMNS]
            if extra:
                notes.append(f"{path}: ignored {len(extra)} column(s) that are not in the data contract: "
                             + ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
                             + " (import with --mapping to keep your own metrics)")
        except SchemaError as exc:
            failures.append(exc)
    step = step or schema.DEFAULT_STEP
    if failures:
        for exc in failures:
            print(f"error: {printable(str(exc))}", file=sys.stderr)
        print(f"nothing was written to {args.dataset}", file=sys.stderr)
        return EXIT_PROBLEM
    combined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    source = ", ".join(str(p) for p in args.files)
    if len(frames) > 1:
        combined = schema.validate(combined, step=step, source=source)
    windows = None
    if args.labels:
        windows = labelled.read(args.labels, set(combined[schema.SERVER].astype(str).unique()),
                                set(combined.columns) & (set(schema.METRIC_COLUMNS) | {schema.CPU_BUSY}),
                                span=(combined[schema.TIMESTAMP].min(), combined[schema.TIMESTAMP].max()))
        if windows.problems:
            print(printable(windows.line()), file=sys.stderr)
            for problem in windows.problems:
                print(printable(f"error: {problem}"), file=sys.stderr)
            print(f"nothing was written to {args.dataset}", file=sys.stderr)
            return EXIT_PROBLEM
    before = store.read_manifest(args.dataset)["rows"] if store.is_dataset(args.dataset) else 0
    manifest = store.append(args.dataset, combined, source=source, step=step, progress=_tty())
    if windows is not None:
        store.update_manifest(args.dataset, {"labels": labelled.merged(manifest.get("labels"), windows.windows)})
        for line in [windows.line(), *(f"note: {n}" for n in windows.notes)]:
            print(printable(line))
    for note in notes:
        print(printable(f"note: {note}"))
    print(f"imported {len(combined):,} rows ({combined[schema.SERVER].nunique()} servers) into {args.dataset}; "
          f"it now holds {manifest['rows']:,} rows (was {before:,})")
    return 0


def _cadence(raw: pd.DataFrame) -> pd.Timedelta | None:
    """The median time between a server's rows in a contract file (None when it cannot be read)."""
    if schema.TIMESTAMP not in raw.columns or schema.SERVER not in raw.columns:
        return None
    stamps = pd.to_datetime(raw[schema.TIMESTAMP], utc=True, errors="coerce", format="mixed")
    frame = pd.DataFrame({"server": raw[schema.SERVER].astype(str), "t": stamps}).dropna().sort_values(["server", "t"])
    gaps = frame.groupby("server", sort=False)["t"].diff().dropna()
    gaps = gaps[gaps > pd.Timedelta(0)]
    return pd.Timedelta(gaps.median()) if len(gaps) else None


def _step_for(cadence: pd.Timedelta | None) -> str:
    """A new dataset's step: the data's cadence when it is whole minutes, coarser than 5min and
    divides a day (so "same time yesterday" exists); else 5min (finer data is averaged onto it with
    --resample mean)."""
    if cadence is None or cadence <= pd.Timedelta(schema.DEFAULT_STEP) or cadence % pd.Timedelta("1min") \
            or pd.Timedelta("1D") % cadence:
        return schema.DEFAULT_STEP
    return schema.duration_text(cadence)


def _onto_grid(raw: pd.DataFrame, step: str) -> pd.DataFrame:
    """--resample mean on a contract file: the rows of each server averaged onto the step's grid
    (counts rounded, the last status and profile of the interval kept). Rows whose time or
    metrics cannot be read are left as they are, for validation to report."""
    stamps = pd.to_datetime(raw[schema.TIMESTAMP], utc=True, errors="coerce", format="mixed") \
        if schema.TIMESTAMP in raw.columns else None
    metrics = [c for c in schema.METRIC_COLUMNS if c in raw.columns]
    if stamps is None or schema.SERVER not in raw.columns or stamps.isna().any() \
            or not all(pd.api.types.is_numeric_dtype(raw[c]) for c in metrics):
        return raw
    frame = raw.assign(**{schema.TIMESTAMP: stamps.dt.floor(step)})
    keys = [schema.SERVER, schema.TIMESTAMP]
    labels = [c for c in (schema.STATUS, schema.PROFILE) if c in frame.columns]
    grouped = frame.groupby(keys, sort=False, observed=True)
    out = grouped[metrics].mean()
    for col in labels:
        out[col] = grouped[col].last()
    for col in schema.COUNT_COLUMNS:
        if col in out.columns:
            out[col] = out[col].round()
    return out.reset_index()[[c for c in raw.columns if c in out.columns or c in keys]]


def _in_contract(path: Path) -> bool:
    """Whether a file means to be in the data contract (a status column or most of schema v1's
    metrics): then it goes in as it is, and a missing column is its problem, not another metric set."""
    from argus_core.data.files import read_columns

    try:
        columns = set(read_columns(path))
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError):
        return True  # the contract path reads the whole file and reports the problem
    return schema.STATUS in columns or len(columns & set(schema.METRIC_COLUMNS)) * 2 >= len(schema.METRIC_COLUMNS)


def _import_own(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from argus_core.data import importer

    mapping = importer.load_mapping(args.mapping)
    overrides = {k: v for k, v in (("step", args.step), ("duplicates", args.duplicates),
                                   ("resample", args.resample)) if v is not None}
    if args.labels:  # a path as the user typed it, not one next to the data files
        overrides["labels"] = str(args.labels.resolve())
    mapping = replace(mapping, **overrides)
    report = importer.import_files(list(args.files), args.dataset, mapping, dry_run=args.dry_run,
                                   progress=_file_progress if _tty() else None)
    for line in report.lines():
        print(printable(line))
    if not report.ok:
        print(f"nothing was written to {args.dataset}", file=sys.stderr)
        return EXIT_PROBLEM
    if report.written:
        manifest = store.read_manifest(args.dataset)
        print(f"wrote {args.dataset}: {manifest['rows']:,} rows, {len(manifest['servers'])} servers, "
              f"{manifest['start']} .. {manifest['end']}")
    else:
        print("dry run: nothing written")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from argus_core.data.files import read_table

    path = Path(args.file)
    dataset = next((p for p in (path, *path.parents) if store.looks_like_dataset(p)), None)
    step, kinds = args.step, None
    if dataset is not None:  # a dataset's own contract: its step, and the metric set it was made with
        manifest = store.read_manifest(dataset)
        step, kinds = manifest.get("step", args.step), manifest.get("metric_kinds")
        kinds = None if kinds and dict(kinds) == schema.V1_KINDS else kinds
    try:
        raw = store.read(dataset) if dataset is not None and dataset == path else read_table(path)
    except SchemaError as exc:
        print(printable(f"INVALID {args.file}\n{exc}"))
        return EXIT_PROBLEM
    canonical, problems = schema.check(raw, step=step, metrics=kinds)
    if problems:
        print(f"INVALID {args.file}: {len(raw):,} rows, {len(problems)} problem(s)")
        for problem in problems:
            print(printable(f"  - {problem}"))
        return EXIT_PROBLEM
    assert canonical is not None
    gaps = schema.find_gaps(canonical, step)
    if dataset is not None:
        print(printable(f"  the contract of dataset {dataset}: step {step}, "
                        + (f"its own {len(kinds)} metrics" if kinds else "the built-in metric set")))
    print(f"OK {args.file}: {len(canonical):,} rows, {canonical[schema.SERVER].nunique()} servers, "
          f"{canonical[schema.TIMESTAMP].min()} .. {canonical[schema.TIMESTAMP].max()}")
    profiles = canonical.groupby(schema.PROFILE, observed=True)[schema.SERVER].nunique()
    print("  servers per profile: " + ", ".join(f"{p} {n}" for p, n in profiles.items()))
    if len(gaps):
        print(f"  {len(gaps)} gap(s), {int(gaps['missing_steps'].sum())} missing step(s) (kept as gaps); e.g.")
        for row in gaps.head(3).itertuples(index=False):
            print(printable(f"    {row.server_name}: {row.gap_start} .. {row.gap_end} ({row.missing_steps} steps)"))
    return 0


def _status(args: argparse.Namespace) -> int:
    from argus_core.cli.models import print_model_status

    if args.dataset is not None:
        _print_dataset(args.dataset, store.read_manifest(args.dataset))
        print_model_status(args.models, args.dataset)
        _print_audit(args.models)
        return 0
    found = [p.parent for p in sorted(args.root.glob("**/" + store.MANIFEST))
             if not any(part.startswith(".") or part == "site-packages" for part in p.parts)
             and store.looks_like_dataset(p.parent)]
    if not found:
        print(f"no datasets under {args.root}; create one with `python -m argus_core generate --output DIR` "
              "or `python -m argus_core demo-data`")
        return 0
    for directory in found:
        _print_dataset(directory, store.read_manifest(directory))
    print_model_status(args.models, None)
    _print_audit(args.models)
    return 0


def _print_audit(models: Path, lines: int = 5) -> None:
    """The last few lines of the audit trail: who promoted, rolled back, trained, silenced."""
    import time

    from argus_core.access import audit

    trail = audit.trail(models, lines)
    if trail.empty:
        return
    print(f"audit trail (last {len(trail)}; all: GET /api/v1/audit or the Training console):")
    for row in trail.itertuples(index=False):
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.time))
        print(printable(f"  {when}  {row.actor} ({row.role}, {row.via}) {row.action} {row.target}  {row.outcome}"))


def _print_dataset(directory: Path, manifest: dict) -> None:
    profiles = Counter(manifest.get("servers", {}).values())
    print(printable(f"{directory}  [{manifest.get('kind', '?')}, schema v{manifest.get('schema_version', '?')}]"))
    print(f"  span     {manifest.get('start')} .. {manifest.get('end')}  (step {manifest.get('step')})")
    print(f"  rows     {manifest.get('rows', 0):,} in {len(manifest.get('partitions', {}))} day partition(s)")
    print(printable(f"  servers  {sum(profiles.values())}: "
                    + ", ".join(f"{p} {n}" for p, n in sorted(profiles.items()))))
    if "incidents" in manifest:
        truth = store.read_incidents(directory)
        kinds = Counter(truth["kind"]) if len(truth) else {}
        print(f"  incidents {manifest['incidents']}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    if "scenario" in manifest:
        scenario = manifest["scenario"]
        print(printable(f"  scenario {scenario['name']} on {scenario['incident_server']}: "
                        + " -> ".join(p["name"] for p in scenario["phases"])))


def _file_progress(done: int, total: int, path: Path) -> None:
    """One line on the terminal, rewritten per file: a long import says where it is."""
    end = "\n" if done == total else ""
    print("\r" + printable(f"reading {done}/{total} files: {Path(path).name[:60]:<60}"), end=end, file=sys.stderr,
          flush=True)


def _tty() -> bool:
    return sys.stderr.isatty()
