"""calibrate_target: the whole method ``calibrated`` for one target T."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, fx

from ...normalization.calibrate import activation_layers
from ...progress import progress_bar
from ...settings import DEFAULT_PERCENTILE
from ..quantised_twin import check_calibratable, check_timesteps, quantisers, restore_activations
from .finetune import finetune, twin_reference
from .graph import CalibrationGraph, FloatReference, calibration_images
from .guard import CalibrationWarning, check_against_percentile
from .reconstruction import reconstruct
from .result import CalibratedResult, LayerCalibration
from .search import calibrate_layer
from .snn_correction import copy_biases, correct_snn_biases

if TYPE_CHECKING:
    from ..methods.calibrated import CalibratedSettings


def calibrate_target(
    prepared: fx.GraphModule,
    calibration: Iterable | Tensor,
    target: int,
    settings: CalibratedSettings,
    negative_spikes: bool = True,
    spike_levels: int = 1,
) -> CalibratedResult:
    """Thresholds and corrected biases that make the IF network accurate at T = ``target``.

    With graded spikes (``spike_levels`` = K > 1) the network at T equals the (K*T+1)-level
    quantised twin, so the twin is searched at K*T levels, and the SNN correction simulates the
    graded network at T (:attr:`CalibratedResult.spike_levels`).

    Args:
        prepared: the ANN after :func:`~spikebridge.convert.prepare`, left untouched. Its
            max-pools stay (the network pools spikes by their running count, which keeps it
            equal to the twin; see :func:`quantised_twin`).
        calibration: a loader of (x, y) batches or a tensor [N, ...]; only the images are used,
            except by the fine-tune (``settings.finetune_steps`` > 0: all of the loader's images
            and labels; a bare tensor is then refused).
        target: the target T (the network is built for this T, not for every T).
        settings: :class:`CalibratedSettings`.
        negative_spikes: the neurons the network will have (signed IF: it equals its twin
            wherever no spike is owed at T; plain IF: not exact). The search on the twin is the
            same for both; the SNN correction simulates the network with these neurons
            (:func:`for_neurons` redoes only that for the other kind).

    Returns a :class:`CalibratedResult` (``.build()`` gives the network).
    """
    check_timesteps(target)
    check_calibratable(prepared)
    levels = target * spike_levels  # the twin's levels above zero
    check_timesteps(levels)
    settings = _seeded(settings)
    start, cpu_start = time.perf_counter(), time.process_time()
    x = _images(prepared, calibration, settings.samples)
    if settings.iterations and x.shape[0] < settings.batch_size:
        raise ValueError(
            f"reconstruction needs at least one batch of calibration images: got {x.shape[0]}, "
            f"batch_size is {settings.batch_size}; give more calibration images or a smaller "
            "batch_size (or iterations=0)"
        )
    reference, floats = _float_reference(prepared, x, settings)
    twin = copy.deepcopy(reference)
    acts = activation_layers(twin)
    names = list(acts)
    graph = CalibrationGraph(twin, names)
    layers: list[LayerCalibration] = []
    unit: list[str] = []
    graded = f" K={spike_levels}" if spike_levels > 1 else ""
    bar = progress_bar(names, settings.progress, f"calibrate T={target}{graded}")
    for index, name in enumerate(bar):
        layers.append(calibrate_layer(twin, floats, graph, name, acts[name], x, levels, settings))
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
    start_from = "search"
    divergence: dict[str, float] = {}
    if settings.output_check:
        percentile, divergence["search"], divergence["percentile"] = check_against_percentile(
            twin, reference, acts, floats, x, levels, thresholds, settings.batch_size
        )
        if percentile is not None:
            warnings.warn(
                f"calibrated T={target}{graded}: the layer-wise search's twin is further from the "
                f"float ANN (KL {divergence['search']:.4g} on the calibration images) than the "
                f"channel-wise {DEFAULT_PERCENTILE:g}th-percentile twin ({divergence['percentile']:.4g}); "
                "starting from the percentile thresholds (calibrated's output check, "
                "docs/normalization.md)",
                CalibrationWarning,
                stacklevel=2,
            )
            start_from, thresholds = "percentile", percentile
            potentials = {n: torch.tensor(0.5) for n in thresholds}
            result = copy.deepcopy(
                reference
            )  # the ANN's own (frozen) biases: the SNN correction's start
    searched = CalibratedResult(
        target,
        result,
        thresholds,
        layers,
        time.perf_counter() - start,
        time.process_time() - cpu_start,
        potentials,
        negative_spikes,
        start=start_from,
        divergence=divergence,
        spike_levels=spike_levels,
    )
    if settings.finetune_steps:
        searched = finetune(searched, calibration, settings)
        report = searched.finetune  # rolled back: corrected as the calibration alone is
        if not report.rolled_back and report.forward == "network":
            # the network itself was trained: no correction towards its twin (the other kind
            # of neuron, :func:`for_neurons`, is corrected towards it from ``searched``)
            kept = searched if settings.snn_correction else None
            return dataclasses.replace(searched, searched=kept)
        if not report.rolled_back:
            floats = twin_reference(searched, x, settings)  # the SNN's goal: its tuned twin
    if not settings.snn_correction:
        return searched
    images = x[: settings.snn_samples]
    reference = floats if images.shape[0] == x.shape[0] else floats.subset(images.shape[0])
    return _correct_simulated(searched, graph, reference, images, settings, negative_spikes)


def for_neurons(
    calibration: CalibratedResult,
    prepared: fx.GraphModule,
    data: Iterable | Tensor,
    negative_spikes: bool,
    settings: CalibratedSettings,
) -> CalibratedResult:
    """The same calibration for the other kind of neuron: the twin search is shared, the SNN
    correction is redone on a simulation with ``negative_spikes`` neurons (plain IF neurons
    cannot take back an early spike, so their mean error differs from the signed network's).

    ``prepared`` and ``data`` are what the calibration was made from (the float ANN and the
    calibration images); a calibration without SNN correction is the same for both kinds.
    """
    if calibration.negative_spikes == negative_spikes:
        return calibration
    settings = _seeded(settings)
    searched = calibration.searched
    if searched is None:
        return dataclasses.replace(calibration, negative_spikes=negative_spikes)
    start, cpu_start = time.perf_counter(), time.process_time()
    images = _images(prepared, data, settings.snn_samples)
    reference, floats = _float_reference(prepared, images, settings)
    graph = CalibrationGraph(reference, list(activation_layers(reference)))
    if searched.finetune is not None and not searched.finetune.rolled_back:  # its tuned twin
        floats = twin_reference(searched, images, settings)
    setup, cpu_setup = time.perf_counter() - start, time.process_time() - cpu_start
    redone = _correct_simulated(searched, graph, floats, images, settings, negative_spikes)
    redone.seconds += setup  # the search's time, this correction's and its setup's
    redone.cpu_seconds += cpu_setup
    return redone


def _seeded(settings: CalibratedSettings) -> CalibratedSettings:
    """``settings`` with seed 0 where it names none (the method gives the conversion's)."""
    return settings if settings.seed is not None else dataclasses.replace(settings, seed=0)


def _images(prepared: fx.GraphModule, data: Iterable | Tensor, count: int) -> Tensor:
    """The first ``count`` calibration images [N, ...], on the ANN's device."""
    device = next((p.device for p in prepared.parameters()), torch.device("cpu"))
    return calibration_images(data, count).to(device)


def _float_reference(
    prepared: fx.GraphModule, x: Tensor, settings: CalibratedSettings
) -> tuple[fx.GraphModule, FloatReference]:
    """A frozen copy of the float ANN (in eval mode; ``prepared`` is left as it is) and its
    activations' inputs on x."""
    reference = copy.deepcopy(prepared).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    names = list(activation_layers(reference))
    return reference, FloatReference(reference, x, names, settings.batch_size, settings.cache_bytes)


def _correct_simulated(
    searched: CalibratedResult,
    graph: CalibrationGraph,
    reference: FloatReference,
    images: Tensor,
    settings: CalibratedSettings,
    negative_spikes: bool,
) -> CalibratedResult:
    """A copy of ``searched`` whose biases (and potentials) are corrected for the mean error of
    its simulated network with ``negative_spikes`` neurons; ``searched`` is kept as is."""
    start, cpu_start = time.perf_counter(), time.process_time()
    calibration = dataclasses.replace(
        searched,
        prepared=copy.deepcopy(searched.prepared),
        initial_potentials={n: p.clone() for n, p in searched.initial_potentials.items()},
        negative_spikes=negative_spikes,
        searched=searched,
    )
    network = calibration.build()
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
    calibration.layers = [dataclasses.replace(report) for report in searched.layers]
    by_name = {report.name: report for report in calibration.layers}
    for consumer, layer in corrected.items():
        if consumer in by_name:
            by_name[consumer].snn_corrected = layer
    calibration.seconds += time.perf_counter() - start
    calibration.cpu_seconds += time.process_time() - cpu_start
    return calibration
