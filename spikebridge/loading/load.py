"""``load_model(path)``: a user's model file as an ``nn.Module`` ready for conversion.

The kind of file is read from its content (and the ``.onnx`` suffix, since ONNX has no magic
number):

- a ``torch.export`` archive (.pt2): read by spikebridge's own strict reader (nothing unpickled
  or evaluated; ``torch.export.load`` only with ``trust=True``, :mod:`.safe_pt2`), then its ATen
  graph is rebuilt from standard modules (:mod:`.exported`);
- an ONNX model (.onnx): mapped node by node (:mod:`.onnx_graph`, optional extra ``onnx``);
- a ``torch.save`` file: a state dict (``weights_only=True``, loaded into ``arch``), or, only
  with ``trust=True``, a whole pickled module (unpickling runs code from the file).

Every failure is a :class:`~spikebridge.loading.errors.ModelLoadError` naming the file.
"""

from __future__ import annotations

import hashlib
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import ModelLoadError, UnsafeModelError, UnsupportedOperationError
from .safe_pt2 import load_program, read_untrusted

GRAPH_SUFFIXES = (".pt2", ".onnx")


def file_kind(path: str | Path) -> str:
    """``pt2``, ``onnx`` or ``torch`` (a torch.save file) for the file at ``path``."""
    file = Path(path)
    if file.suffix.lower() == ".onnx":
        return "onnx"
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "pt2" if file.suffix.lower() == ".pt2" else "torch"
    if any(n == "archive_format" or n.endswith("/archive_format") for n in names) or any(
        n.endswith("serialized_exported_program.json") for n in names
    ):
        return "pt2"
    return "pt2" if file.suffix.lower() == ".pt2" else "torch"


def file_digest(path: str | Path) -> str | None:
    """The SHA-256 of the file's content (None when there is no such file)."""
    file = Path(path)
    if not file.is_file():
        return None
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_graph_file(path: str | Path) -> bool:
    """Whether ``path`` holds the model's own graph (a .pt2 program or an ONNX file), so no
    architecture is needed to load it."""
    return file_kind(path) in ("pt2", "onnx")


def _load_pt2(file: Path, trust: bool) -> nn.Module:
    """A .pt2 rebuilt from its graph: read by torch.export.load only with ``trust``, otherwise
    by spikebridge's own reader (nothing unpickled or evaluated)."""
    from .exported import map_program, program_to_module

    if trust:
        return program_to_module(load_program(file, trust=True))
    program = read_untrusted(file)
    try:
        return map_program(program)
    except (ModelLoadError, UnsupportedOperationError):
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, OverflowError) as err:
        raise ModelLoadError(
            f"{file}: the program's graph does not rebuild ({type(err).__name__}: "
            f"{_first_line(err)}); save the program again with torch.export.save"
        ) from err
    except MemoryError as err:
        raise ModelLoadError(
            f"{file}: the program's graph needs more memory than there is to rebuild"
        ) from err


def load_model(path: str | Path, trust: bool = False, arch: nn.Module | None = None) -> nn.Module:
    """The model in ``path`` as an ``nn.Module`` in eval mode, ready for :func:`spikebridge.convert`.

    Args:
        path: a .pt2 file (``torch.export.save``), an .onnx file, a state dict or a pickled
            module (``torch.save``).
        trust: allow unpickling code-capable data (pickled payloads in a .pt2, a whole pickled
            module): **this runs code from the file**; use it only for files you trust.
        arch: the architecture a state dict's weights are loaded into (unused for graph files).

    A .pt2 or .onnx model is rebuilt from its own graph (input [B, C, H, W], output [B, K]); an
    unsupported operation is an :class:`~spikebridge.loading.errors.UnsupportedOperationError`
    naming it and the source line.
    """
    file = Path(path)
    if not file.is_file():
        what = "a directory, not a model file" if file.is_dir() else "no such file"
        raise ModelLoadError(f"{path}: {what}")
    _check_recorded_checksum(file)
    kind = file_kind(file)
    if kind == "onnx":
        from .onnx_graph import onnx_to_module

        return onnx_to_module(file)
    if kind == "pt2":
        return _load_pt2(file, trust)
    return _load_torch_file(file, trust, arch)


