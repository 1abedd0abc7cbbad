"""The one evaluator of spikebridge: ANNs and spiking networks of both routes, sharded.

:func:`evaluate` runs an ANN once per batch, or simulates a :class:`SpikingNetwork` for T steps
with :meth:`SpikingNetwork.simulate` (one simulation gives the accuracy after every t <= T, SPEC
3.1; spikes per neuron layer), whatever its encoder (analog, Poisson, event frames). With
``count_ops`` it also counts the operations of every layer (SPEC 3.2: SOPs per step, analog
MACs); with a ``shard`` of several processes each simulates its share and the counts are summed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from ..engine.graph import static_modules
from ..engine.network import SpikingNetwork
from ..engine.neurons import SignedIFNeuron
from ..progress import progress_bar
from ..validation import check_positive_int
from .counters import SnnOpCounter, count_ann_ops, payload_bits, uncounted_layers
from .instrument import instrument
from .result import Evaluation
from .shard import Shard, reduce_evaluation, shard_batches


def labelled_batches(loader: Iterable) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, labels) of every batch of ``loader``; a clear error for anything else."""
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("the data loader must yield (inputs, labels) pairs")
        yield batch[0], batch[1]


def _device_of(network: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    first = next(iter(network.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(
    network: nn.Module,
    loader: Iterable,
    timesteps: int | None = None,
    count_ops: bool = False,
    shard: Shard | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool = False,
    description: str | None = None,
) -> Evaluation:
    """Accuracy (and, with ``count_ops``, operations per layer) of ``network`` on ``loader``.

    Args:
        network: a :class:`SpikingNetwork` (converted or directly trained), simulated for
            ``timesteps`` steps; or any other module, an ANN mapping [B, ...] to logits [B, K]
            (``timesteps`` must then be None).
        loader: yields (x, y); x is what the network takes: static images [B, C, H, W] (its
            encoder makes them T steps) or event frames [B, T_data, ...] (an event encoder).
        timesteps: T of a spiking network; accuracy is reported after every t <= T.
        count_ops: count MACs, SOPs and additions per layer (:mod:`.counters`), and the spikes
            of every neuron layer (an extra pass over each neuron output, so off by default).
        shard: this process's share under ``torchrun`` (:func:`~.shard.current_shard`); the
            totals are summed over processes and every process gets the same result.
        device: where to run (default: where the network's parameters are).
        progress: a tqdm bar; ``description`` labels it.

    Returns:
        :class:`Evaluation`: ``correct`` is [T] for a spiking network, [1] for an ANN.
    """
    shard = shard or Shard()
    device = _device_of(network, device)
    network.to(device).eval()
    if isinstance(network, SpikingNetwork):
        timesteps = check_positive_int(timesteps, "timesteps")
        result = _simulate_all(network, loader, timesteps, count_ops, shard, device, progress,
                               description or "simulate")  # fmt: skip
    else:
        if timesteps is not None:
            raise ValueError(
                f"timesteps={timesteps!r} was given for a {type(network).__name__}, which is not "
                "a SpikingNetwork: an ANN is evaluated in one pass (pass timesteps=None)"
            )
        result = _run_ann(network, loader, count_ops, shard, device, progress,
                          description or "ANN test")  # fmt: skip
    if shard.enabled:
        result = reduce_evaluation(result, shard)
    if result.total == 0:
        raise ValueError("the evaluation data loader yielded no samples")
    return result


def _run_ann(
    model: nn.Module, loader, count_ops: bool, shard: Shard, device, progress: bool, description
) -> Evaluation:
    ops = None
    correct = total = 0
    start = time.perf_counter()
    for x, y in progress_bar(labelled_batches(shard_batches(loader, shard)), progress,
                             description):  # fmt: skip
        x = x.to(device)
        if count_ops and ops is None:  # dense operations of one sample, counted once
            ops = count_ann_ops(model, x)
        correct += int((model(x).argmax(-1) == y.to(device)).sum().item())
        total += y.numel()
    seconds = time.perf_counter() - start
    layers = ops.layers if ops is not None else {}
    notes = ops.notes if ops is not None else []
    types = {name: op.module for name, op in layers.items()}
    correct_t = torch.tensor([correct], dtype=torch.long)
    return Evaluation(correct_t, total, {}, {}, layers, seconds, notes, types)


def _counting_runner(network: SpikingNetwork, notes: list[str]):
    """(network to simulate, module to hook, counter) for counting ``network``'s operations."""
    analog = bool(getattr(network.encoder, "static", False))
    try:
        counted = instrument(network.module)
        counter = SnnOpCounter(static_modules(counted) if analog else set())
        runner = network.with_module(counted)
    except Exception as err:  # untraceable custom module: hooks on the modules it has
        counted = network.module
        counter = SnnOpCounter(dynamic_static=analog)
        runner = network
        notes.append(
            f"{type(network.module).__name__} could not be traced with torch.fx "
            f"({type(err).__name__}); functional additions and pooling are not counted"
        )
    for layer in uncounted_layers(network.module):
        notes.append(
            f"layer {layer} has weights but no operation counter; its operations are not counted"
        )
    counter.attach(counted)
    return runner, counter


def _simulate_all(
    network: SpikingNetwork, loader, timesteps: int, count_ops: bool, shard: Shard, device,
    progress: bool, description: str,
) -> Evaluation:  # fmt: skip
    notes: list[str] = []
    runner, counter = _counting_runner(network, notes) if count_ops else (network, None)
    correct = torch.zeros(timesteps, dtype=torch.long)
    total = 0
    spikes: dict[str, Tensor] = {}
    units: dict[str, Tensor] = {}
    neurons: dict[str, int] = {}
    start = time.perf_counter()
    try:
        for x, y in progress_bar(labelled_batches(shard_batches(loader, shard)), progress,
                                 description):  # fmt: skip
            x, y = x.to(device), y.to(device)
            if counter is not None:
                counter.start_batch(x.shape[0], timesteps)
            sim = runner.simulate(x, timesteps, record_spikes=count_ops)
            correct += sim.correct(y).cpu()
            total += y.numel()
            for name, counts in sim.spikes.items():
                spikes[name] = spikes.get(name, 0) + counts.cpu().long()
            for name, counts in sim.units.items():
                units[name] = units.get(name, 0) + counts.cpu().long()
            neurons.update(sim.neurons)
    finally:
        if counter is not None:
            counter.detach()
    seconds = time.perf_counter() - start
    layers = counter.layers if counter is not None else {}
    types = {name: type(m).__name__ for name, m in network.neurons().items()}
    types.update({name: op.module for name, op in layers.items()})
    levels, bits = network_payload(network)
    return Evaluation(
        correct, total, spikes, neurons, layers, seconds, notes, types, units, levels, bits
    )


def network_payload(network: SpikingNetwork) -> tuple[int, int]:
    """(K, payload bits) of a network's spikes: the most units any neuron's spike carries, and
    the bits of that payload (with a sign bit when a graded neuron is signed)."""
    found = [m for m in network.neurons().values() if getattr(m, "levels", 1) > 1]
    if not found:
        return 1, 0
    levels = max(m.levels for m in found)
    signed = any(
        getattr(m, "negative_spikes", False) or isinstance(m, SignedIFNeuron) for m in found
    )
    return levels, payload_bits(levels, signed)
