"""What :func:`~spikebridge.rundir.claim` raises when a run cannot use its output directory."""

from __future__ import annotations


class RunDirectoryError(RuntimeError):
    """The output directory cannot be used by this run."""


class DirectoryBusy(RunDirectoryError):
    """Another run holds the directory's lock."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class DirectoryNotOwned(RunDirectoryError, FileExistsError):
    """The directory holds another command's or another experiment's results."""


class DirectoryNotWritable(RunDirectoryError, PermissionError):
    """The directory (or its parent) cannot be written."""


class ResumeMismatch(RunDirectoryError, ValueError):
    """``--resume`` with settings that differ from the run being resumed."""


__all__ = [
    "DirectoryBusy",
    "DirectoryNotOwned",
    "DirectoryNotWritable",
    "ResumeMismatch",
    "RunDirectoryError",
]
