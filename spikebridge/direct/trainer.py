"""STBP training of a direct SNN (Wu et al. 2018) with tdBN (Zheng et al. 2021).

Each step: reset the neurons, encode the batch into T steps ([T, B, ...]: a static image is fed
to the encoding layer at every step, event frames [B, T, ...] are transposed), run the network,
average the readout over T (SPEC 2.5) and minimise the cross-entropy; gradients flow back through
time via the LIF surrogate. After every epoch the test set is simulated with
:func:`spikebridge.evaluation.evaluate` and a checkpoint is written atomically, so a killed
run loses at most the current epoch and ``resume=True`` ends in the same weights as an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batchnorm import reestimate_batchnorm
from ..engine.network import SpikingNetwork
from ..evaluation import Evaluation, evaluate
from ..progress import progress_bar
from ..runtime import seed_everything
from ..settings import DEFAULT_LR, OPTIMIZERS, SCHEDULES, TrainingSettings
from ..validation import check_positive_int
from .checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    atomic_save,
    check_compatible,
    load_training_checkpoint,
    rng_state,
    set_rng_state,
)
from .distributed import (
    all_reduce_sums,
    broadcast_buffers,
    distributed_loader,
    setup_distributed,
    wrap_ddp,
)
from .snn import DirectSNN, build_direct_snn

_SETTINGS = TrainingSettings()  # the one home of the defaults below


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`train_direct` returns.

    Attributes:
        network: the trained network (the same object that was passed in, or the one built).
        history: one dict per epoch: epoch, loss, train_accuracy, test_accuracy, seconds.
        evaluation: the last test evaluation (accuracy after every step t <= T), if any.
        checkpoint_path: where the last checkpoint was written, if anywhere.
    """

    network: SpikingNetwork
    history: list[dict[str, float]] = field(default_factory=list)
    evaluation: Evaluation | None = None
    checkpoint_path: Path | None = None


