"""calibrate_low_latency: the whole method ``calibrated`` for one target T."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable

import torch
from torch import Tensor, fx

from ...normalization.calibrate import activation_layers
from ...progress import progress_bar
from ..quantised_twin import check_timesteps, linear_layers_only, quantisers, restore_activations
from .graph import CalibrationGraph, FloatReference, calibration_images
from .reconstruction import reconstruct
from .result import LayerCalibration, LowLatencyCalibration
from .search import calibrate_layer
from .settings import LowLatencySettings


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
    graph = CalibrationGraph(twin, names)
    floats = FloatReference(reference, x, names, settings.batch_size, settings.cache_bytes)
    layers: list[LayerCalibration] = []
    unit: list[str] = []
    bar = progress_bar(names, settings.progress, f"calibrate T={timesteps}")
    for index, name in enumerate(bar):
        layers.append(
            calibrate_layer(twin, floats, graph, name, acts[name], x, timesteps, settings)
        )
        unit.append(name)
        if settings.iterations and (len(unit) == settings.block or index == len(names) - 1):
            error = reconstruct(twin, floats, graph, unit, x, settings)
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
