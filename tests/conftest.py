"""Shared fixtures: real small data (scikit-learn digits, offline) and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def shared_data_dir() -> Path:
    env = os.environ.get("SPIKEBRIDGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = shared_data_dir() / "mnist"
    if not (root / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(
            f"MNIST files not found in {root} (set SPIKEBRIDGE_SHARED_DATA to the shared data folder)"
        )
    return root


@pytest.fixture(scope="session")
def digits_loaders():
    from spikebridge.data import make_loaders

    return make_loaders("digits", batch_size=64, seed=0)


@pytest.fixture(scope="session")
def trained_digits_cnn():
    """A small CNN trained briefly on digits (shared by tests; do not modify it in place). It
    trains on a loader of its own: the shared ``digits_loaders``' shuffling state depends on the
    tests that ran before, and so would the network."""
    from spikebridge.data import make_loaders
    from spikebridge.models import build_model
    from spikebridge.training import train_ann

    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 8, width=0.5)
    train_ann(model, make_loaders("digits", batch_size=64, seed=0)[0], epochs=8, lr=3e-3, seed=0)
    return model.eval()
