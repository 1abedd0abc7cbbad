"""Comparing the settings saved in a run record with the given ones (``--resume``, reruns).

Settings are compared after a JSON round trip, so saved and given values compare equal; each
difference is named by its command-line flag. The keys in ``may_grow`` (``epochs``) may only
increase.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ResumeMismatch
from .record import RECORD_NAME


def flag(key: str) -> str:
    """The command-line flag of a setting: ``batch_size`` -> ``--batch-size``, ``epochs`` ->
    ``--ann-epochs`` (:func:`spikebridge.settings.flag_of`)."""
    from ..settings import flag_of

    return flag_of(key)


def plain(value: Any) -> Any:
    """A JSON round-trip of ``value``, so saved and given settings compare equal."""
    return json.loads(json.dumps(value, default=str))


def resume_differences(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    may_grow: Iterable[str] = ("epochs",),
    saved_as: str = "the run being resumed",
) -> list[str]:
    """Each setting in which ``given`` differs from ``saved``, as ``--flag: X in <saved_as>, Y
    now``; keys in ``may_grow`` may increase (a decrease is listed)."""
    grow = set(may_grow)
    problems = []
    for key in sorted(set(saved) | set(given)):
        old, new = plain(saved.get(key)), plain(given.get(key))
        if old == new:
            continue
        if key in grow and _is_number(old) and _is_number(new):
            if new > old:
                continue
            problems.append(f"{flag(key)}: {new!r} now, fewer than the {old!r} of {saved_as}")
            continue
        problems.append(f"{flag(key)}: {old!r} in {saved_as}, {new!r} now")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_resume(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    may_grow: Iterable[str] = ("epochs",),
    source: str = RECORD_NAME,
) -> None:
    """Raise :class:`ResumeMismatch` naming every result-changing difference between the saved
    settings (read from ``source``) and the given ones."""
    problems = resume_differences(saved, given, may_grow)
    if problems:
        raise ResumeMismatch(
            f"--resume with settings different from those of the run being resumed ({source}): "
            + "; ".join(problems)
            + ". Resume with the same settings (only the epochs may grow), or start a new --out"
        )


__all__ = ["check_resume", "flag", "plain", "resume_differences"]
