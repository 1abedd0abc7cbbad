"""An untrusted .pt2 is read without ``torch.export.load``: crafted archives run nothing.

Two crafted kinds, each made by editing a real ``torch.export.save`` archive:

- a dynamic-batch program whose symbolic size ``expr_str`` is Python that creates a marker file
  (``torch.export.load`` hands it to ``sympy.sympify``, which runs it: shown with trust);
- an archive with two ``model_weights_config.json`` entries, the first (torch's reader's choice)
  marking the conv weight ``use_pickle`` and a pickled weight that creates a marker, the last
  (Python zipfile's choice) clean.

Both are refused without trust, by ``load_model``, ``spikebridge convert`` and ``spikebridge
compare`` (also renamed .pt), with a one-line error naming the file and the problem, and no
marker. The same programs without payload (static and dynamic batch, default and core-ATen IR)
load without trust, without ever calling ``torch.export.load``, and compute what the original
module computes.
"""

from __future__ import annotations

import builtins
import io
import json
import re
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.loading import ModelLoadError, UnsafeModelError, load_model
from spikebridge.loading.pt2_archive import Pt2Archive
from spikebridge.loading.sym_expr import ExpressionError, check_expression


class PlainCNN(nn.Module):
    """conv, batch norm, relu, max pool, flatten, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class ResidualCNN(nn.Module):
    """A ResNet-style block (add), average pooling, a view with the batch size, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        x = F.relu(self.bn_a(self.conv_a(x)) + x)
        x = F.avg_pool2d(x, 2)
        return self.head(self.drop(x.view(x.size(0), -1)))


def _trained_stats(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def _save(model: nn.Module, path: Path, dynamic: bool, core: bool = False) -> Path:
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic else None
    program = torch.export.export(model, (torch.rand(2, 1, 8, 8),), dynamic_shapes=shapes)
    if core:
        program = program.run_decompositions()
    torch.export.save(program, path)
    return path


def _entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _write(entries: list[tuple[str, bytes]], target: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(target, "w") as out:
            for name, data in entries:
                out.writestr(name, data)
    return target


class MarkerPayload:
    """Unpickling this creates ``path`` (what a malicious pickle could do instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


_SYMBOL = re.compile(r"Symbol\('(\w+)', positive=True, integer=True\)")


def expr_payload_file(source: Path, target: Path, marker: Path) -> Path:
    """``source`` (a dynamic-batch program) with every symbolic size replaced by Python that
    creates ``marker`` and then returns the symbol."""
    entries = []
    for name, data in _entries(source):
        if name.endswith(".json") and "/models/" in name:
            text = data.decode()
            symbol = _SYMBOL.search(text)
            assert symbol is not None, "the program has no symbolic batch"
            payload = (
                f"__import__('pathlib').Path({str(marker)!r}).touch() or "
                f"Symbol('{symbol.group(1)}', positive=True, integer=True)"
            )
            doc = json.loads(text)
            for value in doc["graph_module"]["graph"]["tensor_values"].values():
                for size in value["sizes"]:
                    if "as_expr" in size:
                        size["as_expr"]["expr_str"] = payload
            data = json.dumps(doc).encode()
        entries.append((name, data))
    return _write(entries, target)


def duplicate_config_file(source: Path, target: Path, marker: Path) -> Path:
    """``source`` with a first ``model_weights_config.json`` that marks the conv weight
    ``use_pickle`` (its file now a pickle creating ``marker``) and a last, clean one."""
    entries = _entries(source)
    config_name = next(n for n, _ in entries if n.endswith("model_weights_config.json"))
    clean = dict(entries)[config_name]
    config = json.loads(clean)
    first = next(k for k in config["config"] if k.endswith("weight"))
    weight_file = config["config"][first]["path_name"]
    config["config"][first]["use_pickle"] = True
    buffer = io.BytesIO()
    torch.save(MarkerPayload(str(marker)), buffer)
    out = [(config_name, json.dumps(config).encode())]
    for name, data in entries:
        if name.endswith(f"data/weights/{weight_file}"):
            data = buffer.getvalue()
        out.append((name, data))
    return _write(out, target)


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    folder = tmp_path_factory.mktemp("programs")
    made = {}
    for cls in (PlainCNN, ResidualCNN):
        torch.manual_seed(0)
        model = _trained_stats(cls())
        for dynamic in (False, True):
            for core in (False, True):
                key = f"{cls.__name__}-{'dynamic' if dynamic else 'static'}"
                key += "-core" if core else ""
                made[key] = model, _save(model, folder / f"{key}.pt2", dynamic, core)
    return made


@pytest.fixture()
def no_torch_loader(monkeypatch):
    """torch.export.load made to fail: the untrusted route must never call it."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.export.load called without trust")

    monkeypatch.setattr(torch.export, "load", refuse)


# -- clean programs load without trust ------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        f"{net}-{batch}{ir}"
        for net in ("PlainCNN", "ResidualCNN")
        for batch in ("static", "dynamic")
        for ir in ("", "-core")
    ],
)
def test_clean_program_loads_without_trust_or_torch_loader(programs, key, no_torch_loader):
    model, path = programs[key]
    loaded = load_model(path)
    assert type(loaded).__name__ == type(model).__name__
    for batch in (1, 3, 7):
        x = torch.rand(batch, 1, 8, 8)
        with torch.no_grad():
            assert torch.allclose(loaded(x), model(x), atol=1e-5), (key, batch)


