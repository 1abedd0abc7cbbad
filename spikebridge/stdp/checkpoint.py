"""Checkpoints of the STDP route: one file, written after every training phase.

The file holds tensors, numbers, strings and lists only, and is read with
``torch.load(weights_only=True)``: loading it never runs code from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..engine.network import SpikingNetwork
from ..io import save_torch
from .model import StdpConfig, build_network

FORMAT = "spikebridge-stdp"
VERSION = 1
PHASES: tuple[str, ...] = ("autoencoder", "stdp", "readout")


class StdpCheckpointError(ValueError):
    """A checkpoint file is not an STDP-route checkpoint, or belongs to another run."""


def save_checkpoint(
    path: str | os.PathLike,
    network: SpikingNetwork,
    config: StdpConfig,
    seed: int,
    phase_done: str,
    history: list[dict],
    seconds: dict[str, float],
) -> Path:
    """Write the network after ``phase_done`` (one of PHASES) atomically."""
    if phase_done not in PHASES:
        raise ValueError(f"phase_done must be one of {PHASES}, got {phase_done!r}")
    rows = [{k: v for k, v in row.items() if k != "batch_errors"} for row in history]
    return save_torch(
        path,
        {
            "format": FORMAT,
            "version": VERSION,
            "config": config.to_dict(),
            "seed": int(seed),
            "phase_done": phase_done,
            "state": network.state_dict(),
            "history": rows,
            "seconds": dict(seconds),
        },
    )


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's contents; :class:`StdpCheckpointError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise StdpCheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or objects weights_only refuses
        raise StdpCheckpointError(
            f"{path}: not a readable STDP-route checkpoint ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StdpCheckpointError(
            f"{path}: not an STDP-route checkpoint (expected format {FORMAT!r}); was it written "
            "by `spikebridge train --route stdp`?"
        )
    if data.get("version") != VERSION or data.get("phase_done") not in PHASES:
        raise StdpCheckpointError(f"{path}: unsupported checkpoint version or phase")
    return data


def load_network(path: str | os.PathLike) -> tuple[SpikingNetwork, StdpConfig, dict]:
    """(network, config, checkpoint dict) from a checkpoint written by :func:`save_checkpoint`."""
    data = read_checkpoint(path)
    config = StdpConfig.from_dict(data["config"]).validate()
    network = build_network(config, seed=int(data["seed"]))
    try:
        network.load_state_dict(data["state"])
    except RuntimeError as err:
        raise StdpCheckpointError(f"{path}: weights do not fit its configuration: {err}") from None
    return network, config, data
