"""Graded spikes (issue 23): neurons that emit 0..K threshold units per step.

The defining property: a graded neuron at T steps with K units of theta / K counts what the
(K*T+1)-level quantiser does, as a binary neuron at K*T steps with threshold theta / K would,
and K = 1 is the binary neuron bit for bit.
"""

from __future__ import annotations

import re

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


# --- method calibrated: the network at T with K levels is its (K*T+1)-level twin ----------------


@pytest.fixture(scope="module")
def digits_images():
    from spikebridge.convert.calibration import calibration_images
    from spikebridge.data import make_loaders

    return calibration_images(make_loaders("digits", batch_size=64, seed=0)[0], 128)


@pytest.fixture(scope="module")
def prepared_cnn(trained_digits_cnn):
    from spikebridge.convert import prepare

    return prepare(trained_digits_cnn, maxpool="avg")


def _fast(**changes):
    from spikebridge.convert import CalibratedSettings

    return CalibratedSettings(samples=128, refine_passes=1, **changes)


def _first_layer(module) -> str:
    from spikebridge.normalization import activation_layers

    return next(iter(activation_layers(module)))


def test_calibrated_graded_network_equals_its_k_t_level_twin(prepared_cnn, digits_images):
    from spikebridge.convert.calibration import calibrate_target
    from spikebridge.convert.quantised_twin import quantisers

    T, K = 2, 3
    result = calibrate_target(prepared_cnn, digits_images, T, _fast(), spike_levels=K)
    assert result.levels == K * T
    network, twin = result.build(), result.twin()
    first = _first_layer(prepared_cnn)
    neuron = network.module.get_submodule(first)
    assert neuron.levels == K
    assert torch.allclose(neuron.threshold * K, result.thresholds[first])
    assert quantisers(twin)[first].timesteps == K * T
    x = digits_images[:64]
    seen = {}
    neuron.register_forward_hook(lambda m, a, out: seen.setdefault("snn", []).append(out))
    quantisers(twin)[first].register_forward_hook(lambda m, a, out: seen.__setitem__("twin", out))
    readout = network.simulate(x, T).readout[-1]
    with torch.no_grad():
        logits = twin(x)
    # first layer: a constant input, so the graded count is the twin's level exactly
    rate = torch.cat(seen["snn"]).unflatten(0, (T, x.shape[0])).sum(0) / T
    unit = seen["twin"].new_tensor(1.0) * result.thresholds[first].reshape(1, -1, 1, 1) / (K * T)
    assert (seen["twin"] > 0).float().mean() > 0.05  # the comparison is not of zeros
    mismatched = ((rate - seen["twin"]).abs() > 1e-4 * unit).float().mean().item()
    assert mismatched < 1e-4, mismatched
    # the whole network: the readout predicts what the twin does
    agree = (readout.argmax(1) == logits.argmax(1)).float().mean().item()
    assert agree > 0.95, agree


def test_k_levels_at_t_calibrate_the_twin_of_binary_at_k_t(prepared_cnn, digits_images):
    """(T = 2, K = 2) and (T = 4, K = 1) search the same 5-level twin: the same thresholds and
    biases, and both networks read out what that twin computes."""
    from spikebridge.convert.calibration import calibrate_target

    settings = _fast(snn_correction=False)
    graded = calibrate_target(prepared_cnn, digits_images, 2, settings, spike_levels=2)
    binary = calibrate_target(prepared_cnn, digits_images, 4, settings)
    for name, theta in binary.thresholds.items():
        assert torch.equal(graded.thresholds[name], theta), name
    assert all(
        torch.equal(p, q)
        for p, q in zip(graded.prepared.parameters(), binary.prepared.parameters(), strict=True)
    )
    x = digits_images[:64]
    with torch.no_grad():
        logits = binary.twin()(x)
    for result, T in ((graded, 2), (binary, 4)):
        readout = result.build().simulate(x, T).readout[-1]
        agree = (readout.argmax(1) == logits.argmax(1)).float().mean().item()
        assert agree > 0.95, (T, agree)


def test_spike_levels_list_gives_one_network_per_k_labelled(trained_digits_cnn, digits_loaders):
    from spikebridge.convert import Converter, converted_networks
    from spikebridge.settings import ConversionSettings

    converter = Converter(trained_digits_cnn, digits_loaders[0], maxpool="avg")
    conversion = ConversionSettings(methods="channel", spike_levels="1,4")
    items = list(converted_networks(converter, "channel", 8, conversion))
    assert [i.key for i in items] == ["channel", "channel-K4"]
    binary, graded = (i.network.module for i in items)
    name = _first_layer(converter.prepared_)
    theta = binary.get_submodule(name).threshold
    neuron = graded.get_submodule(name)
    assert neuron.levels == 4 and torch.allclose(neuron.threshold * 4, theta)
    x, y = next(iter(digits_loaders[1]))
    # K = 4 at T = 8 has the levels of binary at T = 32: close to the ANN already
    accuracy = (items[1].network.simulate(x, 8).readout[-1].argmax(1) == y).float().mean()
    assert accuracy > 0.9, accuracy


