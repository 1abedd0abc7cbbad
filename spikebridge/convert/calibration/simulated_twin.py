"""The quantised twin run as its spiking network: the network's forward, the twin's gradient.

A fine-tune of the twin alone (:mod:`.finetune`) cannot see what the simulated network loses
at a short T: a neuron that ends *unsettled* (a spike still owed at step T) counts less or more
than its twin's level, and that error grows through a deep residual network (resnet20 on digits
at T = 2: the fine-tuned twin 96.4 % on the test images, its network 93.3 %). Tandem learning
(Wu et al. 2021, "A Tandem Learning Rule for Effective Training and Rapid Inference of Deep
Spiking Neural Networks", IEEE TNNLS) trains on the spiking network's own forward pass and
takes the gradient from the rate-coded ANN beside it. Here that ANN is the quantised twin:

    forward:  every neuron layer emits the spike trains of the network's own neurons
              (:func:`~spikebridge.engine.substitution.neuron_for`, the same kind, thresholds,
              initial potentials and levels ``build`` gives them), max-pools the count-exact
              ``"running"`` rule; the logits are the network's readout after T steps
    backward: each layer's output is given the gradient of its twin quantiser at the layer's
              mean input over the T steps (straight-through floor, LSQ thresholds), spread
              evenly over the steps

so the loss is the simulated network's, and the parameters trained are the twin's (shared with
it). Shapes: the module takes [B, ...] images and returns [B, K] logits; inside, the T steps are
folded into the batch ([T*B, ...]) as the engine folds them.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, fx, nn

from ...engine import graph as g
from ...engine.neurons import SpikingMaxPool
from ...engine.substitution import neuron_for
from ..quantised_twin import METHOD, TwinQuantiser


class _SimulatedNeurons(nn.Module):
    """A twin quantiser's layer run as spiking neurons over T folded steps (see module doc)."""

    def __init__(
        self, name: str, quantiser: TwinQuantiser, timesteps: int, levels: int, signed: bool
    ) -> None:
        super().__init__()
        self.name, self.quantiser = name, quantiser
        self.timesteps, self.levels, self.signed = timesteps, levels, signed

    def forward(self, x: Tensor) -> Tensor:
        steps = x.reshape(self.timesteps, -1, *x.shape[1:])
        twin = self.quantiser(steps.mean(0))  # [B, ...], carries the gradient
        q = self.quantiser
        with torch.no_grad():
            neuron = neuron_for(
                self.name, q.activation, q.threshold.detach(), "subtract", 0.5, METHOD,
                self.signed, self.levels,
            )  # fmt: skip
            neuron.set_initial_potential(q.initial_potential.detach())
            neuron.to(x.device)
            neuron.steps = self.timesteps
            spikes = neuron(x.detach()).reshape(steps.shape)
        return (spikes + (twin - twin.detach()).unsqueeze(0)).reshape(x.shape)


class _SimulatedMaxPool(nn.Module):
    """A max-pool run as the network's ``"running"`` spiking max-pool, with the gradient of the
    max-pool of the mean input."""

    def __init__(self, pool: nn.Module, timesteps: int) -> None:
        super().__init__()
        self.pool, self.timesteps = pool, timesteps

    def forward(self, x: Tensor) -> Tensor:
        steps = x.reshape(self.timesteps, -1, *x.shape[1:])
        twin = self.pool(steps.mean(0))
        with torch.no_grad():
            spiking = SpikingMaxPool(copy.deepcopy(self.pool), "running")
            spiking.steps = self.timesteps
            out = spiking(x.detach())
        out = out.reshape(self.timesteps, -1, *out.shape[1:])
        return (out + (twin - twin.detach()).unsqueeze(0)).reshape(-1, *out.shape[2:])


class SimulatedTwin(nn.Module):
    """The twin ``twin`` run as the network :meth:`CalibratedResult.build` gives (see module
    doc): [B, ...] -> [B, K], the network's mean readout over ``timesteps`` steps.

    Args:
        twin: a quantised twin (its parameters are shared, not copied: training this module
            trains the twin).
        timesteps: T, the simulated steps.
        spike_levels: K, threshold units per spike (the twin has K*T levels).
        negative_spikes: signed IF neurons (the kind ``calibrated`` builds by default).
    """

    def __init__(
        self, twin: fx.GraphModule, timesteps: int, spike_levels: int, negative_spikes: bool
    ) -> None:
        super().__init__()
        self.timesteps = int(timesteps)
        modules: dict[str, nn.Module] = {}
        for node in twin.graph.nodes:
            if node.op != "call_module" or node.target in modules:
                continue
            mod = g.lookup(twin, node.target)
            if isinstance(mod, TwinQuantiser):
                mod = _SimulatedNeurons(node.target, mod, timesteps, spike_levels, negative_spikes)
            elif isinstance(mod, g.MAX_POOLS):
                mod = _SimulatedMaxPool(mod, timesteps)
            modules[node.target] = mod
        for node in twin.graph.nodes:
            if node.op == "get_attr" and node.target not in modules:
                modules[node.target] = g.lookup(twin, node.target)
        self.module = fx.GraphModule(modules, copy.deepcopy(twin.graph), "SimulatedTwin")

    def forward(self, x: Tensor) -> Tensor:
        folded = x.unsqueeze(0).expand(self.timesteps, *x.shape).reshape(-1, *x.shape[1:])
        out = self.module(folded)
        return out.reshape(self.timesteps, x.shape[0], *out.shape[1:]).mean(0)
