"""Without the optional ``nir`` package, NIR export and import say which pip command installs it
(this runs whether or not ``nir`` is installed: the import is blocked)."""

from __future__ import annotations

import sys

import pytest
from torch import nn

from spikebridge.cli import main
from spikebridge.engine.network import SpikingNetwork
from spikebridge.engine.neurons import IFNeuron
from spikebridge.interop import NIRUnavailable, export_nir, import_nir


def test_without_the_nir_package_the_message_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nir", None)  # `import nir` now fails
    network = SpikingNetwork(nn.Sequential(nn.Linear(4, 3), IFNeuron(1.0, "zero"), nn.Linear(3, 2)))
    with pytest.raises(NIRUnavailable, match=r"pip install 'spikebridge\[nir\]'"):
        export_nir(network, tmp_path / "a.nir", input_shape=(4,))
    with pytest.raises(NIRUnavailable, match="pip install"):
        import_nir(tmp_path / "a.nir")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_reports_the_missing_package_as_an_error(monkeypatch, tmp_path, capsys):
    import torch

    network = SpikingNetwork(nn.Sequential(nn.Linear(4, 3), IFNeuron(1.0, "zero"), nn.Linear(3, 2)))
    path = tmp_path / "net.pt"
    torch.save(network, path)
    monkeypatch.setitem(sys.modules, "nir", None)
    argv = [
        "export",
        str(path),
        str(tmp_path / "a.nir"),
        "--trust-checkpoint",
        "--input-shape",
        "4",
    ]
    assert main(argv) == 2
    assert "pip install" in capsys.readouterr().err
