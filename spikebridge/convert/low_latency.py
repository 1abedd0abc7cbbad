"""Method ``calibrated``: thresholds (and biases) for a target T from unlabelled images.

A signed-IF network with u0 = theta/2 computes its quantised twin, the ANN whose activations are
the T-level quantiser q_T (:mod:`spikebridge.convert.quantised_twin`). Low-latency conversion
without retraining is therefore post-training quantisation of the ANN's activations to T levels,
and this module does it with the tools of that field, on the twin (one ANN pass per candidate,
never a T-step simulation), from calibration images alone (no labels, no end-to-end training):

1. **Thresholds, layer by layer** (in execution order, the layers before already quantised and
   corrected). Per channel c, theta_c = alpha_c * m_c with m_c the channel's largest input and
   alpha_c the grid value minimising E[(q_T(x_c) - relu(x^f_c))^2] against the float ANN's
   activation x^f: with uncorrelated channel errors the next layer's error
   E||W (q(x) - relu(x^f))||^2 is sum_c ||W_c||^2 E[Delta_c^2], so each channel's own error
   is its share of the next layer's error. One common factor beta is then chosen by the next
   layer's actual reconstruction error (the inputs of the activations this one feeds, or the
   logits), one twin pass per candidate.
2. **Bias correction** (Nagel et al. 2019; Li et al. 2021, "A free lunch from ANN: towards
   efficient, accurate spiking neural networks calibration"): the mean shift, per channel, of
   each next layer's input against the float ANN is subtracted from the bias of the conv/linear
   layer that produces it (when one layer produces it through channel-preserving ops: pooling,
   residual addition; not through a concatenation or a flatten).
3. **Reconstruction** (optional; AdaRound, Nagel 2020; BRECQ, Li 2021; Li et al. 2021's
   advanced pipeline): a unit of ``block`` consecutive activation layers at a time, Adam on the
   unit's thresholds and the biases (``reconstruct_weights``: and the weights) of the layers
   after it, to minimise the reconstruction error of the unit's outputs on calibration batches,
   the rounding passed straight through (STE). A unit whose error does not fall is rolled back;
   a loss that becomes NaN stops everything, naming the layers.

Shapes: calibration images [N, C, H, W] (or any [N, ...] the ANN takes); thresholds 0-d or [C].
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, fx, nn

from ..engine import graph as g
from ..engine.encoding import AnalogEncoder
from ..engine.graph import set_submodule
from ..engine.network import SpikingNetwork
from ..normalization.calibrate import _batches, activation_layers
from ..progress import progress_bar
from .build import build_spiking_module
from .quantised_twin import (
    METHOD,
    TwinQuantiser,
    check_timesteps,
    linear_layers_only,
    quantisers,
    restore_activations,
    snn_threshold,
)

OUTPUT = "<output>"
ALPHAS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05 .. 1.0
BETAS: tuple[float, ...] = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)


class ReconstructionDiverged(RuntimeError):
    """The reconstruction loss became NaN or infinite; the message names the layers."""


@dataclass
class LowLatencySettings:
    """Options of method ``calibrated`` (defaults: the documented recipe).

    Attributes:
        samples: calibration images used (the first ``samples`` of the calibration data).
        batch_size: images per twin pass (and per reconstruction step).
        per_channel: one threshold per channel (else one per layer).
        alphas: per-channel grid, fractions of the channel's largest input.
        betas: layer-wise factors tried on the next layer's reconstruction error.
        bias_correction: correct the next layers' biases for the mean shift.
        iterations: reconstruction steps per unit (0: no reconstruction).
        reconstruct_weights: let reconstruction change the weights too (else thresholds and
            biases only).
        block: activation layers per reconstruction unit (1: layer-wise).
        learning_rate: Adam's step for thresholds and biases (weights get a tenth of it).
        seed: order of the reconstruction batches.
        progress: tqdm progress bars.
        cache_bytes: keep the float ANN's activation inputs for all calibration images when they
            fit in this many bytes (one pass instead of one per layer).
    """

    samples: int = 512
    batch_size: int = 128
    per_channel: bool = True
    alphas: tuple[float, ...] = ALPHAS
    betas: tuple[float, ...] = BETAS
    bias_correction: bool = True
    iterations: int = 0
    reconstruct_weights: bool = False
    block: int = 1
    learning_rate: float = 1e-3
    seed: int = 0
    progress: bool = False
    cache_bytes: int = 512 * 2**20

    def validate(self) -> None:
        for name in ("samples", "batch_size", "block"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.iterations, bool) or self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations!r}")
        if not self.alphas or not self.betas or min(*self.alphas, *self.betas) <= 0:
            raise ValueError("alphas and betas must be non-empty and positive")
        if isinstance(self.cache_bytes, bool) or self.cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {self.cache_bytes!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")


def low_latency_settings(
    conversion, *, seed: int = 0, progress: bool = False
) -> LowLatencySettings:
    """The options of method ``calibrated`` in a
    :class:`~spikebridge.settings.ConversionSettings` (``calibrated_samples``,
    ``calibrated_iterations``, ``calibrated_weights``)."""
    return LowLatencySettings(
        samples=conversion.calibrated_samples,
        iterations=conversion.calibrated_iterations,
        reconstruct_weights=conversion.calibrated_weights,
        seed=seed,
        progress=progress,
    )


@dataclass
class LayerCalibration:
    """What calibration chose for one activation layer.

    Attributes:
        name: the activation layer.
        beta: the layer-wise factor chosen on the next layer's error.
        error: relative reconstruction error of the next layer's input (mean over the layers
            it feeds of MSE / variance of the float ANN's input) after threshold search and bias
            correction, and after reconstruction when it ran.
        corrected: the conv/linear layers whose biases were corrected.
    """

    name: str
    beta: float
    error: float
    corrected: list[str] = field(default_factory=list)
    reconstruction_error: float | None = None


@dataclass
class LowLatencyCalibration:
    """The result of :func:`calibrate_low_latency` for one target T.

    Attributes:
        timesteps: the target T.
        prepared: the prepared ANN with corrected biases (and weights): build the network from it.
        thresholds: activation layer -> theta (0-d or [C]).
        layers: per-layer report.
        seconds: wall time of the calibration.
        cpu_seconds: processor time of the calibration (all threads of this process): the cost
            on an idle machine, which wall time on a shared one overstates.
    """

    timesteps: int
    prepared: fx.GraphModule
    thresholds: dict[str, Tensor]
    layers: list[LayerCalibration]
    seconds: float
    cpu_seconds: float = 0.0

    def twin(self) -> fx.GraphModule:
        """The quantised twin at T (logits = the network's summed readout / T)."""
        from .quantised_twin import quantised_twin

        return quantised_twin(self.prepared, self.thresholds, self.timesteps)

    def build(self, negative_spikes: bool = True, chunk_size: int | None = None) -> SpikingNetwork:
        """The spiking network: signed IF neurons (default; equal to the twin wherever no spike
        is owed at T) or plain IF (``negative_spikes=False``; for hardware without signed
        spikes, not exact), u0 = theta/2, reset by subtraction, analog input."""
        module = build_spiking_module(
            self.prepared, self.thresholds, "subtract", 0.5, "avg", METHOD, negative_spikes
        )
        return SpikingNetwork(module, AnalogEncoder(), chunk_size)


def calibration_images(data: Iterable | Tensor, samples: int) -> Tensor:
    """The first ``samples`` inputs [N, ...] of a loader of (x, y) batches or a tensor (labels
    are dropped: the method never sees them)."""
    taken: list[Tensor] = []
    count = 0
    for x in _batches(data):
        taken.append(x[: samples - count])
        count += taken[-1].shape[0]
        if count >= samples:
            break
    if count == 0:
        raise ValueError("the calibration data is empty: give at least one batch of images")
    return torch.cat(taken)


class _Stop(Exception):
    pass


@torch.no_grad()
def _capture(
    model: nn.Module, x: Tensor, names: Iterable[str], batch_size: int
) -> dict[str, Tensor]:
    """Inputs of the named modules (and the output for :data:`OUTPUT`) over all of x, batched."""
    names = list(names)
    parts: dict[str, list[Tensor]] = {n: [] for n in names}
    for start in range(0, x.shape[0], batch_size):
        for name, value in _run(model, x[start : start + batch_size], names).items():
            parts[name].append(value)
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def _run(model: nn.Module, x: Tensor, names: list[str]) -> dict[str, Tensor]:
    """One forward pass that records the inputs of ``names`` and stops once it has them all."""
    found: dict[str, Tensor] = {}
    modules = [n for n in names if n != OUTPUT]

    def record(name: str):
        def hook(_module, args):
            found[name] = args[0]
            if OUTPUT not in names and len(found) == len(modules):
                raise _Stop

        return hook

    handles = [model.get_submodule(n).register_forward_pre_hook(record(n)) for n in modules]
    try:
        out = model(x)
        if OUTPUT in names:
            found[OUTPUT] = out
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return found


class _Partial:
    """Run only the part of a graph that one layer's threshold changes.

    The nodes that depend on activation ``start`` and lead to the inputs of ``consumers`` are
    the *suffix*; the prefix values they read (the activation's input, a residual skip) are
    computed once per batch and kept, so each candidate threshold costs a partial pass.
    """

    def __init__(self, gm: fx.GraphModule, start: str, consumers: list[str]) -> None:
        self.gm = gm
        nodes = list(gm.graph.nodes)
        output = nodes[-1]
        by_name = {str(n.target): n for n in nodes if n.op == "call_module"}
        self.targets = {
            c: (output.args[0] if c == OUTPUT else by_name[c].args[0]) for c in consumers
        }
        dependent = {by_name[start]}
        for node in nodes:
            if any(a in dependent for a in node.all_input_nodes):
                dependent.add(node)
        needed: set[fx.Node] = set()
        stack = list(self.targets.values())
        while stack:
            node = stack.pop()
            if node not in needed:
                needed.add(node)
                stack.extend(node.all_input_nodes)
        batched = set()
        for node in nodes:
            if node.op == "placeholder" or any(a in batched for a in node.all_input_nodes):
                batched.add(node)
        self.dependent = dependent
        self.prefix_nodes = [n for n in nodes if n in needed and n not in dependent]
        # constants (parameters and what is computed from them alone) are recomputed, not kept
        self.constant_nodes = [n for n in self.prefix_nodes if n not in batched]
        self.suffix_nodes = [n for n in nodes if n in needed and n in dependent]
        self.boundary = [
            n
            for n in self.prefix_nodes
            if n in batched and any(u in dependent and u in needed for u in n.users)
        ]
        self.start_input = by_name[start].args[0]

    def _execute(self, nodes: list[fx.Node], env: dict[fx.Node, object]) -> None:
        interpreter = fx.Interpreter(self.gm, garbage_collect_values=False)
        interpreter.env = env
        for node in nodes:
            if node.op != "placeholder":
                env[node] = interpreter.run_node(node)

    @torch.no_grad()
    def prefix(self, x: Tensor, batch_size: int) -> list[dict[fx.Node, Tensor]]:
        """Per batch of x: the prefix values the suffix reads."""
        kept = []
        for start in range(0, x.shape[0], batch_size):
            env: dict[fx.Node, object] = {
                n: x[start : start + batch_size] for n in self.prefix_nodes if n.op == "placeholder"
            }
            self._execute(self.prefix_nodes, env)
            kept.append({n: env[n] for n in self.boundary})
        return kept

    def start_inputs(self, kept: list[dict[fx.Node, Tensor]]) -> Tensor:
        """The activation's input [N, ...] (the twin's, upstream layers quantised)."""
        return torch.cat([env[self.start_input] for env in kept])

    @torch.no_grad()
    def suffix(self, kept: list[dict[fx.Node, Tensor]]) -> dict[str, Tensor]:
        """Consumer -> its input [N, ...] under the current parameters of the suffix."""
        parts: dict[str, list[Tensor]] = {c: [] for c in self.targets}
        for values in kept:
            for c, value in self.run(values).items():
                parts[c].append(value)
        return {c: torch.cat(v) for c, v in parts.items()}

    def run(self, values: dict[fx.Node, Tensor]) -> dict[str, Tensor]:
        """The suffix on one batch of prefix values (differentiable)."""
        env: dict[fx.Node, object] = dict(values)
        self._execute(self.constant_nodes, env)
        self._execute(self.suffix_nodes, env)
        return {c: env[node] for c, node in self.targets.items()}


class _FloatReference:
    """The float ANN's inputs of named activations (and its logits) on the calibration images:
    all kept from one pass when they fit in ``budget`` bytes, else captured when asked."""

    def __init__(
        self, reference: fx.GraphModule, x: Tensor, names: list[str], batch_size: int, budget: int
    ) -> None:
        self.reference, self.x, self.batch_size = reference, x, batch_size
        self.cache: dict[str, Tensor] | None = None
        wanted = [*names, OUTPUT]
        probe = _capture(reference, x[:1], wanted, 1)
        per_image = sum(v.numel() * v.element_size() for v in probe.values())
        if per_image * x.shape[0] <= budget:
            self.cache = _capture(reference, x, wanted, batch_size)

    def get(self, names: list[str]) -> dict[str, Tensor]:
        if self.cache is not None:
            return {n: self.cache[n] for n in names}
        return _capture(self.reference, self.x, names, self.batch_size)


def _channel_mean(x: Tensor) -> Tensor:
    """[C] mean over every dimension but 1."""
    if x.dim() == 1:
        return x.mean().reshape(1)
    return x.transpose(0, 1).reshape(x.shape[1], -1).mean(1)


def _relative_error(
    out: dict[str, Tensor], target: dict[str, Tensor], centred: Iterable[str] = ()
) -> float:
    """Mean over layers of MSE / variance of the float input; for the ``centred`` layers the
    per-channel mean of the difference is removed first (what bias correction will remove)."""
    centred = set(centred)
    errors = []
    for n in target:
        diff = out[n] - target[n]
        if n in centred:
            shape = [1] * diff.dim()
            if diff.dim() > 1:
                shape[1] = diff.shape[1]
            diff = diff - _channel_mean(diff).reshape(shape)
        errors.append(float(diff.pow(2).mean() / target[n].var().clamp(min=1e-12)))
    return sum(errors) / len(errors)


class _Graph:
    """Which layers each activation feeds, and which conv/linear layer produces each input."""

    def __init__(self, gm: fx.GraphModule, names: list[str]) -> None:
        self.gm = gm
        self.nodes = {str(n.target): n for n in gm.graph.nodes if n.op == "call_module"}
        self.names = names

    def consumers(self, name: str) -> list[str]:
        """Activations (or the output) reached from ``name`` without crossing another one."""
        found: list[str] = []
        stack, seen = list(self.nodes[name].users), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "output":
                found.append(OUTPUT)
            elif node.op == "call_module" and str(node.target) in self.names:
                found.append(str(node.target))
            else:
                stack.extend(node.users)
        order = {n: i for i, n in enumerate([*self.names, OUTPUT])}
        return sorted(set(found), key=order.__getitem__)

    def producer(self, consumer: str) -> str | None:
        """The conv/linear layer whose bias shifts ``consumer``'s input channel by channel."""
        if consumer == OUTPUT:
            node = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]
        else:
            node = self.nodes[consumer].args[0]
        return self._walk(node) if isinstance(node, fx.Node) else None

    def _walk(self, node: fx.Node) -> str | None:
        mod = g.module_of(self.gm, node)
        if isinstance(mod, g.SYNAPTIC):
            return str(node.target)
        channel_preserving = isinstance(mod, g.AVG_POOLS) or (
            node.op == "call_function" and node.target in g.ADD_FUNCTIONS
        )
        if not channel_preserving:
            return None
        for arg in node.all_input_nodes:
            found = self._walk(arg)
            if found is not None:
                return found
        return None


