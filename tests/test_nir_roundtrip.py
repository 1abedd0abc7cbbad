"""NIR export -> import gives the exported network back exactly (docs/nir.md).

Spike counts per layer are identical and the readout equal (to float tolerance) for the four kinds
of network spikebridge makes: a channel-converted cnn (per-channel thresholds, amplitudes folded
into the next weights), a resnet20 conversion (residual joins, where the amplitude travels as a
Scale node), a QCFS conversion (signed IF neurons with u[0] = theta/2, spiking max-pool gates), a calibrated
max-pool cnn (per-channel u[0], the running max-pool rule) and
a direct LIF + tdBN cnn (tdBN fused first). All on sklearn digits with fixed seeds.
"""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("nir", reason="NIR export needs the optional 'nir' extra (pip install nir)")

from test_methods_fixtures import digits_tensors, trained_digits  # noqa: E402

from spikebridge.convert import Converter  # noqa: E402
from spikebridge.direct import build_direct_snn, fuse_norms  # noqa: E402
from spikebridge.engine.neurons import IFNeuron, SpikingMaxPool  # noqa: E402
from spikebridge.interop import (  # noqa: E402
    NIRExportWarning,
    NIRImportError,
    export_nir,
    import_nir,
)

T = 12


def assert_same_simulation(original, restored, x, timesteps=T):
    a = original.simulate(x, timesteps, record_spikes=True)
    b = restored.simulate(x, timesteps, record_spikes=True)
    assert set(a.spikes) == set(b.spikes), "neuron layers keep their names"
    for layer, counts in a.spikes.items():
        assert torch.equal(counts, b.spikes[layer]), layer
    assert sum(int(c.sum()) for c in a.spikes.values()) > 0, "the test network must spike"
    torch.testing.assert_close(b.readout, a.readout, rtol=1e-5, atol=1e-6)


def round_trip(network, tmp_path, **options):
    path = tmp_path / "net.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        export_nir(network, path, input_shape=(1, 8, 8), **options)
    return import_nir(path)


def test_channel_converted_cnn_round_trips_with_identical_spikes(tmp_path):
    x, _ = digits_tensors(train=False, n=48)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="zero")
    assert any(n.threshold.dim() == 1 for n in network.neurons().values()), "per-channel"
    restored = round_trip(network, tmp_path)
    assert_same_simulation(network, restored, x)
    # the weights come back bit for bit although the file holds them times the amplitudes
    for name, param in network.module.named_parameters():
        assert torch.equal(param, restored.module.get_parameter(name)), name


def test_resnet20_conversion_with_residual_joins_round_trips(tmp_path):
    x, _ = digits_tensors(train=False, n=32)
    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(trained_digits("resnet20", width=0.25, epochs=1), calib).build(
        "channel", reset="subtract"
    )
    restored = round_trip(network, tmp_path)
    assert_same_simulation(network, restored, x)


def test_qcfs_network_with_signed_neurons_and_spiking_max_pool_round_trips(tmp_path):
    x, _ = digits_tensors(train=False, n=48)
    model = trained_digits("cnn", "qcfs", pool="max", levels=4)
    network = Converter(model, maxpool="spiking").build("qcfs")
    neurons = list(network.neurons().values())
    assert all(n.negative_spikes and n.initial_potential == 0.5 for n in neurons)
    restored = round_trip(network, tmp_path)
    for layer, neuron in restored.neurons().items():
        assert isinstance(neuron, IFNeuron) and neuron.negative_spikes, layer
        assert neuron.initial_potential == 0.5 and neuron.reset == "subtract"
    assert any(isinstance(m, SpikingMaxPool) for m in restored.modules())
    assert_same_simulation(network, restored, x, timesteps=8)


def test_calibrated_network_with_running_max_pool_round_trips(tmp_path):
    """Method calibrated keeps max-pools as the running rule; the file says which rule."""
    x, _ = digits_tensors(train=False, n=48)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn", pool="max"), calib).build("calibrated", target=2)
    restored = round_trip(network, tmp_path)
    rules = [m.rule for m in restored.modules() if isinstance(m, SpikingMaxPool)]
    assert rules and set(rules) == {"running"}
    assert_same_simulation(network, restored, x, timesteps=2)
    # a file written before the rule existed holds gates; an unknown rule is refused by node
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        graph = export_nir(network, tmp_path / "again.nir", input_shape=(1, 8, 8))
    pools = [n for n in graph.nodes.values() if n.metadata.get("spikebridge", {}).get("rule")]
    del pools[0].metadata["spikebridge"]["rule"]
    assert any(m.rule == "gate" for m in import_nir(graph).modules() if hasattr(m, "rule"))
    pools[0].metadata["spikebridge"]["rule"] = "fastest"
    with pytest.raises(
        NIRImportError,
        match=r"node '.*' \(AvgPool2d \d of \d\): unknown spiking max-pool rule 'fastest'",
    ):
        import_nir(graph)