def stbp_loss(network: nn.Module, x_seq: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy of the readout averaged over T (SPEC 2.5). Returns (loss, mean output [B, K])."""
    output = network(x_seq).mean(0)
    return F.cross_entropy(output, labels), output


def make_optimizer(
    name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


def make_schedule(
    name: str, optimizer: torch.optim.Optimizer, epochs: int, step_size: int | None, gamma: float
) -> torch.optim.lr_scheduler.LRScheduler:
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        size = step_size or max(1, epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=size, gamma=gamma)
    raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")


def _check_arguments(timesteps: Any, epochs: Any, lr: Any, weight_decay: Any) -> None:
    check_positive_int(timesteps, "timesteps T")
    check_positive_int(epochs, "epochs")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a finite positive number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")


def train_direct(
    network: SpikingNetwork | str,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    timesteps: int = _SETTINGS.direct_timesteps,
    epochs: int = _SETTINGS.epochs,
    optimizer: str = _SETTINGS.direct_optimizer,
    lr: float | None = None,
    momentum: float = _SETTINGS.direct_momentum,
    weight_decay: float = _SETTINGS.direct_weight_decay,
    schedule: str = _SETTINGS.direct_schedule,
    step_size: int | None = None,
    gamma: float = 0.1,
    seed: int = 0,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    validation_loader: Iterable | None = None,
    **build_options: Any,
) -> TrainResult:
    """Train a direct SNN with STBP for ``epochs`` epochs of ``timesteps`` steps per sample.

    Args:
        network: a :class:`SpikingNetwork` (e.g. from :func:`build_direct_snn`) or an architecture name,
            built with :func:`build_direct_snn` (``**build_options``: num_classes, in_channels,
            image_size, width, encoding, ...) after seeding, so the initial weights follow ``seed``.
        train_loader: yields (x, y): x static [B, C, H, W] or event frames [B, T_data, C, H, W].
        test_loader: simulated after every epoch for ``test_accuracy`` (accuracy at step T).
        validation_loader: held-out training images, simulated after every epoch for
            ``validation_accuracy`` (NaN without them).
        optimizer: ``sgd`` (with ``momentum``) or ``adam``; ``schedule``: ``cosine`` over the
            epochs or ``step`` (every ``step_size`` epochs times ``gamma``).
        lr: the learning rate (None: the optimizer's default,
            :data:`~spikebridge.settings.DEFAULT_LR`). The defaults of ``timesteps``, ``epochs``,
            ``optimizer``, ``momentum``, ``weight_decay`` and ``schedule`` are
            :class:`~spikebridge.settings.TrainingSettings`' ``direct_*`` ones.
        checkpoint_path: written atomically after every epoch (on rank 0 only).
        resume: continue from ``checkpoint_path``; the final weights equal an uninterrupted run's.
        device: ``auto``, ``cpu``, ``cuda`` or a torch.device. Under torchrun this becomes
            data-parallel training (DistributedDataParallel; gloo on CPU, nccl on GPU).
        on_epoch: called with each epoch's history record (on every process).

    Raises:
        ValueError for bad arguments, CheckpointError for an unreadable or mismatched checkpoint,
        TrainingDiverged when the loss becomes NaN/inf (naming the step and last good checkpoint).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    _check_arguments(timesteps, epochs, lr, weight_decay)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path to resume from")
    seed_everything(seed)
    if isinstance(network, str):
        network = build_direct_snn(network, **build_options)
    elif build_options:
        raise TypeError(
            f"build options {sorted(build_options)} only apply when network is an architecture name"
        )
    if not isinstance(network, SpikingNetwork):
        raise TypeError(
            f"train expects a SpikingNetwork or an architecture name, got {type(network).__name__}"
        )

    ctx = setup_distributed(device)
    network.to(ctx.device)
    model: nn.Module = network
    loader = train_loader
    if ctx.enabled:
        loader = distributed_loader(train_loader, ctx, seed)  # type: ignore[arg-type]
        model = wrap_ddp(network, ctx)
    generator = getattr(loader, "generator", None)
    opt = make_optimizer(optimizer, network.parameters(), lr, weight_decay, momentum)
    sched = make_schedule(schedule, opt, epochs, step_size, gamma)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    spec = dict(getattr(network, "spec", {}))
    config = dict(
        timesteps=timesteps,
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        step_size=step_size,
        gamma=gamma,
        seed=seed,
    )

    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume:
        assert path is not None
        saved = load_training_checkpoint(path, map_location=ctx.device, resume=True)
        if spec and saved.get("spec") and saved["spec"] != spec:
            diff = {
                k: (saved["spec"].get(k), spec.get(k))
                for k in spec
                if saved["spec"].get(k) != spec.get(k)
            }
            raise CheckpointError(
                f"{path} was saved from a different network (checkpoint vs now: {diff}); use the "
                "settings of the run that wrote it, or a new output directory"
            )
        check_compatible(saved["model"], network, path)
        network.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        if isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
            sched.T_max = max(epochs, 1)
        start_epoch = int(saved["epoch"])
        history = list(saved.get("history", []))
        set_rng_state(saved["rng"], generator)
    last_saved: int | None = start_epoch if resume else None

    evaluation: Evaluation | None = None
    global_step = start_epoch * _length(loader)
    for epoch in range(start_epoch, epochs):
        if hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        started = time.perf_counter()
        model.train()
        loss_sum = correct = count = 0.0
        bar = progress_bar(loader, progress and ctx.is_main, f"epoch {epoch + 1}/{epochs}")
        for step, (x, y) in enumerate(bar, start=1):
            global_step += 1
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            network.reset()
            loss, output = stbp_loss(model, network.encode(x, timesteps), y)
            value = loss.item()
            # every process must stop at the same step, or the others would wait forever in
            # DDP's gradient all-reduce: under torchrun the check is collective
            bad = not math.isfinite(value)
            if ctx.enabled:
                bad = all_reduce_sums([float(bad)], ctx)[0] > 0
            if bad:
                last = (
                    f"{path} (after epoch {last_saved})"
                    if last_saved is not None
                    else "none written yet"
                )
                became = value if not math.isfinite(value) else "NaN/inf on another process"
                raise TrainingDiverged(
                    f"the loss became {became} at epoch {epoch + 1}, step {step} (global step "
                    f"{global_step}); last good checkpoint: {last}. Lower the learning rate or check "
                    "the inputs for NaN/inf"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            network.reset()
            batch = y.shape[0]
            loss_sum += value * batch
            correct += (output.argmax(-1) == y).sum().item()
            count += batch
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{correct / count:.4f}")
        sched.step()
        loss_sum, correct, count = all_reduce_sums([loss_sum, correct, count], ctx)
        _reestimate_norms(network, train_loader, timesteps, ctx.device)
        broadcast_buffers(network, ctx)
        if count == 0:
            raise ValueError("the training data loader yielded no samples")
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / count,
            "train_accuracy": correct / count,
            "validation_accuracy": float("nan"),
            "test_accuracy": float("nan"),
            "seconds": 0.0,
        }
        if validation_loader is not None:
            checked = evaluate(network, validation_loader, timesteps, device=ctx.device)
            record["validation_accuracy"] = float(checked.accuracy[-1])
        if test_loader is not None:
            evaluation = evaluate(network, test_loader, timesteps, device=ctx.device)
            record["test_accuracy"] = float(evaluation.accuracy[-1])
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if path is not None and ctx.is_main:
            atomic_save(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "epoch": epoch + 1,
                    "spec": spec,
                    "config": config,
                    "model": network.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": rng_state(generator),
                    "history": history,
                },
                path,
            )
            last_saved = epoch + 1
        if on_epoch is not None:
            on_epoch(record)
    if evaluation is None and test_loader is not None:
        evaluation = evaluate(network, test_loader, timesteps, device=ctx.device)
    network.eval()
    return TrainResult(
        network, history, evaluation, path if path is not None and path.exists() else None
    )


def _reestimate_norms(
    network: SpikingNetwork, loader: Iterable, timesteps: int, device: torch.device
) -> None:
    """tdBN's running statistics re-estimated with the epoch's final weights
    (:func:`spikebridge.batchnorm.reestimate_batchnorm`): after one epoch on digits the
    moving averages left a cnn at 9.7 % on the test set, its re-estimated statistics at 93.9 %."""

    def run(x: torch.Tensor) -> torch.Tensor:
        network.reset()
        out = network(network.encode(x, timesteps))
        network.reset()
        return out

    reestimate_batchnorm(network, loader, device, forward=run)


def _length(loader: Iterable) -> int:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return 0


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> DirectSNN:
    """Rebuild the network a checkpoint was trained as (from its spec) and load its weights."""
    saved = load_training_checkpoint(path, map_location=device)
    spec = saved.get("spec")
    if not spec:
        raise CheckpointError(
            f"{path} records no network spec; build the network yourself and load saved['model']"
        )
    network = build_direct_snn(**spec)
    check_compatible(saved["model"], network, path)
    network.load_state_dict(saved["model"])
    return network.to(device).eval()


__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainResult",
    "TrainingDiverged",
    "load_trained",
    "stbp_loss",
    "train_direct",
]
