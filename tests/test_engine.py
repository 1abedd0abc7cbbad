"""The engine: IF neurons, encoders and SpikingNetwork's chunked simulation (SPEC 1.5, 1.6, 3.1)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from spikebridge.engine.encoding import AnalogEncoder, PoissonEncoder
from spikebridge.engine.network import (
    SpikingNetwork,
    default_chunk_size,
    split_static_prefix,
    trace_spiking,
)
from spikebridge.engine.neurons import IFNeuron, SignedIFNeuron

torch.set_grad_enabled(True)


class ResidualNet(nn.Module):
    """A small conv net with per-channel and per-layer thresholds and a residual addition."""

    def __init__(self, reset: str = "subtract", initial_potential: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.if1 = IFNeuron(torch.rand(6) * 0.5 + 0.2, reset, initial_potential)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.if2 = IFNeuron(0.4, reset, initial_potential)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(6 * 4 * 4, 16)
        self.if3 = IFNeuron(torch.rand(16) * 0.5 + 0.2, reset, initial_potential)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        a = self.if1(self.conv1(x))
        b = self.if2(self.conv2(a)) + a  # residual: a time-varying addition
        h = torch.flatten(self.pool(b), 1)
        return self.fc2(self.if3(self.fc1(h)))


def spiking_cnn(
    seed: int = 0, reset: str = "subtract", initial_potential: float = 0.0
) -> nn.Module:
    torch.manual_seed(seed)
    return ResidualNet(reset, initial_potential).eval()


def inputs(batch: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


class ExpandedAnalog(AnalogEncoder):
    """Analog input fed as T copies (no static-prefix shortcut)."""

    static = False


# ----------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_chunked_simulation_equals_unchunked_exactly(reset):
    x = inputs()
    ref = SpikingNetwork(spiking_cnn(reset=reset), chunk_size=64).simulate(
        x, 23, record_spikes=True
    )
    assert ref.spikes and all(c.sum() > 0 for c in ref.spikes.values())
    for chunk in (1, 2, 5, None):
        sim = SpikingNetwork(spiking_cnn(reset=reset), chunk_size=chunk).simulate(
            x, 23, record_spikes=True
        )
        assert torch.equal(sim.readout, ref.readout), chunk
        for name, counts in ref.spikes.items():
            assert torch.equal(sim.spikes[name], counts), (chunk, name)
        assert sim.neurons == ref.neurons


def test_chunked_poisson_simulation_equals_unchunked():
    x = inputs()
    runs = [
        SpikingNetwork(spiking_cnn(), PoissonEncoder(seed=3), chunk_size=c).simulate(x, 12)
        for c in (1, 4, 12)
    ]
    assert torch.equal(runs[0].readout, runs[1].readout)
    assert torch.equal(runs[0].readout, runs[2].readout)


def test_state_carries_across_forward_calls():
    x = inputs()
    seq = x.unsqueeze(0).expand(10, *x.shape)
    net = SpikingNetwork(spiking_cnn())
    whole = net(seq)
    net.reset()
    parts = torch.cat([net(seq[:3]), net(seq[3:])])
    assert torch.equal(whole, parts)


def largest_activation(net: SpikingNetwork, x: torch.Tensor, timesteps: int) -> int:
    largest = [0]

    def hook(_m, _i, out):
        largest[0] = max(largest[0], out.numel())

    handles = [m.register_forward_hook(hook) for m in net.module.modules() if m is not net.module]
    try:
        net.simulate(x, timesteps)
    finally:
        for h in handles:
            h.remove()
    return largest[0]


@pytest.mark.parametrize(("chunk", "short", "long"), [(3, 8, 96), (None, 80, 300)])
def test_memory_does_not_grow_with_timesteps(chunk, short, long):
    """Every layer sees at most one chunk of steps, whatever T (only the readout is [T, B, K]).
    The default chunk (a budget per chunk, at most 64 steps) is independent of T too."""
    x = inputs()
    net = SpikingNetwork(spiking_cnn(), chunk_size=chunk)
    assert largest_activation(net, x, short) == largest_activation(net, x, long)


def test_default_chunk_size_fits_the_budget():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert default_chunk_size(cpu) >= 1 and default_chunk_size(cuda) >= 1
    assert default_chunk_size(cpu, 10 * 2**20) == 1
    assert default_chunk_size(cpu, 2**20) == 16
    assert default_chunk_size(cpu, 1) == 64
    assert default_chunk_size(cuda, 10 * 2**20) > default_chunk_size(cpu, 10 * 2**20)


def test_readout_is_the_running_mean_of_the_output():
    x = inputs()
    net = SpikingNetwork(spiking_cnn(), chunk_size=4)
    sim = net.simulate(x, 9)
    net.reset()
    per_step = net(x.unsqueeze(0).expand(9, *x.shape))
    mean = per_step.cumsum(0) / torch.arange(1, 10).view(-1, 1, 1)
    torch.testing.assert_close(sim.readout, mean)
    assert sim.predictions().shape == (9, 5)


# ----------------------------------------------------------------------------- static prefix


def test_static_prefix_runner_equals_expanded_input_path():
    x = inputs()
    for chunk in (1, 4):
        fast = SpikingNetwork(spiking_cnn(), AnalogEncoder(), chunk).simulate(x, 13, True)
        slow = SpikingNetwork(spiking_cnn(), ExpandedAnalog(), chunk).simulate(x, 13, True)
        assert torch.equal(fast.readout, slow.readout)
        assert all(torch.equal(fast.spikes[k], slow.spikes[k]) for k in slow.spikes)


def test_static_prefix_split_runs_the_prefix_once_and_feeds_the_neuron_directly():
    gm = trace_spiking(spiking_cnn())
    prefix, suffix = split_static_prefix(gm)
    assert [n.target for n in prefix.graph.nodes if n.op == "call_module"] == ["conv1"]
    calls = {n.target: n for n in suffix.graph.nodes if n.op == "call_module"}
    assert "conv1" not in calls
    assert calls["if1"].kwargs == {"static": True}
    assert "_time_broadcast" not in calls  # nothing else consumes a static value


def test_static_value_meeting_a_time_varying_node_is_broadcast():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 4)
            self.if1 = IFNeuron(0.3)
            self.fc2 = nn.Linear(4, 3)

        def forward(self, x):
            a = self.fc1(x)
            return self.fc2(self.if1(a) + a)  # `a` is static, the sum is not

    torch.manual_seed(0)
    x = torch.rand(6, 4)
    net = Net()
    _, suffix = split_static_prefix(trace_spiking(net))
    assert any(n.target == "_time_broadcast" for n in suffix.graph.nodes)
    fast = SpikingNetwork(net, AnalogEncoder(), 3).simulate(x, 10)
    slow = SpikingNetwork(net, ExpandedAnalog(), 3).simulate(x, 10)
    assert torch.equal(fast.readout, slow.readout)


def test_prefix_using_parameters_directly_is_split_not_expanded():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor([1.5, 0.5, 2.0, 1.0]))
            self.fc1 = nn.Linear(4, 4)
            self.if1 = IFNeuron(0.3)
            self.fc2 = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc2(self.if1(self.fc1(x * self.scale.abs())))

    torch.manual_seed(0)
    net = Scaled()
    prefix, _ = split_static_prefix(trace_spiking(net))
    assert any(n.op == "get_attr" for n in prefix.graph.nodes)
    x = torch.rand(6, 4)
    fast = SpikingNetwork(net, AnalogEncoder(), 3)
    fast.simulate(x, 2)
    assert fast._static_runner() is not None
    slow = SpikingNetwork(net, ExpandedAnalog(), 3)
    assert torch.equal(fast.simulate(x, 10).readout, slow.simulate(x, 10).readout)


def test_network_without_neurons_gives_the_ann_output_at_every_step():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(4, 3))
    x = torch.rand(5, 4)
    sim = SpikingNetwork(ann, chunk_size=2).simulate(x, 5)
    torch.testing.assert_close(sim.readout, ann(x).detach().expand(5, 5, 3))


def test_untraceable_module_falls_back_to_expanded_input():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.if1 = IFNeuron(0.2)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                x = x * 1.0
            return self.out(self.if1(self.fc(x)))

    torch.manual_seed(0)
    x = torch.rand(3, 4)
    sim = SpikingNetwork(Branchy(), chunk_size=2).simulate(x, 6)
    assert sim.readout.shape == (6, 3, 2)


def test_replacing_a_layer_after_a_simulation_takes_effect():
    x = inputs()
    net = SpikingNetwork(spiking_cnn())
    net.simulate(x, 8)
    net.module.if2 = IFNeuron(0.9)
    expected_module = spiking_cnn()
    expected_module.if2 = IFNeuron(0.9)
    expected = SpikingNetwork(expected_module).simulate(x, 8)
    assert torch.equal(net.simulate(x, 8).readout, expected.readout)


def test_network_pickles_after_a_simulation():
    x = inputs()
    net = SpikingNetwork(spiking_cnn())
    before = net.simulate(x, 6).readout
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded.simulate(x, 6).readout, before)


# ----------------------------------------------------------------------------- neurons


def run_neuron(neuron: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Constant input x [B, ...] for ``steps`` steps -> spikes [T, B, ...]."""
    neuron.reset_state()
    return neuron.forward_sequence(x.unsqueeze(0).expand(steps, *x.shape))


