"""The engine: :class:`SpikingNetwork`, which both routes end in.

A spiking network is an ordinary module (usually a ``torch.fx.GraphModule``) whose activations
are :class:`~spikebridge.engine.neurons.SpikingNeuron` modules. Stateless layers see the steps of a chunk
folded into the batch ([T*B, ...]); neurons unfold, loop over time and keep their state between
chunks, so a long simulation runs in chunks with memory independent of T. The output layer does
not spike: its per-step output is accumulated, and the prediction after step t is the argmax of
the mean output over steps 1..t (SPEC 3.1), so one simulation yields the whole latency-accuracy
curve. Under analog input the layers before the first neuron are the same at every step: they
run once per simulation (:func:`split_static_prefix`), and the first neuron integrates their
output directly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, fx, nn

from ..validation import check_positive_int
from .encoding import AnalogEncoder, Encoder
from .graph import lookup, static_nodes, trace_spiking
from .neurons import SpikingNeuron, Stateful, TimeAware, TimeBroadcast, channel_view


def split_static_prefix(gm: fx.GraphModule) -> tuple[fx.GraphModule, fx.GraphModule]:
    """Split ``gm`` into its time-invariant prefix and the time-varying rest.

    ``prefix(x [B, ...])`` returns the tuple of static values that the rest consumes (the layers
    before the first neuron, run once per simulation under analog input);
    ``suffix(*values)`` returns the output [T*B, ...] for T = the ``steps`` of its time-aware
    modules and runs once per chunk. Static values meet time-varying nodes through a
    :class:`TimeBroadcast`, except a neuron whose only input is static, which is called with
    ``static=True``. Both modules share every submodule with ``gm``.
    """
    static = static_nodes(gm)[0]
    boundary = [
        n
        for n in gm.graph.nodes
        if n in static and n.op != "get_attr" and any(u not in static for u in n.users)
    ]
    prefix_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}

    def in_prefix(a: fx.Node) -> fx.Node:
        # constants (parameters and what is computed from them alone) are copied where used
        if a not in env:
            env[a] = prefix_graph.node_copy(a, in_prefix)
        return env[a]

    for node in gm.graph.nodes:
        if node in static:
            env[node] = prefix_graph.node_copy(node, in_prefix)
    prefix_graph.output(tuple(env[b] for b in boundary))

    suffix_graph = fx.Graph()
    env2: dict[fx.Node, fx.Node] = {b: suffix_graph.placeholder(b.name) for b in boundary}
    broadcasts: dict[fx.Node, fx.Node] = {}

    def broadcast(a: fx.Node) -> fx.Node:
        if a not in broadcasts:
            broadcasts[a] = suffix_graph.call_module("_time_broadcast", (env2[a],))
        return broadcasts[a]

    for node in gm.graph.nodes:
        if node in static:
            continue
        direct = _takes_static_input(gm, node, static)
        for a in node.all_input_nodes:
            if a.op == "get_attr" and a not in env2:
                env2[a] = suffix_graph.node_copy(a)
        copied = suffix_graph.node_copy(
            node,
            lambda a, direct=direct: (
                env2[a] if a not in static or a.op == "get_attr" or direct else broadcast(a)
            ),
        )
        if direct:
            copied.kwargs = {**copied.kwargs, "static": True}
        env2[node] = copied

    modules: list[dict[str, object]] = []
    for graph in (prefix_graph, suffix_graph):
        attrs: dict[str, object] = {"_time_broadcast": TimeBroadcast()}
        for node in graph.nodes:
            if node.op in ("call_module", "get_attr") and node.target not in attrs:
                attrs[node.target] = lookup(gm, node.target)
        graph.lint()
        modules.append(attrs)
    return (
        fx.GraphModule(modules[0], prefix_graph, "StaticPrefix"),
        fx.GraphModule(modules[1], suffix_graph, "TimeVarying"),
    )


def _takes_static_input(gm: fx.GraphModule, node: fx.Node, static: set[fx.Node]) -> bool:
    """A neuron whose only input is time-invariant and whose ``forward`` is the base class's
    (which accepts ``static=True``)."""
    if node.op != "call_module" or node.kwargs or len(node.args) != 1:
        return False
    (arg,) = node.args
    if not isinstance(arg, fx.Node) or arg not in static or arg.op == "get_attr":
        return False
    mod = lookup(gm, node.target)
    return isinstance(mod, SpikingNeuron) and type(mod).forward is SpikingNeuron.forward


@dataclass
class Simulation:
    """What one simulation of T steps returns.

    Attributes:
        readout: [T, B, K]; row t-1 is the mean output over steps 1..t.
        spikes: layer name -> [T] number of spikes (non-zero outputs) per step, summed over the batch.
        neurons: layer name -> neurons per sample in that layer.
        units: graded neuron layer (``levels`` > 1) -> [T] threshold units its spikes carried
            per step (sum of |k|), summed over the batch; a binary layer's units are its spikes.
    """

    readout: Tensor
    spikes: dict[str, Tensor] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    units: dict[str, Tensor] = field(default_factory=dict)

    def predictions(self) -> Tensor:
        """[T, B] predicted class after each step."""
        return self.readout.argmax(-1)

    def correct(self, labels: Tensor) -> Tensor:
        """[T] number of correct predictions after each step."""
        return (self.predictions() == labels.to(self.readout.device)).sum(1)

    def accuracy(self, labels: Tensor) -> Tensor:
        """[T] accuracy (fraction in [0, 1]) after each step."""
        return self.correct(labels).float() / labels.numel()


CPU_CHUNK_BYTES = 16 * 2**20
CUDA_CHUNK_BYTES = 256 * 2**20
MAX_CHUNK = 64


def default_chunk_size(device: torch.device, step_bytes: int | None = None) -> int:
    """Steps folded into one batch.

    Given ``step_bytes``, the largest per-step activation of the batch (a neuron layer's state),
    as many steps as keep one chunk's largest activation within a budget: 16 MiB on a CPU, where
    larger tensors fall out of the caches and the allocator's reuse (measured on the MNIST CNN
    at batch 100: 4 steps per chunk ran 1.3x slower per step than 1 or 2), and 256 MiB on a GPU,
    where larger batches keep the device busy. Between 1 and 64 steps. Without ``step_bytes``:
    4 on a CPU, 16 on a GPU.
    """
    if step_bytes is None:
        return 16 if device.type == "cuda" else 4
    budget = CUDA_CHUNK_BYTES if device.type == "cuda" else CPU_CHUNK_BYTES
    return max(1, min(MAX_CHUNK, budget // max(int(step_bytes), 1)))


def _largest_state_bytes(modules: list[nn.Module]) -> int | None:
    sizes = [
        m.v.numel() * m.v.element_size()
        for m in modules
        if isinstance(m, Stateful) and isinstance(m.v, Tensor)
    ]
    return max(sizes) if sizes else None


class SpikingNetwork(nn.Module):
    """A spiking network simulated on [T, B, ...] tensors.

    Args:
        module: the network; its activations are :class:`SpikingNeuron` modules and its last
            layer is the non-spiking readout. Converted ANNs and directly trained SNNs both fit.
        encoder: how a static input becomes T steps (:class:`AnalogEncoder` by default).
        chunk_size: steps simulated together in :meth:`simulate`; ``None`` picks by device.
    """

    def __init__(
        self, module: nn.Module, encoder: Encoder | None = None, chunk_size: int | None = None
    ) -> None:
        super().__init__()
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive number of steps, got {chunk_size}")
        self.module = module
        self.encoder = encoder if encoder is not None else AnalogEncoder()
        self.chunk_size = chunk_size

    def with_module(self, module: nn.Module) -> SpikingNetwork:
        """A shallow copy (same class, encoder and settings) that runs ``module`` instead (e.g.
        an instrumented copy of :attr:`module`); this network is left as it is."""
        clone = copy.copy(self)
        clone._modules = dict(self._modules)
        clone._modules["module"] = module
        return clone

    def neurons(self) -> dict[str, SpikingNeuron]:
        """Layer name -> neuron module, in execution order of definition."""
        return {n: m for n, m in self.module.named_modules() if isinstance(m, SpikingNeuron)}

    def reset(self) -> None:
        """Reset every neuron's (and other stateful module's) state."""
        for m in self.module.modules():
            if isinstance(m, Stateful):
                m.reset_state()

    def _set_steps(self, modules: list[TimeAware], steps: int) -> None:
        for m in modules:
            m.steps = steps

    def encode(self, x: Tensor, timesteps: int) -> Tensor:
        """A batch from a loader -> the [T, B, ...] input sequence of one training step.

        The encoder starts afresh (Poisson stream, event frame 0); x is [B, ...] static inputs
        or [B, T_data, ...] event frames, as the encoder takes.
        """
        check_positive_int(timesteps, "timesteps")
        self._reset_encoder()
        return self.encoder(x, timesteps)

    def _reset_encoder(self) -> None:
        """Restart the encoder's stream (an encoder without ``reset`` has none to restart)."""
        reset = getattr(self.encoder, "reset", None)
        if reset is not None:
            reset()

    def forward(self, x_seq: Tensor) -> Tensor:
        """x_seq: [T, B, ...] input per step -> [T, B, K] output of the readout layer per step.

        Neuron state carries over from the previous call; call :meth:`reset` between samples.
        """
        if x_seq.dim() < 2:
            raise ValueError(
                f"SpikingNetwork expects [T, B, ...] input, got shape {tuple(x_seq.shape)}"
            )
        steps, batch = x_seq.shape[:2]
        self._set_steps([m for m in self.module.modules() if isinstance(m, TimeAware)], steps)
        out = self.module(x_seq.reshape(steps * batch, *x_seq.shape[2:]))
        return out.reshape(steps, batch, *out.shape[1:])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_runner_cache", None)  # rebuilt on demand; ids mean nothing after loading
        return state

    def _static_runner(self) -> tuple[fx.GraphModule, fx.GraphModule] | None:
        """(prefix, suffix) of :func:`split_static_prefix`, rebuilt only when the module changed."""
        key = self._runner_key()
        cached = self.__dict__.get("_runner_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            runner = split_static_prefix(trace_spiking(self.module))
        except Exception:  # untraceable custom module: fall back to expanding the input
            runner = None
        # kept out of the module tree (not a submodule, not in state_dict)
        self.__dict__["_runner_cache"] = (key, runner)
        return runner

    def _runner_key(self) -> tuple:
        mods = tuple((name, id(m)) for name, m in self.module.named_modules())
        return (id(self.module), mods, getattr(self.module, "code", None))

    @torch.no_grad()
    def simulate(self, x: Tensor, timesteps: int, record_spikes: bool = False) -> Simulation:
        """Run ``timesteps`` steps on a batch x: static inputs [B, ...] or, under an event
        encoder, frames [B, T_data, ...] with T_data >= ``timesteps``.

        The encoder turns x into spikes, currents or frames chunk by chunk; the state (and the
        encoder's stream) is reset first.
        Returns a :class:`Simulation` with the readout after every step and, when asked, spike
        counts per neuron layer. Results do not depend on the chunk size (bit for bit). Without
        a ``chunk_size``, the first step runs alone and the size of the largest neuron state
        then sets the chunk (:func:`default_chunk_size`).
        """
        check_positive_int(timesteps, "timesteps")
        self.reset()
        self._reset_encoder()
        runner = self._static_runner() if getattr(self.encoder, "static", False) else None
        stepped = runner[1] if runner is not None else self.module
        time_aware = [m for m in stepped.modules() if isinstance(m, TimeAware)]
        # the time-invariant prefix runs once for the whole simulation
        static_values = runner[0](x) if runner is not None else None
        # without a chunk size, a first 1-step chunk measures the state, which sets the rest
        chunk = self.chunk_size or 1

        # Results go into tensors allocated once (not a list grown per step): small long-lived
        # allocations between the large per-step ones fragment the C heap, and the resident
        # memory would then grow with T.
        spikes: dict[str, Tensor] = {}
        neurons: dict[str, int] = {}
        units: dict[str, Tensor] = {}
        handles = []
        cursor = [0]
        if record_spikes:
            for name, neuron in self.neurons().items():
                spikes[name] = torch.zeros(timesteps, dtype=torch.long, device=x.device)
                if getattr(neuron, "levels", 1) > 1:
                    units[name] = torch.zeros_like(spikes[name])

                def hook(mod, _inp, out, name=name):
                    neurons[name] = out[0].numel()
                    counts = out.reshape(mod.steps, -1).ne(0).sum(1)
                    spikes[name][cursor[0] : cursor[0] + mod.steps] = counts
                    if name in units:  # a graded spike is k * theta: k units
                        k = (out.abs() / channel_view(mod.threshold.to(out.dtype), out)).round()
                        units[name][cursor[0] : cursor[0] + mod.steps] = (
                            k.reshape(mod.steps, -1).sum(1).long()
                        )

                handles.append(neuron.register_forward_hook(hook))
        readout: Tensor | None = None
        start = 0
        try:
            while start < timesteps:
                steps = min(chunk, timesteps - start)
                cursor[0] = start
                self._set_steps(time_aware, steps)
                if static_values is not None:
                    out = runner[1](*static_values)
                else:
                    seq = self.encoder(x, steps)
                    out = self.module(seq.reshape(steps * seq.shape[1], *seq.shape[2:]))
                out = out.reshape(steps, x.shape[0], *out.shape[1:])
                if readout is None:
                    readout = out.new_empty((timesteps, *out.shape[1:]))
                    readout[0] = out[0]
                    first = 1
                else:
                    first = 0
                # a running sum step by step: the same additions in the same order whatever the
                # chunking (a cumsum per chunk plus the previous total would round differently)
                for t in range(first, steps):
                    torch.add(readout[start + t - 1], out[t], out=readout[start + t])
                if start == 0 and self.chunk_size is None:
                    chunk = default_chunk_size(x.device, _largest_state_bytes(time_aware))
                start += steps
        finally:
            for h in handles:
                h.remove()
        readout /= torch.arange(1, timesteps + 1, device=readout.device, dtype=readout.dtype).view(
            -1, *([1] * (readout.dim() - 1))
        )
        return Simulation(readout=readout, spikes=spikes, neurons=neurons, units=units)


__all__ = [
    "Simulation",
    "default_chunk_size",
    "SpikingNetwork",
    "split_static_prefix",
]
