"""Evaluating networks for the comparison: accuracy at every step, spikes and operations per layer.

Composes :meth:`SpikingNetwork.simulate` (accuracy after every t <= T from one simulation, SPEC
3.1; spikes per neuron layer) with the operation counters of :mod:`.ops` (SOPs per step, analog
MACs). Under ``torchrun`` every process simulates its share of the test batches and the integer
counts are summed with ``torch.distributed.all_reduce``, so the totals equal a single process's.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from ..evaluation import Evaluation
from ..network import SpikingNetwork
from ..progress import progress_bar
from .ops import LayerOps, SnnOpCounter, instrument, static_modules, uncounted_layers


@dataclass
class Shard:
    """This process's place among ``world`` processes sharing an evaluation."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world > 1


def current_shard(device: torch.device | str = "cpu") -> Shard:
    """The shard of this process: (rank, world) of an initialised process group, else (0, 1).

    The reduction device is ``device`` (NCCL needs CUDA tensors; gloo takes CPU tensors).
    """
    device = torch.device(device)
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        reduce_device = device if backend == "nccl" else torch.device("cpu")
        return Shard(dist.get_rank(), dist.get_world_size(), reduce_device)
    return Shard(0, 1, torch.device("cpu"))


class _EveryNth(Sampler):
    """Batches i with i % world == rank of a batch sampler (same batch contents as one process)."""

    def __init__(self, batch_sampler: Iterable, rank: int, world: int) -> None:
        self.batch_sampler, self.rank, self.world = batch_sampler, rank, world

    def __iter__(self) -> Iterator:
        for i, batch in enumerate(self.batch_sampler):
            if i % self.world == self.rank:
                yield batch

    def __len__(self) -> int:
        return max(0, (len(self.batch_sampler) - self.rank + self.world - 1) // self.world)


def shard_batches(loader: Iterable, shard: Shard) -> Iterable:
    """This process's share of ``loader``: every ``world``-th batch starting at ``rank``.

    Sharding whole batches keeps each batch exactly as a single process sees it, so every
    sample's simulation is bit-identical and the summed counts equal the single-process ones.
    """
    if not shard.enabled:
        return loader
    if isinstance(loader, DataLoader) and loader.batch_sampler is not None:
        return DataLoader(
            loader.dataset,
            batch_sampler=_EveryNth(loader.batch_sampler, shard.rank, shard.world),
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
        )
    return (b for i, b in enumerate(loader) if i % shard.world == shard.rank)


def _pairs(loader: Iterable) -> Iterator[tuple[Tensor, Tensor]]:
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("the data loader must yield (inputs, labels) pairs")
        yield batch[0], batch[1]


@dataclass
class NetworkEvaluation:
    """Totals of one spiking network over a test set (summed over processes when sharded).

    Attributes:
        correct: [T] correct predictions after each step t = 1..T.
        total: number of samples.
        spikes: neuron layer -> [T] spikes (non-zero outputs, either sign) per step, all samples.
        neurons: neuron layer -> neurons per sample.
        layers: counted layer -> :class:`LayerOps` (SOPs per step, analog MACs per sample).
        seconds: wall time of the simulation (the slowest process when sharded).
        notes: what could not be counted exactly.
        types: layer -> class name of its module (neurons and counted layers).
    """

    correct: Tensor
    total: int
    spikes: dict[str, Tensor] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerOps] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def timesteps(self) -> int:
        return int(self.correct.numel())

    @property
    def accuracy(self) -> Tensor:
        """[T] accuracy after each step, fractions in [0, 1]."""
        return self.correct.double() / max(self.total, 1)

    def macs(self) -> Tensor:
        """[T] MACs per step, summed over samples (the analog-input layers)."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            out += op.macs(self.timesteps, self.total)
        return out

    def sops(self) -> Tensor:
        """[T] synaptic operations per step, summed over samples (event-driven layers)."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            if not op.analog and op.sops is not None:
                out += op.sops.double()
        return out

    def adds(self) -> Tensor:
        """[T] dense additions per step of analog-input junctions, summed over samples."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            if op.analog:
                out += op.acs_per_sample * self.total
        return out

    def to_evaluation(self) -> Evaluation:
        """The :class:`spikebridge.evaluation.Evaluation` view (accuracy and spikes)."""
        return Evaluation(
            self.correct, self.total, dict(self.spikes), dict(self.neurons), self.seconds
        )


def _with_module(network: SpikingNetwork, module: nn.Module) -> SpikingNetwork:
    """A shallow copy of ``network`` (same class, encoder, settings) running ``module``."""
    clone = copy.copy(network)
    clone._modules = dict(network._modules)
    clone._modules["module"] = module
    return clone


@torch.no_grad()
def evaluate_network(
    network: SpikingNetwork,
    loader: Iterable,
    timesteps: int,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "simulate",
    shard: Shard | None = None,
) -> NetworkEvaluation:
    """Simulate ``network`` on every batch of ``loader`` for ``timesteps`` steps, counting everything.

    Inputs are what ``network``'s encoder takes: static images [B, C, H, W] (analog or Poisson)
    or event frames [B, T, ...]. With a ``shard`` of several processes (see
    :func:`current_shard`), this process simulates every ``world``-th batch and the totals are
    summed across processes; every process gets the same result.
    """
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps <= 0:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    shard = shard or Shard()
    device = torch.device(device)
    network.to(device).eval()
    notes: list[str] = []
    analog = bool(getattr(network.encoder, "static", False))
    try:
        counted_module = instrument(network.module, spiking=True)
        counter = SnnOpCounter(static_modules(counted_module) if analog else set())
        runner = _with_module(network, counted_module)
    except Exception as err:  # untraceable custom module: hooks on the modules it has
        counted_module = network.module
        counter = SnnOpCounter(dynamic_static=analog)
        runner = network
        notes.append(
            f"{type(network.module).__name__} could not be traced with torch.fx "
            f"({type(err).__name__}); functional additions and pooling are not counted"
        )
    for layer in uncounted_layers(network.module):
        notes.append(
            f"layer {layer} has weights but no operation counter; its operations are not counted"
        )
    counter.attach(counted_module)
    correct = torch.zeros(timesteps, dtype=torch.long)
    total = 0
    spikes: dict[str, Tensor] = {}
    neurons: dict[str, int] = {}
    start = time.perf_counter()
    try:
        for x, y in progress_bar(_pairs(shard_batches(loader, shard)), progress, description):
            x, y = x.to(device), y.to(device)
            counter.start_batch(x.shape[0], timesteps)
            sim = runner.simulate(x, timesteps, record_spikes=True)
            correct += sim.correct(y).cpu()
            total += y.numel()
            for name, counts in sim.spikes.items():
                spikes[name] = spikes.get(name, 0) + counts.cpu().long()
            neurons.update(sim.neurons)
    finally:
        counter.detach()
    seconds = time.perf_counter() - start
    types = {name: type(m).__name__ for name, m in network.neurons().items()}
    types.update({name: op.module for name, op in counter.layers.items()})
    result = NetworkEvaluation(
        correct, total, spikes, neurons, counter.layers, seconds, notes, types
    )
    if shard.enabled:
        result = _reduce(result, shard)
    if result.total == 0:
        raise ValueError("the evaluation data loader yielded no samples")
    return result


def _reduce(ev: NetworkEvaluation, shard: Shard) -> NetworkEvaluation:
    """Sum the counts of every process (layer sets are merged first: a process may have no batch)."""
    meta = {
        "neurons": ev.neurons,
        "layers": {
            n: (op.kind, op.analog, op.macs_per_sample, op.acs_per_sample, op.module)
            for n, op in ev.layers.items()
        },
        "types": ev.types,
    }
    gathered: list = [None] * shard.world
    dist.all_gather_object(gathered, meta)
    neurons: dict[str, int] = {}
    layer_meta: dict[str, tuple] = {}
    types: dict[str, str] = {}
    for part in gathered:
        for k, v in part["types"].items():
            types.setdefault(k, v)
        for k, v in part["neurons"].items():
            neurons.setdefault(k, v)
        for k, v in part["layers"].items():
            layer_meta.setdefault(k, v)
    spike_names = list(neurons)
    layer_names = list(layer_meta)
    steps = ev.timesteps
    zeros = torch.zeros(steps, dtype=torch.long)

    def rows(values: dict, names: list[str], attr: str | None = None) -> list[Tensor]:
        out = []
        for n in names:
            v = values.get(n)
            if attr is not None:
                v = getattr(v, attr, None) if v is not None else None
            out.append(v.long() if isinstance(v, Tensor) else zeros)
        return out

    parts = [ev.correct.long(), torch.tensor([ev.total], dtype=torch.long)]
    parts += rows(ev.spikes, spike_names)
    parts += rows(ev.layers, layer_names, "sops")
    parts += rows(ev.layers, layer_names, "inputs")
    flat = torch.cat(parts).to(shard.device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat = flat.cpu()
    seconds = torch.tensor([ev.seconds], dtype=torch.float64, device=shard.device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    pos = 0

    def take(n: int) -> Tensor:
        nonlocal pos
        chunk = flat[pos : pos + n]
        pos += n
        return chunk

    correct = take(steps)
    total = int(take(1).item())
    spikes = {n: take(steps) for n in spike_names}
    sops = {n: take(steps) for n in layer_names}
    inputs = {n: take(steps) for n in layer_names}
    layers = {}
    for n, (kind, analog, macs, acs, module) in layer_meta.items():
        layers[n] = LayerOps(
            kind,
            analog,
            macs,
            acs,
            None if analog else sops[n],
            None if analog else inputs[n],
            module,
        )
    return NetworkEvaluation(
        correct, total, spikes, neurons, layers, float(seconds.item()), ev.notes, types
    )


@torch.no_grad()
def evaluate_ann_sharded(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str = "cpu",
    progress: bool = False,
    shard: Shard | None = None,
) -> tuple[float, int, float]:
    """(top-1 accuracy, samples, seconds) of an ANN; sharded and summed like :func:`evaluate_network`."""
    shard = shard or Shard()
    device = torch.device(device)
    model.to(device).eval()
    correct = total = 0
    start = time.perf_counter()
    for x, y in progress_bar(_pairs(shard_batches(loader, shard)), progress, "ANN test"):
        correct += int((model(x.to(device)).argmax(-1) == y.to(device)).sum().item())
        total += y.numel()
    seconds = time.perf_counter() - start
    if shard.enabled:
        counts = torch.tensor([correct, total], dtype=torch.long, device=shard.device)
        dist.all_reduce(counts)
        correct, total = (int(v) for v in counts.tolist())
        wall = torch.tensor([seconds], dtype=torch.float64, device=shard.device)
        dist.all_reduce(wall, op=dist.ReduceOp.MAX)
        seconds = float(wall.item())
    if total == 0:
        raise ValueError("the evaluation data loader yielded no samples")
    return correct / total, total, seconds


def launched_distributed() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


__all__ = [
    "NetworkEvaluation",
    "Shard",
    "current_shard",
    "evaluate_ann_sharded",
    "evaluate_network",
    "launched_distributed",
    "shard_batches",
]
