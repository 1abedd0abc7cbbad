"""Energy models (spikebridge.energy): counts by hand, static and per-step terms, batch
independence, the registry, the fair quantised ANN and break-even rates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from spikebridge import convert_model
from spikebridge.energy import (
    ENERGY_MODELS,
    EnergyModel,
    EnergyTerm,
    activation_bits,
    break_even,
    count_energy_inputs,
    energy_model_names,
    estimate_energy,
    get_energy_model,
    price,
    quantised_ann,
    register_energy_model,
    snn_counts,
    sram_pj_per_byte,
)
from spikebridge.energy.table import snn_energy_row
from spikebridge.engine.lif import LIFNeuron
from spikebridge.engine.network import SpikingNetwork
from spikebridge.engine.neurons import IFNeuron
from spikebridge.evaluation import evaluate
from spikebridge.settings import setting

MODELS = ("ops", "lemaire", "reuse", "loihi")


def E(capacity_bytes: float) -> float:
    """Lemaire's SRAM energy per byte with its default figures."""
    return sram_pj_per_byte(capacity_bytes, 10.0, 20.0, 100.0)


def conv_network(bias: bool = True, threshold: float = 1e6) -> SpikingNetwork:
    torch.manual_seed(0)
    return SpikingNetwork(
        nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1, bias=bias),
            IFNeuron(threshold),
            nn.Flatten(),
            nn.Linear(32, 3, bias=bias),
        )  # fmt: skip
    )


def test_sram_energy_follows_lemaire_breakpoints():
    assert E(8 * 1024) == pytest.approx(10.0 / 4)
    assert E(32 * 1024) == pytest.approx(20.0 / 4)
    assert E(1024 * 1024) == pytest.approx(100.0 / 4)
    assert E(4 * 1024) == pytest.approx(10.0 / 8)  # linear from zero
    assert E(4 * 1024 * 1024) == pytest.approx(100.0 / 4)  # constant beyond 1 MiB


def test_conv_layer_counts_and_lemaire_energy_by_hand():
    """Input spikes at a corner (reaches 4 outputs of a padded 3x3 conv) and inside (9)."""
    x = torch.zeros(2, 1, 1, 4, 4)  # [T, B, C, H, W]
    x[0, 0, 0, 0, 0] = 1
    x[0, 0, 0, 1, 1] = 1
    x[1, 0, 0, 1, 1] = 1
    net = conv_network()
    counts, _ = count_energy_inputs(net, x)
    conv = counts.layers[0]
    assert (conv.mode, conv.events, conv.sops) == ("events", 3, (4 + 9 + 9) * 2)
    assert (conv.shape.fan_out, conv.shape.out_elements, conv.shape.weights) == (18, 32, 18)
    report = price("lemaire", counts)
    rows = report.layers[report.layers.layer == "0"].set_index("component")["energy_pJ"]
    e_add, e_mac = 0.1, 3.1 + 0.1
    T, events, fan, out = 2, 3, 18, 32
    assert rows["ops"] == pytest.approx((events * fan + out * T) * e_add)
    assert rows["addressing"] == pytest.approx(events * fan * e_add + 2 * events * e_mac)
    assert rows["memory_inout"] == pytest.approx(events * 4 * E(1000 * 4))
    assert rows["memory_params"] == pytest.approx((events * fan + out * T) * 4 * E((18 + 2) * 4))
    assert rows["memory_potential"] == pytest.approx(2 * events * fan * 4 * E(out * 4))
    ops = price("ops", counts).layers.set_index("layer")["energy_pJ"]
    assert ops["0"] == pytest.approx(44 * 0.9)


def test_linear_layer_counts_a_negative_spike_as_an_event():
    x = torch.zeros(3, 1, 6)
    x[0, 0, :2] = 1
    x[1, 0, 3] = -1  # a negative spike (signed neurons) is an event
    x[2, 0, 4:] = 1
    net = SpikingNetwork(nn.Sequential(nn.Linear(6, 4)))
    counts, _ = count_energy_inputs(net, x)
    lin = counts.layers[0]
    assert (lin.mode, lin.events, lin.sops) == ("events", 5, 20)
    b = price("lemaire", counts).breakdown_pj
    T, events, out = 3, 5, 4
    assert b["ops"] == pytest.approx((events * out + out * T) * 0.1)
    assert b["addressing"] == pytest.approx(events * out * 0.1)  # no multiplies for a linear
    assert b["memory_params"] == pytest.approx((events * out + out * T) * 4 * E((24 + 4) * 4))
    assert b["memory_potential"] == pytest.approx(2 * events * out * 4 * E(out * 4))
    assert price("loihi", counts).breakdown_pj["synaptic"] == pytest.approx(20 * 23.6)


