"""``spikebridge export``: write a spiking network to an exchange format (NIR; docs/nir.md).

NET.pt is a direct-training checkpoint (``spikebridge train``; its spec rebuilds the network and
gives the input shape), a converted network as ``spikebridge convert`` writes it (snn_METHOD.pt,
weights-only: rebuilt by the toolkit, :mod:`spikebridge.snn_files`), or a pickled
SpikingNetwork (``convert --save-pickle``), which runs code from the file when loaded and so
needs ``--trust-checkpoint``. A network with a checksum file beside it (``NET.pt.sha256``) is
checked against it before it is read.

OUT is never NET (also through a symlink, a hard link or another spelling of the path), and an
existing OUT is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

from ..data import dataset_info
from ..engine.network import SpikingNetwork
from ..loading.load import read_torch_file
from ..settings import shown
from .common import add_quiet
from .flags import bounded_float

FORMATS = ("nir",)
MAX_SIZE = 65_536
"""The largest size of one dimension of --input-shape."""


def shape_arg(text: str) -> tuple[int, ...]:
    """``C,H,W`` -> (C, H, W) of positive integers."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes separated by commas, e.g. 1,28,28; got {text!r}"
        ) from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    if len(shape) > 4 or max(shape) > MAX_SIZE:
        raise argparse.ArgumentTypeError(
            f"expected at most 4 sizes, each at most {MAX_SIZE}, got {shown(text)}"
        )
    return shape


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a converted or directly trained spiking network as NIR",
        description="Write a spiking network to NIR, for neuromorphic hardware and other "
        "simulators. What NIR cannot say travels as node metadata; each node that needs it "
        "is named in a warning (or refused with --strict).",
    )
    p.add_argument(
        "network",
        help="NET.pt: a train checkpoint, a snn_METHOD.pt of `spikebridge convert` (weights-only) "
        "or a pickled SpikingNetwork (--trust-checkpoint)",
    )
    p.add_argument("out", help="OUT.nir: the file to write")
    p.add_argument("--format", default="nir", choices=FORMATS, help="exchange format (nir)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse nodes whose meaning a reader without spikebridge's metadata would change",
    )
    p.add_argument(
        "--input-shape",
        type=shape_arg,
        default=None,
        help="C,H,W of one input (a train checkpoint records it)",
    )
    p.add_argument("--dataset", default=None, help="take the input shape from this dataset")
    p.add_argument(
        "--lif-node", default="LIF", choices=("LIF", "CubaLIF"), help="NIR node for LIF neurons"
    )
    p.add_argument(
        "--dt", type=bounded_float(0, 1, open_minimum=True), default=None,
        help="seconds per step for LIF constants (1e-4; in (0, 1])",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument(
        "--trust-checkpoint",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="allow loading a pickled network (runs code from the file; default: refused)",
    )
    add_quiet(
        p, "print only the warnings (nodes that need spikebridge's metadata), not the summary"
    )
    p.set_defaults(run=run)


def check_output(network: str, out: str, overwrite: bool) -> None:
    """Refuse an OUT that is NET itself, or that exists without ``overwrite`` (before any work)."""
    target, source = Path(out), Path(network)
    same = os.path.abspath(target) == os.path.abspath(source)
    if not same and os.path.exists(target) and os.path.exists(source):
        same = os.path.samefile(target, source)
    if same:
        raise ValueError(
            f"OUT {out!r} is the network being exported ({network!r}); writing it would destroy "
            "the network: choose another OUT, e.g. net.nir"
        )
    if os.path.lexists(target):
        if os.path.isdir(target):
            raise IsADirectoryError(
                f"OUT {out!r} is a directory; give the file to write, e.g. {out}/net.nir"
            )
        if not overwrite:
            raise FileExistsError(
                f"OUT {out!r} already exists; pass --overwrite to replace it, or choose another OUT"
            )


def load_network(path: str, trust: bool) -> SpikingNetwork:
    """The SpikingNetwork in ``path`` (a train checkpoint, or with ``trust`` a pickled network),
    checked against its checksum file when it has one."""
    from ..io import verify_checksum

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{path!r}: no such file")
    if (file.parent / (file.name + ".sha256")).exists():
        verify_checksum(file, "export an intact copy (write it again with spikebridge)")
    from ..snn_files import SNN_FORMAT, load_snn, read

    ours = read(file)
    if ours is not None and ours.get("format") == SNN_FORMAT:
        return load_snn(file)
    if ours is not None:
        raise ValueError(
            f"{path!r} is the trained ANN of a conversion, not a spiking network; export one of "
            "the snn_METHOD.pt files beside it"
        )
    refusal = "it is a pickled network (as `spikebridge convert --save-pickle` writes)"
    data = read_torch_file(file, trust, refusal)  # names the file; hints trust only if it helps
    if isinstance(data, dict) and data.get("format") == "spikebridge-stdp":
        raise ValueError(
            f"{path!r} is an STDP-route checkpoint (`spikebridge train --route stdp`); its "
            "winner-take-all neurons (k winners per position, lateral inhibition) have no NIR "
            "node, so the STDP route cannot be exported to NIR"
        )
    if isinstance(data, dict) and "spec" in data and "model" in data:
        from ..direct import load_trained

        return load_trained(file)
    if not isinstance(data, SpikingNetwork):
        raise ValueError(
            f"{path!r} holds a {type(data).__name__}, not a spiking network; export a train "
            "checkpoint or a snn_METHOD.pt written by `spikebridge convert`"
        )
    return data.cpu().eval()


def run(args: argparse.Namespace) -> int:
    from ..interop import NIRExportWarning, NIRUnavailable, export_nir
    from ..interop.nir_metadata import DEFAULT_DT

    shape = args.input_shape
    if shape is None and args.dataset is not None:
        info = dataset_info(args.dataset)
        shape = (info.in_channels, info.image_size, info.image_size)
    if shape is None:  # a converted network's file names its dataset
        from ..snn_files import read

        recorded = read(args.network) if Path(args.network).is_file() else None
        if recorded is not None and recorded.get("dataset"):
            info = dataset_info(recorded["dataset"])
            shape = (info.in_channels, info.image_size, info.image_size)
    check_output(args.network, args.out, args.overwrite)
    network = load_network(args.network, args.trust_checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        try:
            graph = export_nir(
                network,
                args.out,
                input_shape=shape,
                strict=args.strict,
                dt=args.dt if args.dt is not None else DEFAULT_DT,
                lif_node=args.lif_node,
            )
        except NIRUnavailable as err:
            raise RuntimeError(str(err)) from None
    ours = [w for w in caught if issubclass(w.category, NIRExportWarning)]
    for w in ours:
        print(f"warning: {w.message}")
    if args.quiet:
        return 0
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"wrote {args.out}: {len(graph.nodes)} NIR nodes ({summary}), {len(graph.edges)} edges")
    if ours:
        print(
            f"{len(ours)} node(s) need spikebridge's metadata (spikebridge.import_nir honours "
            "it); --strict refuses them"
        )
    return 0