def test_reset_by_subtraction_rate_is_input_over_threshold():
    theta, steps = 0.8, 200
    x = torch.linspace(0, theta, 33).view(1, -1)
    spikes = run_neuron(IFNeuron(theta, "subtract"), x, steps)
    rate = spikes.sum(0) / theta / steps
    assert (rate - x / theta).abs().max() <= 1 / steps + 1e-6
    assert set(spikes.unique().tolist()) <= {0.0, torch.tensor(theta).item()}


def test_reset_to_zero_discards_the_surplus():
    # x = 0.4, theta = 1: zero reset fires every 3rd step (rate 1/3); subtraction keeps the
    # 0.2 surplus and converges to 0.4
    x = torch.full((1, 1), 0.4)
    zero = run_neuron(IFNeuron(1.0, "zero"), x, 30)
    subtract = run_neuron(IFNeuron(1.0, "subtract"), x, 30)
    assert zero.flatten().nonzero().flatten().tolist() == list(range(2, 30, 3))
    assert subtract.sum().item() == pytest.approx(12.0)


def test_initial_potential_half_threshold_rounds_the_rate():
    theta, steps = 1.0, 16
    x = (torch.arange(0, 17) / 16).view(1, -1)  # exactly representable rates
    plain = run_neuron(IFNeuron(theta, "subtract", 0.0), x, steps).sum(0)
    half = run_neuron(IFNeuron(theta, "subtract", 0.5), x, steps).sum(0)
    for t in (1, 3, 7, 16):
        part = run_neuron(IFNeuron(theta, "subtract", 0.5), x, t).sum(0)[0]
        assert torch.equal(part, torch.floor(t * x[0] / theta + 0.5))
    assert torch.equal(plain[0], torch.floor(steps * x[0] / theta))
    assert (half >= plain).all()
    # u[0] = theta/2: an input of theta/2 fires at the first step
    first = run_neuron(IFNeuron(2.0, initial_potential=0.5), torch.full((1, 1), 1.0), 1)
    assert first.item() == 2.0