def test_trusted_and_untrusted_routes_rebuild_the_same_module(programs):
    model, path = programs["ResidualCNN-dynamic"]
    safe, trusted = load_model(path), load_model(path, trust=True)
    layers = [[(n, type(m)) for n, m in g.named_modules() if n] for g in (safe, trusted)]
    assert layers[0] == layers[1] and len(layers[0]) >= 6
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(safe(x), trusted(x))


# -- crafted programs run nothing -----------------------------------------------------------


def test_expr_payload_runs_under_torch_loader_so_the_crafted_file_is_live(programs, tmp_path):
    """Documented meaning of trust: torch.export.load evaluates the expression (the marker)."""
    marker = tmp_path / "MARKER"
    crafted = expr_payload_file(programs["PlainCNN-dynamic"][1], tmp_path / "expr.pt2", marker)
    try:
        torch.export.load(crafted)
    except Exception:
        pass
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_expr_payload_is_refused_naming_node_and_string(programs, tmp_path, suffix):
    marker = tmp_path / "MARKER"
    source = programs["PlainCNN-dynamic"][1]
    crafted = expr_payload_file(source, tmp_path / f"expr{suffix}", marker)
    with pytest.raises(ModelLoadError) as info:
        load_model(crafted)
    message = str(info.value)
    assert crafted.name in message and "symbolic size" in message
    assert "__import__" in message and "node 'x'" in message
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_duplicate_config_is_refused_and_runs_nothing(programs, tmp_path, suffix):
    marker = tmp_path / "MARKER"
    source = programs["PlainCNN-static"][1]
    crafted = duplicate_config_file(source, tmp_path / f"dup{suffix}", marker)
    for trust in (False, True):  # a malformed archive is refused even when trusted
        with pytest.raises(ModelLoadError) as info:
            load_model(crafted, trust=trust)
        message = str(info.value)
        assert crafted.name in message and "model_weights_config.json" in message
        assert "appears twice" in message and "\n" not in message
        assert "--trust-checkpoint" not in message and "trust=True" not in message
    assert not marker.exists()


def test_pickled_weight_named_in_a_single_config_is_refused(programs, tmp_path):
    """Without the duplicate, the use_pickle weight is refused naming the entry (trust helps)."""
    marker = tmp_path / "MARKER"
    crafted = duplicate_config_file(programs["PlainCNN-static"][1], tmp_path / "d.pt2", marker)
    entries = _entries(crafted)
    seen: set[str] = set()
    single = [(n, d) for n, d in entries if not (n in seen or seen.add(n))]  # keep the first
    path = _write(single, tmp_path / "pickled.pt2")
    with pytest.raises(UnsafeModelError) as info:
        load_model(path)
    message = str(info.value)
    assert "pickled.pt2" in message and "stored as a pickle" in message and "trust" in message
    assert not marker.exists()


