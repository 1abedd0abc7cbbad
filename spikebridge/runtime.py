"""Where and how reproducibly a run executes: the device and the random seeds."""

from __future__ import annotations

import random

import numpy as np
import torch

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a CUDA request without CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r}: choose one of {', '.join(DEVICES)}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was asked for but no CUDA device is available; use --device cpu or auto"
        )
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
