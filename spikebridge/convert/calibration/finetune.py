"""A short labelled fine-tune of a calibrated network and its twin (issue 23): retraining, said so.

Post-training calibration alone leaves deep residual nets short at T <= 4 (a binary-spike
network is a (T+1)-level quantised ANN, and 19 activation layers at 3 levels do not survive it).
After the search (and the output check), this trains the twin end to end for ``finetune_steps``
labelled steps, starting from the calibrated thresholds, initial potentials, biases and weights
(BatchNorm already folded): cross-entropy on the calibration images' labels (training images;
never the test set; optionally mixed with distillation from the float ANN, ``finetune_distill``),
the floor passed straight through (STE, Bengio 2013), thresholds learned as in LSQ (Esser et al.
2020, "Learned step size quantization"): the twin's quantiser
theta/T * floor(clamp(T x / theta + phi, 0, T)) gives theta LSQ's gradient (level/T - x/theta
inside the range, 1 above it, 0 below). LSQ scales that gradient by g = 1/sqrt(N Q_P) to keep
the step size's updates in proportion to the weights' under SGD; Adam divides every parameter's
gradient by its own running scale, which cancels any constant g, so each tensor gets its own
Adam step instead, ``finetune_lr`` times its RMS at the start (:func:`_relative_steps`),
reached by a linear warm-up over the first ``finetune_warmup`` share of the N steps and then
decayed along a cosine to zero. A fine-tune that ends with a higher training
loss than it started from is rolled back (with a :class:`CalibrationWarning`).

The forward pass (``finetune_forward``) is, by default, the simulated network's own
(:class:`~.simulated_twin.SimulatedTwin`, tandem learning, Wu et al. 2021): the loss is that of
the network the fine-tune builds, at its T, so it also trains away what the twin cannot see, the
spikes still owed at step T; the gradient is the twin's. The SNN is then built from the
fine-tuned parameters exactly as ``calibrated`` builds it, without the SNN bias correction (the
network itself was trained; resnet20 on digits at T = 2: 94.99 % without, 94.15 % with it).
With ``finetune_forward="twin"`` the fine-tune trains the twin alone, and the SNN correction
runs after it, aimed at the fine-tuned twin's own inputs (:func:`twin_reference`) rather than the
float ANN's, so it removes only the simulated network's burst error against its twin.

Shapes: images [N, C, H, W] (or [N, ...]), labels [N] (class indices); thresholds 0-d or [C].
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ...progress import progress_bar
from ..quantised_twin import quantisers, restore_activations
from .errors import ReconstructionDiverged
from .graph import FloatReference
from .guard import CalibrationWarning
from .simulated_twin import SimulatedTwin

if TYPE_CHECKING:
    from ..methods.calibrated import CalibratedSettings
    from .result import CalibratedResult

PHI_MAX = 0.999
"""The largest initial potential u[0] / theta the fine-tune leaves (below one threshold)."""


@dataclasses.dataclass(frozen=True)
class FinetuneReport:
    """What the fine-tune did.

    Attributes:
        steps: labelled Adam steps taken.
        samples: labelled training images it drew its batches from.
        seconds: wall time; cpu_seconds: processor time.
        loss_before / loss_after: the cross-entropy on those images before and after, of the
            simulated network (``finetune_forward="network"``) or of the twin.
        accuracy_before / accuracy_after: its accuracy on them (fractions).
        forward: ``"network"`` or ``"twin"``, what was trained and measured.
        rolled_back: the fine-tune raised the loss and was undone (the calibration kept).
    """

    steps: int
    samples: int
    seconds: float
    cpu_seconds: float
    loss_before: float
    loss_after: float
    accuracy_before: float
    accuracy_after: float
    forward: str = "twin"
    rolled_back: bool = False


def labelled_data(data: Iterable | Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """All (images [N, ...], labels [N]) of a loader of (x, y) batches; a bare image tensor
    has no labels and is refused (the fine-tune is supervised)."""
    if isinstance(data, Tensor):
        raise ValueError(
            "finetune_steps: the fine-tune trains on labels, but the calibration data is a bare "
            "image tensor; pass a loader of (image, label) batches from the training set, or "
            "finetune_steps=0"
        )
    xs, ys = [], []
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                "finetune_steps: the calibration loader gives no labels; pass a loader of "
                "(image, label) batches from the training set, or finetune_steps=0"
            )
        xs.append(batch[0])
        ys.append(torch.as_tensor(batch[1]).long())
    if not xs:
        raise ValueError("finetune_steps: the calibration data is empty")
    return torch.cat(xs).to(device), torch.cat(ys).to(device)


def finetune(
    calibration: CalibratedResult,
    data: Iterable | Tensor,
    settings: CalibratedSettings,
) -> CalibratedResult:
    """A copy of ``calibration`` (before the SNN correction) whose twin was trained for
    ``settings.finetune_steps`` labelled steps on ``data`` (the calibration loader: training
    images and their labels). ``calibration`` is left as it is.

    Trained: every conv/linear weight and bias, every threshold (kept above 1e-3 of its
    start) and initial potential (kept in [0, 0.999]). Batches are drawn with
    a generator seeded by ``settings.seed``; on CPU the result is repeatable to the byte.
    Raises :class:`ReconstructionDiverged` when the loss becomes NaN or infinite.
    """
    steps = settings.finetune_steps
    start, cpu_start = time.perf_counter(), time.process_time()
    twin = calibration.twin()
    device = next((p.device for p in twin.parameters()), torch.device("cpu"))
    x, y = labelled_data(data, device)
    quantised = quantisers(twin)
    synaptic = [m for m in twin.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    biases = [m.bias for m in synaptic if m.bias is not None]
    weights = [m.weight for m in synaptic] if settings.finetune_weights else []
    thresholds = [q.threshold for q in quantised.values()]
    potentials = [q.initial_potential for q in quantised.values()]
    floors = [t.detach() * 1e-3 for t in thresholds]
    trained = weights + biases + thresholds + potentials
    for p in twin.parameters():
        p.requires_grad_(False)
    for p in trained:
        p.requires_grad_(True)
    model = (
        SimulatedTwin(twin, calibration.timesteps, calibration.spike_levels,
                      calibration.negative_spikes).eval()
        if settings.finetune_forward == "network"
        else twin
    )  # fmt: skip
    loss_before, accuracy_before = _evaluate(model, x, y, settings.batch_size)
    mix = settings.finetune_distill
    teacher = _float_logits(twin, x, settings.batch_size) if mix > 0 else None
    optimiser = torch.optim.Adam(_relative_steps(synaptic, quantised, settings))
    warmup = int(steps * settings.finetune_warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _warmup_cosine(steps, warmup))
    generator = torch.Generator().manual_seed(settings.seed or 0)
    order = torch.randperm(x.shape[0], generator=generator)
    position = 0
    try:
        for step in progress_bar(range(steps), settings.progress, "fine-tune twin"):
            if position + settings.batch_size > x.shape[0]:  # a new epoch: a new order
                order, position = torch.randperm(x.shape[0], generator=generator), 0
            idx = order[position : position + settings.batch_size].to(device)
            position += settings.batch_size
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            if teacher is not None:
                soft = nn.functional.kl_div(
                    logits.log_softmax(1),
                    teacher[idx].log_softmax(1),
                    log_target=True,
                    reduction="batchmean",
                )
                loss = (1 - mix) * loss + mix * soft
            if not torch.isfinite(loss):
                raise ReconstructionDiverged(
                    f"finetune_steps: the fine-tune's loss became {float(loss.detach())} at step "
                    f"{step + 1}; lower finetune_lr ({settings.finetune_lr}) or set "
                    "finetune_steps=0. Nothing was built"
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                for theta, low in zip(thresholds, floors, strict=True):
                    theta.clamp_(min=low)
                for phi in potentials:
                    phi.clamp_(0.0, PHI_MAX)
    finally:
        for p in twin.parameters():
            p.requires_grad_(False)
    loss_after, accuracy_after = _evaluate(model, x, y, settings.batch_size)
    rolled_back = not loss_after < loss_before
    if rolled_back:  # worse than where it started: keep the calibration
        what = "network" if settings.finetune_forward == "network" else "twin"
        warnings.warn(
            f"calibrated T={calibration.timesteps}: the fine-tune raised the {what}'s training "
            f"loss ({loss_before:.4g} -> {loss_after:.4g}); keeping the calibrated twin (lower "
            f"finetune_lr, {settings.finetune_lr}, or give more steps)",
            CalibrationWarning,
            stacklevel=3,
        )
        twin = calibration.twin()
        quantised = quantisers(twin)
        loss_after, accuracy_after = loss_before, accuracy_before
    report = FinetuneReport(
        steps, x.shape[0], time.perf_counter() - start, time.process_time() - cpu_start,
        loss_before, loss_after, accuracy_before, accuracy_after, settings.finetune_forward,
        rolled_back,
    )  # fmt: skip
    return dataclasses.replace(
        calibration,
        prepared=restore_activations(twin),
        thresholds={n: q.threshold.detach().clone() for n, q in quantised.items()},
        initial_potentials={n: q.initial_potential.detach().clone() for n, q in quantised.items()},
        layers=[dataclasses.replace(layer) for layer in calibration.layers],
        seconds=calibration.seconds + report.seconds,
        cpu_seconds=calibration.cpu_seconds + report.cpu_seconds,
        finetune=report,
    )


def _warmup_cosine(steps: int, warmup: int):
    """Step k's factor of the Adam step: linear from 1/(warmup+1) to 1 over the first
    ``warmup`` steps, then a cosine decay to 0 at ``steps``."""

    def factor(k: int) -> float:
        if k < warmup:
            return (k + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (k - warmup) / max(steps - warmup, 1)))

    return factor


def _rms(t: Tensor) -> float:
    return float(t.detach().pow(2).mean().sqrt())


def _relative_steps(
    synaptic: list[nn.Module], quantised: dict, settings: CalibratedSettings
) -> list[dict]:
    """Adam's parameter groups, each tensor's step ``finetune_lr`` times its own RMS at the
    start: folding BatchNorm leaves layers whose weights differ in scale by orders of magnitude,
    and one absolute step that suits one layer wrecks another (resnet20 on MNIST collapsed to
    chance at an absolute 3e-3). The default relative step, 1e-2, is the largest measured that
    kept resnet20 on MNIST training (3e-2 collapsed it at T = 2 within 300 steps, though it
    suited resnet20 on digits); a collapse is rolled back (:func:`finetune`). A bias moves in the units of its layer's weights or its own,
    whichever is larger; thresholds in their own (times ``finetune_threshold_lr_scale``);
    initial potentials (fractions of a threshold) by ``finetune_lr`` itself."""
    rate, groups = settings.finetune_lr, []
    for m in synaptic:
        scale = max(_rms(m.weight), 1e-8)
        if settings.finetune_weights:
            groups.append({"params": [m.weight], "lr": rate * scale})
        if m.bias is not None:
            groups.append({"params": [m.bias], "lr": rate * max(scale, _rms(m.bias))})
    factor = rate * settings.finetune_threshold_lr_scale
    for q in quantised.values():
        groups.append({"params": [q.threshold], "lr": factor * max(_rms(q.threshold), 1e-8)})
        groups.append({"params": [q.initial_potential], "lr": factor})
    return groups


def twin_reference(
    calibration: CalibratedResult, x: Tensor, settings: CalibratedSettings
) -> FloatReference:
    """What the SNN correction aims at after a fine-tune: the fine-tuned twin's own inputs of
    its quantisers (and its logits) on x [N, ...], no longer the float ANN's (the fine-tune moved
    the twin away from the float ANN on purpose; correcting towards it would undo part of that).
    The correction then removes only the simulated network's burst error against its twin."""
    twin = calibration.twin()
    names = list(quantisers(twin))
    return FloatReference(twin, x, names, settings.batch_size, settings.cache_bytes)


@torch.no_grad()
def _float_logits(twin: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """The float ANN's logits [N, K] on x: the twin with its quantisers switched off."""
    quantised = quantisers(twin).values()
    for q in quantised:
        q.quantise = False
    try:
        return torch.cat([twin(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    finally:
        for q in quantised:
            q.quantise = True


@torch.no_grad()
def _evaluate(twin: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the twin on (x [N, ...], y [N])."""
    loss, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        logits = twin(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(1) == target).sum())
    return loss / x.shape[0], correct / x.shape[0]
