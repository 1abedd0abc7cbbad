"""Multi-step spiking neurons for the conversion route.

Time lives only in neurons. Every other layer of a :class:`~spikebridge.engine.network.SpikingNetwork`
sees the T steps of a chunk folded into the batch, ``[T*B, ...]``; a neuron unfolds that to
``[T, B, ...]``, loops over t, and folds the spikes back. The number of steps of the current chunk
is written into :attr:`TimeAware.steps` by the network before every call.

Spikes carry the amplitude of the threshold they crossed (SPEC 1.3, second form: the ANN's weights
stay, theta_l = lambda_l and a spike is worth lambda_l). That keeps the converted graph identical to
the ANN's graph except for its activations, makes residual additions and concatenations exact in
ANN units, and gives the same spikes as scaling the weights by lambda_{l-1}/lambda_l with unit
thresholds.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..settings import MAX_SPIKE_LEVELS

Reset = Literal["subtract", "zero"]
RESETS: tuple[str, ...] = ("subtract", "zero")


class TimeAware(nn.Module):
    """A module that needs to know how many timesteps are folded into its batch dimension."""

    steps: int

    def __init__(self) -> None:
        super().__init__()
        self.steps = 1

    def unfold(self, x: Tensor) -> Tensor:
        """[T*B, ...] -> [T, B, ...] for T = ``self.steps``."""
        if x.shape[0] % self.steps:
            raise ValueError(
                f"{type(self).__name__}: batch dimension {x.shape[0]} is not a multiple of the "
                f"{self.steps} timesteps folded into it; run the module through SpikingNetwork, "
                "which sets `steps` before each call"
            )
        return x.reshape(self.steps, x.shape[0] // self.steps, *x.shape[1:])


class Stateful(TimeAware):
    """A time-aware module with state carried between chunks of steps (reset per sample)."""

    def __init__(self) -> None:
        super().__init__()
        self.v: Tensor | None = None

    def reset_state(self) -> None:
        """Forget the state (call before a new input sample)."""
        self.v = None


class SpikingNeuron(Stateful):
    """Base class of stateful multi-step neurons.

    Subclasses implement :meth:`forward_sequence` on ``[T, B, ...]`` tensors and keep their
    membrane potential in ``self.v`` between calls, so a simulation can run in chunks of steps.
    """

    def forward(self, x: Tensor, *, static: bool = False) -> Tensor:
        """x: [T*B, ...] with T = ``self.steps`` -> spikes of the same shape.

        With ``static=True``, x is one input [B, ...] that is the same at every step (the
        analog-input prefix of a network); the output is still [T*B, ...]. This saves
        materialising T copies of x (:class:`~spikebridge.engine.network.SpikingNetwork` uses it).
        """
        if static:
            seq = x.unsqueeze(0).expand(self.steps, *x.shape)
            return self.forward_sequence(seq).reshape(self.steps * x.shape[0], *x.shape[1:])
        return self.forward_sequence(self.unfold(x)).reshape(x.shape)

    def forward_sequence(self, x_seq: Tensor) -> Tensor:  # pragma: no cover - abstract
        """x_seq: [T, B, ...] input currents -> [T, B, ...] output spikes."""
        raise NotImplementedError


def channel_view(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a scalar or per-channel ``values`` ([C]) to broadcast on ``like`` ([B, C, ...])."""
    if values.dim() == 0:
        return values
    if like.dim() < 2 or like.shape[1] != values.numel():
        raise ValueError(
            f"per-channel values for {values.numel()} channels cannot apply to a tensor of shape "
            f"{tuple(like.shape)} (channel dimension 1)"
        )
    return values.reshape(values.numel(), *([1] * (like.dim() - 2)))


