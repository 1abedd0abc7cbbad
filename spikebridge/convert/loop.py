"""The one conversion pipeline: a converter with every method's settings and the percentile
resolved (:func:`conversion_converter`), then every requested method -> its spiking network(s)
(:func:`converted_networks`) -> their scores (:func:`run_conversion`).

Used by ``spikebridge convert``, the comparison (:mod:`spikebridge.compare.routes.conversion`)
and benchmarks/methods_table.py. A method built for one T at a time (``per_timesteps`` in its
:class:`~spikebridge.convert.methods.ThresholdMethod`) gives one network per target
T = 1, 2, 4, ... up to the simulated T, each scored at its own T only. With graded spikes
(``spike_levels``, one K or several) every method gives one network per K, labelled
``<method>-K<K>`` (K = 1 keeps the method's name).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from ..engine.graph import ConversionError, MethodNotApplicable
from ..engine.network import SpikingNetwork
from ..evaluation import Evaluation, evaluate
from ..labels import graded_label
from ..settings import ConversionSettings, SimulationSettings, parse_spike_levels, parse_targets
from ..validation import check_positive_int
from .converter import Converter
from .methods import MethodSettings, get_method, method_list
from .tuning import PercentileChoice, resolve_percentile

SCORE_COLUMNS = ["route", "method", "timesteps", "accuracy"]
"""The columns of the conversion loop's accuracy table (the comparison's ``ACCURACY_COLUMNS``,
:mod:`spikebridge.energy.table`, add the cost columns to these)."""


def conversion_converter(
    model: nn.Module,
    calibration: Iterable | None,
    conversion: ConversionSettings,
    method_settings: Mapping[str, MethodSettings] | None = None,
    *,
    timesteps: int,
    encoding: str = "analog",
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    validation: Iterable | None = None,
) -> tuple[Converter, PercentileChoice | None]:
    """The :class:`Converter` of ``model`` with each method's settings (``method_settings``:
    method name -> settings; defaults otherwise) and the percentile methods' p resolved from
    ``conversion.percentile`` (``"auto"``: chosen on ``validation`` at
    ``conversion.selection_timesteps`` or ``timesteps``; the choice is returned)."""
    converter = Converter(
        model, calibration, conversion.maxpool, device, progress=progress, seed=seed,
        settings=method_settings,
    )  # fmt: skip
    choice = resolve_percentile(
        converter, conversion, method_list(conversion.methods), validation, timesteps, encoding
    )
    return converter, choice


def default_targets(timesteps: int) -> list[int]:
    """The targets T of a per-T method simulated up to ``timesteps``: 1, 2, 4, ... and T itself."""
    check_positive_int(timesteps, "timesteps")
    targets = [2**k for k in range(timesteps.bit_length()) if 2**k <= timesteps]
    return sorted({*targets, timesteps})


@dataclass
class ConvertedNetwork:
    """One network of the conversion loop.

    Attributes:
        method: the threshold method's name, as its settings label it (``calibrated+ft300`` for
            a fine-tuned, retrained twin: :mod:`spikebridge.labels`).
        network: the spiking network.
        timesteps: how many steps to simulate it for.
        report_steps: the steps t to report (None: every t <= ``timesteps``; a network built
            for one T is reported at that T only).
        seconds: conversion time (building, plus the calibration pass for methods that read it).
        cpu_seconds: processor time of the building (this process, all threads): the cost on
            an idle machine, which wall time on a shared one overstates.
        spike_levels: K, the threshold units one spike carries (1: binary).
    """

    method: str
    network: SpikingNetwork
    timesteps: int
    report_steps: tuple[int, ...] | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    spike_levels: int = 1

    @property
    def label(self) -> str:
        """How tables name it: the method, with ``-K<K>`` for graded spikes (K > 1)."""
        return graded_label(self.method, self.spike_levels)

    @property
    def key(self) -> str:
        """A unique name: :attr:`label`, with ``-T<T>`` for a network built for one T."""
        return self.label if self.report_steps is None else f"{self.label}-T{self.timesteps}"


def converted_networks(
    converter: Converter,
    methods: str | Sequence[str],
    timesteps: int,
    conversion: ConversionSettings | None = None,
    encoding: str = "analog",
    *,
    strict: bool = False,
    skipped: dict[str, str] | None = None,
) -> Iterator[ConvertedNetwork]:
    """The networks of every method in ``methods`` (``"all"`` or names), built one at a time.

    A method that does not apply is recorded in ``skipped`` (method -> reason) and left out;
    with ``strict``, a method named explicitly (not through ``"all"``) raises instead.
    """
    conversion = conversion or ConversionSettings()
    names = method_list(methods)
    explicit = not (isinstance(methods, str) and methods.strip() == "all")
    skipped = {} if skipped is None else skipped
    if converter.calibration is not None and any(get_method(m).calibrates for m in names):
        converter.statistics()  # one calibration pass, shared by every method that reads it
    levels = parse_spike_levels(conversion.spike_levels)
    for name in names:
        entry = get_method(name)
        targets = [None]
        if entry.per_timesteps:
            targets = (
                parse_targets(conversion.targets)
                if conversion.targets
                else default_targets(timesteps)
            )
        for k, target in ((k, t) for k in levels for t in targets):
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                network = converter.build(
                    name, conversion.reset, encoding, conversion.initial_potential,
                    negative_spikes=conversion.negative_spikes, target=target, spike_levels=k,
                )  # fmt: skip
            except (MethodNotApplicable, ConversionError) as err:
                if strict and explicit and isinstance(err, MethodNotApplicable):
                    raise
                skipped[name] = str(err)
                break
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            if entry.calibrates:
                seconds += converter.statistics_seconds_
            label = converter.settings_of(name).network_label(name)  # calibrated+ft300: retrained
            steps, report = (timesteps, None) if target is None else (target, (target,))
            yield ConvertedNetwork(label, network, steps, report, seconds, cpu_seconds, k)


@dataclass
class ConversionResult:
    """Accuracy table (columns route, method, timesteps, accuracy) and the networks built."""

    accuracy: pd.DataFrame
    ann_accuracy: float
    networks: dict[str, SpikingNetwork] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    percentile: PercentileChoice | None = None
    conversion_seconds: dict[str, float] = field(default_factory=dict)
    conversion_cpu_seconds: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    ann_evaluation: Evaluation | None = None


def run_conversion(
    model: nn.Module,
    calibration: Iterable,
    test_loader: Iterable,
    conversion: ConversionSettings | None = None,
    simulation: SimulationSettings | None = None,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    validation: Iterable | None = None,
    strict: bool = True,
    method_settings: Mapping[str, MethodSettings] | None = None,
    count_ops: bool = False,
) -> ConversionResult:
    """Convert ``model`` with each method and evaluate every t <= T in one simulation each.

    ``conversion`` and ``simulation`` hold the settings (methods, percentile, neurons; T and
    encoding), ``method_settings`` each method's own (method name -> its settings). With ``conversion.percentile == "auto"`` p is chosen on ``validation`` (held-out
    training images, never the test set). Under ``methods="all"`` a method that does not apply
    is skipped and recorded in ``skipped``; a method named explicitly that does not apply raises
    :class:`MethodNotApplicable` (unless ``strict=False``). With ``count_ops`` every
    evaluation (the ANN's too) counts operations, for the energy table; the evaluations are kept
    in the result.
    """
    conversion = conversion or ConversionSettings()
    simulation = simulation or SimulationSettings()
    explicit = not (isinstance(conversion.methods, str) and conversion.methods.strip() == "all")
    ann_evaluation = evaluate(model, test_loader, device=device, count_ops=count_ops)
    ann_accuracy = float(ann_evaluation.accuracy[0])
    evaluations: dict[str, Evaluation] = {}
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore" if conversion.maxpool == "avg" and not explicit else "default"
        )
        converter, choice = conversion_converter(
            model, calibration, conversion, method_settings, timesteps=simulation.timesteps,
            encoding=simulation.encoding, device=device, seed=seed, progress=progress,
            validation=validation,
        )  # fmt: skip
    rows, networks, skipped, seconds, conversion_seconds, cpu_seconds = [], {}, {}, {}, {}, {}
    for item in converted_networks(
        converter, conversion.methods, simulation.timesteps, conversion, simulation.encoding,
        strict=strict, skipped=skipped,
    ):  # fmt: skip
        result = evaluate(item.network, test_loader, item.timesteps, device=device,
                          progress=progress, description=item.key,
                          count_ops=count_ops)  # fmt: skip
        evaluations[item.key] = result
        seconds[item.key] = item.seconds + result.seconds
        conversion_seconds[item.key] = item.seconds
        cpu_seconds[item.key] = item.cpu_seconds
        networks[item.key] = item.network
        steps = item.report_steps or range(1, item.timesteps + 1)
        rows += [("conversion", item.label, t, float(result.accuracy[t - 1])) for t in steps]
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return ConversionResult(
        frame, ann_accuracy, networks, skipped, seconds, choice, conversion_seconds, cpu_seconds,
        evaluations, ann_evaluation,
    )  # fmt: skip
