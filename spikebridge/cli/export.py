"""``spikebridge export``: write a spiking network to an exchange format (NIR; docs/nir.md).

NET.pt is a direct-training checkpoint (``spikebridge train``; its spec rebuilds the network and
gives the input shape), a converted network as ``spikebridge convert`` writes it (snn_METHOD.pt,
weights-only: rebuilt by the toolkit, :mod:`spikebridge.snn_files`), or a pickled
SpikingNetwork (``convert --save-pickle``), which runs code from the file when loaded and so
needs ``--trust-checkpoint``.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import torch

from ..data import dataset_info
from ..engine.network import SpikingNetwork

FORMATS = ("nir",)


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
        "--dt", type=float, default=None, help="seconds per step for LIF constants (1e-4)"
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow loading a pickled network (runs code from the file)",
    )
    p.set_defaults(run=run)


def load_network(path: str, trust: bool) -> SpikingNetwork:
    """The SpikingNetwork in ``path`` (a train checkpoint, or with ``trust`` a pickled network)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{path!r}: no such file")
    from ..snn_files import SNN_FORMAT, load_snn, read

    ours = read(file)
    if ours is not None and ours.get("format") == SNN_FORMAT:
        return load_snn(file)
    if ours is not None:
        raise ValueError(
            f"{path!r} is the trained ANN of a conversion, not a spiking network; export one of "
            "the snn_METHOD.pt files beside it"
        )
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError) as err:
        if not trust:
            raise ValueError(
                f"{path!r} is a pickled network (as `spikebridge convert` writes), and loading it "
                "runs code from the file; add --trust-checkpoint if you trust its source"
            ) from err
        data = torch.load(file, map_location="cpu", weights_only=False)
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