def _check_recorded_checksum(file: Path) -> None:
    """A file the toolkit wrote (``ann.pt``, a compare cache's ``checkpoints/ann.pt``) carries
    ``<name>.sha256``: a damaged or changed copy is refused before it is read. A file without
    one (the user's own) is read as it is."""
    from ..io import ChecksumMismatch, recorded_checksums, verify_checksum

    if recorded_checksums(file) is None:
        return
    try:
        verify_checksum(file, "use an intact copy, or delete the .sha256 file if you changed it")
    except ChecksumMismatch as err:
        raise ModelLoadError(str(err)) from None


def check_input(
    model: nn.Module,
    images: torch.Tensor,
    source: str | Path,
    dataset: str,
    num_classes: int | None = None,
) -> None:
    """A :class:`ModelLoadError` when ``model`` (from file ``source``) does not take the dataset's
    images [B, C, H, W] or does not return [B, num_classes] class scores."""
    shape = tuple(images.shape[1:])
    try:
        with torch.no_grad():
            out = model.eval()(images)
    except RuntimeError as err:
        raise ModelLoadError(
            f"{source}: the model does not take {dataset} images of shape {shape} "
            f"({_first_line(err)}); use the dataset it was trained on, or export it with that "
            "input shape"
        ) from err
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"{source}: the model returns {got} for a batch of {dataset} images; conversion "
            "needs one tensor of class scores [B, classes]"
        )
    if num_classes is not None and out.shape[1] != num_classes:
        raise ModelLoadError(
            f"{source}: the model scores {out.shape[1]} classes but {dataset} has {num_classes}; "
            "use the dataset it was trained on"
        )


MODEL_REFUSAL = "it is not a plain state dict: loading it would unpickle code-capable objects"
MODEL_ADVICE = (
    "better, save the model with torch.export.save (.pt2) or as ONNX, which need no trust"
)


def _pickle_bytes(file: Path) -> bytes | None:
    """The pickle a torch.save file loads first: ``data.pkl`` of its zip, or the file itself."""
    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
                info = archive.getinfo(names[0]) if len(names) == 1 else None
                if info is None or info.file_size > (1 << 28):
                    return None
                return archive.read(info)
        return file.read_bytes()[: 1 << 28]
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, EOFError):
        return None


def _is_whole_pickle(data: bytes | None) -> bool:
    """Whether ``data`` starts with one complete, well-formed pickle: parsed opcode by opcode
    (:func:`pickletools.genops`), nothing executed. Only then could trust make a file load that
    the weights-only loader refused; a damaged file fails even when trusted."""
    if not data:
        return False
    try:
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name == "STOP":
                return True
    except (ValueError, EOFError, UnicodeDecodeError, struct.error):
        return False
    return False


def read_torch_file(file: str | Path, trust: bool, refusal: str, advice: str = "") -> object:
    """The object in a ``torch.save`` file: ``torch.load(weights_only=True)`` (tensors and plain
    containers only, no code), or, only with ``trust``, full unpickling (runs code from the file).

    Refused without trust, naming the file, ``refusal`` (what the file is) and the trust hint,
    only when the file is a well-formed pickle the weights-only loader refused; a file that is
    not one (corrupt, truncated, another format) is a :class:`ModelLoadError` naming the file,
    without the hint, since trust would not help. Every error names the file.
    """
    file = Path(file)
    with open(file, "rb") as fh:
        head = fh.read(4)
    if not (zipfile.is_zipfile(file) or head[:1] == b"\x80"):  # zip or a pickle's PROTO opcode
        raise _corrupt(file, ValueError("neither a zip archive nor a pickle"))
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower() or not _is_whole_pickle(_pickle_bytes(file)):
            raise _corrupt(file, err) from err
        if not trust:
            tail = f"; {advice}" if advice else ""
            raise UnsafeModelError(
                f"{file}: refused, because {refusal} ({_refused_global(err)}). Only if you trust "
                "the file's source, load it with --trust-checkpoint (trust=True): that unpickles "
                f"it, which can run any code{tail}"
            ) from err
        return _unpickle(file)
    except Exception as err:
        raise _corrupt(file, err) from err


