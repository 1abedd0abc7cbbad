"""The ``spikebridge`` command: a thin layer over the library (parse, call, print)."""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import re
import signal
import sys
import threading
import warnings

SUBCOMMANDS = ("convert", "train", "compare", "demo", "export")
_SHOW_IMPL = getattr(warnings, "_showwarnmsg_impl", None)  # Python's own display
DEBUG_ENV = "SPIKEBRIDGE_DEBUG"
DEBUG_HELP = f"show the traceback of an error instead of a one-line message (or set {DEBUG_ENV}=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikebridge",
        description="Convert CNNs to spiking networks, train SNNs directly (STBP-tdBN), and compare both routes.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument(
        "--version", action="version", version=f"spikebridge {_version()}",
        help="print spikebridge's version and exit",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:  # a subcommand whose module is not installed
            if err.name and err.name.startswith(__name__):
                continue
            raise
        module.add_parser(sub)
    for subparser in sub.choices.values():  # `spikebridge train --debug ...` works too
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as SIGINT: the run stops the same clean way (failure record, no lock)."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; an error is one line on stderr and exit status 2 (``--debug`` or
    SPIKEBRIDGE_DEBUG=1: the traceback instead). SIGTERM stops a run as SIGINT does (exit 143)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    restore = _plain_warnings(args.command)
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return int(args.run(args) or 0)
    except Terminated:
        print("terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = error_message(err)
        if message is None or debug:
            raise
        print(f"spikebridge {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        restore()


def _plain_warnings(command: str):
    """Show every warning as one line naming the command, not in Python's form (a source path,
    a line of code): spikebridge's own as they are, another library's with its category and
    package (``UserWarning from torch``). Left alone while warnings are being recorded
    (``warnings.catch_warnings(record=True)``, pytest). Returns the function that puts the
    previous display back."""
    default = warnings.showwarning
    if default is not getattr(warnings, "_showwarning_orig", default) or (
        getattr(warnings, "_showwarnmsg_impl", None) is not _SHOW_IMPL
    ):
        return lambda: None

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"spikebridge {command}: warning: {warning_text(message, category, filename)}",
              file=file or sys.stderr)  # fmt: skip

    warnings.showwarning = show

    def restore() -> None:
        if warnings.showwarning is show:
            warnings.showwarning = default

    return restore


def warning_text(message, category: type, filename: str) -> str:
    """A warning as one line: spikebridge's own message, or another library's with where it
    comes from (its category and top-level package, never a source path)."""
    text = _one_line(str(message))
    if category.__module__.split(".")[0] == "spikebridge" or "/spikebridge/" in filename:
        return text
    return f"{text} ({category.__name__} from {_package(filename)})"


def _package(filename: str) -> str:
    """The top-level package a source file belongs to (``.../site-packages/torch/x.py`` ->
    ``torch``), or the file's name."""
    parts = re.split(r"[\\/]", filename)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".py")
    return parts[-1] or "python"


def error_message(err: BaseException) -> str | None:
    """The one-line message for an error a user can fix (bad input, files, permissions, a missing
    module); None for anything else, which is a bug to report with its traceback."""
    if isinstance(err, OSError) and err.errno is not None and err.strerror:
        where = f"{err.filename}: " if err.filename is not None else ""
        other = f" -> {err.filename2}" if err.filename2 is not None else ""
        text = f"{where}{err.strerror}{other}"
        if isinstance(err, PermissionError):
            text += " (check the permissions, or choose another --out)"
        return _one_line(text)
    if isinstance(err, pickle.UnpicklingError):
        return _one_line(
            f"a file could not be unpickled ({err}); it is corrupt or not a checkpoint"
        )
    if isinstance(err, ImportError):
        return _one_line(str(err))
    if isinstance(err, (ValueError, OSError, RuntimeError)):
        return _one_line(str(err) or type(err).__name__)
    return None


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


if __name__ == "__main__":
    sys.exit(main())
