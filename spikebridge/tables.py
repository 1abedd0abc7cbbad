"""Result tables as files a paper can use: CSV (accuracy in %, T an integer) and LaTeX.

Every CSV a command writes goes through :func:`write_table`, which writes ``NAME.csv`` and, beside
it, ``NAME.tex``: the same table as a booktabs ``tabular`` (``\\usepackage{booktabs}``), each
file atomically. Accuracy columns hold percentages and say so in their name (``accuracy_pct``);
a missing value is empty in the CSV, ``--`` in LaTeX and a dash on the terminal.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .io import write_csv, write_text

DASH = "–"
"""How a missing value is shown on the terminal and in the report."""

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "µ": r"$\mu$", "–": "--", "≥": r"$\geq$", "≤": r"$\leq$",
}  # fmt: skip


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_cell(value, missing: str = DASH) -> str:
    """One value as text: integers as they are, floats to 4 significant digits (2 decimals from
    1 to 1000), missing values as ``missing``."""
    if _missing(value):
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            return missing
        if value == int(value) and abs(value) < 1e6:
            return str(int(value)) if abs(value) >= 1000 or value == 0 else f"{value:.2f}"
        if 1 <= abs(value) < 1000:
            return f"{value:.2f}"
        return f"{value:.4g}"
    return str(value)


def to_latex(frame: pd.DataFrame, caption: str | None = None) -> str:
    """``frame`` as a booktabs ``tabular`` (text columns left, numbers right; missing: --),
    inside a ``table`` with ``caption`` when one is given."""
    frame = integer_columns(frame)
    aligns = "".join(
        "r" if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        else "l"
        for c in frame.columns
    )  # fmt: skip
    lines = [rf"\begin{{tabular}}{{{aligns}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(c) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for row in frame.itertuples(index=False):
        cells = [latex_escape(format_cell(v, missing="–")) for v in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is not None:
        lines = [
            r"\begin{table}[t]", r"\centering", *lines,
            rf"\caption{{{latex_escape(caption)}}}", r"\end{table}",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


INTEGER_COLUMNS = ("timesteps", "T", "epoch", "samples", "index", "neurons")
"""Columns that hold counts: written as integers (``32``, not ``32.0``), empty when missing."""


def integer_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each :data:`INTEGER_COLUMNS` column of whole numbers as integers (pandas'
    nullable ``Int64``: a missing value stays missing)."""
    frame = frame.copy()
    for column in INTEGER_COLUMNS:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        known = values.dropna()
        if len(known) == frame[column].notna().sum() and (known == known.round()).all():
            frame[column] = values.round().astype("Int64")
    return frame


def write_table(
    path: str | os.PathLike, frame: pd.DataFrame, caption: str | None = None
) -> list[Path]:
    """``path`` (a ``.csv``) and the same table as LaTeX beside it (``.tex``), each atomically;
    returns both paths."""
    path = Path(path)
    frame = integer_columns(frame)
    return [write_csv(path, frame), write_text(path.with_suffix(".tex"), to_latex(frame, caption))]


def terminal_table(frame: pd.DataFrame) -> str:
    """``frame`` for the terminal: numbers formatted as in :func:`format_cell`, a dash for
    missing values (never ``NaN``)."""
    if not len(frame.columns):
        return ""
    frame = integer_columns(frame)
    shown = frame.copy().astype(object)
    for column in shown.columns:
        shown[column] = [format_cell(v) for v in frame[column]]
    return shown.to_string(index=False)


def percent(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``frame`` with each fraction column ``c`` among ``columns`` as ``c_pct`` in %, in place
    of ``c`` (the column order kept)."""
    renamed = {}
    frame = frame.copy()
    for column in columns:
        if column in frame.columns:
            frame[column] = 100 * pd.to_numeric(frame[column], errors="coerce")
            renamed[column] = f"{column}_pct"
    return frame.rename(columns=renamed)


HISTORY_COLUMNS = [
    "route", "network", "epoch", "loss", "train_accuracy_pct", "validation_accuracy_pct",
    "test_accuracy_pct", "seconds",
]  # fmt: skip
"""The columns of every ``history.csv``: one row per epoch of every network trained."""


def history_frame(rows: Iterable[dict], route: str, network: str) -> pd.DataFrame:
    """Training history rows (fractions, as the trainers return them) as a :data:`HISTORY_COLUMNS`
    table in %."""
    frame = pd.DataFrame(list(rows))
    for column in ("loss", "train_accuracy", "validation_accuracy", "test_accuracy", "seconds"):
        if column not in frame.columns:
            frame[column] = float("nan")
    if "epoch" not in frame.columns:
        frame["epoch"] = range(1, len(frame) + 1)
    frame = percent(frame, ("train_accuracy", "validation_accuracy", "test_accuracy"))
    frame["route"], frame["network"] = route, network
    frame["epoch"] = frame["epoch"].astype(int) if len(frame) else frame["epoch"]
    return frame[HISTORY_COLUMNS]


__all__ = [
    "DASH",
    "HISTORY_COLUMNS",
    "format_cell",
    "integer_columns",
    "history_frame",
    "latex_escape",
    "percent",
    "terminal_table",
    "to_latex",
    "write_table",
]
