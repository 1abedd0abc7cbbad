"""Sharing an evaluation among the processes of a ``torchrun`` launch.

Every process simulates every ``world``-th batch of the test set and the integer counts are
summed with ``torch.distributed.all_reduce``; whole batches are sharded, so each sample's
simulation is bit-identical to a single process's and the totals equal a single process's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from .counters import LayerOps
from .result import Evaluation


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


def reduce_evaluation(ev: Evaluation, shard: Shard) -> Evaluation:
    """Sum the counts of every process (layer sets are merged first: a process may have no batch)."""
    meta = {
        "neurons": ev.neurons,
        "layers": {
            n: (
                op.kind,
                op.analog,
                op.macs_per_sample,
                op.acs_per_sample,
                op.module,
                op.shape,
                op.dense_steps,
            )
            for n, op in ev.layers.items()
        },
        "types": ev.types,
        "units": list(ev.units),
        "spike_levels": ev.spike_levels,
        "payload_bits": ev.payload_bits,
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
    unit_names = list(dict.fromkeys(n for part in gathered for n in part["units"]))
    spike_levels = max(part["spike_levels"] for part in gathered)
    bits = max(part["payload_bits"] for part in gathered)
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
    parts += rows(ev.units, unit_names)
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
    units = {n: take(steps) for n in unit_names}
    layers = {}
    for n, (kind, analog, macs, acs, module, shape, dense_steps) in layer_meta.items():
        layers[n] = LayerOps(
            kind,
            analog,
            macs,
            acs,
            None if analog else sops[n],
            None if analog else inputs[n],
            module,
            shape,  # sizes and modes for the energy models (spikebridge.energy)
            dense_steps,
        )
    return Evaluation(
        correct, total, spikes, neurons, layers, float(seconds.item()), ev.notes, types, units,
        spike_levels, bits,
    )  # fmt: skip


def launched_distributed() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