def test_per_channel_initial_potential_shifts_each_channels_count():
    """u[0] = phi_c * theta per channel: a signed neuron counts floor(T x / theta + phi_c)."""
    phi = torch.tensor([0.0, 0.25, 0.5, 0.9])
    theta = torch.tensor([1.0, 0.5, 2.0, 1.0])
    x = torch.rand(5, 4, 3, 3) * 0.9  # within one threshold per step: the identity is exact
    steps = 4
    neuron = IFNeuron(theta, initial_potential=phi, negative_spikes=True)
    counts = run_neuron(neuron, x, steps).sum(0) / theta.view(4, 1, 1)
    expected = torch.floor(steps * x / theta.view(4, 1, 1) + phi.view(4, 1, 1)).clamp(0, steps)
    torch.testing.assert_close(counts, expected)
    # a scalar and a [C] potential of the same value give the same spikes
    same = IFNeuron(theta, initial_potential=torch.full((4,), 0.5), negative_spikes=True)
    scalar = IFNeuron(theta, initial_potential=0.5, negative_spikes=True)
    assert torch.equal(run_neuron(same, x, steps), run_neuron(scalar, x, steps))
    # a buffer: saved in the state dict; replaced by set_initial_potential
    assert torch.equal(neuron.state_dict()["initial_potential"], phi)
    neuron.set_initial_potential(0.5)
    assert neuron.initial_potential == 0.5 and "initial_potential" not in neuron.state_dict()


def test_bad_initial_potential_is_refused():
    with pytest.raises(ValueError, match="3 per-channel initial potentials for 4"):
        IFNeuron(torch.ones(4), initial_potential=torch.zeros(3))
    with pytest.raises(ValueError, match="initial_potential must be a finite"):
        IFNeuron(1.0, initial_potential=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="initial_potential must be finite"):
        IFNeuron(1.0, initial_potential=float("nan"))