def empty_steps(x_seq: Tensor) -> Tensor:
    """An uninitialised [T, B, ...] tensor like ``x_seq`` whose steps keep the memory format of
    one input step (channels-last convolutions stay channels-last), also when ``x_seq`` is a
    time-broadcast view."""
    step = x_seq[0]
    if (
        step.dim() == 4
        and not step.is_contiguous()
        and step.is_contiguous(memory_format=torch.channels_last)
    ):
        flat = torch.empty(
            (x_seq.shape[0] * x_seq.shape[1], *x_seq.shape[2:]),
            dtype=x_seq.dtype,
            device=x_seq.device,
            memory_format=torch.channels_last,
        )
        return flat.view(x_seq.shape)
    return torch.empty(x_seq.shape, dtype=x_seq.dtype, device=x_seq.device)


def _potential(neuron: SpikingNeuron, x_seq: Tensor, th: Tensor) -> Tensor:
    """The neuron's membrane potential [B, ...], created at ``initial_potential * theta``
    (``initial_potential`` a float or one value per channel, [C])."""
    if neuron.v is None:
        neuron.v = torch.zeros_like(x_seq[0])
        offset = _initial_offset(neuron, th, x_seq[0])
        if offset is not None:
            neuron.v += offset
    elif neuron.v.shape != x_seq.shape[1:]:
        raise ValueError(
            f"{type(neuron).__name__}: the stored potential has shape {tuple(neuron.v.shape)} "
            f"but the input step has shape {tuple(x_seq.shape[1:])}; reset the state "
            "(SpikingNetwork.reset()) before a new batch"
        )
    return neuron.v


def _initial_offset(neuron: SpikingNeuron, th: Tensor, like: Tensor) -> Tensor | None:
    """u[0] = ``initial_potential`` * theta, broadcastable on one step ``like`` [B, C, ...]
    (``initial_potential`` a float, or a tensor of one value per channel); None for 0."""
    u0 = neuron.initial_potential
    if isinstance(u0, Tensor):
        return th * channel_view(u0.to(like.dtype), like)
    return th * u0 if u0 else None


def _as_initial_potential(value: float | Tensor, name: str) -> float | Tensor:
    """u[0] / theta: a float, or a 1-d tensor of one value per channel (kept as a tensor)."""
    if isinstance(value, Tensor) and value.dim() > 0:
        if value.dim() > 1 or not torch.isfinite(value).all():
            raise ValueError(
                f"{name}: initial_potential must be a finite float or a 1-d per-channel tensor "
                f"(u[0] / theta), got shape {tuple(value.shape)}"
            )
        return value.detach().float().clone()
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name}: initial_potential must be finite, got {value}")
    return value


def check_levels(levels: int, name: str) -> int:
    """K, the most threshold units one spike carries: an integer in 1..MAX_SPIKE_LEVELS."""
    if (
        isinstance(levels, bool)
        or not isinstance(levels, int)
        or not 1 <= levels <= MAX_SPIKE_LEVELS
    ):
        raise ValueError(
            f"{name}: levels (the most threshold units a graded spike carries) must be an "
            f"integer in 1..{MAX_SPIKE_LEVELS}, got {levels!r}"
        )
    return int(levels)


def graded_units(v: Tensor, th: Tensor, levels: int, out: Tensor) -> Tensor:
    """k = clamp(floor(v / theta), 0, K) into ``out`` (v, out [B, ...]; theta broadcastable):
    the threshold units a graded neuron emits at one step."""
    torch.div(v, th, out=out)
    out.floor_()
    return out.clamp_(0, levels)


def _as_threshold(threshold: float | Tensor, name: str) -> Tensor:
    value = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
    if value.dim() > 1:
        raise ValueError(f"{name}: threshold must be a scalar or a 1-d per-channel tensor")
    if not torch.isfinite(value).all() or (value <= 0).any():
        raise ValueError(f"{name}: thresholds must be finite and positive, got {value}")
    return value


