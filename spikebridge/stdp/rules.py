"""The two local learning rules of the unsupervised route (Tavanaei & Maida 2017).

Both are plain tensor functions (no autograd), so each can be checked by hand (docs/stdp.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


def autoencoder_update(
    weight: Tensor, inputs: Tensor, hidden: Tensor, learning_rate: float
) -> tuple[Tensor, Tensor]:
    """One step of the sparse spiking auto-encoder's local rule (docs/stdp.md, eq. 4-5).

    The hidden spike rates h reconstruct the input rates x through the same (tied) weights:
    x_hat = h W, and each synapse moves along the reconstruction error it sees locally,

        dW = learning_rate * h^T (x - x_hat) / P

    Args:
        weight: W [K, D], one row per hidden neuron (a flattened convolution kernel).
        inputs: x [P, D] input spike rates of P patches (spike count / T).
        hidden: h [P, K] hidden spike rates for the same patches.
        learning_rate: eta.

    Returns:
        (dW [K, D], per-patch squared reconstruction error [P]) measured before the update.
    """
    error = inputs - hidden @ weight
    delta = learning_rate * hidden.transpose(0, 1) @ error / max(inputs.shape[0], 1)
    return delta, error.pow(2).sum(1)


def probabilistic_stdp_update(
    weight: Tensor,
    pre_post: Tensor,
    post_count: Tensor,
    a_plus: float,
    a_minus: float,
    learning_rate: float = 1.0,
    w_min: float = 0.0,
) -> Tensor:
    """Probabilistic STDP of the feature discovery layer, averaged over post-synaptic spikes.

    For every spike of post-synaptic neuron k and every synapse i (docs/stdp.md, eq. 6):

        dw_ki = a_plus * exp(-w_ki)   if pre-synaptic neuron i fired within the window before it
        dw_ki = -a_minus              otherwise

    The update applied is the mean over neuron k's spikes, scaled by ``learning_rate``, so at
    equilibrium a_plus * exp(-w) * p = a_minus * (1 - p) with p = P(pre in window | post):
    w_ki = log(a_plus / a_minus) + logit(p). Neurons that did not fire are left unchanged.

    The synapse's efficacy (the convolution weight the network uses) is ``weight``; its log-domain
    value is w = weight + ``w_min``, so efficacies stay >= 0 when w is clamped at ``w_min``.
    Shifting every synapse by the same constant adds the same current to every neuron of a
    competition group, so the winner-take-all sees the same differences as with w itself.

    Args:
        weight: efficacies [N, D] (N post-synaptic neurons, D synapses each).
        pre_post: C [N, D], the number of neuron k's spikes preceded by a spike of input i within
            the window.
        post_count: n [N], the number of neuron k's spikes.
        a_plus, a_minus: potentiation and depression amplitudes (> 0).
        learning_rate: scales the mean update.
        w_min: the log-domain value of efficacy 0.

    Returns:
        dW [N, D] to add to ``weight``.
    """
    n = post_count.to(weight.dtype).unsqueeze(1)
    fired = n > 0
    safe_n = torch.where(fired, n, torch.ones_like(n))
    potentiated = pre_post.to(weight.dtype) / safe_n  # fraction of spikes with a pre in window
    ltp = a_plus * torch.exp(-(weight + w_min)) * potentiated
    ltd = a_minus * (1.0 - potentiated)
    return torch.where(fired, learning_rate * (ltp - ltd), torch.zeros_like(weight))