FAST = ["--methods", "channel", "--timesteps", "4", "--limit", "64", "--quiet"]


@pytest.mark.parametrize("command", ["convert", "compare"])
@pytest.mark.parametrize("kind", ["expr", "duplicate"])
def test_cli_refuses_crafted_files_in_one_line(programs, tmp_path, capsys, command, kind):
    from spikebridge.cli import main

    marker = tmp_path / "MARKER"
    for suffix in (".pt2", ".pt"):
        if kind == "expr":
            source = programs["PlainCNN-dynamic"][1]
            crafted = expr_payload_file(source, tmp_path / f"crafted{suffix}", marker)
            problem = "symbolic size"
        else:
            source = programs["PlainCNN-static"][1]
            crafted = duplicate_config_file(source, tmp_path / f"crafted{suffix}", marker)
            problem = "appears twice"
        out = tmp_path / f"out{suffix}"
        args = [command, "--checkpoint", str(crafted), *FAST, "--out", str(out)]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert crafted.name in err and problem in err, err
        assert len(err.splitlines()) == 1, err
        assert not marker.exists() and not out.exists()


# -- the archive reader ---------------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w", method) as out:
            for name, data in entries:
                out.writestr(name, data)
    return buffer.getvalue()


def _refused(data: bytes, words: str) -> None:
    with pytest.raises(ModelLoadError, match=words):
        Pt2Archive(data, "crafted.pt2")


def test_archive_reader_reads_what_torch_writes(programs):
    path = programs["PlainCNN-static"][1]
    archive = Pt2Archive(path.read_bytes(), str(path))
    with zipfile.ZipFile(path) as reference:
        assert sorted(archive.names) == sorted(reference.namelist())
        for name in reference.namelist():
            assert bytes(archive.read(name)) == reference.read(name)
    deflated = _zip([("a/x", b"hello" * 100)], zipfile.ZIP_DEFLATED)
    assert bytes(Pt2Archive(deflated, "d").read("a/x")) == b"hello" * 100


def test_archive_reader_refuses_inconsistent_archives():
    clean = _zip([("m/archive_format", b"pt2"), ("m/models/model.json", b"{}")])
    Pt2Archive(clean, "ok")
    _refused(_zip([("m/a", b"1"), ("m/a", b"2")]), "appears twice")
    _refused(_zip([("m/A", b"1"), ("m/a", b"2")]), "appears twice")
    _refused(_zip([("../evil", b"1")]), "not a plain relative path")
    _refused(_zip([("/abs/evil", b"1")]), "not a plain relative path")
    _refused(_zip([("m\\..\\evil", b"1")]), "not a plain relative path")
    # a local header named differently from its directory entry
    data = bytearray(clean)
    at = data.index(b"m/archive_format")  # the first occurrence: the local header
    data[at : at + 16] = b"m/archive_formaT"
    _refused(bytes(data), "local header")
    # an entry hidden between two the directory lists
    hidden = _zip([("m/x", b"hidden")])
    cut = hidden.index(b"PK\x01\x02")
    listed = _zip([("m/y", b"1")])
    shifted = bytearray(listed)
    end = shifted.index(b"PK\x05\x06")
    directory = shifted.index(b"PK\x01\x02")
    shifted[end + 16 : end + 20] = struct.pack("<I", directory + cut)  # directory offset
    crafted = bytes(shifted[:directory]) + hidden[:cut] + bytes(shifted[directory:])
    centre = crafted.index(b"PK\x01\x02")
    header_at = centre + 42
    assert struct.unpack_from("<I", crafted, header_at)[0] == 0
    _refused(crafted, "gap|unaccounted")
    # encryption, trailing bytes, damaged data
    data = bytearray(clean)
    data[6] |= 1
    _refused(bytes(data), "encrypted|disagrees")
    _refused(clean + b"junk", "end-of-central-directory")
    data = bytearray(clean)
    data[data.index(b"pt2")] = ord("q")
    with pytest.raises(ModelLoadError, match="CRC"):
        Pt2Archive(bytes(data), "crafted.pt2").read("m/archive_format")