class IFNeuron(SpikingNeuron):
    """Integrate-and-fire neuron (SPEC 1.5; Diehl 2015, Rueckauer 2017).

    u[t] = u[t-1] + z[t]; a spike of amplitude theta when u[t] >= theta, after which u is reset
    to zero or reduced by theta (reset by subtraction, Rueckauer 2017). ``initial_potential`` is
    the starting potential as a fraction of theta (0.5 gives u[0] = theta/2, Bu et al. 2022),
    one value for the layer or one per channel ([C], channel dimension 1: the per-channel
    potential calibration of Li et al. 2021, which method ``calibrated`` searches).

    With ``negative_spikes=True`` (reset by subtraction only) the neuron also emits a spike of
    amplitude -theta when u[t] < 0 while it has emitted more positive than negative spikes so far
    (u += theta): the signed IF neuron of Wang et al. 2022 ("signed neuron with memory") and Hu
    et al. 2023 (Fast-SNN). It takes back spikes that inputs arriving later show to be too many
    (the unevenness or sequential error), so the net spike count after T steps is
    clamp(floor(sum z / theta + u[0] / theta), 0, T) whenever each step's input is within
    (-theta, theta]: with u[0] = theta/2, exactly the rounding a QCFS activation computes.

    With ``levels=K > 1`` the neuron emits *graded* spikes (Loihi 2 and SpiNNaker 2 carry an
    integer payload; burst spikes of Li & Zeng 2022; multi-threshold neurons): k = clamp(floor(
    u/theta), 0, K) threshold units per step, a spike of amplitude k*theta, and u -= k*theta
    (reset ``"zero"``: u = 0 after any spike, the remainder discarded as the binary neuron
    discards it). A signed neuron emits k = clamp(floor(u/theta), -min(count, K), K): it takes
    back up to K earlier units at once. Over T steps the net count is then
    clamp(floor(sum z / theta + u[0] / theta), 0, K*T) whenever each step's input is within
    (-K*theta, K*theta]: the (KT+1)-level quantiser, whose levels a binary neuron reaches only
    in K*T steps. K = 1 is the binary neuron, bit for bit (the same kernels).

    Args:
        threshold: theta, a scalar or one value per channel (channel dimension 1); with graded
            spikes, the value of one unit.
        reset: ``"subtract"`` or ``"zero"``.
        initial_potential: u[0] / theta, a float or a [C] tensor.
        negative_spikes: emit -theta to take back earlier spikes (see above).
        levels: K, the most threshold units one spike carries (1: binary spikes).
    """

    # class defaults keep networks pickled before these options existed loadable
    negative_spikes: bool = False
    count: Tensor | None = None
    levels: int = 1

    def __init__(
        self,
        threshold: float | Tensor = 1.0,
        reset: Reset = "subtract",
        initial_potential: float | Tensor = 0.0,
        negative_spikes: bool = False,
        levels: int = 1,
    ) -> None:
        super().__init__()
        self.levels = check_levels(levels, "IFNeuron")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        if negative_spikes and reset != "subtract":
            raise ValueError(
                "IFNeuron: negative_spikes needs reset='subtract' (a negative spike gives back "
                "the theta a positive one took); got reset='zero'"
            )
        self.reset = reset
        self.negative_spikes = bool(negative_spikes)
        self.count: Tensor | None = None  # net spikes so far, for negative_spikes
        self.register_buffer("threshold", _as_threshold(threshold, "IFNeuron"))
        self.set_initial_potential(initial_potential)

    def set_initial_potential(self, initial_potential: float | Tensor) -> None:
        """u[0] / theta: a float, or a [C] tensor of one value per channel (a buffer, so it
        moves with the module); takes effect at the next reset of the state."""
        u0 = _as_initial_potential(initial_potential, "IFNeuron")
        if isinstance(u0, Tensor):
            if self.threshold.dim() == 1 and self.threshold.numel() != u0.numel():
                raise ValueError(
                    f"IFNeuron: {u0.numel()} per-channel initial potentials for "
                    f"{self.threshold.numel()} per-channel thresholds; give one per channel"
                )
            u0 = u0.to(self.threshold.device)
        self._buffers.pop("initial_potential", None)
        self.__dict__.pop("initial_potential", None)
        if isinstance(u0, Tensor):
            self.register_buffer("initial_potential", u0)
        else:
            self.initial_potential = u0

    def extra_repr(self) -> str:
        th, u0 = self.threshold, self.initial_potential
        shown = f"{th.item():.4g}" if th.dim() == 0 else f"[{th.numel()} channels]"
        start = f"[{u0.numel()} channels]" if isinstance(u0, Tensor) else f"{u0}"
        signed = ", negative_spikes=True" if self.negative_spikes else ""
        graded = f", levels={self.levels}" if self.levels > 1 else ""
        return f"threshold={shown}, reset={self.reset}, initial_potential={start}{signed}{graded}"

    def reset_state(self) -> None:
        super().reset_state()
        self.count = None

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        th = channel_view(self.threshold.to(x_seq.dtype), x_seq[0])
        out = empty_steps(x_seq)
        if self.levels > 1:
            self._graded_steps(x_seq, out, th)
            return out
        first = 0
        if self.v is None:
            self._first_step(x_seq[0], out[0], th)
            first = 1
        v = _potential(self, x_seq, th)
        if self.negative_spikes:
            self._signed_steps(x_seq, out, v, th, first)
            return out
        for t in range(first, x_seq.shape[0]):
            v.add_(x_seq[t])
            self._fire(v, out[t], th)
        return out

    def _fire(self, v: Tensor, s: Tensor, th: Tensor) -> None:
        """Spikes of the integrated potential v [B, ...] into s, and v reset (plain neuron).

        With the integration, four elementwise passes per step, none allocating: the comparison
        writes 0/1 straight into the float output (a bool mask times theta costs a conversion
        pass more), which is then scaled in place to spikes of amplitude theta. Exact: spikes
        are 0 or theta, and v - theta * 1 == v - theta, v - v * 1 == 0.
        """
        torch.ge(v, th, out=s)
        if self.reset == "subtract":
            s.mul_(th)
            v.sub_(s)
        else:
            v.addcmul_(v, s, value=-1.0)
            s.mul_(th)

    def _first_step(self, x: Tensor, s: Tensor, th: Tensor) -> None:
        """Step 1 of a fresh state, x [B, ...] -> spikes written into s [B, ...]; creates v
        (and a signed neuron's count).

        The state is created by the step itself, u = u[0] + z[1] in one pass, rather than
        zero-filled, offset and then integrated (three passes), and a signed neuron has no
        earlier spike to take back, so its step is a plain one: four passes in all, where a
        1-step simulation used to spend twelve per signed layer. Bit for bit the same
        arithmetic as the general step (u[0] + z and z + u[0] are one rounding).
        """
        offset = _initial_offset(self, th, x)
        v = x + offset if offset is not None else x.clone()
        if self.negative_spikes:  # the 0/1 spikes are the net count so far
            self.count = torch.ge(v, th, out=torch.empty_like(v))
            torch.mul(self.count, th, out=s)
            v.sub_(s)
        else:
            self._fire(v, s, th)
        self.v = v

    def _signed_steps(self, x_seq: Tensor, out: Tensor, v: Tensor, th: Tensor, first: int) -> None:
        """Steps ``first``.. of x_seq [T, B, ...] into out [T, B, ...]: eight elementwise passes
        per step, in place. ``count`` holds the net spikes so far (an integer >= 0), so
        min(u < 0, count) is 1 exactly when a negative spike may take back an earlier positive
        one: one pass where a mask of count > 0 and a product took two."""
        if self.count is None or self.count.shape != v.shape:
            self.count = torch.zeros_like(v)
        count = self.count
        if first >= x_seq.shape[0]:
            return
        neg = torch.empty_like(v)
        for t in range(first, x_seq.shape[0]):
            s = out[t]
            v.add_(x_seq[t])
            torch.ge(v, th, out=s)
            torch.lt(v, 0, out=neg)
            torch.minimum(neg, count, out=neg)  # a negative spike only takes back a positive one
            s.sub_(neg)  # +1, 0 or -1
            count.add_(s)
            s.mul_(th)
            v.sub_(s)

    def _graded_steps(self, x_seq: Tensor, out: Tensor, th: Tensor) -> None:
        """Steps of a graded neuron (K = ``levels`` > 1), x_seq [T, B, ...] into out: k units
        per step as the class docstring defines them, spikes k*theta."""
        v = _potential(self, x_seq, th)
        if self.negative_spikes and (self.count is None or self.count.shape != v.shape):
            self.count = torch.zeros_like(v)
        K = self.levels
        low = torch.empty_like(v) if self.negative_spikes else None
        for t in range(x_seq.shape[0]):
            k = out[t]
            v.add_(x_seq[t])
            if self.negative_spikes:  # take back at most K of the units emitted so far
                torch.div(v, th, out=k)
                k.floor_()
                torch.clamp(self.count, max=K, out=low)
                k.clamp_(max=K)
                torch.maximum(k, low.neg_(), out=k)
                self.count.add_(k)
            else:
                graded_units(v, th, K, k)
            if self.reset == "zero":
                v.masked_fill_(k > 0, 0.0)
                k.mul_(th)
            else:
                k.mul_(th)
                v.sub_(k)