def _per_channel_allowed(gm: fx.GraphModule, graph: _Graph, name: str, x: Tensor) -> bool:
    """Channels on dim 1: a conv's output, or a linear layer's [B, F] output."""
    if x.dim() == 2:
        return True
    feeding = g.feeding_synaptic_layers(gm, graph.nodes[name])
    return not any(isinstance(gm.get_submodule(layer), nn.Linear) for layer in feeding)


def _channel_search(
    act: nn.Module,
    x: Tensor,
    target: Tensor,
    timesteps: int,
    alphas: tuple[float, ...],
    centred: bool = False,
) -> Tensor:
    """[C] thresholds minimising each channel's quantisation error against the float activation
    (``centred``: its variance, the part that bias correction of the next layer leaves)."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() > 1 else x.reshape(1, -1)
    goal = act(target)
    goal = goal.transpose(0, 1).reshape(goal.shape[1], -1) if goal.dim() > 1 else goal.view(1, -1)
    peak = flat.amax(1)
    alive = peak > 0
    peak = torch.where(alive, peak, peak[alive].mean() if alive.any() else torch.ones(()))
    best = torch.full_like(peak, float("inf"))
    chosen = peak.clone()
    for alpha in alphas:
        theta = (alpha * peak).unsqueeze(1)
        q = (
            torch.floor(flat * (timesteps / theta) + 0.5)
            .clamp_(0, timesteps)
            .mul_(theta / timesteps)
        )
        diff = q.sub_(goal)
        err = diff.pow(2).mean(1)
        if centred:
            err -= diff.mean(1).pow(2)
        better = err < best
        best = torch.where(better, err, best)
        chosen = torch.where(better, alpha * peak, chosen)
    return chosen


@torch.no_grad()
def _correct_biases(
    twin: fx.GraphModule, graph: _Graph, out: dict[str, Tensor], target: dict[str, Tensor]
) -> list[str]:
    corrected = []
    for consumer, value in out.items():
        producer = graph.producer(consumer)
        if producer is None:
            continue
        layer = twin.get_submodule(producer)
        shift = _channel_mean(value - target[consumer])
        if layer.bias is None:
            zeros = torch.zeros(layer.weight.shape[0], device=layer.weight.device)
            layer.bias = nn.Parameter(zeros, requires_grad=False)
        if layer.bias.shape != shift.shape:
            continue
        layer.bias -= shift.to(layer.bias)
        corrected.append(producer)
    return corrected


def calibrate_low_latency(
    prepared: fx.GraphModule,
    calibration: Iterable | Tensor,
    timesteps: int,
    settings: LowLatencySettings | None = None,
) -> LowLatencyCalibration:
    """Thresholds and corrected biases that make the signed-IF network accurate at T = ``timesteps``.

    Args:
        prepared: the ANN after :func:`~spikebridge.convert.prepare` (with ``maxpool="avg"``:
            a spiking max-pool is refused, see :func:`quantised_twin`); left untouched.
        calibration: a loader of (x, y) batches or a tensor [N, ...]; only the images are used.
        timesteps: the target T (the network is built for this T, not for every T).
        settings: :class:`LowLatencySettings`.

    Returns a :class:`LowLatencyCalibration` (``.build()`` gives the network).
    """
    settings = settings or LowLatencySettings()
    settings.validate()
    check_timesteps(timesteps)
    linear_layers_only(prepared)
    start, cpu_start = time.perf_counter(), time.process_time()
    x = calibration_images(calibration, settings.samples)
    device = next((p.device for p in prepared.parameters()), torch.device("cpu"))
    x = x.to(device)
    if settings.iterations and x.shape[0] < settings.batch_size:
        raise ValueError(
            f"reconstruction needs at least one batch of calibration images: got {x.shape[0]}, "
            f"batch_size is {settings.batch_size}; give more calibration images or a smaller "
            "batch_size (or iterations=0)"
        )
    reference = copy.deepcopy(prepared).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    twin = copy.deepcopy(reference)
    acts = activation_layers(twin)
    names = list(acts)
    graph = _Graph(twin, names)
    floats = _FloatReference(reference, x, names, settings.batch_size, settings.cache_bytes)
    layers: list[LayerCalibration] = []
    unit: list[str] = []
    bar = progress_bar(names, settings.progress, f"calibrate T={timesteps}")
    for index, name in enumerate(bar):
        layers.append(
            _calibrate_layer(twin, floats, graph, name, acts[name], x, timesteps, settings)
        )
        unit.append(name)
        if settings.iterations and (len(unit) == settings.block or index == len(names) - 1):
            error = _reconstruct(twin, floats, graph, unit, x, settings)
            for report in layers[-len(unit) :]:
                report.reconstruction_error = error
            unit = []
    thresholds = {n: q.threshold.detach().clone() for n, q in quantisers(twin).items()}
    result = restore_activations(twin)
    for p in result.parameters():
        p.requires_grad_(False)
    return LowLatencyCalibration(
        timesteps,
        result,
        thresholds,
        layers,
        time.perf_counter() - start,
        time.process_time() - cpu_start,
    )


def _calibrate_layer(
    twin: fx.GraphModule,
    reference: _FloatReference,
    graph: _Graph,
    name: str,
    act: nn.Module,
    x: Tensor,
    timesteps: int,
    settings: LowLatencySettings,
) -> LayerCalibration:
    """Search the layer's thresholds on the twin (a partial pass per candidate), then correct
    the next layers' biases."""
    consumers = graph.consumers(name)
    size = settings.batch_size
    floats = reference.get([name, *consumers])
    target = {c: floats[c] for c in consumers}
    part = _Partial(twin, name, consumers)
    kept = part.prefix(x, size)
    xq = part.start_inputs(kept)
    # the mean of a channel's error reaches the next layers as a shift bias correction removes
    centre = settings.bias_correction and all(graph.producer(c) for c in consumers)
    if settings.per_channel and _per_channel_allowed(twin, graph, name, xq):
        theta = _channel_search(act, xq, floats[name], timesteps, settings.alphas, centre)
    else:
        flat_x, flat_f = xq.reshape(-1, 1), floats[name].reshape(-1, 1)
        theta = _channel_search(act, flat_x, flat_f, timesteps, settings.alphas, centre)
        theta = theta.reshape(())
    quantiser = TwinQuantiser(act, snn_threshold(name, act, theta), timesteps)
    set_submodule(twin, name, quantiser.to(xq.device))
    # candidates are judged by the error bias correction will leave
    centred = [c for c in consumers if graph.producer(c)] if settings.bias_correction else []
    best: tuple[float, float, dict[str, Tensor]] | None = None
    for beta in settings.betas:
        quantiser.set_threshold(snn_threshold(name, act, beta * theta))
        out = part.suffix(kept)
        error = _relative_error(out, target, centred)
        if best is None or error < best[0]:
            best = (error, beta, out)
    error, beta, out = best
    quantiser.set_threshold(snn_threshold(name, act, beta * theta))
    corrected: list[str] = []
    if settings.bias_correction:
        corrected = _correct_biases(twin, graph, out, target)
        if corrected:
            inside = all(graph.nodes[p] in part.dependent for p in corrected)
            out = part.suffix(kept) if inside else _capture(twin, x, consumers, size)
            error = _relative_error(out, target)
    return LayerCalibration(name, beta, error, corrected)


