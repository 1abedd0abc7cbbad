"""Method ``calibrated`` on networks written elsewhere: torchvision's ResNet-18 and VGG-11-BN
(max-pooling, in-place residual adds, one ReLU module used twice per block), trained briefly on
sklearn's digits upsampled to 3 x 32 x 32 (offline, no download).

Per target T: which start the output check kept, both KL divergences, and the simulated
network's accuracy with and without the check, next to the ANN's. Prints a markdown table.

    python benchmarks/calibrated_other_nets.py --arch resnet18 --targets 2,8
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits
from torch import nn

from spikebridge.convert import CalibratedSettings, prepare
from spikebridge.convert.calibration import (
    calibrate_target,
    calibration_images,
)


def digits_32(seed: int) -> tuple[torch.utils.data.DataLoader, torch.Tensor, torch.Tensor]:
    """sklearn digits as [N, 3, 32, 32] in [0, 1]: a training loader and the held-out tensors."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1400], order[1400:]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[train], y[train]),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, x[test], y[test]


def build(arch: str) -> nn.Module:
    if arch == "resnet18":
        return torchvision.models.resnet18(num_classes=10)
    if arch == "vgg11-bn":
        model = torchvision.models.vgg11_bn(num_classes=10)
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Sequential(
            nn.Linear(512, 64), nn.ReLU(inplace=True), nn.Linear(64, 10)
        )
        return model
    raise SystemExit(f"--arch must be resnet18 or vgg11-bn, got {arch!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18", help="resnet18 or vgg11-bn")
    parser.add_argument("--targets", default="2,8", help="target T's, comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spike-levels", type=int, default=1,
        help="graded spikes: K threshold units per step (the twin at K*T levels; 1: binary)",
    )  # fmt: skip
    parser.add_argument(
        "--check-only", action="store_true", help="skip the calibration without the output check"
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    loader, x_test, y_test = digits_32(args.seed)
    model = build(args.arch)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    for _ in range(args.epochs):
        for x, y in loader:
            optimiser.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        ann = (model(x_test).argmax(1) == y_test).float().mean().item()
    prepared = prepare(model)
    images = calibration_images(loader, 512)
    graded = f", K = {args.spike_levels}" if args.spike_levels > 1 else ""
    print(f"{args.arch}: ANN {100 * ann:.2f} % on {len(y_test)} held-out digits{graded}\n")
    print("| T | start kept | KL search / percentile | SNN, output check | SNN, without | CPU s |")
    print("|---|---|---|---|---|---|")
    for timesteps in [int(t) for t in args.targets.split(",")]:
        row = {}
        row[False] = (None, float("nan"))
        for check in (True,) if args.check_only else (True, False):
            cpu = time.process_time()
            result = calibrate_target(
                prepared, images, timesteps, CalibratedSettings(output_check=check),
                spike_levels=args.spike_levels,
            )  # fmt: skip
            with torch.no_grad():
                readout = result.build().simulate(x_test, timesteps).readout[-1]
            row[check] = (result, (readout.argmax(1) == y_test).float().mean().item())
            row[f"cpu{check}"] = time.process_time() - cpu
        result = row[True][0]
        kl = result.divergence
        print(
            f"| {timesteps} | {result.start} | {kl['search']:.3f} / {kl['percentile']:.3f} | "
            f"{100 * row[True][1]:.2f} | {100 * row[False][1]:.2f} | {row['cpuTrue']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
