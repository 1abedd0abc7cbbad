"""NIR export -> import across architectures: exactness, file size and time (docs/nir.md).

For each architecture, an ANN with random weights (seed ``--seed``) is converted with the
``channel`` method (reset by subtraction, calibrated on ``--batch`` uniform random inputs), exported
to NIR, read back with :func:`spikebridge.import_nir`, and both networks are simulated for
``--timesteps`` steps on the same inputs. Printed per architecture: parameters, NIR nodes, nodes
that need spikebridge's metadata (warned), file size, export and import wall time, whether every
layer's spike counts are identical, and the largest readout difference.

Example:
    python benchmarks/nir_roundtrip.py --archs cnn,vgg11,resnet20,torchvision:resnet18

Requires the ``nir`` extra (``pip install 'spikebridge[nir]'``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch

from spikebridge.convert import convert_model
from spikebridge.interop import NIRExportWarning, export_nir, import_nir
from spikebridge.models import build_model, count_parameters


def measure(arch: str, batch: int, timesteps: int, seed: int, folder: Path) -> dict:
    shape = (1, 28, 28) if arch == "cnn" else (3, 32, 32)
    torch.manual_seed(seed)
    ann = build_model(arch, 10, shape[0], shape[1]).eval()
    x = torch.rand(batch, *shape)
    network = convert_model(ann, x, method="channel", reset="subtract")
    path = folder / f"{arch.replace(':', '_')}.nir"
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        graph = export_nir(network, path, input_shape=shape)
    exported = time.perf_counter() - start
    start = time.perf_counter()
    restored = import_nir(path)
    imported = time.perf_counter() - start
    a = network.simulate(x, timesteps, record_spikes=True)
    b = restored.simulate(x, timesteps, record_spikes=True)
    return {
        "arch": arch,
        "params": count_parameters(ann),
        "nodes": len(graph.nodes),
        "warned": sum(issubclass(w.category, NIRExportWarning) for w in caught),
        "MiB": path.stat().st_size / 2**20,
        "export s": exported,
        "import s": imported,
        "spikes identical": all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes),
        "max readout diff": float((a.readout - b.readout).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--archs", default="cnn,vgg11,resnet20,torchvision:resnet18,torchvision:mobilenet_v2"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.archs.split(","):
            rows.append(measure(arch, args.batch, args.timesteps, args.seed, Path(folder)))
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
