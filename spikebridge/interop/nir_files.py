"""Writing a run's spiking networks as NIR files (the ``export_nir`` setting of ``spikebridge
convert``, ``train`` and ``compare``; docs/nir.md)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from ..engine.network import SpikingNetwork
from .nir_export import NIRExportError, NIRExportWarning, export_nir
from .nir_metadata import require_nir


def check_nir_available() -> None:
    """Fail before a long run, not after it, when ``nir`` is missing (the message names pip)."""
    require_nir()


def export_nir_files(
    networks: Mapping[str, SpikingNetwork],
    folder: str | Path,
    input_shape: tuple[int, ...],
    pattern: str = "snn_{key}.nir",
) -> dict[str, Path]:
    """Write each network to ``folder/pattern.format(key=key)`` (atomically); key -> path.

    ``input_shape`` is (C, H, W) of one input. Instead of one warning per node, each file whose
    nodes need spikebridge's metadata gets one :class:`NIRExportWarning` that names them. A
    network NIR cannot express is left out with a :class:`NIRExportWarning` giving the reason (the
    run's other results stand).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for key, network in networks.items():
        path = folder / pattern.format(key=key)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NIRExportWarning)
            try:
                export_nir(network, path, input_shape=input_shape)
            except NIRExportError as err:
                failed = str(err)
            else:
                failed = None
        if failed is not None:
            warnings.warn(f"{path.name} not written: {failed}", NIRExportWarning, stacklevel=2)
            continue
        nodes = [str(w.message).split("'")[1] for w in caught if w.category is NIRExportWarning]
        if nodes:
            warnings.warn(
                f"{path.name}: {len(nodes)} node(s) need spikebridge's NIR metadata (read it with "
                f"spikebridge.import_nir; other readers change them): {', '.join(nodes)}",
                NIRExportWarning,
                stacklevel=2,
            )
        written[key] = path
    return written


__all__ = ["check_nir_available", "export_nir_files"]
