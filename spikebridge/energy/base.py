"""Energy models: the protocol, the registry, and SRAM energy by capacity.

An energy model is one module of this package: a dataclass whose fields are its constants
(declared with :func:`spikebridge.settings.setting`, so they can become flags and config keys),
a ``name``, a docstring citing its source and stating what it leaves out, registered with
:func:`register_energy_model`::

    @register_energy_model
    @dataclass
    class MyModel(EnergyModel):
        '''One line; source; what it leaves out.'''
        name: ClassVar[str] = "mine"
        e_op_pj: float = setting(1.0, "energy of one operation (pJ)", non_negative=True)

        def layer_energy(self, counts):
            return [EnergyTerm(layer.name, "ops", self.e_op_pj * layer.sops)
                    for layer in counts.layers]

Every model prices the same :class:`~spikebridge.energy.counts.NetworkCounts` (one inference,
mean over images), of a spiking network or of an ANN (``counts.spiking`` False; ``counts.bits``
its activation width). Components beyond a model's source (pooling, residual additions, the leak
of LIF neurons, signed spikes, the readout) are separate named components
(:data:`EXTRA_COMPONENTS`), never folded into the source's figure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..registry import Registry
from ..settings import SettingsError, register_check, setting
from .counts import NetworkCounts

EXTRA_COMPONENTS = ("pooling", "residual", "leak", "signed", "readout")
"""Components outside the papers' scope, reported apart."""

WORD_BITS = 32


@dataclass(frozen=True)
class EnergyTerm:
    """``pj`` picojoules of ``component`` spent by ``layer`` in one inference."""

    layer: str
    component: str
    pj: float


@dataclass
class EnergyModel:
    """Base of the energy models (subclass, set ``name``, implement :meth:`layer_energy`).

    Attributes:
        name: the registry key (``--energy-model`` value).
        order: place in listings.
        paper_components: the components of the source's own figure.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 100
    paper_components: ClassVar[tuple[str, ...]] = ()

    def layer_energy(self, counts: NetworkCounts) -> list[EnergyTerm]:  # pragma: no cover
        raise NotImplementedError

    def settings(self) -> dict[str, float]:
        """The model's constants by field name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


ENERGY_MODELS: Registry[type[EnergyModel]] = Registry("energy model")


def register_energy_model(cls: type[EnergyModel]) -> type[EnergyModel]:
    """Class decorator: add an energy model to :data:`ENERGY_MODELS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"energy model {cls.__name__} has no name")
    ENERGY_MODELS.register(cls)
    return cls


def get_energy_model(name: str | EnergyModel, **overrides: float) -> EnergyModel:
    """The energy model ``name`` with its defaults, some replaced by ``overrides``
    (field name -> value); an instance is returned as it is (with the overrides applied)."""
    if isinstance(name, EnergyModel):
        return dataclasses.replace(name, **overrides) if overrides else name
    cls = ENERGY_MODELS.get(name)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in overrides:
        if key not in known:
            raise ValueError(
                f"energy model {name!r} has no constant {key!r}: choose from {', '.join(sorted(known))}"
            )
    return cls(**overrides)


def energy_model_names(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``all`` (or None) -> every registered model; ``"a,b"`` or a list -> those, checked."""
    if spec is None:
        return list(ENERGY_MODELS.names())
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [i.strip() for i in items if i.strip()]
    if not items or items == ["all"]:
        return list(ENERGY_MODELS.names())
    for item in items:
        ENERGY_MODELS.get(item)  # raises naming the known ones
    return items


def sram_pj_per_byte(capacity_bytes: float, pj_8k: float, pj_32k: float, pj_1m: float) -> float:
    """Energy of one byte read or written in an SRAM of ``capacity_bytes`` (Lemaire 2022 after
    Horowitz 2014: 10 / 20 / 100 pJ per 32-bit word at 8 KiB / 32 KiB / 1 MiB, linear in the
    capacity between those points and from zero, constant beyond 1 MiB). ``pj_*`` are per word."""
    word = WORD_BITS / 8
    points = ((0.0, 0.0), (8 * 1024.0, pj_8k / word), (32 * 1024.0, pj_32k / word),
              (1024 * 1024.0, pj_1m / word))  # fmt: skip
    c = min(max(capacity_bytes, 0.0), points[-1][0])
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if c <= x1:
            return y0 + (y1 - y0) * (c - x0) / (x1 - x0)
    return points[-1][1]  # pragma: no cover


__all__ = [
    "ENERGY_MODELS",
    "EXTRA_COMPONENTS",
    "EnergyModel",
    "EnergyTerm",
    "energy_model_names",
    "get_energy_model",
    "register_energy_model",
    "sram_pj_per_byte",
]


@dataclass
class SramModel(EnergyModel):
    """The constants the memory-aware models share (Lemaire 2022 after Horowitz 2014): 32-bit
    integer arithmetic, SRAM energy by capacity, a spiking layer's event FIFO. Not a model by
    itself (not registered): :class:`~spikebridge.energy.lemaire.Lemaire` and
    :class:`~spikebridge.energy.reuse.Reuse` extend it."""

    e_add_pj: float = setting(0.1, "energy of a 32-bit integer addition (pJ)", non_negative=True,
                              maximum=1e6)  # fmt: skip
    e_mul_pj: float = setting(3.1, "energy of a 32-bit integer multiply (pJ)", non_negative=True,
                              maximum=1e6)  # fmt: skip
    sram_8kib_pj: float = setting(10.0, "energy of a 32-bit access to an 8 KiB SRAM (pJ)",
                                  non_negative=True, maximum=1e6)  # fmt: skip
    sram_32kib_pj: float = setting(20.0, "energy of a 32-bit access to a 32 KiB SRAM (pJ)",
                                   non_negative=True, maximum=1e6)  # fmt: skip
    sram_1mib_pj: float = setting(100.0, "energy of a 32-bit access to a 1 MiB SRAM (pJ)",
                                  non_negative=True, maximum=1e6)  # fmt: skip
    fifo_words: int = setting(1000, "capacity of a spiking layer's event FIFO (words)",
                              positive=True, maximum=2**30)  # fmt: skip

    def memory(self, access_bytes: float, capacity_bytes: float) -> float:
        """pJ of ``access_bytes`` read or written in an SRAM of ``capacity_bytes``."""
        per_byte = sram_pj_per_byte(
            capacity_bytes, self.sram_8kib_pj, self.sram_32kib_pj, self.sram_1mib_pj
        )
        return access_bytes * per_byte


def check_energy_models_setting(value: str) -> str:
    """The ``energy_models`` setting checked against the registry (registered with settings, which
    imports nothing above it)."""
    try:
        energy_model_names(value)
    except ValueError as err:
        raise SettingsError(f"energy_models: {err}") from None
    return value.strip()


register_check("energy_models", check_energy_models_setting)