def _direct_cnn_with_digit_statistics():
    """A direct LIF + tdBN cnn whose tdBN running statistics come from digits (so it spikes)."""
    torch.manual_seed(0)
    network = build_direct_snn("cnn", 10, 1, 8, width=0.25)
    x, _ = digits_tensors(train=True, n=256)
    network.train()
    with torch.no_grad():
        for batch in x.split(64):
            network.reset()
            network(network.encode(batch, 4))
    return network.eval()


@pytest.mark.parametrize("lif_node", ["LIF", "CubaLIF"])
def test_direct_lif_tdbn_cnn_round_trips_through_lif_and_cubalif(tmp_path, lif_node):
    x, _ = digits_tensors(train=False, n=48)
    network = _direct_cnn_with_digit_statistics()
    path = tmp_path / "direct.nir"
    graph = export_nir(network, path, lif_node=lif_node)  # input shape from the network's spec
    assert {type(n).__name__ for n in graph.nodes.values()} >= {lif_node, "Conv2d", "Affine"}
    restored = import_nir(path)
    # the export folds tdBN into the weights first (SPEC 2.4): compare with the fused network
    assert_same_simulation(fuse_norms(network), restored, x)
    # and the fused network is the trained one (eval mode), so the predictions agree
    a = network.simulate(x, T).predictions()[-1]
    b = restored.simulate(x, T).predictions()[-1]
    assert (a == b).float().mean() >= 0.95


def test_the_input_encoder_travels_in_metadata(tmp_path):
    """A Poisson-coded network comes back Poisson-coded (same seed, same spikes); an event-input
    direct network comes back reading [B, T, ...] frames."""
    x, _ = digits_tensors(train=False, n=16)
    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(trained_digits("cnn"), calib, seed=3).build(
        "percentile", reset="zero", encoding="poisson"
    )
    restored = import_nir(
        export_nir(network, tmp_path / "poisson.nir", input_shape=(1, 8, 8)), seed=3
    )
    assert type(restored.encoder).__name__ == "PoissonEncoder"
    assert_same_simulation(network, restored, x)

    events = build_direct_snn("cnn", 10, 2, 8, width=0.25, encoding="events").eval()
    frames = (torch.rand(4, T, 2, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    restored = import_nir(export_nir(events, tmp_path / "events.nir"))
    a = events.simulate(frames, T).readout
    b = restored.simulate(frames, T).readout
    torch.testing.assert_close(b, a)


class DepthwiseNet(torch.nn.Module):
    """Grouped (depthwise) convolution, ReLU6 and functional adaptive pooling, as MobileNets use."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = torch.nn.ReLU6()
        self.depthwise = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.act2 = torch.nn.ReLU6()
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = self.act2(self.depthwise(self.act1(self.stem(x))))
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_grouped_convolution_and_functional_pooling_round_trip(tmp_path):
    torch.manual_seed(0)
    x, _ = digits_tensors(train=False, n=32)
    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(DepthwiseNet().eval(), calib).build("channel", reset="zero")
    assert_same_simulation(network, round_trip(network, tmp_path), x)


def test_per_channel_initial_potentials_of_a_calibrated_network_round_trip(tmp_path):
    """``calibrated`` may give a layer one u[0] per channel: export and import keep each value."""
    x, _ = digits_tensors(train=False, n=32)
    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="subtract")
    generator = torch.Generator().manual_seed(0)
    for neuron in network.neurons().values():
        channels = neuron.threshold.numel()
        neuron.set_initial_potential(torch.rand(channels, generator=generator))
    restored = round_trip(network, tmp_path)
    for layer, neuron in restored.neurons().items():
        assert torch.equal(neuron.initial_potential, network.neurons()[layer].initial_potential)
    assert_same_simulation(network, restored, x, timesteps=6)
