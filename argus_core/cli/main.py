"""`python -m argus_core ...`: the command line. Every command has --help.

Errors an operator can act on (ArgusError, missing files, bad arguments) print one clear message
and exit non-zero; they never print a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from argus_core.cli.output import EXIT_PROBLEM, EXIT_USAGE, printable
from argus_core.errors import ArgusError


def main(argv: list[str] | None = None) -> int:
    _quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except ArgusError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:  # a path that cannot be read or written: missing, a file where a folder must be
        print(f"error: {printable(os_problem(exc))}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def os_problem(exc: OSError) -> str:
    """An OSError in words: the path, what went wrong, and what to do where that is clear."""
    import errno

    where = f" {exc.filename}" if exc.filename else ""
    what = exc.strerror or str(exc)
    hint = {errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
            errno.EISDIR: "it is a folder: give a file's path",
            errno.EACCES: "this user may not use it: check its permissions",
            errno.ENOSPC: "the disk is full: free some space; nothing was written",
            errno.EROFS: "the file system is read-only",
            errno.ENOENT: "it does not exist"}.get(exc.errno)
    if exc.errno == errno.EEXIST and exc.filename and Path(exc.filename).is_file():
        hint = "it is a file where a folder must be: choose another path"
    return f"cannot use{where}: {what}" + (f" ({hint})" if hint else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m argus_core",
        description="Argus: predictive monitoring for server fleets (data, models, forecasts).",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    from argus_core.cli.anomaly import add_anomaly_commands
    from argus_core.cli.data import add_data_commands
    from argus_core.cli.models import add_model_commands
    from argus_core.cli.runs import add_run_commands
    from argus_core.cli.serve import add_live_demo_command, add_pull_command, add_serve_command
    from argus_core.cli.silences import add_silence_commands
    from argus_core.cli.tokens import add_token_commands
    add_data_commands(sub)
    add_model_commands(sub)
    add_run_commands(sub)
    add_serve_command(sub)
    add_pull_command(sub)
    add_silence_commands(sub)
    add_token_commands(sub)
    add_anomaly_commands(sub)
    add_live_demo_command(sub)
    return parser


def _quiet_library_warnings() -> None:
    """Libraries' advice to their own developers is noise to an operator."""
    import warnings

    for pattern in (".*does not have many workers.*", ".*is an instance of `nn.Module`.*", ".*not writable.*",
                    "X does not have valid feature names", ".*LeafSpec.*", ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)
