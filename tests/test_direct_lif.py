"""LIF neuron and surrogates (SPEC 2.1, 2.2): the fast autograd path equals the unrolled reference."""

import math

import pytest
import torch

from spikebridge.direct import LIFFunction, LIFNeuron, lif_reference, surrogate_gradient
from spikebridge.engine.surrogate import SURROGATES


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("detach_reset", [False, True])
def test_fast_path_gradients_equal_unrolled_autograd(surrogate, detach_reset):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 4, 3, 5, generator=gen, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    v0 = (torch.rand(4, 3, 5, generator=gen, dtype=torch.float64) * 0.4).requires_grad_()
    g_out = torch.randn(6, 4, 3, 5, generator=gen, dtype=torch.float64)
    g_h = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)
    args = (0.5, 0.25, surrogate, 1.3, detach_reset)
    fast_o, fast_h = LIFFunction.apply(x, v0, *args)
    ref_o, ref_h = lif_reference(x, v0, *args)
    assert torch.equal(fast_o, ref_o)
    torch.testing.assert_close(fast_h, ref_h)
    fast = torch.autograd.grad((fast_o * g_out).sum() + (fast_h * g_h).sum(), [x, v0])
    ref = torch.autograd.grad((ref_o * g_out).sum() + (ref_h * g_h).sum(), [x, v0])
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert fast[0].abs().sum() > 0


def test_lif_dynamics_follow_spec():
    neuron = LIFNeuron(threshold=0.5, tau_decay=0.25)
    x = torch.tensor([[0.3], [0.3], [0.6], [0.1]])
    spikes = neuron.forward_sequence(x)
    # u1 = 0.3; u2 = 0.075 + 0.3 = 0.375; u3 = 0.09375 + 0.6 -> spike, reset; u4 = 0 + 0.1
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(neuron.v, torch.tensor([0.1]))


def test_state_carries_across_chunks_and_reset_forgets():
    x = torch.rand(8, 2, 7) * 1.2
    whole = LIFNeuron().forward_sequence(x)
    neuron = LIFNeuron()
    parts = torch.cat([neuron.forward_sequence(x[:3]), neuron.forward_sequence(x[3:])])
    assert torch.equal(whole, parts)
    neuron.reset_state()
    assert neuron.v is None


def test_training_and_inference_paths_agree():
    x = torch.randn(5, 3, 4)
    with torch.no_grad():
        a = LIFNeuron().forward_sequence(x)
    b = LIFNeuron().forward_sequence(x.clone().requires_grad_())
    assert torch.equal(a, b)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("width", [0.5, 1.0, 2.0])
def test_surrogates_integrate_to_one(surrogate, width):
    u = torch.linspace(-40, 40, 400001, dtype=torch.float64)
    area = torch.trapezoid(surrogate_gradient(surrogate, u, width), u).item()
    assert math.isclose(area, 1.0, rel_tol=2e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"tau_decay": 1.5}, "tau_decay"),
        ({"surrogate": "triangle"}, "unknown surrogate"),
        ({"width": 0.0}, "width"),
    ],
)
def test_bad_neuron_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LIFNeuron(**kwargs)


def test_stale_state_of_another_batch_size_is_an_error():
    neuron = LIFNeuron()
    neuron.forward_sequence(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="reset"):
        neuron.forward_sequence(torch.rand(2, 5, 4))
