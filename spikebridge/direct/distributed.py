"""Multi-process data-parallel training through torch.distributed.

Launched with ``torchrun`` (or ``python -m torch.distributed.run``), each process reads RANK,
WORLD_SIZE and LOCAL_RANK from the environment; the trainer then wraps the network in
DistributedDataParallel (gloo on CPU, nccl on GPU) and gives each process a DistributedSampler
share of the training set. Without those variables everything runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..runtime import resolve_device


@dataclass
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | torch.device = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single process."""
    device = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(0, 1, 0, device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world, local_rank, device)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def distributed_loader(loader: DataLoader, ctx: DistributedContext, seed: int) -> DataLoader:
    """The same loader, each process reading its own share through a DistributedSampler.

    Shuffling (when the original loader shuffles) is seeded by ``seed`` and the epoch
    (``loader.sampler.set_epoch``), so every process agrees on the permutation.
    """
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed,
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
    )


def wrap_ddp(module: nn.Module, ctx: DistributedContext) -> nn.Module:
    """DistributedDataParallel around ``module`` (parameters broadcast from rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    if ctx.device.type == "cuda":
        return DistributedDataParallel(module, device_ids=[ctx.device.index])
    return DistributedDataParallel(module)


def all_reduce_sums(values: list[float], ctx: DistributedContext) -> list[float]:
    """Sum ``values`` over all processes."""
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_buffers(module: nn.Module, ctx: DistributedContext) -> None:
    """Copy rank 0's buffers (BN running statistics) to every process, so all states agree."""
    if not ctx.enabled:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


__all__ = [
    "DistributedContext",
    "all_reduce_sums",
    "broadcast_buffers",
    "distributed_loader",
    "setup_distributed",
    "shutdown_distributed",
    "wrap_ddp",
]
