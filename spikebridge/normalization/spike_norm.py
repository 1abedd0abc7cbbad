"""Spike-Norm (Sengupta et al. 2019, SPEC 1.4.5): threshold balancing on the SNN itself.

Layer by layer, in execution order, with Poisson-coded calibration inputs:

    layers 1..i-1 already spike with their thresholds;
    theta_i = max over t = 1..n and over neurons (and samples) of the weighted spike input
              z_i[t] = (W_i o_{i-1}[t])_j + b_j  -- the input current, not the membrane potential;
    then layer i spikes with theta_i and drives layer i+1.

Each layer's pass runs only the part of the graph its input depends on (the prefix up to that
layer), so on a residual network the neuron after a junction sees the sum of both branches, each
spiking with its own, already balanced thresholds (spikes carry the amplitude of their threshold,
SPEC 1.3, so branch outputs add in ANN units). Every pass restarts the Poisson stream from
``seed`` and visits the calibration batches in the same order, so all layers are balanced on the
same input spike trains, and the thresholds can be recomputed from one simulation of the
finished network.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, fx, nn

from ..engine import graph as g
from ..engine.encoding import PoissonEncoder
from ..engine.network import SpikingNetwork
from ..engine.neurons import SpikingMaxPool
from ..engine.substitution import neuron_for
from ..progress import progress_bar
from ..validation import check_positive_int
from .calibrate import activation_layers, input_batches
from .methods import Scales

DEFAULT_WINDOW = 256
DEFAULT_CHUNK = 16


def _prefix(work: fx.GraphModule, layer: str) -> fx.GraphModule:
    """A module computing the input current of activation ``layer`` ([T*B, ...]).

    Shares every submodule with ``work``; nodes that the layer's input does not depend on are
    dropped.
    """
    graph = fx.Graph()
    value_map: dict[fx.Node, fx.Node] = {}
    graph.graph_copy(work.graph, value_map)
    target = next(n for n in work.graph.nodes if n.op == "call_module" and n.target == layer)
    graph.output(value_map[target.args[0]])
    prefix = fx.GraphModule(work, graph, "SpikeNormPrefix")
    prefix.graph.eliminate_dead_code()
    prefix.recompile()
    return prefix


def _limited(data: Iterable | Tensor, samples: int | None) -> Iterable[Tensor]:
    seen = 0
    for x in input_batches(data):
        if samples is not None:
            if seen >= samples:
                return
            x = x[: samples - seen]
        seen += x.shape[0]
        yield x


@torch.no_grad()
def spike_norm(
    prepared: fx.GraphModule,
    calibration: Iterable | Tensor,
    device: torch.device | str = "cpu",
    seed: int = 0,
    window: int = DEFAULT_WINDOW,
    samples: int | None = None,
    reset: str = "subtract",
    maxpool: str = "spiking",
    max_rate: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
) -> Scales:
    """Spike-Norm thresholds (Sengupta et al. 2019), one per activation layer.

    Args:
        prepared: a prepared ANN (:func:`spikebridge.convert.prepare`); left untouched.
        calibration: a loader of (x, y) batches or a tensor [N, ...] of inputs in [0, 1] (or
            [-1, 1]), rate-coded by a :class:`~spikebridge.engine.encoding.PoissonEncoder`.
        seed: seed of the Poisson spike trains (every layer's pass sees the same trains).
        window: the balancing window n in steps (Sengupta: about the inference window).
        samples: use at most this many calibration inputs (all by default).
        reset: reset of the already balanced layers while later layers are balanced.
        maxpool: ``spiking`` turns the prepared network's max-pools into spiking max-pool gates,
            as :func:`spikebridge.convert.build_spiking_module` does; ``avg`` leaves them (a network
            prepared with maxpool="avg" has none).
        max_rate: Poisson spike probability per step for an input of 1.
        chunk_size: steps simulated together (memory against speed; results do not depend on
            it except through the order of the random draws).

    Returns:
        layer name -> 0-d threshold theta_i = the largest weighted spike input (input current per
        step, bias included) that layer i received over the window and the calibration inputs.
    """
    check_positive_int(window, "spike-norm: window")
    check_positive_int(samples, "spike-norm: samples", allow_none=True)
    check_positive_int(chunk_size, "spike-norm: chunk_size")
    device = torch.device(device)
    work = copy.deepcopy(prepared).to(device).eval()
    if maxpool == "spiking":
        for node in work.graph.nodes:
            mod = g.module_of(work, node)
            if isinstance(mod, g.MAX_POOLS):
                g.set_submodule(work, node.target, SpikingMaxPool(copy.deepcopy(mod)))
    work.recompile()
    scales: Scales = {}
    layers = activation_layers(work)
    for name, activation in progress_bar(list(layers.items()), progress, "spike-norm"):
        encoder = PoissonEncoder(max_rate=max_rate, seed=seed)
        network = SpikingNetwork(_prefix(work, name), encoder).to(device)
        peak = _max_input(network, encoder, calibration, samples, window, chunk_size, device)
        if peak is None:
            raise ValueError("spike-norm: the calibration data is empty: give at least one batch")
        theta = torch.tensor(peak if peak > 0 else 1.0)  # never driven: any threshold will do
        scales[name] = theta
        g.set_submodule(work, name, _neuron(name, activation, theta, reset))
    return scales


def _neuron(name: str, activation: nn.Module, theta: Tensor, reset: str) -> nn.Module:
    return neuron_for(name, activation, theta, reset, 0.0, "spike-norm")


def _max_input(
    network: SpikingNetwork,
    encoder: PoissonEncoder,
    calibration: Iterable | Tensor,
    samples: int | None,
    window: int,
    chunk_size: int,
    device: torch.device,
) -> float | None:
    peak: float | None = None
    for x in _limited(calibration, samples):
        x = x.to(device)
        network.reset()
        for start in range(0, window, chunk_size):
            steps = min(chunk_size, window - start)
            current = network(encoder(x, steps))  # [steps, B, ...]
            value = float(current.max())
            peak = value if peak is None else max(peak, value)
    return peak


__all__ = ["DEFAULT_WINDOW", "spike_norm"]
