"""A user's own CNN from a file: torch.export programs (.pt2), ONNX models, state dicts.

:func:`load_model` returns an ``nn.Module`` ready for :func:`spikebridge.convert.prepare` and the
rest of the conversion route. A .pt2 or .onnx file is rebuilt from its own graph (no architecture
needed), every operation mapped onto a standard ``torch.nn`` module or refused by name with the
source line; a .pt2 is read by spikebridge's own reader (``torch.export.load``, which can run code
from the file, only with ``trust=True``), and files that would run code when loaded are refused
unless ``trust=True``.
"""

from .errors import ModelLoadError, UnsafeModelError, UnsupportedOperationError
from .exported import program_to_module
from .load import check_input, file_digest, file_kind, is_graph_file, load_model
from .onnx_graph import onnx_to_module
from .safe_pt2 import load_program, read_untrusted

__all__ = [
    "ModelLoadError",
    "UnsafeModelError",
    "UnsupportedOperationError",
    "check_input",
    "file_digest",
    "file_kind",
    "is_graph_file",
    "load_model",
    "load_program",
    "onnx_to_module",
    "program_to_module",
    "read_untrusted",
]
