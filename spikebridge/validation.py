"""Checks of argument values shared by the library and the command line (one message each)."""

from __future__ import annotations

from typing import Any


def check_positive_int(value: Any, name: str = "timesteps", allow_none: bool = False) -> Any:
    """``value`` when it is a positive integer (not a bool), or None with ``allow_none``; else
    ValueError naming ``name`` (e.g. ``"spike-norm: timesteps (the window)"``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        what = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value
