"""Plug-in registries: a package whose modules each register one entry when imported.

The threshold methods (:mod:`spikebridge.convert.methods`), the comparison's routes
(:mod:`spikebridge.compare.routes`) and its extra evaluation passes
(:mod:`spikebridge.compare.passes`) are such packages: adding an entry is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Generic, TypeVar

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Entries by name (each with a ``name`` and an ``order`` attribute), kept in order.

    Args:
        kind: what an entry is, for error messages (e.g. ``"threshold method"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, entry: Entry) -> Entry:
        """Add ``entry``; a second entry of the same name is an error."""
        name = entry.name  # type: ignore[attr-defined]
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (for tests that register a temporary one)."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        """Every entry's name, by ``order`` then name."""
        return tuple(e.name for e in self.entries())  # type: ignore[attr-defined]

    def entries(self) -> list[Entry]:
        """Every entry, by ``order`` then name."""
        return sorted(self._entries.values(), key=lambda e: (e.order, e.name))  # type: ignore[attr-defined]

    def get(self, name: str) -> Entry:
        """The entry ``name``; ValueError listing the known ones otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(self.names())
            raise ValueError(f"unknown {self.kind} {name!r}: choose one of {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def discover(self, package: str, path: Iterable[str]) -> None:
        """Import every module of ``package`` (found on ``path``), so each registers itself."""
        for module in pkgutil.iter_modules(list(path)):
            importlib.import_module(f"{package}.{module.name}")
