"""The quantised twin: the T-level quantised ANN that a signed-IF network computes.

A network of signed IF neurons (``IFNeuron(negative_spikes=True)``, Wang et al. 2022; Hu et al.
2023) with u[0] = theta/2, reset by subtraction and analog input, read out as the sum of its
output layer over T steps, computes T times the logits of the ANN whose every activation is
replaced by the T-level quantiser

    q_T(a) = theta/T * clamp(floor(T*a/theta + 1/2), 0, T)        (theta per layer or channel)

because every layer between neurons is linear over time (conv, linear, average pooling, folded
BN, residual addition, concatenation, flatten) and a signed neuron's net spike count after T
steps is clamp(floor(S/theta + 1/2), 0, T) for its summed input S, as long as its potential ends
*settled* (:func:`settled_samples`): no spike is still owed at step T (a late burst of input
worth more than one threshold per step can leave one owed). The twin runs as one ANN pass, which
is what makes searching thresholds for a target T cheap (:mod:`spikebridge.convert.calibration`).

Tensor shapes: the twin takes and returns what the prepared ANN does ([B, C, H, W] -> [B, K]);
a quantiser's threshold is 0-d or [C] (channel dimension 1).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, fx, nn

from ..engine.graph import MethodNotApplicable, set_submodule
from ..engine.neurons import IFNeuron, channel_view
from ..engine.substitution import neuron_for
from ..normalization.calibrate import activation_layers

METHOD = "calibrated"


def round_half_up_ste(x: Tensor) -> Tensor:
    """floor(x + 1/2) forward, identity backward (straight-through estimator, Bengio 2013)."""
    return floor_ste(x + 0.5)


def floor_ste(x: Tensor) -> Tensor:
    """floor(x) forward, identity backward (straight-through estimator, Bengio 2013)."""
    return x + (torch.floor(x) - x).detach()


class TwinQuantiser(nn.Module):
    """q_T(a) = theta/T * clamp(floor(T*a/theta + phi), 0, T), or the wrapped activation.

    phi = u[0] / theta is the neurons' initial potential as a fraction of the threshold (1/2:
    rounding to nearest, the default; per channel: the potential calibration of Li et al. 2021,
    which moves each step of the staircase). A signed IF neuron starting at u[0] counts
    clamp(floor((S + u[0]) / theta), 0, T) for a summed input S, so the twin stays exact.

    Args:
        activation: the ANN's activation module this quantiser stands in for (used as is while
            ``quantise`` is False, so a twin can be quantised layer by layer).
        threshold: theta, 0-d or [C] (channel dimension 1); a parameter (frozen until
            reconstruction trains it).
        timesteps: T, the number of levels above zero.
        quantise: apply q_T (True) or the float activation (False).
        initial_potential: phi = u[0] / theta, 0-d or [C] (a frozen parameter like theta).

    Input and output: [B, C, ...] (or [B, F]). Gradients pass the rounding straight through
    (STE) and reach theta as in LSQ (Esser et al. 2020).
    """

    def __init__(
        self,
        activation: nn.Module,
        threshold: float | Tensor,
        timesteps: int,
        quantise: bool = True,
        initial_potential: float | Tensor = 0.5,
    ) -> None:
        super().__init__()
        check_timesteps(timesteps)
        theta = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
        if theta.dim() > 1 or not torch.isfinite(theta).all() or (theta <= 0).any():
            raise ValueError(
                "TwinQuantiser: threshold must be a finite positive scalar or [C] tensor, "
                f"got {theta}"
            )
        self.activation = activation
        self.timesteps = int(timesteps)
        self.quantise = quantise
        self.threshold = nn.Parameter(theta, requires_grad=False)
        phi = torch.as_tensor(initial_potential, dtype=torch.float32).detach().clone()
        if phi.dim() > 1 or not torch.isfinite(phi).all():
            raise ValueError(
                f"TwinQuantiser: initial_potential must be a finite scalar or [C] tensor, got {phi}"
            )
        self.initial_potential = nn.Parameter(phi, requires_grad=False)

    def set_initial_potential(self, phi: float | Tensor) -> None:
        """Replace phi = u[0] / theta (a scalar or [C]; the stored shape grows to [C] if needed)."""
        value = torch.as_tensor(phi, dtype=torch.float32).to(self.initial_potential.device)
        with torch.no_grad():
            if value.shape == self.initial_potential.shape:
                self.initial_potential.copy_(value)
            else:
                self.initial_potential = nn.Parameter(value.clone(), requires_grad=False)

    def set_threshold(self, threshold: Tensor) -> None:
        """Replace theta (same shape, or a scalar broadcast to the stored shape)."""
        value = torch.as_tensor(threshold).to(self.threshold)
        with torch.no_grad():
            self.threshold.copy_(value.expand_as(self.threshold))

    def levels(self, x: Tensor) -> Tensor:
        """The net spike count clamp(floor(T*x/theta + phi), 0, T) per element of x ([B, C, ...])."""
        theta = channel_view(self.threshold.to(x.dtype), x)
        phi = channel_view(self.initial_potential.to(x.dtype), x)
        # clamped before the floor: the gradient passes wherever 0 < T x / theta + phi < T (LSQ)
        return floor_ste((x * (self.timesteps / theta) + phi).clamp(0, self.timesteps))

    def forward(self, x: Tensor) -> Tensor:
        if not self.quantise:
            return self.activation(x)
        theta = channel_view(self.threshold.to(x.dtype), x)
        return self.levels(x) * (theta / self.timesteps)

    def extra_repr(self) -> str:
        th = self.threshold
        shown = f"{th.item():.4g}" if th.dim() == 0 else f"[{th.numel()} channels]"
        phi = self.initial_potential
        start = f"{phi.item():.4g}" if phi.dim() == 0 else f"[{phi.numel()} channels]"
        return (
            f"threshold={shown}, initial_potential={start}, timesteps={self.timesteps}, "
            f"quantise={self.quantise}"
        )


def check_timesteps(timesteps: int) -> None:
    """A target T must be a positive integer (the twin has T levels above zero)."""
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps <= 0:
        raise ValueError(
            f"target timesteps T must be a positive integer (the quantiser has T levels above "
            f"zero), got {timesteps!r}"
        )


def check_calibratable(prepared: fx.GraphModule) -> None:
    """Refuse a model the twin cannot stand for: no activation to calibrate, or LeakyReLU
    (Kim 2020's signed neuron).

    Max-pooling is fine: the network pools spikes with the ``"running"`` rule of
    :class:`~spikebridge.engine.neurons.SpikingMaxPool`, whose summed output is the max-pool of
    the summed inputs, so the twin keeps the ANN's max-pool (a network prepared with
    ``maxpool="avg"`` has average pooling in both instead).
    """
    acts = activation_layers(prepared)
    if not acts:
        raise MethodNotApplicable(
            f"{type(prepared).__name__}: no calibratable activation (ReLU, ReLU6, Hardtanh, "
            f"QCFS) to become a neuron layer; method {METHOD!r} needs at least one"
        )
    for name, act in acts.items():
        if isinstance(act, nn.LeakyReLU):
            raise MethodNotApplicable(
                f"{name}: LeakyReLU becomes Kim 2020's signed neuron, whose count is not the "
                f"T-level quantiser of method {METHOD!r}; use a ReLU network or method 'channel'"
            )


def snn_threshold(name: str, activation: nn.Module, threshold: Tensor) -> Tensor:
    """The threshold the built neuron will have (ReLU6/Hardtanh and QCFS clip it, see
    :func:`~spikebridge.engine.substitution.neuron_for`), so the twin matches the network exactly."""
    neuron = neuron_for(name, activation, threshold, "subtract", 0.5, METHOD, True)
    assert isinstance(neuron, IFNeuron)
    return neuron.threshold


def quantised_twin(
    prepared: fx.GraphModule,
    thresholds: dict[str, Tensor],
    timesteps: int,
    quantise: bool = True,
    initial_potentials: float | dict[str, Tensor] = 0.5,
) -> fx.GraphModule:
    """A copy of the prepared ANN with every activation replaced by a :class:`TwinQuantiser`.

    Args:
        prepared: the ANN after :func:`~spikebridge.convert.prepare`.
        thresholds: activation name -> theta (0-d or [C]), e.g. a method's scales or
            :func:`~spikebridge.convert.threshold_summary` of a built network.
        timesteps: T.
        quantise: start with every quantiser on (or off: the float ANN, for layer-wise search).
        initial_potentials: phi = u[0] / theta of every layer, or activation name -> phi
            (0-d or [C]); the network's neurons start at phi * theta.

    Returns a GraphModule mapping [B, ...] inputs to [B, K] logits equal to 1/T times the summed
    readout of the signed-IF network with these thresholds, wherever its neurons end settled.
    """
    check_timesteps(timesteps)
    check_calibratable(prepared)
    twin = copy.deepcopy(prepared)
    for name, act in activation_layers(twin).items():
        if name not in thresholds:
            raise MethodNotApplicable(f"{name}: no threshold given for this activation layer")
        theta = snn_threshold(name, act, thresholds[name])
        phi = (
            initial_potentials.get(name, 0.5)
            if isinstance(initial_potentials, dict)
            else initial_potentials
        )
        set_submodule(twin, name, TwinQuantiser(act, theta, timesteps, quantise, phi))
    twin.recompile()
    return twin.eval()


def twin_of(prepared: fx.GraphModule, network: nn.Module, timesteps: int) -> fx.GraphModule:
    """The quantised twin of a built network (its neurons' thresholds) at T = ``timesteps``
    (of graded neurons with K units per step: at K*T levels).

    ``prepared`` is the ANN the network was built from (same activation names); ``network`` a
    :class:`~spikebridge.engine.network.SpikingNetwork` or its module.
    """
    module = getattr(network, "module", network)
    neurons = {name: m for name, m in module.named_modules() if isinstance(m, IFNeuron)}
    levels = {m.levels for m in neurons.values()} or {1}
    if len(levels) > 1:
        raise ValueError(
            f"twin_of: the network's neurons carry different spike levels {sorted(levels)}; "
            "a quantised twin has one number of levels"
        )
    k = levels.pop()  # graded spikes: K units of theta per step, the K*T-level twin of K*theta
    thresholds = {name: m.threshold * k for name, m in neurons.items()}
    potentials = {name: torch.as_tensor(m.initial_potential) for name, m in neurons.items()}
    return quantised_twin(prepared, thresholds, timesteps * k, True, potentials)


def quantisers(twin: nn.Module) -> dict[str, TwinQuantiser]:
    """Activation name -> quantiser of a twin, in definition order."""
    return {n: m for n, m in twin.named_modules() if isinstance(m, TwinQuantiser)}


def restore_activations(twin: fx.GraphModule) -> fx.GraphModule:
    """A copy of ``twin`` with every quantiser replaced by the activation it wraps: the prepared
    ANN again (with whatever biases and weights calibration changed)."""
    ann = copy.deepcopy(twin)
    for name, q in quantisers(ann).items():
        set_submodule(ann, name, q.activation)
    ann.recompile()
    return ann.eval()


def settled_samples(network: nn.Module, timesteps: int) -> Tensor:
    """[B] bool: every signed IF neuron of a just-simulated network ended settled.

    A signed neuron's net count n after T steps equals clamp(floor(S/theta + 1/2), 0, T) (the
    twin's level) exactly when its final potential v = theta/2 + S - n*theta is settled:
    0 <= v < theta, or v < 0 with n = 0, or v >= theta with n = T (graded neurons: n counts
    units, K*T at most). Call after
    ``network.simulate(x, timesteps)`` (which leaves the neurons' state in place).
    """
    module = getattr(network, "module", network)
    ok: Tensor | None = None
    for name, m in module.named_modules():
        if not isinstance(m, IFNeuron):
            continue
        if not m.negative_spikes or m.v is None or m.count is None:
            raise ValueError(
                f"{name}: settled_samples needs a simulated network of signed IF neurons "
                "(negative_spikes=True); simulate it first"
            )
        th = channel_view(m.threshold.to(m.v.dtype), m.v)
        v, n = m.v, m.count
        full = timesteps * m.levels  # a graded neuron counts units: K*T at most
        good = ((v >= 0) & (v < th)) | ((v < 0) & (n == 0)) | ((v >= th) & (n == full))
        per_sample = good.flatten(1).all(1)
        ok = per_sample if ok is None else ok & per_sample
    if ok is None:
        raise ValueError("settled_samples: the network has no IF neurons")
    return ok


@torch.no_grad()
def count_agreement(
    network: nn.Module, twin: fx.GraphModule, x: Tensor, timesteps: int
) -> dict[str, float]:
    """Layer -> share of neurons whose net spike count after T steps differs from the twin's level.

    ``network`` is a :class:`~spikebridge.engine.network.SpikingNetwork` built with the twin's
    thresholds; x: [B, ...] inputs. The twin's level is clamp(floor(T*a/theta + 1/2), 0, T) of
    its own pre-activation a (upstream layers quantised), so a difference anywhere propagates:
    the shares measure how far the simulated network is from its twin, layer by layer.
    """
    counts: dict[str, Tensor] = {}
    levels: dict[str, Tensor] = {}
    handles = []
    module = network.module
    for name, m in module.named_modules():
        if isinstance(m, IFNeuron):

            def on_spikes(mod, _inp, out, name=name):
                spikes = out.reshape(mod.steps, -1, *out.shape[1:]).sum(0)
                counts[name] = counts.get(name, 0) + spikes

            handles.append(m.register_forward_hook(on_spikes))
    for name, q in quantisers(twin).items():
        handles.append(
            q.register_forward_hook(
                lambda mod, inp, _out, name=name: levels.__setitem__(name, mod.levels(inp[0]))
            )
        )
    try:
        network.simulate(x, timesteps)
        twin(x)
    finally:
        for h in handles:
            h.remove()
    shares = {}
    for name, level in levels.items():
        neuron = module.get_submodule(name)
        n = torch.round(counts[name] / channel_view(neuron.threshold, counts[name]))
        shares[name] = float((n != level).double().mean())
    return shares