def _load_torch_file(file: Path, trust: bool, arch: nn.Module | None) -> nn.Module:
    obj = read_torch_file(file, trust, MODEL_REFUSAL, MODEL_ADVICE)
    if isinstance(obj, nn.Module):
        return obj.eval()
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if isinstance(obj, dict) and obj.get("format") == "spikebridge-ann":  # a run's ann.pt
        from ..snn_files import build_ann

        if arch is None:  # its record names the architecture spikebridge built
            arch = build_ann(obj.get("ann") or {}, str(file))
        obj = obj.get("state")
        if not isinstance(obj, dict):
            raise ModelLoadError(f"{file}: a spikebridge ANN file without its weights ('state')")
    if not isinstance(obj, dict):
        raise ModelLoadError(
            f"{file}: holds a {type(obj).__name__}, not a state dict, module or program"
        )
    if arch is None:
        raise ModelLoadError(
            f"{file}: a state dict holds weights only; name its architecture (arch=..., --arch), "
            "or save the model with torch.export.save (.pt2) or as ONNX to carry its graph"
        )
    try:
        arch.load_state_dict(obj)
    except RuntimeError as err:
        raise ModelLoadError(
            f"{file}: does not match the architecture ({_load_error(err)}). Check the "
            "architecture, its width and the dataset (input channels, classes)"
        ) from err
    return arch.eval()


def _corrupt(file: Path, err: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"{file}: not a readable model file ({type(err).__name__}: {_first_line(err)}). It is "
        "corrupt, truncated or of an unknown kind; spikebridge reads .pt2 (torch.export), "
        ".onnx, and torch.save state dicts or modules"
    )


def _unpickle(file: Path) -> object:
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except AttributeError as err:
        if "__main__" in str(err) or "__mp_main__" in str(err):
            raise ModelLoadError(
                f"{file}: a pickled module whose class was defined in the script that saved it "
                f"(__main__): the file holds the weights but not the class's code ({err}). Save "
                "the model with torch.export.save (.pt2) or torch.onnx.export instead, or define "
                "or import the class in your __main__ before loading"
            ) from err
        raise ModelLoadError(
            f"{file}: a pickled object whose class cannot be found ({err}); import the module "
            "that defines it first, or save the model with torch.export.save (.pt2)"
        ) from err
    except (ModuleNotFoundError, ImportError) as err:
        raise ModelLoadError(
            f"{file}: a pickled module needs {err.name or 'a module'} that is not importable "
            f"({err}); install it, or save the model with torch.export.save (.pt2)"
        ) from err
    except Exception as err:
        raise ModelLoadError(
            f"{file}: could not unpickle ({type(err).__name__}: {_first_line(err)})"
        ) from err


def _refused_global(err: BaseException) -> str:
    """The line of torch's long weights-only message that names what it refused to unpickle."""
    for line in str(err).splitlines():
        if "Unsupported global" in line:
            return line.strip().split(" was not an allowed global")[0]
    return _first_line(err)


def _load_error(err: RuntimeError) -> str:
    """``load_state_dict``'s message in one line: its header and the first of its reasons
    (missing, unexpected or mis-shaped keys), at most 300 characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


__all__ = [
    "GRAPH_SUFFIXES",
    "check_input",
    "file_digest",
    "file_kind",
    "is_graph_file",
    "load_model",
    "read_torch_file",
]
