"""The one family of errors a user can cause.

The CLI prints a GenlabError as a single line and exits non-zero; any other
exception is a bug in genlab and keeps its traceback.
"""


class GenlabError(Exception):
    """An error caused by the user's input (data, config, run directory...)."""


class ConfigError(GenlabError):
    """An invalid config file, preset or --set override."""


class DataError(GenlabError):
    """Missing, empty or unreadable data."""


class RunDirError(GenlabError):
    """A run directory that is missing, of another recipe, or corrupt."""


class WriteFailed(RunDirError, OSError):
    """A file could not be written (a full disk, a read-only folder); the previous version is kept.
    Also an OSError, so code that tolerates unwritable caches keeps doing so."""


class TrainingDiverged(GenlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint exists (the CLI exits 130)."""
