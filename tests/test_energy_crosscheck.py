"""The ``lemaire`` energy model against SpikingJelly 2.0's ``estimate_lemaire_energy``.

The same network runs in both: a converted network (per-layer thresholds) and a directly
trained LIF network, each mirrored in SpikingJelly by hand: SpikingJelly's NIR importer wraps
every neuron in a module that calls it through ``functional_forward``, outside the module hooks
its energy counter relies on, so a network imported through NIR has no neuron terms there.
Spikes carry the threshold's amplitude in spikebridge; the mirror takes binary spikes and folds
the amplitude into the next layer's weights, so both count the same events. The first layer
sees the analog image once in both (a plain conv before a repeat over T). Compared image by
image at batch 1 (SpikingJelly sizes buffers from its batched tensors); ours at any batch.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikebridge import convert_model
from spikebridge.direct.trainer import stbp_loss
from spikebridge.energy import estimate_energy
from spikebridge.engine.lif import LIFNeuron
from spikebridge.engine.network import SpikingNetwork
from spikebridge.engine.neurons import IFNeuron
from spikebridge.training import train_ann

sj = pytest.importorskip("spikingjelly", reason="the cross-check needs spikingjelly (bench extra)")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.op_counter import (  # noqa: E402
    LemaireEnergyConfig,
    estimate_lemaire_energy,
)

# SpikingJelly leaves the repeat over T and flatten out of its figure (no energy), as we do
pytestmark = pytest.mark.filterwarnings("ignore:Lemaire formulas do not support")
T = 6
COMPONENTS = {  # SpikingJelly's key -> ours (SpikingJelly's ops include the LIF leak)
    "ops_pj": ("ops", "leak"),
    "addressing_pj": ("addressing",),
    "inout_pj": ("memory_inout",),
    "params_pj": ("memory_params",),
    "potential_pj": ("memory_potential",),
}


class Repeat(nn.Module):
    """[B, ...] -> [T, B, ...]: the analog current, computed once, fed at every step."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x):
        return x.unsqueeze(0).expand(self.steps, *x.shape).contiguous()


def _sequential(activation) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), activation(),
        nn.Conv2d(6, 8, 3, stride=2, padding=1), activation(),
        nn.Flatten(), nn.Linear(128, 32), activation(), nn.Linear(32, 10),
    )  # fmt: skip


def _copy(target: nn.Module, source: nn.Module, scale: float) -> nn.Module:
    with torch.no_grad():
        target.weight.copy_(source.weight * scale)
        target.bias.copy_(source.bias)
    return target


def mirror(network: SpikingNetwork, steps: int) -> nn.Module:
    """The same network in SpikingJelly (multi-step, binary spikes)."""
    mods = dict(network.module.named_modules())
    order = [n.target for n in network.module.graph.nodes if n.op == "call_module"]
    out: list[nn.Module] = []
    amplitude = None  # None: the analog image (before the first neuron)
    for name in order:
        m = mods[name]
        scale = 1.0 if amplitude is None else amplitude
        if isinstance(m, nn.Conv2d):
            cls = nn.Conv2d if amplitude is None else layer.Conv2d
            conv = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
            out.append(_copy(conv, m, scale))
        elif isinstance(m, nn.Linear):
            out.append(_copy(layer.Linear(m.in_features, m.out_features), m, scale))
        elif isinstance(m, nn.Flatten):
            out.append(layer.Flatten(1))
        elif isinstance(m, (IFNeuron, LIFNeuron)):
            if amplitude is None:
                out.append(Repeat(steps))
            if isinstance(m, IFNeuron):
                theta = float(m.threshold.reshape(-1)[0])
                assert m.threshold.numel() == 1 and m.reset == "subtract"
                out.append(neuron.IFNode(v_threshold=theta, v_reset=None))
                amplitude = theta
            else:
                tau = 1.0 / (1.0 - m.tau_decay)
                out.append(
                    neuron.LIFNode(tau=tau, decay_input=False, v_threshold=m.threshold, v_reset=0.0)
                )
                amplitude = 1.0
        else:
            raise AssertionError(f"no mirror for {type(m).__name__}")
    model = nn.Sequential(*out)
    functional.set_step_mode(model, "m")
    return model.eval()


def spikingjelly_energy(model: nn.Module, image: torch.Tensor) -> dict[str, float]:
    functional.reset_net(model)
    report = estimate_lemaire_energy(model, image, config=LemaireEnergyConfig(strict=False))
    return {"total_pj": report.total_pj, **report.breakdown_pj}


def ours_by_sj_component(report) -> dict[str, float]:
    b = report.breakdown_pj
    out = {k: sum(b.get(c, 0.0) for c in cs) for k, cs in COMPONENTS.items()}
    out["total_pj"] = sum(out.values())
    # nothing else than the readout's argmax lies outside SpikingJelly's scope in these networks
    extras = report.total_pj - out["total_pj"] - b.get("signed", 0.0) - b.get("readout", 0.0)
    assert abs(extras) < 1e-6 * report.total_pj
    return out


def check_against_spikingjelly(network: SpikingNetwork, images: torch.Tensor) -> dict[str, float]:
    """Ratio ours / SpikingJelly's per component, checked image by image within 1 %."""
    model = mirror(network, T)
    ratios: dict[str, list[float]] = {}
    for image in images:
        theirs = spikingjelly_energy(model, image[None])
        ours = ours_by_sj_component(estimate_energy(network, image[None], "lemaire", T))
        for key, value in ours.items():
            ratio = value / theirs[key] if theirs[key] else (1.0 if value == 0 else float("inf"))
            assert ratio == pytest.approx(1.0, rel=0.01), (key, value, theirs[key])
            ratios.setdefault(key, []).append(ratio)
    batch = estimate_energy(network, images, "lemaire", T).total_pj
    singles = [estimate_energy(network, im[None], "lemaire", T).total_pj for im in images]
    assert batch == pytest.approx(sum(singles) / len(singles), rel=1e-9)
    return {k: sum(v) / len(v) for k, v in ratios.items()}


@pytest.fixture(scope="module")
def digits_images(digits_loaders):
    return next(iter(digits_loaders[1]))[0][:5]


def test_lemaire_equals_spikingjelly_on_a_converted_network(digits_loaders, digits_images):
    torch.manual_seed(0)
    ann = _sequential(nn.ReLU)
    train_ann(ann, digits_loaders[0], epochs=2, lr=3e-3, seed=0)
    calib = next(iter(digits_loaders[0]))[0]
    snn = convert_model(ann.eval(), calib, method="max")
    ratios = check_against_spikingjelly(snn, digits_images)
    assert set(ratios) == {*COMPONENTS, "total_pj"}


def test_lemaire_equals_spikingjelly_on_a_directly_trained_network(digits_loaders, digits_images):
    torch.manual_seed(0)
    net = SpikingNetwork(_sequential(lambda: LIFNeuron(threshold=0.5, tau_decay=0.25)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for i, (x, y) in enumerate(digits_loaders[0]):  # a few STBP steps: a trained, spiking net
        net.reset()
        loss, _ = stbp_loss(net, net.encode(x, T), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == 5:
            break
    net.eval()
    from spikebridge.engine.graph import trace_spiking

    net.module = trace_spiking(net.module)
    ratios = check_against_spikingjelly(net, digits_images)
    assert ratios["ops_pj"] == pytest.approx(1.0, rel=0.01)
