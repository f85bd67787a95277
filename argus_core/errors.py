"""The exceptions Argus raises on purpose.

    ArgusError                 anything a user can act on; pages and the CLI show its message
     +-- SchemaError           a frame or file breaks the data contract (lists every problem)
     +-- DatasetError          a dataset is missing, empty, inconsistent, or does not fit what
     |                         was asked of it (too little history, a metric the model needs)
     +-- SettingsError         a setting is out of range (training, simulator, command line)
     +-- ModelNotFound         no such model directory / no champion yet
     +-- ModelDirectoryError   a model directory is incomplete, corrupt or incompatible
     +-- TrainingBusy          a training already runs for this models directory
     +-- RunStoreError         the run store cannot be read or has no such run
     +-- UnknownItem           a thing asked for by name or id does not exist (a silence)

The core raises only these; the CLI (``cli.main``) and the pages (``ui.errors.guard``) catch
``ArgusError`` once. Anything else escaping the core is a bug.
"""

from __future__ import annotations


class ArgusError(Exception):
    """Base class: the message is meant for the user, as is."""


class SchemaError(ArgusError):
    """A frame breaks the data contract. ``problems`` holds every problem found, not just the first."""

    def __init__(self, problems: list, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        lines = [f"{len(self.problems)} problem(s) with the data{where}:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class DatasetError(ArgusError):
    """A dataset directory cannot be used as asked."""


class SettingsError(ArgusError, ValueError):
    """A setting is out of range; the message names it and what is allowed. Also a ValueError,
    as a bad number passed to a function is in Python."""


class ModelNotFound(ArgusError):
    """The model asked for does not exist."""


class TrainingBusy(ArgusError):
    """Another training holds the models directory."""


class ModelDirectoryError(ArgusError):
    """A model directory is incomplete, corrupt or from an incompatible version."""


class RunStoreError(ArgusError):
    """The run store cannot be read or written (corrupt, locked, not a database)."""


class UnknownItem(ArgusError):
    """A thing asked for by its name or id does not exist (the service answers 404)."""
