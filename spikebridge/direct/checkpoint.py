"""Training checkpoints: written atomically, read with clear errors.

A checkpoint is one ``torch.save`` dict holding the model, optimizer and scheduler states, the
number of completed epochs, every random-number-generator state that training consumes (Python,
NumPy, torch CPU and CUDA, the data loader's generator) and the per-epoch history, so a resumed
run continues exactly where the uninterrupted run would be.

Beside it, ``checkpoint.pt.sha256`` holds its SHA-256 (:func:`spikebridge.io.save_torch`); the
file is checked against it before it is read, and a mismatch (a flipped bit, a truncated copy) is
a :class:`CheckpointError` naming the file. A checkpoint without that file (written before
checksums) is read with a :class:`~spikebridge.io.ChecksumWarning`. The keys and types a resume
uses (model, optimizer, scheduler, epoch, RNG states) are checked as the file is read, so a
damaged or hand-made checkpoint is a named error, not a KeyError deep in training.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import ChecksumMismatch, save_torch, verify_checksum

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
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, resume: bool = False
) -> dict[str, Any]:
    """Read a checkpoint written by the trainer; CheckpointError names the file and the problem.

    The entries it has are checked for their types, and it must have ``model``; with ``resume``
    also everything training resumes from (optimizer, scheduler, epoch, random states)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: start without --resume or point to an existing file"
        )
    try:
        verify_checksum(path, "restore an intact copy, or train from scratch (--overwrite)")
    except ChecksumMismatch as err:
        text = str(err).replace(" is damaged", " is not a readable checkpoint: it is damaged", 1)
        raise CheckpointError(text) from None
    try:
        try:
            data = torch.load(path, map_location=map_location, weights_only=True)
        except TypeError:  # pragma: no cover - torch without weights_only
            data = torch.load(path, map_location=map_location)
    except Exception as err:  # a damaged file fails anywhere in the (weights-only) unpickler
        reason = (f"{type(err).__name__}: {err}".splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {reason}); restore an "
            "intact copy, or train from scratch (--overwrite)"
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
    problem = checkpoint_problem(data, resume=resume)
    if problem:
        raise CheckpointError(
            f"{path} is not a usable training checkpoint: {problem}; restore an intact copy, or "
            "train from scratch (--overwrite)"
        )
    return data


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _byte_state(value: Any, like: torch.Tensor) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dtype == torch.uint8
        and tuple(value.shape) == tuple(like.shape)
    )


def rng_problem(rng: Any) -> str | None:
    """What is wrong with a saved :func:`rng_state` (None when it can be restored)."""
    if not isinstance(rng, dict):
        return f"'rng' is a {type(rng).__name__}, not the saved random states"
    py = rng.get("python")
    if not (
        isinstance(py, (tuple, list))
        and len(py) == 3
        and isinstance(py[0], int)
        and isinstance(py[1], (tuple, list))
        and len(py[1]) == 625
        and all(isinstance(v, int) and not isinstance(v, bool) for v in py[1])
    ):
        return "'rng' has no valid Python random state"
    np_state = rng.get("numpy")
    if not (
        isinstance(np_state, (tuple, list))
        and len(np_state) == 5
        and np_state[0] == "MT19937"
        and isinstance(np_state[1], torch.Tensor)
        and np_state[1].numel() == 624
        and isinstance(np_state[2], int)
    ):
        return "'rng' has no valid NumPy random state"
    generator_state = torch.Generator().get_state()
    if not _byte_state(rng.get("torch"), generator_state):
        return "'rng' has no valid torch random state"
    if rng.get("loader") is not None and not _byte_state(rng["loader"], generator_state):
        return "'rng' has no valid data-loader random state"
    cuda = rng.get("cuda", [])
    if not isinstance(cuda, (list, tuple)) or not all(isinstance(c, torch.Tensor) for c in cuda):
        return "'rng' has no valid CUDA random states"
    return None


RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng")


def checkpoint_problem(data: dict[str, Any], resume: bool = True) -> str | None:
    """What is missing or of the wrong type in a training checkpoint's dict: None when it has a
    ``model`` (with ``resume``: everything :func:`~spikebridge.direct.trainer.train_direct`
    resumes from) and every entry it has is of the right type."""
    for key in RESUME_KEYS if resume else ("model",):
        if key not in data:
            return f"it has no {key!r} entry"
    if not _is_state_dict(data["model"]):
        return "its 'model' entry is not a state dict of tensors"
    optimizer = data.get("optimizer", {"state": {}, "param_groups": []})
    if not (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
    ):
        return "its 'optimizer' entry is not an optimizer state dict"
    if not isinstance(data.get("scheduler", {}), dict):
        return "its 'scheduler' entry is not a scheduler state dict"
    epoch = data.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        return f"its 'epoch' entry is {epoch!r}, not a count of epochs"
    if not isinstance(data.get("history", []), list):
        return "its 'history' entry is not a list"
    for key in ("spec", "config"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"its {key!r} entry is not a dict"
    return rng_problem(data["rng"]) if "rng" in data else None


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
    "checkpoint_problem",
    "load_training_checkpoint",
    "rng_state",
    "set_rng_state",
]
