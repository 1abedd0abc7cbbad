"""Loading a user's trained ANN for the commands: a .pt2 or ONNX file (its own graph), a state
dict (into the architecture by name), or (only when trusted) a whole pickled module. Nothing in a
file runs unless ``trust=True``; see :mod:`spikebridge.loading`."""

from __future__ import annotations

from torch import nn

from .loading import is_graph_file, load_model
from .loading.errors import ModelLoadError

ARCHITECTURE_SETTINGS = ("arch", "width", "activation", "alpha", "levels", "pool")
"""Settings that describe an architecture spikebridge builds; a graph file carries its own."""


def load_ann(path: str, arch_model: nn.Module | None, trust: bool = False) -> nn.Module:
    """A model from ``path``: a .pt2/.onnx graph (``arch_model`` unused), a state dict loaded
    into ``arch_model``, or, only with ``trust``, a whole pickled module. Errors name the
    ``--checkpoint`` argument before the file."""
    try:
        return load_model(path, trust=trust, arch=arch_model)
    except ModelLoadError as err:
        raise type(err)(f"--checkpoint {err}") from err


def refuse_architecture_for_graph(checkpoint: str | None, given: list[str]) -> None:
    """A ValueError when architecture settings are ``given`` with a graph file ``checkpoint``."""
    if not checkpoint or not is_graph_file(checkpoint):
        return
    clash = [n for n in ARCHITECTURE_SETTINGS if n in given]
    if clash:
        flags = ", ".join("--" + n.replace("_", "-") for n in clash)
        raise ValueError(
            f"{flags} describe(s) an architecture spikebridge builds, but --checkpoint "
            f"{checkpoint} carries its own graph; drop {flags}"
        )


__all__ = ["ARCHITECTURE_SETTINGS", "load_ann", "refuse_architecture_for_graph"]