def test_a_silent_network_costs_only_its_static_terms():
    net = conv_network(bias=False)
    counts, _ = count_energy_inputs(net, torch.zeros(4, 2, 1, 4, 4))
    b = price("lemaire", counts).breakdown_pj
    assert b["ops"] == b["addressing"] == b["memory_inout"] == b["memory_params"] == 0
    neurons, T = 32, 4
    assert b["memory_potential"] == pytest.approx(2 * neurons * T * 4 * E(neurons * 4))
    loihi = price("loihi", counts).breakdown_pj
    assert loihi["synaptic"] == loihi["routing"] == 0
    assert loihi["neuron_update"] == pytest.approx(neurons * T * 81.0)


@pytest.mark.parametrize("model", MODELS)
def test_doubling_t_doubles_the_per_step_terms(model):
    """E(kT) = per-inference terms + k x per-step terms (neurons never fire: the same events at
    every repeat); only the readout (and, for ``reuse``, loading the weights once) is paid once."""
    torch.manual_seed(1)
    x = (torch.rand(3, 2, 1, 4, 4) < 0.3).float()
    net = conv_network()
    e1, e2, e3 = (price(model, count_energy_inputs(net, torch.cat([x] * k))[0]) for k in (1, 2, 3))
    per_step = e2.total_pj - e1.total_pj
    assert e3.total_pj - e1.total_pj == pytest.approx(2 * per_step)
    once = e1.breakdown_pj.get("readout", 0.0)
    if model == "reuse":
        once += 4 * E(4 * 20) * 20 + 4 * E(4 * 99) * 99  # each layer's weights and biases, once
    assert e1.total_pj - once == pytest.approx(per_step)


def test_an_analog_first_layer_is_counted_once_per_input(trained_digits_cnn, digits_loaders):
    images = next(iter(digits_loaders[1]))[0][:4]
    snn = convert_model(trained_digits_cnn, images, method="max")
    short = estimate_energy(snn, images, "lemaire", timesteps=4)
    long = estimate_energy(snn, images, "lemaire", timesteps=8)
    first = short.counts.layers[0].name
    assert short.counts.layers[0].mode == "static"
    a = short.layers[short.layers.layer == first]["energy_pJ"].sum()
    b = long.layers[long.layers.layer == first]["energy_pJ"].sum()
    assert a == pytest.approx(b) and a > 0
    # a sequence fed as it is (not spikes) is dense at every step
    seq = images.unsqueeze(0).expand(4, *images.shape)
    dense = count_energy_inputs(snn, seq)[0].layers[0]
    assert (dense.mode, dense.executions) == ("dense", 4)


@pytest.mark.parametrize("model", MODELS)
def test_energy_does_not_depend_on_the_batch(model, trained_digits_cnn, digits_loaders):
    images = next(iter(digits_loaders[1]))[0][:4]
    snn = convert_model(trained_digits_cnn, images, method="max")
    batch = estimate_energy(snn, images, model, timesteps=5).total_pj
    singles = [estimate_energy(snn, im[None], model, timesteps=5).total_pj for im in images]
    assert batch == pytest.approx(sum(singles) / len(singles), rel=1e-9)
    ann_batch = estimate_energy(trained_digits_cnn, images, model).total_pj
    assert ann_batch == pytest.approx(
        estimate_energy(trained_digits_cnn, images[:1], model).total_pj
    )


def test_ops_model_remakes_the_old_energy_column(trained_digits_cnn, digits_loaders):
    images, labels = next(iter(digits_loaders[1]))
    snn = convert_model(trained_digits_cnn, images, method="max")
    ev = evaluate(snn, [(images[:8], labels[:8])], 6, count_ops=True)
    old = snn_energy_row("conversion", "max", ev)["energy_pJ"]
    assert price("ops", snn_counts(ev, snn)).total_pj == pytest.approx(old, rel=1e-12)