@pytest.mark.parametrize("value", ["0", "256", "2.5", "x", "1,,0"])
def test_cli_refuses_bad_spike_levels(value, capsys):
    from spikebridge.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["convert", "--spike-levels", value, "--epochs", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--spike-levels" in err and "Traceback" not in err


# --- counters and energy: each spike's payload -------------------------------------------------


def _tiny(levels: int):
    """Linear(1 -> 1, weight 1) -> IF neuron (theta 0.25 per unit, K = ``levels``) ->
    Linear(1 -> 3): the second layer's events are the neuron's spikes."""
    from torch import nn

    from spikebridge.engine.network import SpikingNetwork

    first, last = nn.Linear(1, 1, bias=False), nn.Linear(1, 3, bias=False)
    with torch.no_grad():
        first.weight.fill_(1.0)
        last.weight.fill_(0.5)
    return SpikingNetwork(nn.Sequential(first, IFNeuron(0.25, levels=levels), last))


def _evaluate(network, x, T):
    from spikebridge.evaluation import evaluate

    return evaluate(network, [(x, torch.zeros(x.shape[0], dtype=torch.long))], T, count_ops=True)


def test_counters_count_events_units_and_payload_bits():
    from spikebridge.evaluation.counters import payload_bits

    x = torch.tensor([[0.8], [0.3]])
    ev = _evaluate(_tiny(4), x, 3)
    # 0.8 per step: u = 0.8, 0.85, 0.9 -> 3 units at every step; 0.3: 1 unit per step
    assert ev.spikes["1"].tolist() == [2, 2, 2]
    assert ev.units["1"].tolist() == [4, 4, 4]
    assert ev.spike_units().sum().item() == 12
    assert ev.spike_levels == 4 and ev.payload_bits == payload_bits(4) == 3
    assert payload_bits(4, signed=True) == 4 and payload_bits(255) == 8 and payload_bits(1) == 0
    # six events, each reaching the three outputs of the last layer: graded synaptic operations
    assert ev.sops().sum().item() == 18 and ev.graded_sops().sum().item() == 18
    binary = _evaluate(_tiny(1), x, 3)
    assert binary.units == {} and binary.payload_bits == 0
    assert binary.graded_sops().sum().item() == 0
    assert torch.equal(binary.spike_units(), binary.sops() / 3)  # one unit per binary spike


def test_energy_models_price_the_payload_as_documented():
    """Same events, the payload priced or not: ops turns each graded synaptic op into a MAC,
    lemaire and reuse add the payload's multiply, bits and k, loihi charges events only."""
    from dataclasses import replace

    from spikebridge.energy.counts import snn_counts
    from spikebridge.energy.estimate import price
    from spikebridge.energy.lemaire import WORD_BITS, Lemaire
    from spikebridge.energy.ops import Ops

    network = _tiny(4)
    counts = snn_counts(_evaluate(network, torch.tensor([[0.8], [0.3]]), 3), network)
    graded = [layer for layer in counts.layers if layer.graded]
    assert [layer.name for layer in graded] == ["2"] and counts.payload_bits == 3
    assert counts.units == 6.0 and counts.spikes == 3.0  # per image
    as_binary = replace(
        counts,
        payload_bits=0,
        layers=[replace(layer, graded=False) for layer in counts.layers],
        neurons=[replace(n, levels=1, units=None) for n in counts.neurons],
    )
    ops = Ops()
    extra = price("ops", counts).total_pj - price("ops", as_binary).total_pj
    assert extra == pytest.approx(graded[0].sops * (ops.e_mac_pj - ops.e_ac_pj))
    lemaire = Lemaire()
    diff = price("lemaire", counts).breakdown_pj
    base = price("lemaire", as_binary).breakdown_pj
    steps = counts.neurons[0].neurons * counts.timesteps
    assert diff["graded"] == pytest.approx(steps * lemaire.e_mul_pj)
    synops = graded[0].events * graded[0].shape.fan_out_stride
    spikes = counts.neurons[0].spikes
    payload_ops = (synops + spikes) * lemaire.e_mul_pj * 3 / WORD_BITS
    assert diff["ops"] - base["ops"] == pytest.approx(payload_ops)
    assert diff["memory_inout"] > base["memory_inout"]
    assert price("reuse", counts).total_pj > price("reuse", as_binary).total_pj
    assert price("loihi", counts).total_pj == pytest.approx(price("loihi", as_binary).total_pj)


# --- NIR: the graded neuron's K in metadata; refused by strict export --------------------------


@pytest.fixture(scope="module")
def graded_digits_network():
    pytest.importorskip("nir", reason="NIR export needs the optional 'nir' extra")
    from test_methods_fixtures import digits_tensors, trained_digits

    from spikebridge.convert import Converter

    calib, _ = digits_tensors(train=True, n=256)
    return Converter(trained_digits("cnn"), calib).build(
        "channel", initial_potential=0.5, negative_spikes=True, spike_levels=3
    )


def test_nir_round_trip_rebuilds_graded_neurons_exactly(graded_digits_network, tmp_path):
    import warnings

    from test_methods_fixtures import digits_tensors

    from spikebridge.interop import NIRExportWarning, export_nir, import_nir

    path = tmp_path / "graded.nir"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        export_nir(graded_digits_network, path, input_shape=(1, 8, 8))
    assert any("graded spikes" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        restored = import_nir(path)
    assert {m.levels for m in restored.neurons().values()} == {3}
    x, _ = digits_tensors(train=False, n=32)
    a = graded_digits_network.simulate(x, 4, record_spikes=True)
    b = restored.simulate(x, 4, record_spikes=True)
    for layer, counts in a.spikes.items():
        assert torch.equal(counts, b.spikes[layer]), layer
        assert torch.equal(a.units[layer], b.units[layer]), layer
    assert sum(int(u.sum()) for u in a.units.values()) > sum(
        int(c.sum()) for c in a.spikes.values()
    )
    torch.testing.assert_close(b.readout, a.readout, rtol=1e-5, atol=1e-6)


def test_strict_nir_export_refuses_graded_neurons_naming_the_layer(graded_digits_network, tmp_path):
    from spikebridge.interop import NIRExportError, export_nir

    first = next(iter(graded_digits_network.neurons()))
    path = tmp_path / "strict.nir"
    named = rf"NIR node '{re.escape(first)}' \(\w+[^)]*\): graded spikes.*up to 3 per step"
    with pytest.raises(NIRExportError, match=named):
        export_nir(graded_digits_network, path, input_shape=(1, 8, 8), strict=True)
    assert not path.exists()


def test_nir_import_refuses_bad_levels(graded_digits_network, tmp_path):
    import warnings

    import nir

    from spikebridge.interop import NIRExportWarning, NIRImportError, export_nir, import_nir
    from spikebridge.interop.nir_metadata import KEY

    path = tmp_path / "bad.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        graph = export_nir(graded_digits_network, path, input_shape=(1, 8, 8))
    first = next(iter(graded_digits_network.neurons()))
    graph.nodes[first].metadata[KEY]["levels"] = 2.5
    nir.write(tmp_path / "edited.nir", graph)
    with pytest.raises(NIRImportError, match=rf"{first}.*'levels'.*integer in 1..255"):
        import_nir(tmp_path / "edited.nir")


def test_weights_only_file_keeps_the_spike_levels(tmp_path):
    from test_methods_fixtures import digits_tensors, trained_digits

    from spikebridge.convert import Converter
    from spikebridge.snn_files import SnnFileError, ann_record, load_snn, save_snn

    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(trained_digits("cnn"), calib, maxpool="avg").build(
        "channel", spike_levels=5
    )
    record = ann_record("cnn", 10, 1, 8, 0.25)
    save_snn(tmp_path / "snn.pt", network, record, "avg", "analog", method="channel-K5")
    restored = load_snn(tmp_path / "snn.pt")
    assert {m.levels for m in restored.neurons().values()} == {5}
    x, _ = digits_tensors(train=False, n=16)
    assert torch.equal(network.simulate(x, 3).readout, restored.simulate(x, 3).readout)
    data = torch.load(tmp_path / "snn.pt", weights_only=True)
    next(iter(data["neurons"].values()))["levels"] = 0
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(SnnFileError, match="levels"):
        load_snn(tmp_path / "bad.pt")


def test_spike_levels_setting_has_one_canonical_form():
    from spikebridge.settings import ConversionSettings, SettingsError

    assert ConversionSettings().spike_levels == 1
    assert ConversionSettings(spike_levels="4").spike_levels == 4
    assert ConversionSettings(spike_levels="4,1, 2,2").spike_levels == "1,2,4"
    with pytest.raises(SettingsError, match="spike_levels"):
        ConversionSettings(spike_levels=2.5)
