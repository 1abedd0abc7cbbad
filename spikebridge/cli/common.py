"""Argument groups and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from ..models import MODEL_NAMES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        default="digits",
        help="digits (offline default), mnist, fashion-mnist, cifar10, nmnist",
    )
    parser.add_argument(
        "--data-root", default=None, help="folder holding the dataset files (or torchvision's root)"
    )
    parser.add_argument(
        "--download", action="store_true", help="let torchvision download a missing dataset"
    )
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N test images"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_architecture(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch", default="cnn", help=f"{', '.join(MODEL_NAMES)} or torchvision:NAME"
    )
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def progress_enabled(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def load_checkpoint(path: str, arch_model: nn.Module | None, trust: bool) -> nn.Module:
    """A model from ``path``: a state dict (for ``arch_model``), a torch.export program, or, only
    with ``trust``, a whole pickled module."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--checkpoint {path!r}: no such file")
    if file.suffix == ".pt2":
        return _load_exported(path, arch_model)
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        if not trust:
            raise ValueError(
                f"--checkpoint {path!r} is not a plain state dict ({type(err).__name__}); if it is a "
                "whole pickled module from a source you trust, add --trust-checkpoint"
            ) from err
        obj = torch.load(file, map_location="cpu", weights_only=False)
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(
            f"--checkpoint {path!r} holds a {type(obj).__name__}, not a state dict or module"
        )
    if arch_model is None:
        raise ValueError(
            f"--checkpoint {path!r} is a state dict: name its architecture with --arch"
        )
    try:
        arch_model.load_state_dict(obj)
    except RuntimeError as err:
        raise ValueError(
            f"--checkpoint {path!r} does not match the architecture ({err}). Check --arch, --width "
            "and the dataset (input channels, classes)"
        ) from err
    return arch_model


def _load_exported(path: str, arch_model: nn.Module | None) -> nn.Module:
    """Weights of a torch.export program, loaded into the ``--arch`` model they were exported from.

    An exported program's graph is made of ATen operators, not of the nn modules conversion
    rewrites, so the architecture comes from ``--arch`` and the program supplies the weights.
    """
    try:
        program = torch.export.load(path)
    except Exception as err:
        raise ValueError(f"--checkpoint {path!r}: not a torch.export program ({err})") from err
    if arch_model is None:
        raise ValueError(
            f"--checkpoint {path!r}: name the exported model's architecture with --arch"
        )
    state = dict(program.state_dict)
    state.update({k: v for k, v in program.constants.items() if k in arch_model.state_dict()})
    try:
        arch_model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"--checkpoint {path!r}: the exported program's weights do not match the architecture "
            f"({err}). Check --arch and --width, or pass the model's state dict instead"
        ) from err
    return arch_model