def _reconstruct(
    twin: fx.GraphModule,
    reference: _FloatReference,
    graph: _Graph,
    unit: list[str],
    x: Tensor,
    settings: LowLatencySettings,
) -> float:
    """Adam on the unit's thresholds and the next layers' biases (and weights); returns the
    relative error of the unit's outputs after it (rolled back if it did not improve)."""
    exits = sorted({c for n in unit for c in graph.consumers(n) if c not in unit})
    target = reference.get(exits)
    producers = sorted({p for c in exits if (p := graph.producer(c)) is not None})
    producers += [
        p for n in unit[1:] if (p := graph.producer(n)) is not None and p not in producers
    ]
    # the layers before the unit do not change: their outputs are computed once
    part = _Partial(twin, unit[0], exits)
    kept = part.prefix(x, settings.batch_size)
    cached = {node: torch.cat([env[node] for env in kept]) for node in part.boundary}
    producers = [p for p in producers if graph.nodes[p] in part.dependent]
    params: list[dict] = [{"params": [twin.get_submodule(n).threshold for n in unit]}]
    for p in producers:
        layer = twin.get_submodule(p)
        if layer.bias is not None:
            params[0]["params"].append(layer.bias)
        if settings.reconstruct_weights:
            params.append({"params": [layer.weight], "lr": settings.learning_rate / 10})
    trained = [t for group in params for t in group["params"]]
    saved = [t.detach().clone() for t in trained]
    before = _relative_error(part.suffix(kept), target)
    floor = [twin.get_submodule(n).threshold.detach() * 1e-3 for n in unit]
    for t in trained:
        t.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    label = ", ".join(unit)
    try:
        for step in progress_bar(
            range(settings.iterations), settings.progress, f"reconstruct {label}"
        ):
            idx = torch.randperm(x.shape[0], generator=generator)[: settings.batch_size]
            values = {node: v[idx.to(v.device)] for node, v in cached.items()}
            goal = {n: v[idx.to(v.device)] for n, v in target.items()}
            out = part.run(values)
            loss = sum(
                (out[n] - goal[n]).pow(2).mean() / goal[n].var().clamp(min=1e-12) for n in exits
            )
            if not torch.isfinite(loss):
                raise ReconstructionDiverged(
                    f"{label}: the reconstruction loss became {float(loss.detach())} at iteration "
                    f"{step + 1}; lower the learning rate ({settings.learning_rate}) or turn "
                    "reconstruction off (iterations=0). Nothing was built"
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                for n, low in zip(unit, floor, strict=True):
                    twin.get_submodule(n).threshold.clamp_(min=low)
    finally:
        for t in trained:
            t.requires_grad_(False)
    after = _relative_error(part.suffix(kept), target)
    if after >= before:
        with torch.no_grad():
            for t, old in zip(trained, saved, strict=True):
                t.copy_(old)
        return before
    return after
