"""One conversion experiment: an ANN, several methods, accuracy after every step on a test set."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from ..evaluation import evaluate_ann, evaluate_snn
from ..network import SpikingNetwork
from .build import MethodNotApplicable
from .converter import Converter, applicable_methods

ACCURACY_COLUMNS = ["route", "method", "timesteps", "accuracy"]


@dataclass
class ConversionResult:
    """Accuracy table (columns route, method, timesteps, accuracy) and the networks built."""

    accuracy: pd.DataFrame
    ann_accuracy: float
    networks: dict[str, SpikingNetwork] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def resolve_methods(model: nn.Module, methods: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every applicable method; a comma-separated string or list otherwise."""
    if isinstance(methods, str):
        if methods == "all":
            return applicable_methods(model)
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if not methods:
        raise ValueError(
            "no conversion method given: name one of model, max, percentile, channel, spike-norm, qcfs"
        )
    return list(methods)


def run_conversion(
    model: nn.Module,
    calibration: Iterable,
    test_loader: Iterable,
    methods: str | Sequence[str] = "all",
    timesteps: int = 32,
    reset: str = "subtract",
    encoding: str = "analog",
    percentile: float = 99.9,
    maxpool: str = "spiking",
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    initial_potential: float | None = None,
    negative_spikes: bool | None = None,
) -> ConversionResult:
    """Convert ``model`` with each method and evaluate every t <= ``timesteps`` in one simulation.

    With ``methods="all"`` a method that does not apply is skipped and recorded in ``skipped``;
    a method named explicitly that does not apply raises :class:`MethodNotApplicable`.
    """
    if not isinstance(timesteps, int) or timesteps <= 0:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    explicit = methods != "all"
    names = resolve_methods(model, methods)
    ann_accuracy = evaluate_ann(model, test_loader, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if maxpool == "avg" and not explicit else "default")
        converter = Converter(
            model, calibration, maxpool, percentile, device, progress=progress, seed=seed
        )
    rows, networks, skipped, seconds = [], {}, {}, {}
    for method in names:
        start = time.perf_counter()
        try:
            snn = converter.build(
                method, reset, encoding, initial_potential, negative_spikes=negative_spikes
            )
        except MethodNotApplicable as err:
            if explicit:
                raise
            skipped[method] = str(err)
            continue
        result = evaluate_snn(
            snn, test_loader, timesteps, device, progress=progress, description=method
        )
        seconds[method] = time.perf_counter() - start
        networks[method] = snn
        for t, acc in enumerate(result.accuracy.tolist(), start=1):
            rows.append(("conversion", method, t, acc))
    frame = pd.DataFrame(rows, columns=ACCURACY_COLUMNS)
    return ConversionResult(frame, ann_accuracy, networks, skipped, seconds)
