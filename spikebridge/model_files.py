"""Loading a user's trained ANN: a state dict, a torch.export program, or (only when trusted) a
whole pickled module. Nothing in a file runs unless ``trust=True``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_ann(path: str, arch_model: nn.Module | None, trust: bool = False) -> nn.Module:
    """A model from ``path``: a state dict (for ``arch_model``), a torch.export program, or, only
    with ``trust``, a whole pickled module."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--checkpoint {path!r}: no such file")
    if file.suffix == ".pt2":
        return _load_exported(path, arch_model)
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        if not trust:
            raise ValueError(
                f"--checkpoint {path!r} is not a plain state dict ({type(err).__name__}); if it is a "
                "whole pickled module from a source you trust, add --trust-checkpoint"
            ) from err
        obj = torch.load(file, map_location="cpu", weights_only=False)
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(
            f"--checkpoint {path!r} holds a {type(obj).__name__}, not a state dict or module"
        )
    if arch_model is None:
        raise ValueError(
            f"--checkpoint {path!r} is a state dict: name its architecture with --arch"
        )
    try:
        arch_model.load_state_dict(obj)
    except RuntimeError as err:
        raise ValueError(
            f"--checkpoint {path!r} does not match the architecture ({err}). Check --arch, --width "
            "and the dataset (input channels, classes)"
        ) from err
    return arch_model


def _load_exported(path: str, arch_model: nn.Module | None) -> nn.Module:
    """Weights of a torch.export program, loaded into the ``--arch`` model they were exported from.

    An exported program's graph is made of ATen operators, not of the nn modules conversion
    rewrites, so the architecture comes from ``--arch`` and the program supplies the weights.
    """
    try:
        program = torch.export.load(path)
    except Exception as err:
        raise ValueError(f"--checkpoint {path!r}: not a torch.export program ({err})") from err
    if arch_model is None:
        raise ValueError(
            f"--checkpoint {path!r}: name the exported model's architecture with --arch"
        )
    state = dict(program.state_dict)
    state.update({k: v for k, v in program.constants.items() if k in arch_model.state_dict()})
    try:
        arch_model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"--checkpoint {path!r}: the exported program's weights do not match the architecture "
            f"({err}). Check --arch and --width, or pass the model's state dict instead"
        ) from err
    return arch_model
