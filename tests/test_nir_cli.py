"""``spikebridge export --format nir``: loads a train checkpoint or (trusted) pickled network, writes
the NIR file, prints the nodes needing metadata, and refuses them with --strict."""

from __future__ import annotations

import pytest
import torch

nir = pytest.importorskip(
    "nir", reason="NIR export needs the optional 'nir' extra (pip install nir)"
)

from test_methods_fixtures import digits_tensors, trained_digits  # noqa: E402

from spikebridge.cli import main  # noqa: E402
from spikebridge.convert import Converter  # noqa: E402
from spikebridge.direct import build_direct_snn  # noqa: E402
from spikebridge.direct.checkpoint import FORMAT, VERSION  # noqa: E402
from spikebridge.interop import import_nir  # noqa: E402
from spikebridge.io import save_torch  # noqa: E402


@pytest.fixture
def converted_file(tmp_path):
    calib, _ = digits_tensors(train=True, n=128)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="subtract")
    path = tmp_path / "snn_channel.pt"
    save_torch(path, network)  # as `spikebridge convert` writes it
    return network, path


def test_export_of_a_converted_network_names_nodes_needing_metadata(
    converted_file, tmp_path, capsys
):
    network, path = converted_file
    out = tmp_path / "net.nir"
    argv = ["export", "--format", "nir", str(path), str(out), "--trust-checkpoint"]
    assert main([*argv, "--dataset", "digits"]) == 0
    printed = capsys.readouterr().out
    for layer in network.neurons():
        assert f"warning: NIR node '{layer}'" in printed
    assert f"wrote {out}" in printed
    x, _ = digits_tensors(train=False, n=16)
    a = network.simulate(x, 8, record_spikes=True).spikes
    b = import_nir(out).simulate(x, 8, record_spikes=True).spikes
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_strict_refuses_and_writes_nothing(converted_file, tmp_path, capsys):
    _, path = converted_file
    out = tmp_path / "net.nir"
    argv = ["export", str(path), str(out), "--trust-checkpoint", "--input-shape", "1,8,8"]
    assert main([*argv, "--strict"]) == 2
    assert "strict NIR export refused" in capsys.readouterr().err
    assert not out.exists()


def test_a_pickled_network_needs_trust(converted_file, tmp_path, capsys):
    _, path = converted_file
    assert main(["export", str(path), str(tmp_path / "x.nir"), "--input-shape", "1,8,8"]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err


def test_a_train_checkpoint_exports_without_trust_or_shape(tmp_path, capsys):
    network = build_direct_snn("cnn", 10, 1, 8, width=0.25)
    checkpoint = tmp_path / "checkpoint.pt"
    save_torch(
        checkpoint,
        {"format": FORMAT, "version": VERSION, "spec": network.spec, "model": network.state_dict()},
    )
    out = tmp_path / "direct.nir"
    assert main(["export", str(checkpoint), str(out), "--lif-node", "CubaLIF"]) == 0
    graph = nir.read(out)
    assert sum(isinstance(n, nir.CubaLIF) for n in graph.nodes.values()) == 4
    assert "warning" not in capsys.readouterr().out


def test_a_bad_input_shape_is_an_argument_error(converted_file, tmp_path, capsys):
    _, path = converted_file
    with pytest.raises(SystemExit):
        main(["export", str(path), str(tmp_path / "x.nir"), "--input-shape", "1,eight,8"])
    assert "1,28,28" in capsys.readouterr().err


def test_quiet_export_prints_only_the_warnings(converted_file, tmp_path, capsys):
    network, path = converted_file
    out = tmp_path / "net.nir"
    argv = ["export", str(path), str(out), "--trust-checkpoint", "--dataset", "digits", "--quiet"]
    assert main(argv) == 0 and out.is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("warning: NIR node '") for line in lines)
    assert len(lines) == len(list(network.neurons()))