class SignedIFNeuron(SpikingNeuron):
    """Signed neuron with imbalanced threshold for LeakyReLU(alpha) (Kim et al. 2020, SPEC 1.7).

    Emits +theta when u >= theta (u -= theta) and -theta when u <= -theta/alpha (u += theta/alpha),
    so for a constant input x the output tends to x for x > 0 and alpha*x for x < 0.

    With ``levels=K > 1`` (graded spikes, see :class:`IFNeuron`) it emits clamp(floor(u/theta),
    0, K) positive units of theta, or clamp(floor(-u*alpha/theta), 0, K) negative ones of
    theta/alpha taken from u, per step.
    """

    levels: int = 1  # networks pickled before graded spikes existed

    def __init__(
        self,
        threshold: float | Tensor = 1.0,
        alpha: float = 0.1,
        initial_potential: float = 0.0,
        levels: int = 1,
    ) -> None:
        super().__init__()
        self.levels = check_levels(levels, "SignedIFNeuron")
        if not 0 < alpha <= 1:
            raise ValueError(f"SignedIFNeuron: alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.initial_potential = float(initial_potential)
        self.register_buffer("threshold", _as_threshold(threshold, "SignedIFNeuron"))

    def extra_repr(self) -> str:
        graded = f", levels={self.levels}" if self.levels > 1 else ""
        return f"alpha={self.alpha}, channels={self.threshold.numel()}{graded}"

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        th = channel_view(self.threshold.to(x_seq.dtype), x_seq[0])
        neg_th = th / self.alpha
        low = -neg_th
        v = _potential(self, x_seq, th)
        out = empty_steps(x_seq)
        neg = torch.empty_like(v)
        for t in range(x_seq.shape[0]):
            pos = out[t]
            v.add_(x_seq[t])
            if self.levels > 1:
                graded_units(v, th, self.levels, pos)
                graded_units(-v, neg_th, self.levels, neg)
            else:
                torch.ge(v, th, out=pos)
                torch.le(v, low, out=neg)
            v.addcmul_(pos, th, value=-1.0)
            v.addcmul_(neg, neg_th)
            pos.sub_(neg).mul_(th)
        return out


class TimeBroadcast(TimeAware):
    """Repeat a time-invariant tensor [B, ...] over the folded time axis -> [T*B, ...].

    Inserted by :class:`SpikingNetwork` where the analog-input prefix of a network (which is the
    same at every step) meets the first neuron, so that prefix runs once per chunk, not T times.
    """

    def forward(self, x: Tensor) -> Tensor:
        return (
            x.unsqueeze(0)
            .expand(self.steps, *x.shape)
            .reshape(self.steps * x.shape[0], *x.shape[1:])
        )


class SpikingMaxPool(Stateful):
    """Spiking max-pooling, by one of two rules.

    - ``"gate"`` (Rueckauer et al. 2017): per pooling window, passes the spikes of the input
      neuron with the highest running spike count (accumulated spike amplitude) so far.
    - ``"running"``: emits, per window, the change of the largest running count,
      ``pool(V_t) - pool(V_{t-1})`` with ``V_t`` the summed input of steps 1..t. Its summed output
      after any t steps is exactly the max-pool of the summed inputs, so a network of signed IF
      neurons stays equal to its T-level quantised twin through max-pooling (method
      ``calibrated``). On spike inputs of one channel (amplitude theta_c) every output is itself
      a spike: 0, +theta_c or, for signed inputs, -theta_c.

    Input [T*B, C, H, W] (or [T*B, C, L] for 1-d pooling) with T = ``self.steps``; output has the
    pooled spatial shape. The running count is kept in ``self.v`` between chunks of steps.

    Args:
        pool: the ANN's max-pooling module (MaxPool1d/2d or AdaptiveMaxPool1d/2d) whose windows
            are used.
        rule: ``"gate"`` or ``"running"``.
    """

    RULES = ("gate", "running")
    rule = "gate"  # what a module pickled before the rule existed does

    def __init__(self, pool: nn.Module, rule: str = "gate") -> None:
        super().__init__()
        if rule not in self.RULES:
            raise ValueError(f"SpikingMaxPool rule must be one of {self.RULES}, got {rule!r}")
        self.pool = pool
        self.rule = rule

    def _indices(self, counts: Tensor) -> Tensor:
        p = self.pool
        dims = counts.dim() - 2
        if isinstance(p, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            fn = F.adaptive_max_pool2d if dims == 2 else F.adaptive_max_pool1d
            return fn(counts, p.output_size, return_indices=True)[1]
        fn = F.max_pool2d if dims == 2 else F.max_pool1d
        return fn(
            counts, p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode, return_indices=True
        )[1]

    def forward(self, x: Tensor) -> Tensor:
        seq = self.unfold(x)
        if self.v is None:
            self.v = torch.zeros_like(seq[0])
        if self.rule == "running":
            return self._running(seq)
        outs = []
        for t in range(seq.shape[0]):
            self.v += seq[t]
            # ties go to the neuron that spikes now, so a window's first spikes are not lost
            idx = self._indices(self.v + 0.5 * seq[t].abs())
            flat = seq[t].flatten(2)
            outs.append(flat.gather(2, idx.flatten(2)).reshape(idx.shape))
        out = torch.stack(outs)
        return out.reshape(-1, *out.shape[2:])

    def _running(self, seq: Tensor) -> Tensor:
        # the running counts V_0 (carried over) .. V_t of the chunk, pooled in one call
        counts = torch.cat([self.v.unsqueeze(0), self.v.unsqueeze(0) + seq.cumsum(0)])
        pooled = self.pool(counts.flatten(0, 1)).unflatten(0, counts.shape[:2])
        self.v = counts[-1]
        change = pooled[1:] - pooled[:-1]
        # two windows' inputs that reach one count along different sums (a spike and its signed
        # cancellation, a chunk boundary) may differ in the last bits: no spike, not a sliver
        sliver = change.abs() <= 1e-5 * torch.maximum(pooled[1:].abs(), pooled[:-1].abs())
        return change.masked_fill(sliver, 0.0).flatten(0, 1)

    def extra_repr(self) -> str:
        return f"{self.pool!r}, rule={self.rule!r}"
