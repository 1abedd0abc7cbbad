"""Network labels that say a network was retrained after conversion (issue 23).

A ``calibrated`` network whose quantised twin was fine-tuned on labels for N steps is listed as
``calibrated+ftN`` (its per-T networks ``calibrated+ftN-T2``, ...) in every table, plot and file
name, and the tables carry a ``finetune_steps`` column (0: no retraining after conversion), so a
retrained network is never mistaken for a post-training one.
"""

from __future__ import annotations

import re

import pandas as pd

_FINETUNED = re.compile(r"\+ft(\d+)(?!\d)")

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


def base_method(label: str) -> str:
    """The registered method of a label (``calibrated+ft300`` -> ``calibrated``)."""
    return _FINETUNED.sub("", str(label), count=1)


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
