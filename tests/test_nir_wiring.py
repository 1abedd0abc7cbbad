"""The ``export_nir`` setting (``--export-nir``): ``spikebridge convert``, ``train`` and ``compare``
also write their spiking networks as NIR files that read back to the same spikes."""

from __future__ import annotations

import warnings

import pytest
import torch

nir = pytest.importorskip(
    "nir", reason="NIR export needs the optional 'nir' extra (pip install nir)"
)

from test_methods_fixtures import digits_tensors  # noqa: E402

from spikebridge.cli import main  # noqa: E402
from spikebridge.compare import run as compare_run  # noqa: E402
from spikebridge.direct import load_trained  # noqa: E402
from spikebridge.interop import NIRExportWarning, export_nir_files, import_nir  # noqa: E402
from spikebridge.snn_files import load_snn  # noqa: E402

FAST = ["--dataset", "digits", "--width", "0.25", "--timesteps", "4", "--limit", "32", "--quiet"]


def same_spikes(a, b, x, steps=4):
    sa = a.simulate(x, steps, record_spikes=True).spikes
    sb = b.simulate(x, steps, record_spikes=True).spikes
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_convert_writes_a_nir_file_next_to_each_network(tmp_path):
    out = tmp_path / "run"
    argv = ["convert", *FAST, "--epochs", "1", "--method", "percentile,channel", "--out", str(out)]
    argv += ["--train-limit", "256", "--calibration-samples", "128", "--export-nir"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        assert main(argv) == 0
    messages = sorted(str(w.message) for w in caught if w.category is NIRExportWarning)
    assert [m.split(":")[0] for m in messages] == ["snn_channel.nir", "snn_percentile.nir"]
    assert all("4 node(s) need spikebridge's NIR metadata" in m for m in messages)
    x, _ = digits_tensors(train=False, n=16)
    for method in ("percentile", "channel"):
        saved = load_snn(out / f"snn_{method}.pt")
        assert same_spikes(saved, import_nir(out / f"snn_{method}.nir"), x)


def test_train_writes_the_trained_network_as_nir(tmp_path):
    out = tmp_path / "direct"
    argv = ["train", *FAST, "--epochs", "1", "--train-limit", "64", "--batch-size", "32"]
    assert main([*argv, "--device", "cpu", "--out", str(out), "--export-nir"]) == 0
    graph = nir.read(out / "direct.nir")
    assert sum(isinstance(n, nir.LIF) for n in graph.nodes.values()) == 4
    x, _ = digits_tensors(train=False, n=16)
    from spikebridge.direct import fuse_norms

    assert same_spikes(fuse_norms(load_trained(out / "checkpoint.pt")), import_nir(graph), x)


def test_compare_writes_every_candidate_under_nir(tmp_path):
    out = tmp_path / "compare"
    tiny = dict(
        epochs=1, direct_epochs=1, direct_timesteps=2, timesteps=4, width=0.25, limit=32,
        train_limit=96, calibration_samples=64, batch_size=32, device="cpu",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        result = compare_run(
            "cnn", "digits", methods="max,channel", out=out, export_nir=True, **tiny
        )
    names = sorted(p.name for p in (out / "nir").glob("*.nir"))
    assert names == ["conversion-channel.nir", "conversion-max.nir", "direct-stbp-tdbn.nir"]
    assert all(out / "nir" / n in result.files for n in names)
    assert any(n.startswith("NIR: conversion-max.nir") for n in result.notes)
    # a second run removes the files the first recorded, never one it did not write
    (out / "nir" / "mine.nir").write_bytes(b"the user's own file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        compare_run("cnn", "digits", methods="max", out=out, export_nir=True, overwrite=True,
                    **{**tiny, "direct_epochs": 0, "stdp_epochs": 0})  # fmt: skip
    names = sorted(p.name for p in (out / "nir").glob("*.nir"))
    assert names == ["conversion-max.nir", "mine.nir"]
    assert (out / "nir" / "mine.nir").read_bytes() == b"the user's own file"


def test_a_network_nir_cannot_express_is_left_out_with_the_reason(tmp_path):
    class Upsampling(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.Upsample(scale_factor=2)
            self.fc = torch.nn.Linear(4 * 16 * 16, 2)

        def forward(self, x):
            return self.fc(self.up(x).flatten(1))

    from spikebridge.engine.network import SpikingNetwork

    with pytest.warns(NIRExportWarning, match="snn_up.nir not written: up: Upsample"):
        written = export_nir_files({"up": SpikingNetwork(Upsampling())}, tmp_path, (4, 8, 8))
    assert written == {} and list(tmp_path.iterdir()) == []
