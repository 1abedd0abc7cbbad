"""Loading a user's file never runs code from it unless trusted; bad files are named errors.

- a .pt2 whose weight is a pickle that would create a marker file: refused before anything is
  unpickled, naming the entry; the marker never appears (pickled sample inputs are never read). With ``trust=True``
  the pickle is unpickled, which runs its code: the marker appears (that is what trust means).
- corrupt .pt2, .onnx and torch files: :class:`ModelLoadError` naming the file.
- GELU and sigmoid nets as .pt2 and as ONNX: refused, naming the operation and the source line.
- a state dict loads with ``weights_only=True`` into an architecture; a pickled module whose
  class lived in the saving script's ``__main__`` is a named error.
"""

from __future__ import annotations

import builtins
import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.convert import ConversionError
from spikebridge.loading import (
    ModelLoadError,
    UnsafeModelError,
    UnsupportedOperationError,
    load_model,
)


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))


class SmoothNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = F.gelu(self.conv(x))  # GELU_LINE
        x = torch.sigmoid(x)  # SIGMOID_LINE
        return self.fc(x.flatten(1))


def _line(marker: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# {marker}"))


class MarkerPayload:
    """Unpickling this creates ``path`` (what a malicious pickle could do instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def _pickle_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def program_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pt2") / "small.pt2"
    torch.export.save(torch.export.export(SmallNet().eval(), (torch.rand(2, 1, 8, 8),)), path)
    return path


def _rewrite(source: Path, target: Path, edit) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as out:
        for name in src.namelist():
            out.writestr(name, edit(name, src.read(name)))
    return target


def _weight_as_pickle(program_file: Path, target: Path, marker: Path) -> Path:
    """A copy of ``program_file`` whose conv weight is a pickle that creates ``marker``."""

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("data/weights/model_weights_config.json"):
            config = json.loads(data)
            entry = config["config"]["conv.weight"]
            entry["use_pickle"] = True
            edit.path = entry["path_name"]
            return json.dumps(config).encode()
        return data

    edit.path = None
    with zipfile.ZipFile(program_file) as src:
        config_name = next(n for n in src.namelist() if n.endswith("model_weights_config.json"))
        weight_file = json.loads(src.read(config_name))["config"]["conv.weight"]["path_name"]

    def replace(name: str, data: bytes) -> bytes:
        data = edit(name, data)
        if name.endswith(f"data/weights/{weight_file}"):
            return _pickle_bytes(MarkerPayload(str(marker)))
        return data

    return _rewrite(program_file, target, replace)


def test_pickled_weight_is_refused_and_runs_nothing(program_file, tmp_path):
    marker = tmp_path / "MARKER"
    crafted = _weight_as_pickle(program_file, tmp_path / "crafted.pt2", marker)
    with pytest.raises(UnsafeModelError) as info:
        load_model(crafted)
    message = str(info.value)
    assert "crafted.pt2" in message and "conv.weight" in message and "data/weights/" in message
    assert "trust" in message
    assert not marker.exists()


def test_trust_unpickles_the_weight_and_so_runs_its_code(program_file, tmp_path):
    """Documented behaviour of trust=True / --trust-checkpoint: the file's pickles are executed."""
    marker = tmp_path / "MARKER"
    crafted = _weight_as_pickle(program_file, tmp_path / "crafted.pt2", marker)
    with pytest.raises(ModelLoadError):  # the "weight" is not a tensor once unpickled
        load_model(crafted, trust=True)
    assert marker.exists()


def test_pickled_sample_inputs_are_never_read(program_file, tmp_path):
    """The sample inputs (a pickle) play no part in rebuilding the graph: without trust they are
    not read at all, so a malicious one runs nothing and the program still loads."""
    marker = tmp_path / "MARKER"

    def edit(name: str, data: bytes) -> bytes:
        if "data/sample_inputs/" in name:
            return _pickle_bytes(MarkerPayload(str(marker)))
        return data

    crafted = _rewrite(program_file, tmp_path / "inputs.pt2", edit)
    model = load_model(crafted)
    x = torch.rand(3, 1, 8, 8)
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.allclose(model(x), SmallNet().eval()(x), atol=1e-6)
    assert not marker.exists()


def test_clean_program_loads_without_trust(program_file):
    model = load_model(program_file)
    x = torch.rand(3, 1, 8, 8)
    torch.manual_seed(0)
    reference = SmallNet().eval()
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)


