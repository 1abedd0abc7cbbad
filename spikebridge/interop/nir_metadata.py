"""What spikebridge writes into NIR metadata, and the ``nir`` optional dependency.

NIR (Pedersen et al. 2024, "Neuromorphic intermediate representation", Nature Communications 15)
has no reset by subtraction, no initial membrane potential, no signed neurons, no max-pooling
and no notion of how a static input or a readout is coded over time. spikebridge keeps those
facts in each node's ``metadata["spikebridge"]`` (a flat dict of strings, numbers and arrays that
NIR's HDF5 writer stores as is), so :func:`~spikebridge.interop.import_nir` rebuilds the exact
network, while another reader sees a plain NIR graph. docs/nir.md has the table.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

KEY = "spikebridge"
"""The metadata key under which spikebridge's facts about a node travel."""

FORMAT = 1
"""Version of the metadata layout; :func:`import_nir` refuses a newer one."""

DEFAULT_DT = 1e-4
"""The step length (seconds) that maps a discrete step onto NIR's continuous-time neurons.

NIR's LIF is tau dv/dt = (v_leak - v) + R I; one forward-Euler step of length dt gives
v[t] = (1 - dt/tau) v[t-1] + (dt/tau) R I[t]. 1e-4 s is the step snnTorch and Norse assume when
they read NIR, so their readings of an exported LIF agree with spikebridge's."""

PIP_HINT = "pip install 'spikebridge[nir]'  (or: pip install nir nirtorch)"


class NIRUnavailable(ImportError):
    """The optional ``nir`` package is missing; the message names the pip command."""


def require_nir():
    """The ``nir`` module, or :class:`NIRUnavailable` naming the pip command."""
    try:
        return importlib.import_module("nir")
    except ModuleNotFoundError as err:
        raise NIRUnavailable(
            f"NIR export and import need the optional package 'nir', which is not installed: "
            f"{PIP_HINT}"
        ) from err


def node_metadata(**facts: Any) -> dict[str, Any]:
    """``{"spikebridge": facts}`` with every value made storable (str, float, int, array)."""
    return {KEY: {name: _storable(value) for name, value in facts.items()}}


def _storable(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # h5py reads bools back as numpy.bool_; ints survive unchanged
    if isinstance(value, (int, float, str, np.ndarray)):
        return value
    if isinstance(value, (tuple, list)):
        return np.asarray(value)
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    raise TypeError(f"cannot store {type(value).__name__} in NIR metadata")


def read_facts(node: Any) -> dict[str, Any]:
    """spikebridge's facts about a NIR node ({} for a node written by another tool).

    Values come back as Python scalars, strings or numpy arrays, whether the graph was read from
    a file (h5py gives numpy scalars and bytes) or built in memory.
    """
    meta = getattr(node, "metadata", None)
    if not isinstance(meta, dict) or KEY not in meta or not isinstance(meta[KEY], dict):
        return {}
    return {str(k): _plain(v) for k, v in meta[KEY].items()}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.ndim == 0:
        return _plain(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = [
    "DEFAULT_DT",
    "FORMAT",
    "KEY",
    "PIP_HINT",
    "NIRUnavailable",
    "node_metadata",
    "read_facts",
    "require_nir",
]
