"""The quantised twin: a signed-IF network with u0 = theta/2 sums to T x the twin's logits.

The identity holds wherever one spike per step suffices (no neuron owes a spike at T). The test
makes that hold by construction: each layer's per-channel threshold is set, during one simulation,
to the largest per-step input |z_t| that layer receives (then the potential never leaves
[0, theta) except below zero with no spike to take back), and checks both that every neuron ended
settled and that the summed readout equals T x the twin's logits for every sample. Because the
simulation is causal, thresholds fitted on an 8-step run keep the condition for every T <= 8.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.convert import ConversionError, MethodNotApplicable, build_spiking_module, prepare
from spikebridge.convert.build import set_initial_potentials
from spikebridge.convert.quantised_twin import (
    TwinQuantiser,
    count_agreement,
    quantised_twin,
    settled_samples,
    twin_of,
)
from spikebridge.engine.network import SpikingNetwork
from spikebridge.engine.neurons import IFNeuron
from spikebridge.models import build_model

STEPS = (1, 2, 3, 4, 8)


class MixedNet(nn.Module):
    """Functional relu (F.relu, torch.relu, .relu()), a concatenation, a residual join and
    adaptive average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.branch_a = nn.Conv2d(6, 4, 3, padding=1)
        self.branch_b = nn.Conv2d(6, 4, 1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        c = torch.cat([F.relu(self.branch_a(h)), torch.relu(self.branch_b(h))], 1)
        d = (self.conv3(c) + c).relu()
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(d, 2), 1))