@pytest.mark.parametrize("suffix", [".pt2", ".onnx", ".pt"])
def test_corrupt_file_is_a_named_error(program_file, tmp_path, suffix):
    data = program_file.read_bytes()
    for name, payload in (("truncated", data[: len(data) // 3]), ("garbage", b"\x07junk" * 40)):
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(payload)
        with pytest.raises(ModelLoadError) as info:
            load_model(path)
        assert path.name in str(info.value)
        assert not isinstance(info.value, UnsafeModelError)


def test_missing_file_is_a_named_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(tmp_path / "absent.pt2")


def _check_names_operations(err: UnsupportedOperationError, gelu: str, sigmoid: str) -> None:
    message = str(err)
    assert isinstance(err, ConversionError)
    assert gelu in message and sigmoid in message
    here = Path(__file__).name
    assert f"{here}:{_line('GELU_LINE')}" in message
    assert f"{here}:{_line('SIGMOID_LINE')}" in message
    assert "replace it with ReLU" in message


def test_gelu_and_sigmoid_program_is_refused_naming_op_and_line(tmp_path):
    path = tmp_path / "smooth.pt2"
    torch.export.save(torch.export.export(SmoothNet().eval(), (torch.rand(2, 1, 8, 8),)), path)
    with pytest.raises(UnsupportedOperationError) as info:
        load_model(path)
    _check_names_operations(info.value, "aten.gelu", "aten.sigmoid")


def test_gelu_and_sigmoid_onnx_is_refused_naming_op_and_line(tmp_path):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript")
    path = tmp_path / "smooth.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SmoothNet().eval(), (torch.rand(2, 1, 8, 8),), path)
    with pytest.raises(UnsupportedOperationError) as info:
        load_model(path)
    _check_names_operations(info.value, "(Gelu)", "(Sigmoid)")


def test_state_dict_loads_weights_only_into_an_architecture(tmp_path):
    torch.manual_seed(1)
    source = SmallNet()
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    model = load_model(path, arch=SmallNet())
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), source.eval()(x))
    with pytest.raises(ModelLoadError, match="architecture"):
        load_model(path)


def test_pickled_module_needs_trust_and_a_main_class_is_a_named_error(tmp_path, monkeypatch):
    """A module pickled by a user's script refers to ``__main__.UserNet``, absent when loading."""

    class UserNet(SmallNet):
        pass

    UserNet.__module__, UserNet.__qualname__ = "__main__", "UserNet"
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "UserNet", UserNet, raising=False)
    path = tmp_path / "module.pt"
    torch.save(UserNet(), path)
    monkeypatch.delattr(main, "UserNet")
    with pytest.raises(UnsafeModelError, match="trust"):
        load_model(path)
    with pytest.raises(ModelLoadError, match="__main__") as info:
        load_model(path, trust=True)
    assert "torch.export.save" in str(info.value)


def test_cli_refuses_the_crafted_file_unless_trusted(program_file, tmp_path, capsys):
    """``spikebridge convert --checkpoint crafted.pt2``: refused, nothing runs, nothing written;
    ``--trust-checkpoint`` runs the file's pickle (documented), then fails on the bad weight."""
    from spikebridge.cli import main

    marker = tmp_path / "MARKER"
    crafted = _weight_as_pickle(program_file, tmp_path / "crafted.pt2", marker)
    out = tmp_path / "out"
    assert main(["convert", "--checkpoint", str(crafted), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "crafted.pt2" in err and "conv.weight" in err and "--trust-checkpoint" in err
    assert not marker.exists() and not out.exists()  # a refused run leaves no --out behind
    args = ["convert", "--checkpoint", str(crafted), "--trust-checkpoint", "--out", str(out)]
    assert main([*args, "--quiet"]) == 2
    assert marker.exists()


def test_cli_names_a_corrupt_file(program_file, tmp_path, capsys):
    from spikebridge.cli import main

    path = tmp_path / "broken.pt2"
    path.write_bytes(program_file.read_bytes()[:500])
    out = tmp_path / "out"
    assert main(["convert", "--checkpoint", str(path), "--out", str(out), "--quiet"]) == 2
    assert "broken.pt2" in capsys.readouterr().err
    assert not out.exists()  # a refused run leaves no --out behind


def _damaged_pickle(path: Path) -> Path:
    """A file that starts like a pickle (PROTO 2) but is not one: trust cannot help it."""
    path.write_bytes(b"\x80\x02garbage" * 10)
    return path


def test_a_damaged_pickle_gets_no_trust_hint_and_names_the_file(tmp_path):
    path = _damaged_pickle(tmp_path / "damaged.pt")
    for trust in (False, True):
        with pytest.raises(ModelLoadError) as info:
            load_model(path, trust=trust)
        message = str(info.value)
        assert not isinstance(info.value, UnsafeModelError)
        assert "damaged.pt" in message and "corrupt" in message
        assert "--trust-checkpoint" not in message and "trust=True" not in message


def test_export_names_the_file_and_hints_trust_only_when_it_helps(tmp_path, capsys):
    """``spikebridge export``: a damaged file is named, with no trust hint (with or without
    --trust-checkpoint); a pickled module (trust would load it) gets the hint."""
    from spikebridge.cli import main

    damaged = _damaged_pickle(tmp_path / "damaged.pt")
    for extra in ([], ["--trust-checkpoint"]):
        assert main(["export", str(damaged), str(tmp_path / "a.nir"), *extra]) == 2
        err = capsys.readouterr().err
        assert "damaged.pt" in err and "--trust-checkpoint" not in err
        assert "could not be unpickled" not in err and len(err.strip().splitlines()) == 1
    pickled = tmp_path / "module.pt"
    torch.save(SmallNet(), pickled)
    assert main(["export", str(pickled), str(tmp_path / "b.nir")]) == 2
    err = capsys.readouterr().err
    assert "module.pt" in err and "--trust-checkpoint" in err


def _onnx_with_external_weights(tmp_path: Path) -> Path:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(0)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "wt"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])],
        [numpy_helper.from_array(torch.rand(64, 10).numpy(), "wt")],
    )
    model = helper.make_model(graph)
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, location="ext.data", size_threshold=0)
    return path


def test_onnx_external_data_beside_the_model_loads(tmp_path):
    path = _onnx_with_external_weights(tmp_path)
    model = load_model(path)
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("location", ["../secret.data", "/etc/passwd", "link.data"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path, location):
    import onnx

    folder = tmp_path / "model"
    folder.mkdir()
    path = _onnx_with_external_weights(folder)
    (tmp_path / "secret.data").write_bytes((folder / "ext.data").read_bytes())
    (folder / "link.data").symlink_to(tmp_path / "secret.data")
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, path)
    with pytest.raises(ModelLoadError, match=r"ext\.onnx.*'wt'"):
        load_model(path)
