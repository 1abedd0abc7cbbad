"""Training the ANN that the conversion route starts from."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .batchnorm import reestimate_batchnorm
from .evaluation import evaluate
from .progress import progress_bar
from .runtime import seed_everything
from .settings import TrainingSettings


def train_ann(
    model: nn.Module,
    train_loader: Iterable,
    epochs: int,
    lr: float = TrainingSettings().lr,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    test_loader: Iterable | None = None,
    weight_decay: float = 0.0,
    validation_loader: Iterable | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` with Adam and a cosine learning-rate schedule; cross-entropy on [B, K] logits.

    After every epoch the BatchNorm running statistics are re-estimated with that epoch's
    weights (:func:`spikebridge.batchnorm.reestimate_batchnorm`, as SWA's ``update_bn``), so the
    network scored and converted is the one trained, not one whose statistics lag its weights.

    Returns one dict per epoch (epoch, loss, train_accuracy: on the training batches as they
    were trained, validation_accuracy on ``validation_loader`` and test_accuracy on
    ``test_loader`` (NaN without them), seconds); ``on_epoch`` is called with each.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    seed_everything(seed)
    device = torch.device(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, epochs * len(train_loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        total_loss = correct = seen = 0
        bar = progress_bar(train_loader, progress, f"ANN epoch {epoch}/{epochs}")
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"ANN training diverged at epoch {epoch}: loss is {loss.item()}; lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * y.numel()
            correct += (logits.argmax(-1) == y).sum().item()
            seen += y.numel()
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.3f}")
        reestimate_batchnorm(model, train_loader, device)
        model.eval()
        row = {
            "epoch": epoch,
            "loss": total_loss / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "validation_accuracy": _accuracy(model, validation_loader, device),
            "test_accuracy": _accuracy(model, test_loader, device),
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    model.eval()
    return history


def _accuracy(model: nn.Module, loader: Iterable | None, device: torch.device) -> float:
    if loader is None:
        return float("nan")
    return float(evaluate(model, loader, device=device).accuracy[0])