class MaxPoolNet(nn.Module):
    """Max-pooling of every kind the running rule meets: of spikes (nn.MaxPool2d after a neuron),
    of currents (F.max_pool2d before one, overlapping padded windows) and adaptive."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool1(F.relu(self.conv1(x)))
        h = F.relu(F.max_pool2d(self.conv2(h), 3, 1, 1))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(h, 2), 1))


def _model(arch: str) -> nn.Module:
    torch.manual_seed(0)
    if arch == "mixed":
        model = MixedNet()
    elif arch == "maxpool":
        model = MaxPoolNet()
    elif arch.endswith("-max"):
        model = build_model(arch[: -len("-max")], 10, 1, 8, width=0.25, pool="max")
    else:
        model = build_model(arch, 10, 1, 8, width=0.25)
    for m in model.modules():  # non-trivial folded BatchNorm
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _one_spike_thresholds(
    prepared, x: torch.Tensor, steps: int, potentials: dict | None = None
) -> dict[str, torch.Tensor]:
    """Per-channel theta = largest per-step input the layer gets in a ``steps``-step run (a
    large negative step can still leave a spike owed: the tests check the identity on the
    samples where none is)."""
    module = build_spiking_module(
        prepared,
        {n: torch.tensor(1.0) for n, _ in _activations(prepared)},
        "subtract",
        0.5,
        "spiking",
        "calibrated",
        True,
        "running",
    )
    set_initial_potentials(module, potentials or {})
    network = SpikingNetwork(module, chunk_size=steps)

    def fit(neuron, args):
        z = args[0]
        per_channel = z.transpose(0, 1).reshape(z.shape[1], -1).amax(1)
        neuron.threshold = per_channel.clamp(min=1e-3).to(neuron.threshold.dtype)

    handles = [m.register_forward_pre_hook(fit) for m in module.modules() if _is_neuron(m)]
    network.simulate(x, steps)
    for h in handles:
        h.remove()
    return {n: m.threshold.clone() for n, m in module.named_modules() if _is_neuron(m)}


def _is_neuron(m: nn.Module) -> bool:
    return isinstance(m, IFNeuron)


def _activations(prepared):
    from spikebridge.normalization import activation_layers

    return activation_layers(prepared).items()


@pytest.fixture(scope="module")
def digits_batch(digits_loaders):
    return next(iter(digits_loaders[1]))[0][:48].double()


@pytest.mark.parametrize("arch", ["cnn", "vgg11", "resnet20", "mixed", "maxpool", "vgg11-max"])
def test_signed_network_sums_to_t_times_twin_logits(arch, digits_batch):
    x = digits_batch
    prepared = prepare(_model(arch)).double()
    thresholds = _one_spike_thresholds(prepared, x, max(STEPS))
    module = build_spiking_module(
        prepared, thresholds, "subtract", 0.5, "spiking", "calibrated", True, "running"
    )
    network = SpikingNetwork(module.double())
    spread = []
    for steps in STEPS:
        twin = quantised_twin(prepared, thresholds, steps)
        sim = network.simulate(x, steps)
        # thresholds bound each step's input from above; a large negative step (more than one
        # negative spike owed) is rare, and the identity is claimed only where none happened
        settled = settled_samples(network, steps)
        assert settled.float().mean() > 0.9, f"{arch} T={steps}: {settled.float().mean():.2f}"
        summed = sim.readout[-1] * steps  # the readout is the mean over steps
        logits = twin(x)
        torch.testing.assert_close(summed[settled], steps * logits[settled], rtol=1e-9, atol=1e-9)
        # not a trivial identity: the twin is quantised (differs from the float ANN) and the
        # logits depend on the image
        assert not torch.allclose(logits, prepared(x), atol=1e-3)
        spread.append(float(logits.detach().std(0).max()))
    assert max(spread) > 1e-3, spread


@pytest.mark.parametrize("arch", ["resnet20", "mixed", "maxpool"])
def test_per_channel_initial_potentials_keep_the_network_equal_to_its_twin(arch, digits_batch):
    """With u[0] = phi_c * theta_c per channel the twin's quantiser is
    theta/T * clamp(floor(T a / theta + phi_c), 0, T), and the network still sums to T x its
    logits wherever one spike per step suffices; at T = 1 on every image, whatever theta."""
    x = digits_batch
    prepared = prepare(_model(arch)).double()
    generator = torch.Generator().manual_seed(1)
    probe = _one_spike_thresholds(prepared, x, 1)  # for the number of channels of each layer
    potentials = {n: torch.rand(t.numel(), generator=generator) for n, t in probe.items()}
    thresholds = _one_spike_thresholds(prepared, x, max(STEPS), potentials)
    module = build_spiking_module(
        prepared, thresholds, "subtract", 0.5, "spiking", "calibrated", True, "running"
    )
    set_initial_potentials(module, potentials)
    network = SpikingNetwork(module.double())
    for steps in STEPS:
        twin = quantised_twin(prepared, thresholds, steps, True, potentials)
        summed = network.simulate(x, steps).readout[-1] * steps
        assert settled_samples(network, steps).all(), f"{arch} T={steps}: a neuron owes a spike"
        torch.testing.assert_close(summed, steps * twin(x), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(twin_of(prepared, network, steps)(x), twin(x))
    # T = 1: every neuron settles whatever the thresholds (here: a tenth of the one-spike ones)
    small = {n: t / 10 for n, t in thresholds.items()}
    module = build_spiking_module(
        prepared, small, "subtract", 0.5, "spiking", "calibrated", True, "running"
    )
    set_initial_potentials(module, potentials)
    network = SpikingNetwork(module.double())
    summed = network.simulate(x, 1).readout[-1]
    assert settled_samples(network, 1).all()
    torch.testing.assert_close(summed, quantised_twin(prepared, small, 1, True, potentials)(x))


def test_quantiser_with_initial_potential_moves_the_steps():
    """phi = u[0] / theta per channel: q = theta/T * clamp(floor(T a / theta + phi), 0, T)."""
    q = TwinQuantiser(nn.ReLU(), torch.tensor([1.0, 1.0]), 1, True, torch.tensor([0.5, 0.8]))
    x = torch.tensor([[0.45, 0.45], [0.55, 0.15], [0.3, 0.25]])
    torch.testing.assert_close(q(x), torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    q.set_initial_potential(0.0)  # plain floor: the IF neuron started at rest
    torch.testing.assert_close(q(torch.tensor([[0.99, 1.0]])), torch.tensor([[0.0, 1.0]]))
    phi = torch.tensor([0.2, 0.7], requires_grad=False)
    q.set_initial_potential(phi)
    q.initial_potential.requires_grad_(True)
    q(torch.tensor([[0.5, 0.2]])).sum().backward()  # straight through to phi, as to theta
    assert (q.initial_potential.grad != 0).all()


def test_twin_counts_match_and_unsettled_samples_are_found(trained_digits_cnn, digits_loaders):
    """Realistic thresholds (channel 99.9 %): the twin predicts almost every neuron's count and
    settled_samples finds the samples where the identity holds exactly."""
    from spikebridge.convert import Converter

    converter = Converter(trained_digits_cnn, digits_loaders[0], maxpool="avg")
    thresholds = converter.scales("channel")
    prepared = converter.prepared_.double()
    x = next(iter(digits_loaders[1]))[0].double()
    module = build_spiking_module(prepared, thresholds, "subtract", 0.5, "avg", "calibrated", True)
    network = SpikingNetwork(module.double())
    for steps in (2, 4):
        twin = twin_of(prepared, network, steps)
        shares = count_agreement(network, twin, x, steps)
        assert set(shares) == set(network.neurons())
        first = next(iter(network.neurons()))
        assert shares[first] == 0  # constant input: exact whatever the threshold
        assert max(shares.values()) < 0.25
        network.simulate(x, steps)
        ok = settled_samples(network, steps)
        summed = network.simulate(x, steps).readout[-1]
        with torch.no_grad():
            close = torch.isclose(summed, twin(x), rtol=1e-9, atol=1e-9).all(1)
        assert close[ok].all()


def test_quantiser_is_the_t_level_rounding():
    q = TwinQuantiser(nn.ReLU(), torch.tensor([1.0, 2.0]), timesteps=4)
    x = torch.tensor([[-1.0, 0.1], [0.124, 0.26], [0.126, 5.0]])
    expected = torch.tensor([[0.0, 0.0], [0.0, 0.5], [0.25, 2.0]])
    torch.testing.assert_close(q(x), expected)
    x.requires_grad_(True)
    q(x).sum().backward()  # straight-through: gradient 1 inside the range, 0 where clamped
    assert x.grad[1, 1] == 1 and x.grad[0, 0] == 0 and x.grad[2, 1] == 0


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_bad_timesteps_are_refused(steps):
    prepared = prepare(_model("cnn"))
    with pytest.raises(ValueError, match="positive integer"):
        quantised_twin(prepared, {}, steps)


def test_no_calibratable_activation_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    with pytest.raises(ConversionError, match="no activation"):
        quantised_twin(prepare(model), {}, 2)
    leaky = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.LeakyReLU(), nn.Linear(16, 10))
    with pytest.raises(MethodNotApplicable, match="^2: LeakyReLU"):
        quantised_twin(prepare(leaky.eval()), {"2": torch.tensor(1.0)}, 2)
