"""Phase 1 of the STDP route: conv1's kernels learnt by a sparse spiking auto-encoder on image
patches, without labels (Tavanaei & Maida 2017, eq. 4-5).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.network import SpikingNetwork
from ..engine.wta_lif import WTALIFNeuron
from ..progress import progress_bar
from .epochs import HistoryCallback, SilenceWatch, check_finite, record_epoch
from .inputs import image_batches, poisson_spikes, sample_patches, seeded_generator
from .model import LAYER_NAMES, StdpConfig
from .rules import autoencoder_update


def init_kernels_from_patches(
    conv: nn.Conv2d, loader: Iterable, generator: torch.Generator
) -> None:
    """Start conv1's kernels at random image patches of unit norm (data initialisation)."""
    k = conv.kernel_size[0]
    rows: list[Tensor] = []
    needed = conv.out_channels
    for x in image_batches(loader):
        rows.append(sample_patches(x, k, 1, generator))
        if sum(r.shape[0] for r in rows) >= needed:
            break
    patches = torch.cat(rows)[:needed]
    if patches.shape[0] < needed:
        raise ValueError(
            f"{LAYER_NAMES['conv1']}: the training data gave {patches.shape[0]} non-blank patches "
            f"for {needed} kernels; pass more training images"
        )
    patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-6)
    with torch.no_grad():
        conv.weight.copy_(patches.view_as(conv.weight))


def train_autoencoder(
    network: SpikingNetwork,
    loader: Iterable,
    config: StdpConfig,
    seed: int = 0,
    progress: bool = True,
    on_epoch: HistoryCallback | None = None,
) -> list[dict]:
    """Learn conv1's kernels with the sparse spiking auto-encoder (no labels).

    Patches [P, D] of the training images are Poisson-coded over T steps; the hidden layer is
    conv1's K neurons (a WTA-LIF group, winners drawn stochastically), so a patch's hidden spikes
    are the spikes conv1 emits at one position. Returns one history row per epoch with the mean
    squared reconstruction error per patch; ``row['batch_errors']`` has every batch's.
    """
    c = config
    conv: nn.Conv2d = network.module.conv1
    gen = seeded_generator(seed)
    init_kernels_from_patches(conv, loader, gen)
    weight = conv.weight.detach().view(c.conv_channels, -1).clone()
    hidden = WTALIFNeuron(
        c.conv_threshold, c.leak, c.conv_winners, c.temperature, stochastic=True, seed=seed + 11
    )
    watch = SilenceWatch(
        "conv1", c.silent_batches, "lower conv_threshold or check that the images are not blank"
    )
    rows = []
    for epoch in range(1, c.ae_epochs + 1):
        start, errors, spikes, count = time.perf_counter(), [], 0.0, 0
        bar = progress_bar(image_batches(loader), progress, f"auto-encoder epoch {epoch}")
        for batch, x in enumerate(bar, 1):
            patches = sample_patches(x, c.conv_kernel, c.ae_patches_per_image, gen)
            if patches.shape[0] == 0:
                continue
            spikes_in = poisson_spikes(patches, c.timesteps, gen)  # [T, P, D]
            hidden.reset_state()
            out = hidden.forward_sequence(spikes_in @ weight.T)  # [T, P, K]
            delta, err = autoencoder_update(
                weight, spikes_in.mean(0), out.mean(0), c.ae_learning_rate
            )
            weight += delta
            check_finite(weight, "conv1", epoch, batch)
            watch.update(float(out.sum()), epoch, batch)
            errors.append(float(err.mean()))
            spikes += float(out.sum())
            count += patches.shape[0]
        with torch.no_grad():
            conv.weight.copy_(weight.view_as(conv.weight))
        row = {
            "phase": "autoencoder",
            "layer": "conv1",
            "epoch": epoch,
            "reconstruction_error": float(np.mean(errors)) if errors else float("nan"),
            "spikes_per_input": spikes / max(count, 1),
            "seconds": time.perf_counter() - start,
            "batch_errors": errors,
        }
        record_epoch(rows, row, on_epoch)
    return rows


__all__ = ["init_kernels_from_patches", "train_autoencoder"]
