"""An output directory owned by one run at a time.

:func:`claim` takes the directory for a run in one step: it creates the directory (checking it is
writable before any compute), takes an OS lock on ``DIR/.spikebridge.lock`` (``fcntl.flock``,
held until the run ends; the kernel releases it when the process exits or crashes) and, holding
the lock, reads ``DIR/run.json`` to decide whether this run may write there. Because the check is
made under the lock, two runs started together cannot both pass it.

``run.json`` records which command wrote the directory and the settings that determine its
results. A directory holding another command's results, another experiment's, or files that no
run recorded, is refused unless ``overwrite``. With ``resume``, the saved settings are compared
with the given ones (:func:`check_resume`) and any difference is refused, naming each; the keys in
``may_grow`` (``epochs``) may only increase.

Nothing is written to a directory that is refused, and a run that fails before
:meth:`RunDirectory.begin` leaves the directory as it found it (a directory it created is
removed again). :meth:`RunDirectory.begin` writes the record when compute starts;
:meth:`RunDirectory.finish` adds the files written.

Under ``torchrun`` only rank 0 claims the directory; the other processes get a handle that does
nothing, as they write nothing.

The package: :mod:`.errors` (what a refused run raises), :mod:`.resume` (comparing saved and given
settings), :mod:`.record` (``run.json`` and the :class:`RunDirectory` handle), :mod:`.directory`
(creating, locking and removing the directory) and :mod:`.claim` (:func:`claim`: the ownership
rules).
"""

from ..dirlock import LOCK_NAME
from .claim import claim
from .errors import (
    DirectoryBusy,
    DirectoryNotOwned,
    DirectoryNotWritable,
    ResumeMismatch,
    RunDirectoryError,
)
from .record import FORMAT, RECORD_NAME, VERSION, RunDirectory, read_record
from .resume import check_resume, flag, resume_differences

__all__ = [
    "FORMAT",
    "LOCK_NAME",
    "RECORD_NAME",
    "VERSION",
    "DirectoryBusy",
    "DirectoryNotOwned",
    "DirectoryNotWritable",
    "ResumeMismatch",
    "RunDirectory",
    "RunDirectoryError",
    "check_resume",
    "claim",
    "flag",
    "read_record",
    "resume_differences",
]
