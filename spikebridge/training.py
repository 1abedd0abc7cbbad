"""Training the ANN that the conversion route starts from."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import torch
from torch import nn

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
) -> list[dict]:
    """Train ``model`` with Adam and a cosine learning-rate schedule; cross-entropy on [B, K] logits.

    Returns one dict per epoch (epoch, loss, train_accuracy, test_accuracy, seconds).
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
        row = {
            "epoch": epoch,
            "loss": total_loss / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "test_accuracy": float(evaluate(model, test_loader, device=device).accuracy[0])
            if test_loader is not None
            else float("nan"),
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
    model.eval()
    return history
