"""Converted spiking networks and their ANN as weights-only files the toolkit loads without
running code from them (no ``--trust-checkpoint``).

A file is one ``torch.save`` of plain data, read back with ``torch.load(weights_only=True)``::

    {"format": "spikebridge-snn", "version": 1,
     "ann": {"kind": "arch", "arch": "cnn", "num_classes": 10, ...}   # or
            {"kind": "graph-file", "path": "/abs/net.onnx", "sha256": "..."},
     "maxpool": "spiking",                     # the conversion's max-pool mode
     "neurons": {"features.2": {"class": "IFNeuron", "reset": "subtract", ...}, ...},
     "max_pools": {"features.5": "running", ...},
     "encoding": "analog", "seed": 0, "chunk_size": None,
     "method": "channel", "timesteps": 32, "state": {name: tensor, ...}}

The network is rebuilt with the toolkit's own code: the ANN's graph (``models.build_model`` for
an architecture by name, or the user's .pt2/ONNX file, checked against its SHA-256), the
conversion's :func:`~spikebridge.convert.prepare`, and each activation replaced by the neuron
the record names (:class:`~spikebridge.engine.neurons.IFNeuron` or
:class:`~spikebridge.engine.neurons.SignedIFNeuron`, with its reset, sign and initial
potential); then every tensor (weights, corrected biases, thresholds, per-channel potentials)
is loaded from ``state``. An ANN file (``kind`` ``"spikebridge-ann"``) holds the record and
the trained ANN's state dict. A pickled module is written only on request (``--save-pickle``).
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .engine import graph as g
from .engine.encoding import make_encoder
from .engine.graph import set_submodule
from .engine.network import SpikingNetwork
from .engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool
from .io import file_sha256, save_torch

SNN_FORMAT = "spikebridge-snn"
ANN_FORMAT = "spikebridge-ann"
VERSION = 1
NEURONS = {"IFNeuron": IFNeuron, "SignedIFNeuron": SignedIFNeuron}


class SnnFileError(ValueError):
    """A file is not a network file this toolkit wrote, or cannot be rebuilt; names the file."""


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 digest of ``path`` (hex): how a network file names the graph file it needs."""
    return file_sha256(path)


def ann_record(
    arch: str, num_classes: int, in_channels: int, image_size: int, width: float = 1.0,
    activation: str = "relu", pool: str = "avg", alpha: float = 0.1, levels: int = 4,
    graph_file: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """How to rebuild the ANN's graph: an architecture by name, or the user's graph file."""
    if graph_file is not None:
        path = Path(graph_file).resolve()
        return {"kind": "graph-file", "path": str(path), "sha256": sha256(path)}
    return {
        "kind": "arch", "arch": arch, "num_classes": int(num_classes),
        "in_channels": int(in_channels), "image_size": int(image_size), "width": float(width),
        "activation": activation, "pool": pool, "alpha": float(alpha), "levels": int(levels),
    }  # fmt: skip


def build_ann(record: dict[str, Any], source: str = "") -> nn.Module:
    """The (untrained) ANN a record describes."""
    if record.get("kind") == "graph-file":
        from .model_files import load_ann

        path = record["path"]
        if not Path(path).is_file():
            raise SnnFileError(
                f"{source}: the network was converted from {path}, which is gone; put the file "
                "back (the same bytes) to rebuild it"
            )
        if sha256(path) != record.get("sha256"):
            raise SnnFileError(
                f"{source}: {path} has changed since the network was converted from it (its "
                "SHA-256 differs); restore the original file"
            )
        return load_ann(path, None, False)
    if record.get("kind") != "arch":
        raise SnnFileError(f"{source}: unknown ANN record {record.get('kind')!r}")
    from .models import build_model

    return build_model(
        record["arch"], record["num_classes"], record["in_channels"], record["image_size"],
        record["width"], activation=record["activation"], pool=record["pool"],
        alpha=record["alpha"], levels=record["levels"],
    )  # fmt: skip


def _neuron_record(module: nn.Module) -> dict[str, Any]:
    graded = {"levels": module.levels} if module.levels > 1 else {}  # K = 1: as before
    if isinstance(module, SignedIFNeuron):
        return {"class": "SignedIFNeuron", "alpha": module.alpha,
                "initial_potential": float(module.initial_potential), **graded}  # fmt: skip
    u0 = module.initial_potential
    return {
        "class": "IFNeuron", "reset": module.reset, "negative_spikes": module.negative_spikes,
        "initial_potential": None if isinstance(u0, torch.Tensor) else float(u0), **graded,
    }  # fmt: skip


def save_snn(
    path: str | os.PathLike,
    network: SpikingNetwork,
    ann: dict[str, Any],
    maxpool: str,
    encoding: str,
    seed: int = 0,
    **extra: Any,
) -> Path:
    """Write ``network`` (a converted network) as a weights-only file (atomically).

    ``ann`` is :func:`ann_record` of the ANN it was converted from; ``maxpool`` the conversion's
    max-pool mode, ``encoding`` and ``seed`` its input encoder's; ``extra`` (method, timesteps,
    ...) is recorded as it is (plain values only)."""
    module = network.module
    neurons = {
        n: _neuron_record(m) for n, m in module.named_modules() if type(m) in NEURONS.values()
    }
    pools = {n: m.rule for n, m in module.named_modules() if isinstance(m, SpikingMaxPool)}
    data = {
        "format": SNN_FORMAT, "version": VERSION, "ann": ann, "maxpool": maxpool,
        "neurons": neurons, "max_pools": pools, "encoding": encoding, "seed": seed,
        "chunk_size": network.chunk_size, **extra,
        "state": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }  # fmt: skip
    return save_torch(path, data)


def save_ann(path: str | os.PathLike, model: nn.Module, ann: dict[str, Any], **extra: Any) -> Path:
    """Write the trained ANN as a weights-only file: the record and its state dict."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    data = {"format": ANN_FORMAT, "version": VERSION, "ann": ann, **extra, "state": state}
    return save_torch(path, data)


def read(path: str | os.PathLike) -> dict[str, Any] | None:
    """The file's data when it is one of these formats (loaded weights-only), else None
    (another kind of file; a pickle is never unpickled here)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError):
        return None
    if isinstance(data, dict) and data.get("format") in (SNN_FORMAT, ANN_FORMAT):
        return data
    return None


