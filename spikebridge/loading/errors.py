"""Errors raised while loading a user's model file.

Every message names the file (and, for a graph, the node and the user's source line) and says
what to do.
"""

from __future__ import annotations

from ..engine.graph import ConversionError


class ModelLoadError(ValueError):
    """A model file that cannot be read: missing, corrupt, of an unknown kind, or incomplete."""


class UnsafeModelError(ModelLoadError):
    """A file whose loading would unpickle (run) code from it and the caller did not trust it."""


class UnsupportedOperationError(ConversionError):
    """A graph holds operations that spiking conversion cannot express; lists each node."""


__all__ = ["ModelLoadError", "UnsafeModelError", "UnsupportedOperationError"]
