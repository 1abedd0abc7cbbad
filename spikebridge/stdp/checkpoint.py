"""Checkpoints of the STDP route: one file, written after every training phase.

The file holds tensors, numbers, strings and lists only, and is read with
``torch.load(weights_only=True)``: loading it never runs code from it.

It holds the network after the phase, the history, and every random state the next phases draw
from (Python, NumPy, torch, the training loader's shuffling generator: ``rng``), so a run resumed
after any phase ends bit for bit where the uninterrupted run ends. ``NAME.sha256`` beside it holds
its SHA-256 (:func:`spikebridge.io.save_torch`) and is checked before the file is read: a
damaged file (a flipped bit, a truncated copy) is a :class:`StdpCheckpointError` naming it. A
checkpoint without that file, or without ``rng`` (written by earlier versions), is read with a
warning: it is unverified, or its resumed run is not bit-identical.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..direct.checkpoint import rng_problem
from ..engine.network import SpikingNetwork
from ..io import ChecksumMismatch, save_torch, verify_checksum
from .model import StdpConfig, build_network

FORMAT = "spikebridge-stdp"
VERSION = 1
PHASES: tuple[str, ...] = ("autoencoder", "stdp", "readout")


class StdpCheckpointError(ValueError):
    """A checkpoint file is not an STDP-route checkpoint, or belongs to another run."""


class InexactResumeWarning(UserWarning):
    """A checkpoint holds no random states: the run resumed from it is not bit-identical."""


def save_checkpoint(
    path: str | os.PathLike,
    network: SpikingNetwork,
    config: StdpConfig,
    seed: int,
    phase_done: str,
    history: list[dict],
    seconds: dict[str, float],
    rng: dict[str, Any] | None = None,
) -> Path:
    """Write the network after ``phase_done`` (one of PHASES) atomically, with ``rng`` (the
    random states the next phase starts from, :func:`spikebridge.direct.checkpoint.rng_state`)."""
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
            "rng": rng,
        },
    )


REMEDY = "delete it (and its .sha256) to train again, or restore an intact copy"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's contents, checked against its checksum and for its keys and types;
    :class:`StdpCheckpointError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise StdpCheckpointError(f"{path}: no such checkpoint file")
    try:
        verify_checksum(path, REMEDY)
    except ChecksumMismatch as err:
        raise StdpCheckpointError(str(err)) from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or objects weights_only refuses
        raise StdpCheckpointError(
            f"{path}: not a readable STDP-route checkpoint (truncated or corrupt: "
            f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); {REMEDY}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StdpCheckpointError(
            f"{path}: not an STDP-route checkpoint (expected format {FORMAT!r}); was it written "
            "by `spikebridge train --route stdp`?"
        )
    if data.get("version") != VERSION or data.get("phase_done") not in PHASES:
        raise StdpCheckpointError(f"{path}: unsupported checkpoint version or phase")
    problem = _problem(data)
    if problem:
        raise StdpCheckpointError(
            f"{path}: not a usable STDP-route checkpoint: {problem}; {REMEDY}"
        )
    if data.get("rng") is None:
        warnings.warn(
            f"{path} holds no random states (written by an earlier spikebridge version): a run "
            "resumed from it is not bit-identical to an uninterrupted one",
            InexactResumeWarning,
            stacklevel=2,
        )
    return data


def _problem(data: dict) -> str | None:
    """What is missing or of the wrong type (None when the checkpoint is usable)."""
    if not isinstance(data.get("config"), dict):
        return "its 'config' entry is missing or not a dict"
    if not isinstance(data.get("seed"), int) or isinstance(data.get("seed"), bool):
        return "its 'seed' entry is missing or not an integer"
    state = data.get("state")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        return "its 'state' entry is not a state dict of tensors"
    if not isinstance(data.get("history"), list):
        return "its 'history' entry is missing or not a list"
    if not isinstance(data.get("seconds"), dict):
        return "its 'seconds' entry is missing or not a dict"
    if data.get("rng") is not None:
        return rng_problem(data["rng"])
    return None


def load_network(path: str | os.PathLike) -> tuple[SpikingNetwork, StdpConfig, dict]:
    """(network, config, checkpoint dict) from a checkpoint written by :func:`save_checkpoint`."""
    data = read_checkpoint(path)
    try:
        config = StdpConfig.from_dict(data["config"]).validate()
    except (TypeError, ValueError) as err:
        raise StdpCheckpointError(f"{path}: its configuration is not valid: {err}") from None
    network = build_network(config, seed=int(data["seed"]))
    try:
        network.load_state_dict(data["state"])
    except RuntimeError as err:
        raise StdpCheckpointError(f"{path}: weights do not fit its configuration: {err}") from None
    return network, config, data
