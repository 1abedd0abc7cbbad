"""Loading a user's trained ANN: a state dict, a torch.export program, or (only when trusted) a
whole pickled module. Nothing in a file runs unless ``trust=True``."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn


def load_ann(path: str, arch_model: nn.Module | None, trust: bool = False) -> nn.Module:
    """A model from ``path``: a state dict (for ``arch_model``), a torch.export program, or, only
    with ``trust``, a whole pickled module. Every failure is a ValueError (FileNotFoundError for
    a missing file) naming ``--checkpoint`` and the file."""
    file = Path(path)
    if not file.is_file():
        what = "a directory, not a file" if file.is_dir() else "no such file"
        raise FileNotFoundError(f"--checkpoint {path!r}: {what}")
    if file.suffix == ".pt2":
        return _load_exported(path, arch_model)
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        if not _needs_trust(err):
            raise ValueError(_unreadable(path, err)) from err
        if not trust:
            raise ValueError(
                f"--checkpoint {path!r} holds Python objects beyond a state dict ({_root_cause(err)}); "
                "if it is a whole pickled module from a source you trust, add --trust-checkpoint"
            ) from err
        obj = _load_trusted(file, path)
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


def _needs_trust(err: Exception) -> bool:
    """Whether the weights-only loader refused a readable file for holding other objects (as
    opposed to a file that is truncated or corrupt)."""
    return isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err)


def _root_cause(err: Exception) -> str:
    """The one line of torch's long weights-only message that says what was refused."""
    for line in str(err).splitlines():
        if "Unsupported global" in line:
            return line.strip().split(" was not an allowed global")[0]
    return type(err).__name__


def _unreadable(path: str, err: Exception) -> str:
    reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    reason = reason.splitlines()[0][:200]
    return (
        f"--checkpoint {path!r} is not a readable checkpoint: it is truncated or corrupt "
        f"({reason}); restore an intact copy"
    )


def _load_trusted(file: Path, path: str):
    """``torch.load(weights_only=False)``, for a file the user trusts."""
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"--checkpoint {path!r}: the pickled module's class cannot be found ({err}); run with "
            "the code that defined it importable (on the Python path), or save a state dict "
            "instead and name its architecture with --arch"
        ) from err
    except Exception as err:
        raise ValueError(_unreadable(path, err)) from err


def _load_exported(path: str, arch_model: nn.Module | None) -> nn.Module:
    """Weights of a torch.export program, loaded into the ``--arch`` model they were exported from.

    An exported program's graph is made of ATen operators, not of the nn modules conversion
    rewrites, so the architecture comes from ``--arch`` and the program supplies the weights.
    """
    if not zipfile.is_zipfile(path):  # before torch.export.load, which logs a traceback
        raise ValueError(
            f"--checkpoint {path!r}: not a torch.export program (not a zip archive: truncated, "
            "corrupt or another format)"
        )
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
