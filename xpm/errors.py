"""The one exception tree of xpm.

Every error a user can cause is an :class:`XpmError` (or a subclass) whose
message says what is wrong, where, and how to fix it.  The command line maps
``exit_code`` to the process exit status: 2 for bad input, 1 for failed jobs, 3 for a
full or read-only file system.
"""

from __future__ import annotations


class XpmError(Exception):
    """Base class of every error raised by xpm on purpose."""

    exit_code: int = 2


class ConfigError(XpmError):
    """A configuration class or value is invalid (type, name, missing value)."""


class SerializationError(XpmError):
    """A params.json file cannot be read back into configuration objects."""


class JobDirectoryError(XpmError):
    """A job directory is missing, malformed or would be left by a path."""


class LauncherError(XpmError):
    """A launcher could not be configured, found, or could not submit a job."""


class BackendFullError(LauncherError):
    """The backend refused a submission for lack of room (Slurm's ``MaxJobCount``, a QOS
    limit on queued jobs): the jobs are not failed, they wait until room frees."""

    def __init__(self, message: str, *, own_jobs_free_it: bool = False) -> None:
        super().__init__(message)
        #: Only the submitter's own jobs ending can make room (a per-user or per-QOS limit):
        #: with none of them in flight, waiting would never end.
        self.own_jobs_free_it = own_jobs_free_it


class SpecError(LauncherError):
    """A launcher requirement specification could not be parsed."""


class ExperimentError(XpmError):
    """An experiment could not run (bad settings, dirty git tree, lock)."""


class JobsFailedError(ExperimentError):
    """Some jobs of an experiment failed; raised when the experiment ends."""

    exit_code = 1

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or []


class UserCodeError(ExperimentError):
    """The user's own code (an experiment's ``run()``) raised an exception that is not an
    xpm error: reported with the frames of the user's code, not as a bug of xpm."""

    exit_code = 1


class IndexDatabaseError(XpmError):
    """The SQLite index is unreadable, corrupt or out of date."""


class IndexTooNewError(IndexDatabaseError):
    """The index was written by a newer xpm (a schema this xpm does not know)."""


class GitError(XpmError):
    """The git state of a repository could not be read or pinned."""


class StorageError(XpmError):
    """The file system refused a write: it is full, over quota or read-only (exit 3)."""

    exit_code = 3


class UsageError(XpmError):
    """A command-line argument or YAML value is wrong."""
