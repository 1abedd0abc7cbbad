"""Shared helpers of the test_methods_* files: small ANNs trained on sklearn digits (offline).

Imported by the other test_methods_* files; it holds one sanity test of its own.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from spikebridge.data import make_loaders
from spikebridge.evaluation import evaluate
from spikebridge.models import build_model
from spikebridge.training import train_ann


@functools.cache
def digits_loaders(batch_size: int = 64):
    return make_loaders("digits", None, batch_size, None, 0)


def digits_tensors(train: bool, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [N, 1, 8, 8] in [0, 1], y [N]) of the digits train or test split (first n samples)."""
    train_loader, test_loader = digits_loaders()
    loader = train_loader if train else test_loader
    xs, ys = zip(*[(x, y) for x, y in loader.dataset])
    x, y = torch.stack(xs), torch.tensor(ys)
    return (x[:n], y[:n]) if n is not None else (x, y)


@functools.cache
def trained_digits(
    arch: str = "cnn",
    activation: str = "relu",
    pool: str = "avg",
    width: float = 0.25,
    epochs: int = 3,
    seed: int = 0,
    **options,
) -> nn.Module:
    """A small ANN trained briefly on digits with a fixed seed (cached per process)."""
    torch.manual_seed(seed)
    model = build_model(arch, 10, 1, 8, width, activation=activation, pool=pool, **options)
    train_loader, _ = make_loaders("digits", None, 64, None, seed)  # fresh shuffling stream
    train_ann(model, train_loader, epochs, 3e-3, "cpu", seed)
    return model.eval()


def ann_accuracy(model: nn.Module) -> float:
    return float(evaluate(model, digits_loaders()[1]).accuracy[0])


def test_digits_fixture_trains_a_useful_ann():
    assert ann_accuracy(trained_digits()) > 0.9
