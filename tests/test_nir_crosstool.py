"""Cross-tool: networks exported by spikebridge, loaded by snnTorch's NIR reader, give the same
spike counts on a batch of digits (skipped without snnTorch; the ``nir`` extra installs it).

What differs, and why these tests look as they do (docs/nir.md, "Other readers"):

- A direct LIF network (reset to zero, tdBN folded) is read by ``snntorch.import_nir.
  import_from_nir`` unchanged: its LIF mapping (beta = 1 - dt/tau, dt = 1e-4, reset to zero) is
  NIR's LIF, and spikebridge writes tau and R for that dt.
- A reset-to-zero IF network: snnTorch 1.0's ``import_from_nir`` maps ``nir.IF`` to
  ``Leaky(beta=0.9)`` with reset by subtraction and ``init_hidden=False``, whose (spike, membrane)
  tuple the next layer cannot take, so such a graph neither runs nor means NIR's IF there. The test
  reads the file with the same reader (nirtorch + snnTorch's node mapping) and only replaces that
  one mapping by NIR's definition of IF in snnTorch's own neuron: ``Leaky(beta=1,
  reset_mechanism="zero", threshold=v_threshold)``. Every other node is snnTorch's reading.
- Subtractive reset: NIR's IF has no such reset, so spikebridge writes ``v_reset = 0`` and
  ``metadata["spikebridge"]["reset"] = "subtract"`` and warns. A reader that ignores the metadata
  (like the one above) computes another network; ``spikebridge.import_nir`` (the metadata route)
  computes the exported one. snnTorch's own "subtract" Leaky is not a substitute: with
  reset_delay=False it adds back a threshold when the potential stays above it, so its spike
  times differ from IF with reset by subtraction once inputs exceed the threshold.
- Thresholds: spikebridge's IF fires at v >= theta, NIR's (and snnTorch's) at v > theta; they
  differ only when the potential equals theta exactly, which these tests do not meet.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

nir = pytest.importorskip(
    "nir", reason="NIR export needs the optional 'nir' extra (pip install nir)"
)
pytest.importorskip("nirtorch", reason="snnTorch's NIR reader needs nirtorch (the 'nir' extra)")
snn = pytest.importorskip("snntorch", reason="the cross-tool reader snnTorch is not installed")
snntorch_nir = pytest.importorskip("snntorch.import_nir", reason="snnTorch without import_nir")

from test_methods_fixtures import digits_tensors, trained_digits  # noqa: E402

from spikebridge.convert import Converter  # noqa: E402
from spikebridge.direct import build_direct_snn, fuse_norms  # noqa: E402
from spikebridge.interop import NIRExportWarning, export_nir, import_nir  # noqa: E402

STEPS = 16


def run_snntorch(module, x: torch.Tensor, steps: int = STEPS):
    """Spike counts per snnTorch neuron layer and the mean readout [steps, B, K] of a module made
    by nirtorch (called once per step with the same analog input; it returns (output, state))."""
    counts: dict[str, int] = {}

    def count(name):
        def hook(_mod, _inp, out):
            spikes = out[0] if isinstance(out, tuple) else out
            counts[name] = counts.get(name, 0) + int(spikes.ne(0).sum())

        return hook

    for name, mod in module.named_modules():
        if isinstance(mod, snn.Leaky):
            mod.register_forward_hook(count(name))
    outputs, state = [], None
    with torch.no_grad():
        for _ in range(steps):
            out, state = module(x, state)
            outputs.append(out)
    outputs = torch.stack(outputs)
    readout = outputs.cumsum(0) / torch.arange(1, steps + 1).view(-1, 1, 1)
    return counts, readout


def spikebridge_counts(network, x, steps: int = STEPS):
    sim = network.simulate(x, steps, record_spikes=True)
    return {k: int(v.sum()) for k, v in sim.spikes.items()}, sim.readout


def nir_if_as_snntorch_leaky(node):
    """NIR's IF (v += I, spike when v > v_threshold, v = v_reset = 0) in snnTorch's neuron."""
    assert np.all(np.asarray(node.v_reset) == 0) and np.all(np.asarray(node.r) == 1)
    threshold = torch.from_numpy(np.asarray(node.v_threshold, dtype=np.float32))
    return snn.Leaky(
        beta=1.0, threshold=threshold, reset_mechanism="zero", init_hidden=True, reset_delay=False
    )


@pytest.fixture
def snntorch_with_nir_if(monkeypatch):
    """snnTorch's import_from_nir with its nir.IF mapping replaced by NIR's definition."""
    original = snntorch_nir._nir_to_snntorch_module

    def mapping(node, *args, **kwargs):
        if isinstance(node, nir.IF):
            return nir_if_as_snntorch_leaky(node)
        return original(node, *args, **kwargs)

    monkeypatch.setattr(snntorch_nir, "_nir_to_snntorch_module", mapping)
    return snntorch_nir.import_from_nir


def test_snntorch_reads_a_direct_lif_network_with_the_same_spike_counts(tmp_path, capsys):
    x, _ = digits_tensors(train=False, n=64)
    torch.manual_seed(0)
    network = build_direct_snn("cnn", 10, 1, 8, width=0.25)
    train_x, _ = digits_tensors(train=True, n=256)
    network.train()
    with torch.no_grad():  # tdBN running statistics from digits, so the network spikes
        for batch in train_x.split(64):
            network.reset()
            network(network.encode(batch, 4))
    network.eval()
    path = tmp_path / "lif.nir"
    export_nir(network, path)
    theirs, their_readout = run_snntorch(snntorch_nir.import_from_nir(nir.read(path)), x)
    ours, our_readout = spikebridge_counts(fuse_norms(network), x)
    assert sum(ours.values()) > 0
    assert theirs == ours
    torch.testing.assert_close(their_readout, our_readout, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["percentile", "channel"])
def test_snntorch_reads_a_reset_to_zero_if_network_with_the_same_spike_counts(
    tmp_path, method, snntorch_with_nir_if
):
    x, _ = digits_tensors(train=False, n=64)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn"), calib).build(method, reset="zero")
    path = tmp_path / "if.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRExportWarning)  # nothing here needs metadata
        export_nir(network, path, input_shape=(1, 8, 8))
    theirs, their_readout = run_snntorch(snntorch_with_nir_if(nir.read(path)), x)
    ours, our_readout = spikebridge_counts(network, x)
    assert sum(ours.values()) > 0
    assert theirs == ours
    torch.testing.assert_close(their_readout, our_readout, rtol=1e-4, atol=1e-5)


def test_subtractive_reset_needs_the_metadata_route(tmp_path, snntorch_with_nir_if):
    x, _ = digits_tensors(train=False, n=64)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="subtract")
    path = tmp_path / "subtract.nir"
    with pytest.warns(NIRExportWarning, match="subtract"):
        export_nir(network, path, input_shape=(1, 8, 8))
    ours, _ = spikebridge_counts(network, x)
    theirs, _ = run_snntorch(snntorch_with_nir_if(nir.read(path)), x)
    assert theirs != ours  # a reader that ignores metadata resets to zero: another network
    restored, _ = spikebridge_counts(import_nir(path), x)
    assert restored == ours
