"""NIR export: what maps exactly, what travels as metadata (with a warning naming the node, or a
refusal under strict), and the errors for what NIR cannot express (docs/nir.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip(
    "nir", reason="NIR export needs the optional 'nir' extra (pip install nir)"
)

from test_methods_fixtures import digits_tensors, trained_digits  # noqa: E402

from spikebridge.convert import Converter  # noqa: E402
from spikebridge.direct import LIFNeuron  # noqa: E402
from spikebridge.engine.network import SpikingNetwork  # noqa: E402
from spikebridge.engine.neurons import IFNeuron  # noqa: E402
from spikebridge.interop import (  # noqa: E402
    NIRExportError,
    NIRExportWarning,
    export_nir,
)
from spikebridge.interop.nir_metadata import KEY, read_facts  # noqa: E402


def converted(reset="zero", method="percentile", pool="avg", **options):
    calib, _ = digits_tensors(train=True, n=128)
    model = trained_digits("cnn", pool=pool)
    return Converter(model, calib).build(method, reset=reset, **options)


def export_quietly(network, path, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = export_nir(network, path, input_shape=(1, 8, 8), **options)
    return graph, [w for w in caught if issubclass(w.category, NIRExportWarning)]


def test_reset_to_zero_if_network_exports_without_warnings_as_unit_spike_if_nodes(tmp_path):
    network = converted(reset="zero")
    graph, warned = export_quietly(network, tmp_path / "net.nir")
    assert warned == []
    thresholds = {n: m.threshold for n, m in network.neurons().items()}
    for name, theta in thresholds.items():
        node = graph.nodes[name]
        assert isinstance(node, nir.IF)
        assert np.all(node.v_reset == 0) and np.all(node.r == 1)
        assert np.allclose(node.v_threshold, float(theta))  # per layer: one value everywhere
    # theta moved into the weights of the next layer: W' = W * theta_in (exactly, in float64)
    conv = graph.nodes["3"]
    w = network.module.get_submodule("3").weight.detach().double()
    assert np.array_equal(conv.weight, (w * float(thresholds["2"].double())).numpy())
    assert read_facts(graph.nodes["input"])["encoder"] == "analog"
    assert read_facts(graph.nodes["output"])["readout"] == "mean"


def test_each_node_needing_metadata_is_named_in_a_warning(tmp_path):
    network = converted(reset="subtract", pool="max")
    graph, warned = export_quietly(network, tmp_path / "net.nir")
    messages = [str(w.message) for w in warned]
    neurons = list(network.neurons())
    for name in neurons:
        assert any(f"'{name}'" in m and "subtract" in m for m in messages), name
    pools = [n for n, m in network.module.named_modules() if type(m).__name__ == "SpikingMaxPool"]
    assert pools and all(any(f"'{p}'" in m and "max-pool" in m for m in messages) for p in pools)
    assert len(messages) == len(neurons) + len(pools)
    # and the facts travel in the node's metadata, read back from the file
    stored = nir.read(tmp_path / "net.nir")
    assert read_facts(stored.nodes[neurons[0]])["reset"] == "subtract"
    assert read_facts(stored.nodes[pools[0]])["op"] == "spiking_max_pool"


def test_strict_refuses_naming_every_node_and_writes_nothing(tmp_path):
    network = converted(reset="subtract", initial_potential=0.5)
    path = tmp_path / "net.nir"
    with pytest.raises(NIRExportError, match="strict") as err:
        export_nir(network, path, input_shape=(1, 8, 8), strict=True)
    neurons = list(network.neurons())
    for i, name in enumerate(neurons, start=1):  # named by NIR node name and place among its kind
        assert f"NIR node '{name}' (IF {i} of {len(neurons)}):" in str(err.value)
    assert "starts at v = 0.5" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    # a reset-to-zero network with u[0] = 0 passes strict
    export_nir(converted(reset="zero"), path, input_shape=(1, 8, 8), strict=True)
    assert path.is_file()


def test_signed_leaky_relu_neurons_are_named(tmp_path):
    calib, _ = digits_tensors(train=True, n=128)
    model = trained_digits("cnn", "leaky-relu", alpha=0.1)
    network = Converter(model, calib).build("percentile")
    _, warned = export_quietly(network, tmp_path / "net.nir")
    assert warned and all("signed neuron" in str(w.message) for w in warned)


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def broken_write(filename, graph, *args, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        export_nir(converted(), tmp_path / "net.nir", input_shape=(1, 8, 8))
    assert list(tmp_path.iterdir()) == []


def test_layers_nir_cannot_express_are_refused_by_name():
    class Upsampling(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.act = IFNeuron(1.0, "zero")
            self.up = nn.Upsample(scale_factor=2)
            self.fc = nn.Linear(2 * 16 * 16, 3)

        def forward(self, x):
            return self.fc(self.up(self.act(self.conv(x))).flatten(1))

    with pytest.raises(NIRExportError, match="up: Upsample has no NIR equivalent"):
        export_nir(SpikingNetwork(Upsampling()), "unused.nir", input_shape=(1, 8, 8))

    class Concat(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = IFNeuron(1.0, "zero")

        def forward(self, x):
            return torch.cat([self.act(x), x], 1).flatten(1)

    with pytest.raises(NIRExportError, match="cat"):
        export_nir(SpikingNetwork(Concat()), "unused.nir", input_shape=(1, 8, 8))

    class Offset(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = IFNeuron(1.0, "zero")

        def forward(self, x):
            return (self.act(x) + 0.5).flatten(1)

    with pytest.raises(NIRExportError, match="addition with a constant argument 0.5"):
        export_nir(SpikingNetwork(Offset()), "unused.nir", input_shape=(1, 8, 8))


def test_input_shape_is_required_and_checked(tmp_path):
    network = converted()
    with pytest.raises(NIRExportError, match=r"input_shape=\(C, H, W\)"):
        export_nir(network, tmp_path / "a.nir")
    with pytest.raises(NIRExportError, match=r"does not run on inputs of shape \(3, 8, 8\)"):
        export_nir(network, tmp_path / "a.nir", input_shape=(3, 8, 8))
    assert list(tmp_path.iterdir()) == []


def test_lif_constants_map_to_nir_lif_and_cubalif_exactly():
    """tau_decay = 1 - dt/tau and dt/tau * R = 1 (docs/nir.md): one Euler step of NIR's LIF is
    u = tau_decay * u + x."""
    net = SpikingNetwork(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), LIFNeuron(0.3, 0.6)))
    dt = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRExportWarning)  # LIF needs no metadata
        from spikebridge.interop import build_nir_graph

        lif = build_nir_graph(net, (4,), dt=dt).nodes["2"]
        cuba = build_nir_graph(net, (4,), dt=dt, lif_node="CubaLIF").nodes["2"]
    assert np.allclose(1 - dt / lif.tau, 0.6) and np.allclose(dt / lif.tau * lif.r, 1.0)
    assert (
        np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0) and np.allclose(lif.v_threshold, 0.3)
    )
    assert np.allclose(cuba.tau_syn, dt) and np.allclose(1 - dt / cuba.tau_mem, 0.6)
    assert np.allclose(dt / cuba.tau_mem * cuba.r, 1.0) and np.all(cuba.w_in == 1)


def test_metadata_lives_under_one_key_readers_can_ignore(tmp_path):
    network = converted(reset="subtract")
    graph, _ = export_quietly(network, tmp_path / "net.nir")
    for name, node in graph.nodes.items():
        assert set(node.metadata) <= {KEY}, name