def load_ann_file(path: str | os.PathLike) -> nn.Module:
    """The trained ANN of a file :func:`save_ann` wrote."""
    data = read(path)
    if data is None or data.get("format") != ANN_FORMAT:
        raise SnnFileError(f"{path}: not an ANN file written by spikebridge convert")
    model = build_ann(data["ann"], str(path))
    model.load_state_dict(data["state"])
    return model.eval()


def load_snn(path: str | os.PathLike, device: torch.device | str = "cpu") -> SpikingNetwork:
    """The spiking network of a file :func:`save_snn` wrote, rebuilt by the toolkit (nothing in
    the file runs)."""
    data = read(path)
    if data is None or data.get("format") != SNN_FORMAT:
        raise SnnFileError(f"{path}: not a spiking-network file written by spikebridge convert")
    if int(data.get("version", 0)) > VERSION:
        raise SnnFileError(f"{path}: written by a newer spikebridge (format version "
                           f"{data['version']}); upgrade spikebridge to read it")  # fmt: skip
    from .convert.prepare import prepare

    module = prepare(build_ann(data["ann"], str(path)), maxpool=data["maxpool"])
    state = data["state"]
    for name, spec in data["neurons"].items():
        threshold = state.get(f"{name}.threshold")
        if threshold is None or spec.get("class") not in NEURONS:
            raise SnnFileError(f"{path}: layer {name}: no threshold or an unknown neuron")
        levels = spec.get("levels", 1)
        try:
            if spec["class"] == "SignedIFNeuron":
                neuron = SignedIFNeuron(threshold, spec["alpha"], spec["initial_potential"], levels)
            else:
                u0 = spec["initial_potential"]
                if u0 is None:
                    u0 = state[f"{name}.initial_potential"]
                neuron = IFNeuron(threshold, spec["reset"], u0, spec["negative_spikes"], levels)
        except ValueError as err:
            raise SnnFileError(f"{path}: layer {name}: {err}") from None
        try:
            set_submodule(module, name, neuron)
        except (AttributeError, KeyError) as err:
            raise SnnFileError(f"{path}: layer {name} is not in the rebuilt network") from err
    for node in module.graph.nodes:
        target = str(node.target)
        if target in data["max_pools"] and isinstance(g.module_of(module, node), g.MAX_POOLS):
            pool = copy.deepcopy(g.module_of(module, node))
            set_submodule(module, target, SpikingMaxPool(pool, data["max_pools"][target]))
    module.recompile()
    _add_missing_biases(module, state)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise SnnFileError(
            f"{path}: the rebuilt network does not match the saved tensors ({err})"
        ) from None
    encoder = make_encoder(data["encoding"], data.get("seed"))
    return SpikingNetwork(module.eval(), encoder, data.get("chunk_size")).to(device)


def _add_missing_biases(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A bias the conversion added (bias correction of a layer built without one)."""
    for key, value in state.items():
        owner, _, name = key.rpartition(".")
        if name != "bias" or key in module.state_dict():
            continue
        layer = module.get_submodule(owner)
        if getattr(layer, "bias", 0) is None:
            layer.bias = nn.Parameter(torch.zeros_like(value))


__all__ = [
    "ANN_FORMAT",
    "SNN_FORMAT",
    "SnnFileError",
    "ann_record",
    "load_ann_file",
    "load_snn",
    "read",
    "save_ann",
    "save_snn",
]
