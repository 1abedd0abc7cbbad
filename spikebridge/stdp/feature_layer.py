"""Phase 2 of the STDP route: conv2, the feature discovery layer, learnt by probabilistic STDP
with conv1 frozen, without labels (Tavanaei & Maida 2017, eq. 6-7).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.network import SpikingNetwork
from ..engine.wta_lif import WTALIFNeuron
from ..progress import progress_bar
from .epochs import HistoryCallback, SilenceWatch, check_finite, record_epoch
from .inputs import image_batches, poisson_spikes, seeded_generator
from .model import StdpConfig
from .rules import probabilistic_stdp_update


def likelihood_bias(weight: Tensor, w_min: float) -> Tensor:
    """Per-neuron bias b_k = min_j S_j - S_k with S_k = sum_i softplus(w_ki) (docs/stdp.md, eq. 7).

    With w = logit(p), sum_i w_ki y_i - S_k is the Bernoulli log-likelihood of the input y under
    neuron k; -S_k is what the synapses of inactive inputs contribute. Shifting every bias by
    the same constant changes no difference between the neurons (the winner-take-all sees the
    same competition); shifting so the largest bias is 0 keeps a position without input silent
    (u <= 0 < threshold) while input drives u = sum_i efficacy_i y_i + b_k up.
    ``weight``: efficacies [N, D], w = weight + w_min. Returns [N].
    """
    penalty = F.softplus(weight + w_min).sum(1)
    return penalty.min() - penalty


def _conv1_spikes(network: SpikingNetwork, x: Tensor, steps: int, gen: torch.Generator) -> Tensor:
    """Frozen conv1 -> WTA-LIF -> max pool: [B, C, H, W] -> [T, B, K1, H1, W1] spikes."""
    m = network.module
    seq = poisson_spikes(x, steps, gen)
    cur = m.conv1(seq.flatten(0, 1))
    lif: WTALIFNeuron = m.lif1
    lif.reset_state()
    spikes = lif.forward_sequence(cur.unflatten(0, (steps, x.shape[0])))
    return m.pool1(spikes.flatten(0, 1)).unflatten(0, (steps, x.shape[0]))


def train_feature_layer(
    network: SpikingNetwork,
    loader: Iterable,
    config: StdpConfig,
    seed: int = 0,
    progress: bool = True,
    on_epoch: HistoryCallback | None = None,
) -> list[dict]:
    """Learn conv2 (the feature discovery layer) by probabilistic STDP, conv1 frozen (no labels).

    Every spike of a conv2 neuron at a position updates its kernel (shared over positions) by
    eq. 6, with "pre in window" meaning the conv1/pool1 unit fired at one of the last
    ``stdp_window`` steps up to and including the post-synaptic spike.
    """
    c = config
    m = network.module
    conv2: nn.Conv2d = m.conv2
    gen = seeded_generator(seed + 1)
    span = c.w_max - c.w_min
    with torch.no_grad():  # log-domain weights start in [-1, 0): efficacies near span - 2
        init = torch.rand(conv2.weight.shape, generator=gen) - 1.0 - c.w_min
        conv2.weight.copy_(init.clamp(0, span))
    weight = conv2.weight.detach().view(c.feature_channels, -1).clone()
    post = WTALIFNeuron(
        c.feature_threshold, c.leak, c.feature_winners, c.feature_temperature, True, seed + 12
    )
    m.lif1.stochastic = False
    watch = SilenceWatch(
        "conv2", c.silent_batches, "lower feature_threshold or retrain conv1 (it may be silent)"
    )
    rows = []
    k = c.feature_kernel
    for epoch in range(1, c.stdp_epochs + 1):
        start, spikes, count = time.perf_counter(), 0.0, 0
        won = torch.zeros(c.feature_channels)
        bar = progress_bar(image_batches(loader), progress, f"STDP epoch {epoch}")
        with torch.no_grad():
            for batch, x in enumerate(bar, 1):
                pre = _conv1_spikes(network, x, c.timesteps, gen)  # [T, B, K1, H1, W1]
                kernel = weight.view_as(conv2.weight)
                bias = likelihood_bias(weight, c.w_min)
                cur = F.conv2d(pre.flatten(0, 1), kernel, bias).unflatten(0, pre.shape[:2])
                post.reset_state()
                out = post.forward_sequence(cur)  # [T, B, N, H2, W2]
                pre_post = torch.zeros_like(weight)
                for t in range(c.timesteps):
                    recent = pre[max(0, t - c.stdp_window + 1) : t + 1].amax(0)
                    cols = F.unfold(recent, k)  # [B, D, L]
                    # only the (sparse) post spikes count: gather their input columns
                    b, n_idx, pos = out[t].flatten(2).nonzero(as_tuple=True)
                    pre_post.index_add_(0, n_idx, cols[b, :, pos])
                n = out.sum((0, 1, 3, 4))
                weight += probabilistic_stdp_update(
                    weight, pre_post, n, c.a_plus, c.a_minus, c.stdp_learning_rate, c.w_min
                )
                weight.clamp_(0.0, span)
                check_finite(weight, "conv2", epoch, batch)
                watch.update(float(n.sum()), epoch, batch)
                won += n
                spikes += float(n.sum())
                count += x.shape[0]
        with torch.no_grad():
            conv2.weight.copy_(weight.view_as(conv2.weight))
            conv2.bias.copy_(likelihood_bias(weight, c.w_min))
        row = {
            "phase": "stdp",
            "layer": "conv2",
            "epoch": epoch,
            "spikes_per_input": spikes / max(count, 1),
            "active_fraction": float((won > 0).float().mean()),
            "winner_share_max": float(won.max() / won.sum().clamp_min(1)),
            "seconds": time.perf_counter() - start,
        }
        record_epoch(rows, row, on_epoch)
    return rows


__all__ = ["likelihood_bias", "train_feature_layer"]
