"""The IF neuron's in-place step kernels against the neuron's definition, step by step.

The kernels (a fused first step that creates the state, eight passes per signed step) must
give exactly the spikes and the final state (potential, net count) of the textbook loop, for
scalar and per-channel thresholds, both resets, plain and signed neurons, any chunking.
"""

from __future__ import annotations

import pytest
import torch

from spikebridge.engine.neurons import IFNeuron


def reference_if(x_seq, th, reset, u0, signed):
    """The definition (IFNeuron's docstring): x_seq [T, B, C, ...] -> spikes, v, count."""
    th = th.reshape(-1, *([1] * (x_seq.dim() - 3))) if th.dim() else th
    if isinstance(u0, torch.Tensor):  # one initial potential per channel
        u0 = u0.reshape(-1, *([1] * (x_seq.dim() - 3)))
    v = torch.zeros_like(x_seq[0]) + th * u0
    count = torch.zeros_like(v)
    spikes = []
    for z in x_seq:
        v = v + z
        pos = (v >= th).float()
        neg = ((v < 0) & (count > 0)).float() if signed else torch.zeros_like(v)
        s = pos - neg
        count = count + s
        if reset == "subtract":
            v = v - s * th
        else:
            v = v * (1 - pos)
        spikes.append(s * th)
    return torch.stack(spikes), v, count


CASES = [
    ("subtract", 0.5, True),
    ("subtract", 0.5, False),
    ("subtract", 0.0, True),
    ("subtract", 0.0, False),
    ("zero", 0.0, False),
    ("zero", 0.5, False),
    ("subtract", "per-channel", True),
    ("subtract", "per-channel", False),
]
PER_CHANNEL_U0 = torch.tensor([0.5, 0.25, 0.9, 0.0])


@pytest.mark.parametrize("reset,u0,signed", CASES)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("chunks", [(1,), (1, 4), (2, 3)])
def test_if_neuron_steps_equal_the_definition_exactly(reset, u0, signed, per_channel, chunks):
    gen = torch.Generator().manual_seed(0)
    steps, batch, channels = sum(chunks), 3, 4
    # inputs on a grid of quarters, so thresholds are hit exactly and no rounding hides a bug
    x_seq = torch.randint(-6, 7, (steps, batch, channels, 5), generator=gen).float() / 4
    th = torch.tensor([0.5, 1.0, 0.75, 1.25]) if per_channel else torch.tensor(1.0)
    u0 = PER_CHANNEL_U0 if u0 == "per-channel" else u0
    neuron = IFNeuron(th, reset, u0, signed)
    outs, start = [], 0
    for n in chunks:
        neuron.steps = n
        chunk = x_seq[start : start + n]
        outs.append(neuron(chunk.reshape(n * batch, channels, 5)).reshape(chunk.shape))
        start += n
    want, v, count = reference_if(x_seq, th, reset, u0, signed)
    assert torch.equal(torch.cat(outs), want)
    assert torch.equal(neuron.v, v)
    if signed:
        assert torch.equal(neuron.count, count)
        assert (neuron.count >= 0).all()
        if steps > 1:  # negative spikes did happen (the signed branch is exercised)
            assert (want < 0).any()


def test_first_step_of_a_static_input_does_not_write_into_the_input():
    x = torch.full((2, 3), 0.3)  # u: 0.5 + 0.3 = 0.8 (no spike), then 1.1 (a spike)
    neuron = IFNeuron(1.0, "subtract", 0.5, negative_spikes=True)
    neuron.steps = 2
    out = neuron(x, static=True)  # [T*B, 3]
    assert torch.equal(x, torch.full((2, 3), 0.3))
    assert torch.equal(out, torch.tensor([[0.0] * 3, [0.0] * 3, [1.0] * 3, [1.0] * 3]))
