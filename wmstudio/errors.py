"""Exceptions the engine raises for bad input. Each message names the file or field at fault."""

from __future__ import annotations


class WmStudioError(Exception):
    """Base class for errors a user can act on (bad config, missing data, broken checkpoint)."""


class ConfigError(WmStudioError):
    """A config value is missing, of the wrong type or out of range. ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class DataError(WmStudioError):
    """A data set could not be found or read."""


class CheckpointError(WmStudioError):
    """A checkpoint could not be loaded into the model."""


class OutputError(WmStudioError):
    """A file cannot be written where asked: it exists (no ``--overwrite``), is a link, or the folder refuses."""


class TriggerError(WmStudioError):
    """A trigger set could not be built or read."""


class RunLogError(WmStudioError):
    """A run log is missing, unreadable or not a wmstudio log."""


class StageFailed(WmStudioError):
    """A stage stopped because training diverged (NaN/inf loss) or similar."""


class Cancelled(Exception):
    """Raised inside the engine when the run's cancel token is set. Not an error."""


class UntrustedCodeError(WmStudioError):
    """A file the user did not write (a checkpoint's or export's metadata, a run log's config, a sweep
    folder) names a Python model file, and the user has not opted in to importing it."""

    def __init__(self, file: str, source: str, where: str, opt_in: str) -> None:
        self.file, self.source, self.where = file, source, where
        super().__init__(f"{where}: refused to import the Python model file {file}: it is named by the {source}, "
                         f"not by you, and importing it would run its code. If you trust it, {opt_in}")
