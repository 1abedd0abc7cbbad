"""The inputs of the STDP route (Tavanaei & Maida 2017): static image batches, Poisson spike
trains and image patches, every random draw from a generator seeded by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the source of every random draw of one phase."""
    return torch.Generator().manual_seed(int(seed))


def poisson_spikes(x: Tensor, steps: int, generator: torch.Generator) -> Tensor:
    """x: [B, ...] intensities in [0, 1] -> [steps, B, ...] spikes in {0, 1} (rate coding)."""
    noise = torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype)
    return (noise < x.clamp(0, 1)).to(x.dtype)


def sample_patches(
    images: Tensor, kernel: int, per_image: int, generator: torch.Generator
) -> Tensor:
    """[B, C, H, W] -> [P, C*kernel*kernel] patches, ``per_image`` non-blank ones per image drawn
    with probability proportional to their summed intensity (blank images give none)."""
    patches = F.unfold(images, kernel)  # [B, D, L]
    energy = patches.sum(1)  # [B, L]
    keep = energy.sum(1) > 0
    if not keep.any():
        return patches.new_zeros((0, patches.shape[1]))
    patches, energy = patches[keep], energy[keep]
    idx = torch.multinomial(energy, per_image, replacement=True, generator=generator)
    chosen = patches.gather(2, idx.unsqueeze(1).expand(-1, patches.shape[1], -1))
    return chosen.transpose(1, 2).reshape(-1, patches.shape[1])


def image_batches(loader: Iterable) -> Iterable[Tensor]:
    """The images [B, C, H, W] of each batch of ``loader`` (labels dropped), as float."""
    for batch in loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if x.dim() != 4:
            raise ValueError(
                f"stdp route: expected static image batches [B, C, H, W], got shape "
                f"{tuple(x.shape)} (event datasets are not supported by this route)"
            )
        yield x.float()


__all__ = ["image_batches", "poisson_spikes", "sample_patches", "seeded_generator"]
