"""The threshold methods of the conversion route, as a registry (in the spirit of torch.ao's
observers and QConfig, and of SpikingJelly's recipes: a method is a small object that holds its own
settings, and a function from calibration statistics and those settings to thresholds).

Every module in this package registers one :class:`ThresholdMethod` when imported; the package
imports them all, so adding a method, with its settings, is adding one file here::

    # spikebridge/convert/methods/my_method.py
    from dataclasses import dataclass
    from typing import ClassVar

    from ...settings import setting
    from . import MethodSettings, ThresholdMethod, register

    @dataclass(frozen=True)
    class MyMethodSettings(MethodSettings):
        prefix: ClassVar[str] = "my_method_"            # flag --my-method-scale, key my_method_scale
        scale: float = setting(1.0, "my-method: factor on each layer's maximum", positive=True)

    def thresholds(source, settings):                   # source: a MethodInput
        stats = source.statistics()                      # calibration statistics, computed once
        return {name: settings.scale * s.max.amax() for name, s in stats.layers.items()}

    register(ThresholdMethod(
        name="my-method", paper="Someone 2024", help="what it does, in one line",
        build=thresholds, settings=MyMethodSettings, calibrates=True,
    ))

:data:`METHODS`, ``"all"``, the command-line help, the flags and config keys of the methods'
settings (:func:`method_settings_class`) and the error messages are read from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, fx, nn

from ...engine.graph import MethodNotApplicable
from ...normalization.calibrate import CalibrationStatistics
from ...plots import register_label
from ...registry import Registry
from ...settings import SettingsError, check_all, register_check

Scales = dict[str, Tensor]


@dataclass(frozen=True)
class MethodSettings:
    """Base of a method's settings: a frozen dataclass whose fields are declared with
    :func:`spikebridge.settings.setting` (checked when made). A field with a flag becomes the
    command-line flag and config key ``prefix + name`` (``--spike-norm-window``); a field
    declared with ``flag=False`` is a Python-only option."""

    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_all(self)

    def network_label(self, method: str) -> str:
        """How tables name ``method``'s networks built with these settings (the method's name;
        a setting that retrains says so, e.g. ``calibrated+ft300``: :mod:`spikebridge.labels`)."""
        return method


@dataclass(frozen=True)
class NoSettings(MethodSettings):
    """The settings of a method that has none."""


@dataclass(frozen=True)
class MethodInput:
    """What a method builds its thresholds from (made by the
    :class:`~spikebridge.convert.Converter`).

    Attributes:
        prepared: the prepared ANN (:func:`~spikebridge.convert.prepare`); do not change it.
        calibration: the calibration data ((x, y) batches or a tensor [N, ...]; None: none).
        statistics: the calibration statistics (one pass, computed on first call, shared).
        device, seed, maxpool, progress: the conversion's device, seed, max-pool handling and
            whether to show progress bars.
        target: the target T of a ``per_timesteps`` method (else None).
        negative_spikes: the neurons the network gets (signed IF or plain IF).
        other: this method's output for the same target and the other kind of neuron, when
            already built (for a ``per_neuron`` method that can reuse part of it).
        spike_levels: K, the threshold units a spike of the network's neurons carries (graded
            spikes; 1: binary). The builder divides every threshold by K, so a method gives the
            thresholds of the (K*T+1)-level network; a ``per_timesteps`` method calibrates for
            K*T levels (calibrated: its twin at K*T).
    """

    prepared: fx.GraphModule
    calibration: Iterable | Tensor | None
    statistics: Callable[[], CalibrationStatistics]
    device: torch.device
    seed: int = 0
    maxpool: str = "spiking"
    progress: bool = False
    target: int | None = None
    negative_spikes: bool = False
    other: MethodOutput | None = None
    spike_levels: int = 1

    def require_calibration(self, method: str) -> Iterable | Tensor:
        """The calibration data; ValueError naming ``method`` when there is none."""
        if self.calibration is None:
            raise ValueError(f"method {method!r} needs calibration data: pass `calibration`")
        return self.calibration


@dataclass
class MethodOutput:
    """What a method gives: thresholds, and for a method that also changes the ANN (biases or
    weights) or the neurons' initial potentials, those.

    Attributes:
        thresholds: activation layer -> threshold (0-d or [C]).
        model: the prepared ANN to build the network from (None: the converter's).
        potentials: activation layer -> u[0] / theta (0-d or [C]) replacing the method's
            ``initial_potential`` for the named layers, unless the caller gives one (None: none).
        detail: the method's own record of how it chose them (e.g. calibrated's
            :class:`~spikebridge.convert.calibration.CalibratedResult`).
    """

    thresholds: Scales
    model: fx.GraphModule | None = None
    potentials: dict[str, Tensor] | None = None
    detail: Any = None


@dataclass(frozen=True)
class ThresholdMethod:
    """One way of choosing every neuron layer's threshold.

    Attributes:
        name: what users type (``--method NAME``).
        paper: where the method comes from, e.g. ``"Diehl 2015"``.
        help: one line for the command-line help.
        build: ``build(source: MethodInput, settings) -> Scales | MethodOutput``.
        settings: the method's settings dataclass (a :class:`MethodSettings`; its defaults are
            the method's).
        label: how tables and plots name it (default ``name (paper)``).
        needs_data: needs calibration images.
        calibrates: reads the shared calibration statistics (their one pass is timed with it).
        uses_percentile: its thresholds depend on the percentile p (a ``percentile`` field in
            its settings; ``--percentile auto`` chooses it).
        activations: the activation types it applies to (None: any); a network with another
            activation is refused with ``requirement`` and ``fix`` in the message.
        per_timesteps: builds one network per target T (T = 1, 2, 4, ...), each scored at its
            own T only.
        per_neuron: its output depends on the kind of neuron (signed or plain IF).
        initial_potential, negative_spikes: the neuron defaults of its networks (u[0] / theta;
            signed IF neurons).
        max_pool_rule: how its networks pool spikes where the ANN max-pools (with the
            converter's ``maxpool="spiking"``): ``"gate"`` (Rueckauer 2017) or ``"running"``
            (the change of the largest running count: exact in counts, see
            :class:`~spikebridge.engine.neurons.SpikingMaxPool`).
        order: position in :data:`METHODS` (the papers' chronology for the built-in ones).
    """

    name: str
    paper: str
    help: str
    build: Callable[[MethodInput, Any], Scales | MethodOutput]
    settings: type = NoSettings
    plot_label: str = ""
    needs_data: bool = True
    calibrates: bool = False
    uses_percentile: bool = False
    activations: tuple[type[nn.Module], ...] | None = None
    requirement: str = ""
    fix: str = "pick another method"
    per_timesteps: bool = False
    per_neuron: bool = False
    initial_potential: float = 0.0
    negative_spikes: bool = False
    order: int = 100
    max_pool_rule: str = "gate"

    @property
    def label(self) -> str:
        """``name (paper)``, for tables and help texts."""
        return f"{self.name} ({self.paper})"

    @property
    def display(self) -> str:
        """How plots and reports name it (``plot_label``, else :attr:`label`)."""
        return self.plot_label or self.label

    def check_activations(self, activations: dict[str, nn.Module]) -> None:
        """Raise :class:`MethodNotApplicable` naming the first layer whose activation does not fit."""
        if self.activations is None:
            return
        for name, act in activations.items():
            if not isinstance(act, self.activations):
                raise MethodNotApplicable(
                    f"method {self.name!r} {self.requirement or 'does not apply'} (layer "
                    f"{name!r} is a {type(act).__name__}); {self.fix}"
                )


REGISTRY: Registry[ThresholdMethod] = Registry("method")
get_method = REGISTRY.get
method_names = REGISTRY.names


def register(method: ThresholdMethod) -> ThresholdMethod:
    """Add ``method`` to the registry (a second method of the same name is an error; so is a
    settings key another method's settings already use)."""
    if method.name == "all" or "," in method.name:
        raise ValueError(f"{method.name!r} cannot name a threshold method")
    if not (isinstance(method.settings, type) and issubclass(method.settings, MethodSettings)):
        raise TypeError(f"method {method.name!r}: settings must be a MethodSettings dataclass")
    taken = {key: other.name for other in REGISTRY.entries() if other.name != method.name
             for key in _flat_fields(other.settings)}  # fmt: skip
    for key in _flat_fields(method.settings):
        if key in taken:
            raise ValueError(
                f"method {method.name!r}: setting {key!r} is already method {taken[key]!r}'s"
            )
    register_label(method.name, method.display)
    return REGISTRY.register(method)


def _flat_fields(cls: type) -> dict[str, Any]:
    """Flat key (``prefix + name``) -> field of every flagged setting of a settings class."""
    return {cls.prefix + f.name: f for f in fields(cls) if f.metadata.get("flag", True)}


def method_settings_class() -> type:
    """A flat dataclass of every registered method's flagged settings (keys ``prefix + name``,
    e.g. ``spike_norm_window``), for command-line flags and config keys; made from the registry
    when called, so a method registered later is in it too."""
    specs = []
    for method in REGISTRY.entries():
        for key, f in _flat_fields(method.settings).items():
            specs.append((key, f.type, field(default=f.default, metadata=f.metadata)))
    return make_dataclass("MethodSettingsFlags", specs, bases=(_FlatChecked,))


class _FlatChecked:
    def __post_init__(self) -> None:
        check_all(self)


def resolve_settings(values: Mapping[str, Any]) -> dict[str, MethodSettings]:
    """Every registered method's settings from flat ``values`` (flags or config keys such as
    ``spike_norm_window``; keys of other settings and None values are ignored): method name ->
    its settings instance. A wrong value raises :class:`~spikebridge.settings.SettingsError`."""
    resolved = {}
    for method in REGISTRY.entries():
        cls = method.settings
        own = {
            f.name: values[key]
            for key, f in _flat_fields(cls).items()
            if values.get(key) is not None
        }
        resolved[method.name] = cls(**own)
    return resolved


def flat_settings(by_method: Mapping[str, MethodSettings]) -> dict[str, Any]:
    """The inverse of :func:`resolve_settings`: flat key -> value of every flagged setting."""
    values: dict[str, Any] = {}
    for method in REGISTRY.entries():
        settings = by_method.get(method.name) or method.settings()
        for key, f in _flat_fields(type(settings)).items():
            values[key] = getattr(settings, f.name)
    return values


REGISTRY.discover(__name__, __path__)

METHODS: tuple[str, ...] = method_names()
"""Every method in this package, in order (``method_names()`` includes methods registered later)."""
PERCENTILE_METHODS: tuple[str, ...] = tuple(m for m in METHODS if get_method(m).uses_percentile)
"""The methods whose thresholds depend on the percentile p."""


def method_list(methods: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every method; ``"max,channel"`` or a list -> those names, in order, each once.

    Unknown names raise ValueError listing the known ones. Under ``"all"`` a method that does not
    apply to a network is skipped with its reason (see :mod:`spikebridge.convert.loop`), so
    ``"all"`` means every applicable method.
    """
    if isinstance(methods, str):
        if methods.strip() == "all":
            return list(method_names())
        methods = [m.strip() for m in methods.split(",")]
    names = list(dict.fromkeys(m for m in methods if m))
    if not names:
        known = ", ".join(method_names())
        raise ValueError(f"no conversion method given: name one of {known} or 'all'")
    for name in names:
        get_method(name)
    return names


def check_methods(value: str | list) -> str | list[str]:
    """A ``methods`` setting checked against the registry (SettingsError names the unknown)."""
    known = method_names()
    if isinstance(value, list) and not all(isinstance(m, str) for m in value):
        raise SettingsError(f"methods must be a list of method names (strings), got {value!r}")
    names = value.split(",") if isinstance(value, str) else value
    unknown = [m.strip() for m in names if m.strip() and m.strip() not in (*known, "all")]
    if unknown:
        raise SettingsError(
            f"methods: unknown method(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(known)} or 'all'"
        )
    try:
        method_list(value)
    except ValueError:
        raise SettingsError(
            f"methods names no method; choose from {', '.join(known)} or 'all'"
        ) from None
    return value.strip() if isinstance(value, str) else list(value)


register_check("methods", check_methods)


def methods_help() -> str:
    """One line per method (``name (paper): help``) for command-line help texts."""
    return "; ".join(f"{m.label}: {m.help}" for m in REGISTRY.entries())


__all__ = [
    "METHODS",
    "PERCENTILE_METHODS",
    "REGISTRY",
    "MethodInput",
    "MethodOutput",
    "MethodSettings",
    "NoSettings",
    "Scales",
    "ThresholdMethod",
    "check_methods",
    "flat_settings",
    "get_method",
    "method_list",
    "method_names",
    "method_settings_class",
    "methods_help",
    "register",
    "resolve_settings",
]