def test_leak_and_signed_spikes_are_components_outside_the_papers_figure():
    torch.manual_seed(0)
    lif = SpikingNetwork(nn.Sequential(nn.Linear(6, 5), LIFNeuron(0.5), nn.Linear(5, 3)))
    r = estimate_energy(lif, torch.rand(4, 2, 6))
    assert r.breakdown_pj["leak"] == pytest.approx(5 * 4 * (3.1 + 0.1))
    assert r.paper_pj == pytest.approx(
        r.total_pj - r.breakdown_pj["leak"] - r.breakdown_pj["readout"]
    )
    signed = SpikingNetwork(
        nn.Sequential(nn.Linear(6, 5), IFNeuron(0.5, negative_spikes=True), nn.Linear(5, 3))
    )
    s = estimate_energy(signed, torch.rand(4, 2, 6))
    assert s.breakdown_pj["signed"] > 0 and "leak" not in s.breakdown_pj


def _register_per_spike() -> None:
    """A model added by one module alone, registered when called (not at collection, where it
    would be in every other test's 'all')."""

    @register_energy_model
    @dataclass
    class _PerSpike(EnergyModel):
        """1 pJ per spike (a test of the registry)."""

        name: ClassVar[str] = "test-per-spike"
        e_spike_pj: float = setting(1.0, "energy per spike (pJ)", non_negative=True, maximum=1e6)

        def layer_energy(self, counts):
            return [
                EnergyTerm(n.name, "spikes", n.spikes * self.e_spike_pj) for n in counts.neurons
            ]


def test_a_model_added_in_one_module_is_usable_everywhere_and_changes_nothing_else():
    _register_per_spike()
    try:
        x = (torch.rand(3, 2, 1, 4, 4) < 0.5).float()
        net = conv_network(threshold=0.2)
        counts, _ = count_energy_inputs(net, x)
        assert "test-per-spike" in energy_model_names("all")
        r = estimate_energy(net, x, "test-per-spike")
        assert r.total_pj == pytest.approx(counts.spikes) and counts.spikes > 0
        assert get_energy_model("test-per-spike", e_spike_pj=2.0).e_spike_pj == 2.0
        before = {m: price(m, counts).total_pj for m in MODELS}
    finally:
        ENERGY_MODELS.unregister("test-per-spike")
    assert {m: price(m, counts).total_pj for m in MODELS} == before
    assert "test-per-spike" not in energy_model_names("all")


def test_bad_model_names_and_constants_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match="unknown energy model 'nope'.*lemaire"):
        get_energy_model("nope")
    with pytest.raises(ValueError, match="no constant 'e_foo'.*e_add_pj"):
        get_energy_model("lemaire", e_foo=1.0)
    with pytest.raises(ValueError, match="unknown energy model"):
        energy_model_names("ops,nope")
    with pytest.raises(ValueError, match="timesteps"):
        estimate_energy(nn.Linear(3, 2), torch.rand(2, 3), "ops", timesteps=4)


def test_the_fair_ann_has_t_levels_and_cheaper_integer_operations(
    trained_digits_cnn, digits_loaders
):
    assert [activation_bits(t) for t in (1, 3, 4, 7, 8, 15, 16)] == [1, 2, 3, 3, 4, 4, 5]
    images = next(iter(digits_loaders[1]))[0][:16]
    q = quantised_ann(trained_digits_cnn, images, timesteps=3)
    levels = []
    from spikebridge.convert.quantised_twin import quantisers

    handles = [m.register_forward_hook(lambda _m, _i, o: levels.append(o.unique().numel()))
               for m in quantisers(q).values()]  # fmt: skip
    q(images)
    for h in handles:
        h.remove()
    assert levels and max(levels) <= 3 + 1
    for model in ("lemaire", "reuse", "ops"):
        full = estimate_energy(q, images, model).total_pj
        narrow = estimate_energy(q, images, model, bits=activation_bits(3)).total_pj
        assert narrow < full


@pytest.mark.parametrize("model", MODELS)
def test_break_even_rate_makes_the_snn_cost_what_the_ann_costs(model, trained_digits_cnn,
                                                               digits_loaders):  # fmt: skip
    images = next(iter(digits_loaders[1]))[0][:4]
    snn = convert_model(trained_digits_cnn, images, method="max")
    counts, _ = count_energy_inputs(snn, images, 4)
    static = price(model, counts.scaled(0)).total_pj
    measured = price(model, counts).total_pj
    ann = static + 0.5 * (measured - static)
    be = break_even(model, counts, ann)
    assert be.activity == pytest.approx(0.5)
    assert be.rate == pytest.approx(0.5 * counts.firing_rate())
    assert price(model, counts.scaled(be.activity)).total_pj == pytest.approx(ann)
    assert break_even(model, counts, static * 0.9).activity == 0.0
