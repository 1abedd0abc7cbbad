"""Graded spikes (issue 23): neurons that emit 0..K threshold units per step.

The defining property: a graded neuron at T steps with K units of theta / K counts what the
(K*T+1)-level quantiser does, as a binary neuron at K*T steps with threshold theta / K would,
and K = 1 is the binary neuron bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from spikebridge.engine.neurons import IFNeuron, SignedIFNeuron


def _run(neuron, x_seq: torch.Tensor) -> torch.Tensor:
    """x_seq [T, B, ...] -> spikes [T, B, ...] of a fresh neuron."""
    neuron.reset_state()
    neuron.steps = x_seq.shape[0]
    return neuron(x_seq.flatten(0, 1)).unflatten(0, x_seq.shape[:2])


@pytest.mark.parametrize(
    "signed, reset", [(False, "subtract"), (True, "subtract"), (False, "zero")]
)
def test_one_level_is_the_binary_neuron_bit_for_bit(signed, reset):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4, 5, 5)
    th = torch.rand(4) + 0.5
    binary = _run(IFNeuron(th, reset, 0.5, signed), x)
    levelled = _run(IFNeuron(th, reset, 0.5, signed, levels=1), x)
    assert torch.equal(binary, levelled)


def _reference(x_seq, theta, levels, u0, signed, reset="subtract"):
    """The definition, one element at a time in float64: k = clamp(floor(u / theta), lo, K)."""
    out = torch.zeros_like(x_seq, dtype=torch.float64)
    for index in range(x_seq[0].numel()):
        u, count = u0 * theta, 0
        for t in range(x_seq.shape[0]):
            u += float(x_seq[t].reshape(-1)[index])
            k = int(torch.floor(torch.tensor(u / theta)).item())
            k = max(min(k, levels), -min(count, levels) if signed else 0)
            count += k
            u = 0.0 if (reset == "zero" and k > 0) else u - k * theta
            out[t].reshape(-1)[index] = k * theta
    return out


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("levels", [2, 3, 7])
def test_graded_steps_follow_the_definition(levels, signed):
    torch.manual_seed(levels)
    x = torch.randn(5, 2, 7, dtype=torch.float64) * levels
    spikes = _run(IFNeuron(0.8, "subtract", 0.5, signed, levels=levels), x)
    expected = _reference(x, 0.8, levels, 0.5, signed)
    assert torch.allclose(spikes, expected, atol=1e-9)
    assert (spikes / 0.8).round().abs().max() <= levels


def test_graded_reset_to_zero_discards_the_remainder():
    spikes = _run(IFNeuron(1.0, "zero", 0.0, levels=4), torch.tensor([[[2.7]], [[0.6]], [[9.0]]]))
    # 2.7 -> 2 units, u = 0 (not 0.7); 0.6 -> none; 9.0 -> capped at 4 units, u = 0
    assert spikes.flatten().tolist() == [2.0, 0.0, 4.0]


@pytest.mark.parametrize("levels", [2, 4])
def test_constant_input_counts_the_k_t_level_quantiser(levels):
    """count = clamp(floor(T x / theta + u0), 0, K T) for a constant input x: K levels at T are
    the levels of a binary neuron at K*T (with the same unit theta)."""
    T, theta = 3, 0.25
    x = torch.linspace(-0.5, 1.5, 201)
    seq = x.expand(T, -1).unsqueeze(-1)
    for signed in (False, True):
        count = _run(IFNeuron(theta, "subtract", 0.5, signed, levels=levels), seq).sum(0) / theta
        expected = torch.clamp(torch.floor(T * x / theta + 0.5), 0, levels * T)
        assert torch.equal(count.round().flatten(), expected)
        binary = _run(IFNeuron(theta, "subtract", 0.5, signed), x.expand(levels * T, -1) / levels)
        assert torch.equal(binary.sum(0).div(theta).round(), expected)


def test_signed_leaky_neuron_graded_counts():
    neuron = SignedIFNeuron(1.0, alpha=0.5, levels=3)
    spikes = _run(neuron, torch.tensor([[[2.5]], [[-5.0]], [[-9.0]]]))
    # +2 units (u 0.5); u -4.5 -> 2 negative units of theta/alpha = 2 (u -0.5); -9.5 -> 3 (capped)
    assert spikes.flatten().tolist() == [2.0, -2.0, -3.0]


def test_chunks_carry_the_graded_state():
    torch.manual_seed(1)
    x = torch.rand(8, 2, 3, 4, 4) * 3
    whole = _run(IFNeuron(0.5, "subtract", 0.5, True, levels=3), x)
    neuron = IFNeuron(0.5, "subtract", 0.5, True, levels=3)
    neuron.reset_state()
    parts = []
    for chunk in x.split(3):
        neuron.steps = chunk.shape[0]
        parts.append(neuron(chunk.flatten(0, 1)).unflatten(0, chunk.shape[:2]))
    assert torch.equal(torch.cat(parts), whole)


@pytest.mark.parametrize("levels", [0, 256, 2.0, True])
def test_bad_levels_are_refused(levels):
    with pytest.raises(ValueError, match="levels"):
        IFNeuron(1.0, levels=levels)
