"""Network labels: what a network's name says beyond its method (issue 23).

The grammar is ``<method>[+ftN][-K<K>]``, and a network built for one T adds ``-T<T>``
(``calibrated+ft300-K4-T2``). ``-K<K>``: graded spikes of up to K threshold units per step
(K = 1, binary, adds nothing). ``+ftN``: a ``calibrated`` network fine-tuned on labels for N
steps is listed as ``calibrated+ftN`` (its per-T networks ``calibrated+ftN-T2``, ...) in every
table, plot and file name, and the tables carry a ``finetune_steps`` column (0: no retraining after conversion), so a
retrained network is never mistaken for a post-training one.
"""

from __future__ import annotations

import re

import pandas as pd

_FINETUNED = re.compile(r"\+ft(\d+)(?!\d)")
_GRADED = re.compile(r"-K(\d+)(?=$|-T\d+$| twin)")

FINETUNE_COLUMN = "finetune_steps"
"""The tables' column: labelled steps that retrained the network after conversion."""


def finetune_label(method: str, steps: int) -> str:
    """``calibrated``, 300 -> ``calibrated+ft300``; 0 steps: the method's name as it is."""
    return f"{method}+ft{int(steps)}" if steps else method


def finetune_steps_of(label: str) -> int:
    """The fine-tune steps a network label names (``calibrated+ft300``, ``calibrated+ft300 twin
    (2-bit)`` -> 300; else 0)."""
    match = _FINETUNED.search(str(label))
    return int(match.group(1)) if match else 0


def graded_label(method: str, spike_levels: int = 1) -> str:
    """``calibrated``, 4 -> ``calibrated-K4``; K = 1 keeps the label as it is."""
    return method if spike_levels == 1 else f"{method}-K{int(spike_levels)}"


def spike_levels_of(label: str) -> int:
    """The K a network label names (``calibrated-K4``, ``calibrated+ft300-K4-T2`` -> 4; else 1)."""
    match = _GRADED.search(str(label))
    return int(match.group(1)) if match else 1


def base_method(label: str) -> str:
    """The registered method of a label (``calibrated+ft300-K4`` -> ``calibrated``)."""
    return _GRADED.sub("", _FINETUNED.sub("", str(label), count=1), count=1)


def with_finetune_column(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a :data:`FINETUNE_COLUMN` as its last column (a copy; appended, so the
    columns before keep their places; a frame without ``method``, or with the column already,
    is returned as it is)."""
    if "method" not in frame.columns or FINETUNE_COLUMN in frame.columns:
        return frame
    frame = frame.copy()
    steps = [finetune_steps_of(m) for m in frame["method"]]
    frame[FINETUNE_COLUMN] = steps
    return frame
