"""The output directory DIR of a comparison: which experiment it holds, and refusing another's.

``experiment.json`` in DIR records the settings that define the results; a re-run with the same
settings reuses DIR (and the checkpoints under ``DIR/checkpoints``); a DIR holding another
experiment's results, or files that are not a comparison's, is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path

EXPERIMENT_FILE = "experiment.json"
FORMAT = "spikebridge-comparison"
RESULT_FILES = (
    "accuracy_vs_timesteps.csv",
    "energy.csv",
    "layers.csv",
    "results.json",
    "report.html",
    *(
        f"{n}.{ext}"
        for n in ("latency_accuracy", "energy_accuracy", "firing_rates")
        for ext in ("png", "svg")
    ),
)
"""The files a comparison writes into DIR (extra evaluation passes add ``<pass>.csv``)."""
OPTIONAL_RESULT_FILES = (
    "accuracy_vs_noise.png", "accuracy_vs_noise.svg",
    "energy_breakdown.csv", "energy_models.png", "energy_models.svg",
)  # fmt: skip
"""Files only some comparisons write (the noise plot: with ``--noise``; the energy models'
breakdown and figure: with at least one energy model)."""


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} in DIR, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)
    ]


def claim_directory(out: Path, experiment: dict, overwrite: bool) -> tuple[bool, list[str]]:
    """Check that ``out`` may hold this experiment; returns (same experiment as before, notes).

    Raises FileExistsError when ``out`` holds a different experiment's results (or files that
    are not a comparison's) and ``overwrite`` is False.
    """
    notes: list[str] = []
    record = out / EXPERIMENT_FILE
    if record.is_file():
        try:
            stored = json.loads(record.read_text(encoding="utf-8"))
            old = stored["settings"] if stored.get("format") == FORMAT else None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            old = None
        if old is None:
            if not overwrite:
                raise FileExistsError(
                    f"{record} is not a spikebridge comparison record; choose another --out or pass "
                    "--overwrite to replace it"
                )
            return False, notes
        if old == experiment:
            return True, notes
        if not overwrite:
            diffs = "; ".join(_differences(old, experiment))
            raise FileExistsError(
                f"{out} holds the results of a different experiment ({diffs}). Choose another --out, "
                "or pass --overwrite to replace them (checkpoints still valid for the new settings are kept)"
            )
        notes.append(f"replacing the results of a different experiment in {out}")
        return False, notes
    if out.is_dir():
        visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if visible and not overwrite:
            raise FileExistsError(
                f"{out} is not empty ({', '.join(sorted(visible)[:5])}) and holds no comparison "
                f"record ({EXPERIMENT_FILE}); choose an empty or new --out, or pass --overwrite"
            )
    return False, notes


def holds_experiment(out: Path, experiment: dict) -> bool:
    """Whether ``out`` records (in ``experiment.json``) a comparison with these settings."""
    try:
        stored = json.loads((Path(out) / EXPERIMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stored, dict)
        and stored.get("format") == FORMAT
        and stored.get("settings") == experiment
    )


def clear_results(out: Path, extra: tuple[str, ...] = ()) -> None:
    """Remove the result files of an earlier experiment from ``out`` (checkpoints stay)."""
    for name in (*RESULT_FILES, *OPTIONAL_RESULT_FILES, *extra):
        path = out / name
        if path.is_file():
            path.unlink()