def test_per_channel_threshold_sets_each_channels_amplitude():
    theta = torch.tensor([0.5, 1.0, 2.0])
    x = torch.full((4, 3, 2, 2), 0.7)
    spikes = run_neuron(IFNeuron(theta), x, 40)
    for c in range(3):
        values = set(spikes[:, :, c].unique().tolist())
        assert values <= {0.0, theta[c].item()}
        # each channel's mean output converges to min(x, theta)
        mean = spikes[:, :, c].mean().item()
        assert mean == pytest.approx(min(0.7, theta[c].item()), abs=theta[c].item() / 40)


def test_static_neuron_input_equals_expanded_input():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 5)
    a, b = IFNeuron(torch.rand(4) + 0.2), IFNeuron(torch.rand(4) + 0.2)
    b.threshold.copy_(a.threshold)
    a.steps = b.steps = 7
    static = a(x, static=True)
    expanded = b(x.unsqueeze(0).expand(7, *x.shape).reshape(21, 4, 5, 5))
    assert torch.equal(static, expanded)


def test_channels_last_input_keeps_its_memory_format():
    x = torch.rand(6, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    neuron = IFNeuron(0.5)
    neuron.steps = 2
    out = neuron(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    neuron.reset_state()
    assert torch.equal(
        out, IFNeuron(0.5).forward_sequence(x.contiguous().view(2, 3, 3, 4, 4)).view(6, 3, 4, 4)
    )


def test_signed_neuron_rates_follow_leaky_relu():
    alpha, theta, steps = 0.1, 1.0, 400
    x = torch.tensor([[-0.5, -0.05, 0.0, 0.3, 0.9]])
    spikes = run_neuron(SignedIFNeuron(theta, alpha), x, steps)
    expected = torch.where(x > 0, x, alpha * x)
    assert (spikes.mean(0) - expected).abs().max() <= theta / alpha / steps + 1e-6
    assert set(spikes.unique().tolist()) <= {-theta, 0.0, theta}


# ----------------------------------------------------------------------------- encoders


def test_poisson_encoder_rate_matches_intensity():
    x = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0, -0.6]])
    spikes = PoissonEncoder(seed=0)(x, 4000)
    assert spikes.shape == (4000, 1, 6)
    assert set(spikes.unique().tolist()) <= {-1.0, 0.0, 1.0}
    rate = spikes.mean(0)
    assert (rate - x).abs().max() < 0.03
    again = PoissonEncoder(seed=0)(x, 4000)
    assert torch.equal(spikes, again)


def test_poisson_encoder_rejects_out_of_range_inputs():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        PoissonEncoder(seed=0)(torch.tensor([[1.5]]), 4)
    with pytest.raises(ValueError, match="probability"):
        PoissonEncoder(max_rate=2.0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("timesteps", [0, -3, 2.5])
def test_simulate_rejects_bad_timesteps(timesteps):
    with pytest.raises(ValueError, match="timesteps"):
        SpikingNetwork(spiking_cnn()).simulate(inputs(), timesteps)


def test_bad_chunk_size_is_rejected():
    with pytest.raises(ValueError, match="chunk_size"):
        SpikingNetwork(spiking_cnn(), chunk_size=0)


@pytest.mark.parametrize("threshold", [0.0, -1.0, math.inf, float("nan"), torch.ones(2, 2)])
def test_bad_thresholds_are_rejected(threshold):
    with pytest.raises(ValueError, match="threshold"):
        IFNeuron(threshold)


def test_bad_reset_and_alpha_are_rejected():
    with pytest.raises(ValueError, match="reset"):
        IFNeuron(1.0, reset="soft")
    with pytest.raises(ValueError, match="alpha"):
        SignedIFNeuron(1.0, alpha=0.0)


def test_per_channel_threshold_must_match_the_channels():
    neuron = IFNeuron(torch.ones(3))
    neuron.steps = 1
    with pytest.raises(ValueError, match="3 channels"):
        neuron(torch.rand(2, 4, 5))


def test_state_of_another_batch_size_is_an_error():
    neuron = IFNeuron(1.0)
    neuron.steps = 1
    neuron(torch.rand(4, 3))
    with pytest.raises(ValueError, match="reset"):
        neuron(torch.rand(5, 3))


def test_folded_batch_must_be_a_multiple_of_the_steps():
    neuron = IFNeuron(1.0)
    neuron.steps = 3
    with pytest.raises(ValueError, match="multiple"):
        neuron(torch.rand(4, 2))
