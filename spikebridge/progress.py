"""Progress bars: tqdm, quiet when output is not a terminal or when the user asks."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(
    iterable: Iterable[T], enabled: bool = True, description: str = "", **kwargs
) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar when ``enabled`` and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return iterable
    return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True, **kwargs)
