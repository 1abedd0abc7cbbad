"""Model-based normalisation (Diehl et al. 2015): no neuron ever needs more than one spike per step."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits
from torch import fx, nn

from spikebridge.convert import Converter, MethodNotApplicable, prepare
from spikebridge.engine.neurons import SignedIFNeuron, SpikingNeuron, channel_view
from spikebridge.models import build_model
from spikebridge.normalization.model_based import model_based_norm


def _neuron_inputs(network, x: torch.Tensor, timesteps: int) -> dict[str, torch.Tensor]:
    """Layer -> every input current the neuron received per step ([T*B, ...], concatenated)."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, neuron in network.neurons().items():
        seen[name] = []
        handles.append(
            neuron.register_forward_pre_hook(
                lambda _m, inp, name=name: seen[name].append(inp[0].detach().clone())
            )
        )
    try:
        network.simulate(x, timesteps)
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(v) for name, v in seen.items()}


def _assert_within_one_spike(network, x: torch.Tensor, timesteps: int = 8) -> None:
    inputs = _neuron_inputs(network, x, timesteps)
    assert inputs
    for name, neuron in network.neurons().items():
        z = inputs[name]
        th = channel_view(neuron.threshold, z)
        assert (z <= th * (1 + 1e-5) + 1e-6).all(), f"{name}: input above threshold"
        if isinstance(neuron, SignedIFNeuron):
            assert (z >= -th / neuron.alpha * (1 + 1e-5) - 1e-6).all(), (
                f"{name}: below -theta/alpha"
            )


@pytest.mark.parametrize(
    "arch, activation, width", [("cnn", "relu", 0.25), ("cnn", "leaky-relu", 0.25)]
)
def test_model_based_input_per_step_never_exceeds_threshold(arch, activation, width):
    model = trained_digits(arch, activation, width=width)
    x, _ = digits_tensors(train=False, n=64)
    network = Converter(model).build("model")
    _assert_within_one_spike(network, x)


def test_model_based_holds_through_residual_additions_and_per_channel():
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1, 8, 0.25).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.2, 2.0)
    x, _ = digits_tensors(train=False, n=16)
    prepared = prepare(model)
    for per_channel in (False, True):
        from spikebridge.convert import build_spiking_module
        from spikebridge.engine.network import SpikingNetwork

        scales = model_based_norm(prepared, per_channel=per_channel)
        network = SpikingNetwork(build_spiking_module(prepared, scales))
        _assert_within_one_spike(network, x, timesteps=4)
        junction = scales["layers.0.act2"]
        assert junction.dim() == (1 if per_channel else 0)


def test_first_layer_threshold_is_diehls_sum_of_positive_weights():
    model = trained_digits("cnn", "relu", width=0.25)
    prepared = prepare(model)
    scales = model_based_norm(prepared, input_bound=1.0)
    first_act = next(iter(scales))
    conv = next(m for m in prepared.modules() if isinstance(m, nn.Conv2d))
    per_map = conv.weight.detach().clamp(min=0).flatten(1).sum(1) + conv.bias.detach()
    assert torch.allclose(scales[first_act], per_map.max(), rtol=1e-5)
    doubled = model_based_norm(prepared, input_bound=2.0)[first_act]
    per_map2 = 2 * conv.weight.detach().clamp(min=0).flatten(1).sum(1) + conv.bias.detach()
    assert torch.allclose(doubled, per_map2.max(), rtol=1e-5)


def test_model_based_rejects_an_operation_it_cannot_bound():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(torch.sigmoid(self.fc(x)))

    gm = fx.symbolic_trace(Scaled())
    with pytest.raises(MethodNotApplicable, match=r"sigmoid.*'model'"):
        model_based_norm(gm)


def test_model_based_rejects_an_empty_input_range():
    prepared = prepare(trained_digits("cnn", "relu", width=0.25))
    with pytest.raises(ValueError, match="input_bound"):
        model_based_norm(prepared, input_bound=0.0)


def test_model_based_needs_no_calibration_data():
    network = Converter(trained_digits("cnn", "relu", width=0.25)).build("model")
    assert all(isinstance(n, SpikingNeuron) for n in network.neurons().values())
