"""The threshold methods of the conversion route, as a registry (in the spirit of torch.ao's
observers and QConfig: each method declares what it needs, the converter supplies it).

Every module in this package registers one :class:`ThresholdMethod` when imported; the package
imports them all, so adding a method is adding one file here::

    # spikebridge/convert/methods/my_method.py
    from . import ThresholdMethod, register

    def _thresholds(converter, timesteps):
        stats = converter.statistics()           # calibration statistics, computed once
        return {name: s.max.amax() for name, s in stats.layers.items()}

    register(ThresholdMethod(
        name="my-method", paper="Someone 2024", help="what it does, in one line",
        build=_thresholds, needs_data=True, calibrates=True,
    ))

:data:`METHODS`, ``"all"``, the command-line help and the error messages are read from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor, fx, nn

from ...engine.graph import MethodNotApplicable
from ...registry import Registry

if TYPE_CHECKING:
    from ..converter import Converter

Scales = dict[str, Tensor]


@dataclass(frozen=True)
class ThresholdMethod:
    """One way of choosing every neuron layer's threshold.

    Attributes:
        name: what users type (``--method NAME``).
        paper: where the method comes from, e.g. ``"Diehl 2015"``.
        help: one line for the command-line help.
        build: ``build(converter, timesteps) -> Scales``: activation layer -> threshold (0-d or
            [C]); ``converter`` gives the prepared ANN (``prepared_``), the calibration data and
            statistics (``statistics()``), ``percentile``, ``device``, ``seed`` and the Spike-Norm
            options; ``timesteps`` is the target T for a ``per_timesteps`` method, else None.
        needs_data: needs calibration images.
        calibrates: reads the shared calibration statistics (their one pass is timed with it).
        uses_percentile: its thresholds depend on the percentile p (``--percentile``, ``auto``).
        activations: the activation types it applies to (None: any); a network with another
            activation is refused with ``requirement`` and ``fix`` in the message.
        per_timesteps: builds one network per target T (T = 1, 2, 4, ...), each scored at its
            own T only.
        initial_potential, negative_spikes: the neuron defaults of its networks (u[0] / theta;
            signed IF neurons).
        model: ``model(converter, timesteps, negative_spikes) -> GraphModule``: the prepared
            ANN its networks are built from, for a method that also changes biases or weights
            (None: the converter's ``prepared_``); ``negative_spikes`` is the kind of neuron
            the network gets, for a method that corrects for the simulated network.
        potentials: ``potentials(converter, timesteps, negative_spikes) -> {layer: u[0] /
            theta}`` (0-d or [C]): per-layer initial potentials that replace
            ``initial_potential`` for the named layers, unless the caller gives an initial
            potential explicitly (None: none).
        max_pool_rule: how its networks pool spikes where the ANN max-pools (with the
            converter's ``maxpool="spiking"``): ``"gate"`` (Rueckauer 2017) or ``"running"``
            (the change of the largest running count: exact in counts, see
            :class:`~spikebridge.engine.neurons.SpikingMaxPool`).
        order: position in :data:`METHODS` (the papers' chronology for the built-in ones).
    """

    name: str
    paper: str
    help: str
    build: Callable[[Converter, int | None], Scales]
    needs_data: bool = True
    calibrates: bool = False
    uses_percentile: bool = False
    activations: tuple[type[nn.Module], ...] | None = None
    requirement: str = ""
    fix: str = "pick another method"
    per_timesteps: bool = False
    initial_potential: float = 0.0
    negative_spikes: bool = False
    order: int = 100
    model: Callable[[Converter, int | None, bool], fx.GraphModule] | None = None
    potentials: Callable[[Converter, int | None, bool], dict[str, Tensor]] | None = None
    max_pool_rule: str = "gate"

    @property
    def label(self) -> str:
        """``name (paper)``, for tables and help texts."""
        return f"{self.name} ({self.paper})"

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
    """Add ``method`` to the registry (a second method of the same name is an error)."""
    if method.name == "all" or "," in method.name:
        raise ValueError(f"{method.name!r} cannot name a threshold method")
    return REGISTRY.register(method)


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


def methods_help() -> str:
    """One line per method (``name (paper): help``) for command-line help texts."""
    return "; ".join(f"{m.label}: {m.help}" for m in REGISTRY.entries())


__all__ = [
    "METHODS",
    "REGISTRY",
    "PERCENTILE_METHODS",
    "Scales",
    "ThresholdMethod",
    "get_method",
    "method_names",
    "method_list",
    "methods_help",
    "register",
]
