"""Interchange with other tools: NIR export and import (docs/nir.md).

``nir`` is an optional dependency (``pip install 'spikebridge[nir]'``); it is imported only when
a function here runs, so ``import spikebridge`` works without it.
"""

from .nir_checks import NIRImportError
from .nir_export import NIRExportError, NIRExportWarning, build_nir_graph, export_nir
from .nir_files import check_nir_available, export_nir_files
from .nir_import import import_nir
from .nir_metadata import NIRUnavailable

__all__ = [
    "NIRExportError",
    "NIRExportWarning",
    "NIRImportError",
    "NIRUnavailable",
    "build_nir_graph",
    "check_nir_available",
    "export_nir",
    "export_nir_files",
    "import_nir",
]
