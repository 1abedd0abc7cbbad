"""Training checkpoints: written atomically, read with clear errors.

A checkpoint is one ``torch.save`` dict holding the model, optimizer and scheduler states, the
number of completed epochs, every random-number-generator state that training consumes (Python,
NumPy, torch CPU and CUDA, the data loader's generator) and the per-epoch history, so a resumed
run continues exactly where the uninterrupted run would be.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import save_torch

FORMAT = "spikebridge-direct-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the network it is loaded into."""


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same directory, fsync, then rename over ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_torch(path, obj)


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state a training epoch draws from (tensors and plain values only)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state() if generator is not None else None,
    }
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("loader") is not None:
        generator.set_state(state["loader"])


def _tuples(value: Any) -> Any:
    """Lists back to tuples (random.setstate wants the nested tuple it produced)."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def load_training_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by the trainer; CheckpointError names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: start without --resume or point to an existing file"
        )
    try:
        try:
            data = torch.load(path, map_location=map_location, weights_only=True)
        except TypeError:  # pragma: no cover - torch without weights_only
            data = torch.load(path, map_location=map_location)
    except (
        RuntimeError,
        EOFError,
        OSError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
    ) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {err}); delete it and "
            "train from scratch, or restore an intact copy"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a spikebridge direct-training checkpoint (format field "
            f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r})"
        )
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')} is not supported (expected {VERSION})"
        )
    return data


def check_compatible(
    state: dict[str, torch.Tensor], model: nn.Module, path: str | os.PathLike
) -> None:
    """Raise CheckpointError when ``state`` (a saved state_dict) does not fit ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shape mismatch {shapes[:3]}" if shapes else "",
            )
            if part
        )
        raise CheckpointError(
            f"{path} was saved from a different architecture than the network being trained "
            f"({details}); use the same --arch/--width/--dataset as the run that wrote it, or a new --out"
        )


__all__ = [
    "CheckpointError",
    "atomic_save",
    "check_compatible",
    "load_training_checkpoint",
    "rng_state",
    "set_rng_state",
]
