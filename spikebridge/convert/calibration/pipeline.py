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
from .snn_correction import copy_biases, correct_snn_biases


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
    potentials = {n: q.initial_potential.detach().clone() for n, q in quantisers(twin).items()}
    result = restore_activations(twin)
    for p in result.parameters():
        p.requires_grad_(False)
    calibration = LowLatencyCalibration(timesteps, result, thresholds, layers, 0.0, 0.0, potentials)
    if settings.snn_correction:
        _correct_simulated(calibration, graph, floats, x, settings)
    calibration.seconds = time.perf_counter() - start
    calibration.cpu_seconds = time.process_time() - cpu_start
    return calibration


def _correct_simulated(
    calibration: LowLatencyCalibration,
    graph: CalibrationGraph,
    floats: FloatReference,
    x: Tensor,
    settings: LowLatencySettings,
) -> None:
    """Correct the calibrated network's biases (and potentials) for its simulated mean error."""
    network = calibration.build()
    images = x[: settings.snn_samples]
    reference = floats if images.shape[0] == x.shape[0] else floats.subset(images.shape[0])
    corrected = correct_snn_biases(
        network, graph, reference, images, calibration.timesteps, settings.batch_size
    )
    copy_biases(
        network.module,
        calibration.prepared,
        [layer for layer in corrected.values() if not layer.endswith(".initial_potential")],
    )
    for consumer, layer in corrected.items():
        if layer.endswith(".initial_potential"):
            phi = network.module.get_submodule(consumer).initial_potential
            calibration.initial_potentials[consumer] = torch.as_tensor(phi).detach().clone()
    by_name = {report.name: report for report in calibration.layers}
    for consumer, layer in corrected.items():
        if consumer in by_name:
            by_name[consumer].snn_corrected = layer