def test_deflate_bomb_stops_at_the_declared_size():
    bomb = bytearray(_zip([("m/x", b"\0" * (1 << 20))], zipfile.ZIP_DEFLATED))
    for at in [i for i in range(len(bomb)) if bomb.startswith(b"PK\x01\x02", i)]:
        struct.pack_into("<I", bomb, at + 24, 10)  # declared size: 10 bytes
    struct.pack_into("<I", bomb, 22, 10)  # and in the local header
    archive = Pt2Archive(bytes(bomb), "bomb.pt2")
    with pytest.raises(ModelLoadError, match="declared size"):
        archive.read("m/x")


# -- the grammar of symbolic sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "Symbol('s77', positive=True, integer=True)",
        "Mul(Integer(2), Symbol('s0', positive=True, integer=True))",
        "FloorDiv(Symbol('s1', integer=True), Integer(2))",
        "s0",
        "2*s0 + 1",
        "(s0 - 1)//2 % 3",
        "Max(1, s0)",
        "Eq(s0, 2)",
    ],
)
def test_grammar_accepts_what_torch_writes(expr):
    assert check_expression(expr) <= {"s77", "s0", "s1"}


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('id') or Symbol('s77', positive=True, integer=True)",
        "Symbol('s0').__class__",
        "eval('1')",
        "s0**2",
        "Symbol('__s')",
        "Symbol('s0', evaluate=True)",
        "lambda: 0",
        "[s0]",
        "Function('f')(s0)",
        "1.5",
        "(" * 100 + "s0" + ")" * 100,
    ],
)
def test_grammar_refuses_everything_else(expr):
    with pytest.raises(ExpressionError):
        check_expression(expr)


def _edit_json(source: Path, target: Path, suffix: str, edit) -> Path:
    entries = []
    for name, data in _entries(source):
        if name.endswith(suffix):
            doc = json.loads(data)
            edit(doc)
            data = json.dumps(doc).encode()
        entries.append((name, data))
    return _write(entries, target)


def test_weight_reaching_past_its_bytes_is_refused_naming_it(programs, tmp_path):
    def grow(doc):
        doc["config"]["conv1.weight"]["tensor_meta"]["sizes"][0] = {"as_int": 600}

    source = programs["PlainCNN-static"][1]
    path = _edit_json(source, tmp_path / "big.pt2", "model_weights_config.json", grow)
    with pytest.raises(ModelLoadError, match=r"big\.pt2.*conv1\.weight.*reach element"):
        load_model(path)


def test_huge_example_input_is_refused(programs, tmp_path):
    def huge(doc):
        x = doc["graph_module"]["graph"]["tensor_values"]["x"]
        x["sizes"][2] = x["sizes"][3] = {"as_int": 100_000}

    source = programs["PlainCNN-static"][1]
    path = _edit_json(source, tmp_path / "huge.pt2", "model.json", huge)
    with pytest.raises(ModelLoadError, match="at most"):
        load_model(path)


class ContiguousCNN(nn.Module):
    """``.contiguous()`` and ``.clone()``: a clone with a memory format in the core-ATen form."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x)).contiguous(memory_format=torch.channels_last).clone()
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("core", [False, True])
def test_copies_with_options_rebuild_on_both_routes(tmp_path, trust, core):
    torch.manual_seed(0)
    model = ContiguousCNN().eval()
    path = _save(model, tmp_path / "copies.pt2", dynamic=True, core=core)
    loaded = load_model(path, trust=trust)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
