"""A torch.export program's ATen graph -> a GraphModule of standard ``torch.nn`` modules.

An :class:`torch.export.ExportedProgram` is an fx graph of ATen operators whose weights are inputs
(placeholders) named in its graph signature. :func:`program_to_module` maps the operators a CNN
uses onto the modules :func:`spikebridge.convert.prepare` works with (see
:mod:`spikebridge.loading.builder`), in both forms a program comes in: the default one
(``aten.conv2d``, ``aten.linear``, ``aten.batch_norm``) and the core-ATen one after
``run_decompositions()`` (``aten.convolution``, ``aten.addmm`` of a transposed weight,
``aten._native_batch_norm_legit_no_training``, ``aten.max_pool2d_with_indices``).

An operator outside that set is an error naming it and the user's source line (the node's
``stack_trace``), never converted into something else.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from .builder import BROKEN, GraphBuilder, Site
from .errors import ModelLoadError

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[^\n]+)\n(?P<code>[^\n]*)'
)


@dataclass(frozen=True)
class Weight:
    """A constant tensor of the program (parameter, buffer or lifted constant), maybe transposed."""

    tensor: Tensor
    name: str


def user_source_line(stack_trace: str | None) -> str | None:
    """The innermost frame of ``stack_trace`` in the user's code (not in torch): ``file:line (code)``."""
    if not stack_trace:
        return None
    frames = list(_FRAME.finditer(stack_trace))
    user = [f for f in frames if not os.path.abspath(f["file"]).startswith(_TORCH_DIR)]
    frame = (user or frames or [None])[-1]
    if frame is None:
        return None
    return f"{frame['file']}:{frame['line']} ({frame['code'].strip()})"


def _op_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return target._opname
    return getattr(target, "__name__", str(target))


def _layer_name(node: fx.Node, kinds: tuple[type, ...] = ()) -> str | None:
    """The user's module path for a node inside a module of one of ``kinds`` (e.g. ``features.0``)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path, type_name = list(stack.values())[-1]
    if not path:
        return None
    if kinds and not any(type_name.endswith(k.__name__) for k in kinds):
        return None
    return path


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


class _ProgramMapper:
    def __init__(self, program: ExportedProgram, name: str) -> None:
        self.program = program
        self.builder = GraphBuilder(name)
        self.env: dict[fx.Node, Any] = {}
        self.handlers: dict[str, Callable[[fx.Node, Site], Any]] = {
            "conv1d": self.conv,
            "conv2d": self.conv,
            "convolution": self.convolution,
            "linear": self.linear,
            "addmm": self.addmm,
            "mm": self.mm,
            "matmul": self.mm,
            "t": self.transpose,
            "permute": self.transpose,
            "transpose": self.transpose,
            "numpy_T": self.transpose,
            "batch_norm": self.batch_norm,
            "_native_batch_norm_legit_no_training": self.batch_norm_legit,
            "relu": self.relu,
            "relu_": self.relu,
            "leaky_relu": self.leaky_relu,
            "leaky_relu_": self.leaky_relu,
            "hardtanh": self.hardtanh,
            "hardtanh_": self.hardtanh,
            "relu6": self.relu6,
            "clamp": self.clamp,
            "clamp_": self.clamp,
            "clip": self.clamp,
            "clip_": self.clamp,
            "max_pool1d": self.max_pool,
            "max_pool2d": self.max_pool,
            "max_pool2d_with_indices": self.max_pool_with_indices,
            "avg_pool1d": self.avg_pool,
            "avg_pool2d": self.avg_pool,
            "adaptive_avg_pool1d": self.adaptive_avg_pool,
            "adaptive_avg_pool2d": self.adaptive_avg_pool,
            "_adaptive_avg_pool2d": self.adaptive_avg_pool,
            "mean": self.mean,
            "add": self.add,
            "add_": self.add,
            "cat": self.cat,
            "concat": self.cat,
            "view": self.reshape,
            "reshape": self.reshape,
            "_unsafe_view": self.reshape,
            "flatten": self.reshape,
            "squeeze": self.reshape,
            "squeeze_": self.reshape,
            "unsqueeze": self.reshape,
            "dropout": self.dropout,
            "dropout_": self.dropout,
            "feature_dropout": self.dropout,
            "feature_dropout_": self.dropout,
            "alpha_dropout": self.dropout,
            "feature_alpha_dropout": self.dropout,
            "native_dropout": self.native_dropout,
            "clone": self.identity,
            "contiguous": self.identity,
            "alias": self.identity,
            "detach": self.identity,
            "detach_": self.identity,
            "lift_fresh_copy": self.identity,
            "getitem": self.getitem,
        }
        self.ignored = {
            "sym_size",
            "sym_numel",
            "sym_stride",
            "_assert_tensor_metadata",
            "_assert_scalar",
            "sym_constrain_range",
            "sym_constrain_range_for_size",
            "_assert_async",
        }

    # -- inputs -----------------------------------------------------------------------------

    def weights(self) -> None:
        sig = self.program.graph_signature
        state = self.program.state_dict
        constants = self.program.constants
        user_inputs = []
        for spec in sig.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                user_inputs.append(spec.arg.name)
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                tensor = state.get(spec.target)
                if tensor is None:
                    tensor = constants.get(spec.target)  # non-persistent buffers
                self._weights[spec.arg.name] = Weight(tensor.detach(), spec.target)
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                self._weights[spec.arg.name] = Weight(constants[spec.target].detach(), spec.target)
        if len(user_inputs) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the program takes {len(user_inputs)} inputs "
                f"({', '.join(user_inputs) or 'none'}); conversion needs a model of one image "
                "input [B, C, H, W]"
            )
        self._user_input = user_inputs[0]

    def run(self) -> fx.GraphModule:
        self._weights: dict[str, Weight] = {}
        self.weights()
        graph = self.program.graph
        for node in graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder(node)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            elif node.op == "output":
                self.output(node)
            elif node.op == "get_attr":
                self.env[node] = Weight(getattr(self.program.graph_module, node.target), node.name)
            else:
                self.env[node] = self.builder.problem(
                    self.site(node), f"an fx {node.op} node", "export the model with torch.export"
                )
        return self.builder.build()

    def placeholder(self, node: fx.Node) -> Any:
        if node.name in self._weights:
            return self._weights[node.name]
        if node.name != self._user_input:
            return None
        val = node.meta.get("val")
        if not isinstance(val, Tensor):
            raise ModelLoadError(f"{self.builder.name}: the input {node.name!r} is not a tensor")
        shape = [_hint(s) for s in val.shape]
        if shape:
            shape[0] = max(shape[0], 2)
        example = torch.rand(shape, dtype=val.dtype if val.dtype.is_floating_point else None)
        return self.builder.input(node.name, example)

    def output(self, node: fx.Node) -> None:
        specs = self.program.graph_signature.output_specs
        values = node.args[0]
        user = [v for v, s in zip(values, specs) if s.kind == OutputKind.USER_OUTPUT]
        if len(user) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the program returns {len(user)} outputs; conversion needs "
                "a model returning one tensor of class scores"
            )
        value = self.env[user[0]]
        if value is BROKEN:
            return
        if not isinstance(value, fx.Node):
            raise ModelLoadError(f"{self.builder.name}: the program's output is a constant")
        self.builder.output(value)

    # -- dispatch ---------------------------------------------------------------------------

    def site(self, node: fx.Node) -> Site:
        op = str(node.target) if node.op == "call_function" else node.op
        return Site(node.name, op, user_source_line(node.meta.get("stack_trace")))

    def call(self, node: fx.Node) -> Any:
        name = _op_name(node.target)
        if name in self.ignored:
            return None
        handler = self.handlers.get(name)
        site = self.site(node)
        if handler is None:  # reported even after a broken input: every such op is listed
            return self.builder.problem(site, f"unsupported operation {name}")
        if any(self.env.get(n) is BROKEN for n in node.all_input_nodes):
            return BROKEN
        return handler(node, site)

    def value(self, arg: Any) -> Any:
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, (list, tuple)):
            return [self.value(a) for a in arg]
        return arg

    def tensor_input(self, node: fx.Node, site: Site) -> fx.Node | None:
        x = self.value(node.args[0])
        return x if isinstance(x, fx.Node) else None

    def weight(self, arg: Any) -> Tensor | None:
        value = self.value(arg)
        if value is None:
            return None
        if isinstance(value, Weight):
            return value.tensor
        return None

    def need_weight(self, node: fx.Node, site: Site, index: int, name: str, optional=False):
        arg = _arg(node, index, name)
        if arg is None and optional:
            return None, True
        tensor = self.weight(arg)
        if tensor is None:
            self.builder.problem(
                site,
                f"its {name} is computed inside the graph, not a stored tensor",
                "keep weights as parameters of the layer (no weight standardisation or "
                "reparametrisation in forward)",
            )
            return None, False
        return tensor, True

    def layer_name(self, node: fx.Node, *kinds: type) -> str:
        return _layer_name(node, kinds) or node.name

    # -- handlers ---------------------------------------------------------------------------

    def conv(self, node: fx.Node, site: Site, groups_at: int = 6) -> Any:
        """``aten.conv2d`` (groups at argument 6) and, through :meth:`convolution`, the core-ATen
        ``aten.convolution`` (groups at 8); stride, padding, dilation at 3, 4, 5 in both."""
        x = self.tensor_input(node, site)
        weight, ok = self.need_weight(node, site, 1, "weight")
        bias, ok_b = self.need_weight(node, site, 2, "bias", optional=True)
        if x is None or not (ok and ok_b):
            return BROKEN if x is not None else self._not_tensor(site)
        return self.builder.conv(
            site,
            x,
            weight,
            bias,
            _arg(node, 3, "stride", 1),
            _arg(node, 4, "padding", 0),
            _arg(node, 5, "dilation", 1),
            _arg(node, groups_at, "groups", 1),
            name=self.layer_name(node, nn.Conv1d, nn.Conv2d),
        )

    def convolution(self, node: fx.Node, site: Site) -> Any:
        if _arg(node, 6, "transposed", False):
            return self.builder.problem(
                site,
                "a transposed convolution",
                "conversion supports ordinary convolutions; use upsampling + conv if needed",
            )
        return self.conv(node, site, groups_at=8)

    def linear(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        weight, ok = self.need_weight(node, site, 1, "weight")
        bias, ok_b = self.need_weight(node, site, 2, "bias", optional=True)
        if x is None or not (ok and ok_b):
            return BROKEN if x is not None else self._not_tensor(site)
        return self.builder.linear(site, x, weight, bias, self.layer_name(node, nn.Linear))

    def addmm(self, node: fx.Node, site: Site) -> Any:
        bias = self.weight(node.args[0])
        x = self.value(node.args[1])
        mat = self.weight(node.args[2])
        if bias is None or mat is None or not isinstance(x, fx.Node):
            return self.builder.problem(
                site,
                "a matrix product that is not input x stored weight (+ stored bias)",
                "use nn.Linear layers",
            )
        if _arg(node, 3, "beta", 1) != 1 or _arg(node, 4, "alpha", 1) != 1:
            return self.builder.problem(site, "a scaled matrix product", "use nn.Linear layers")
        return self.builder.linear(site, x, mat.t(), bias, self.layer_name(node, nn.Linear))

    def mm(self, node: fx.Node, site: Site) -> Any:
        x = self.value(node.args[0])
        mat = self.weight(node.args[1])
        if mat is None or not isinstance(x, fx.Node) or mat.dim() != 2:
            return self.builder.problem(
                site,
                "a matrix product that is not input x stored weight",
                "use nn.Linear layers",
            )
        return self.builder.linear(site, x, mat.t(), None, self.layer_name(node, nn.Linear))

    def transpose(self, node: fx.Node, site: Site) -> Any:
        value = self.value(node.args[0])
        if not isinstance(value, Weight):
            return self.builder.problem(
                site,
                "a transpose/permute of a tensor of the network",
                "keep the feature layout [B, C, H, W]; only weights may be transposed",
            )
        name = _op_name(node.target)
        tensor = value.tensor
        if name == "permute":
            tensor = tensor.permute(*node.args[1])
        elif name == "transpose":
            tensor = tensor.transpose(node.args[1], node.args[2])
        else:
            tensor = tensor.t()
        return Weight(tensor, value.name)

    def _batch_norm(self, node: fx.Node, site: Site, eps_index: int) -> Any:
        x = self.tensor_input(node, site)
        weight = self.weight(node.args[1])
        bias = self.weight(node.args[2])
        mean = self.weight(node.args[3])
        var = self.weight(node.args[4])
        if x is None:
            return self._not_tensor(site)
        if mean is None or var is None:
            return self.builder.problem(
                site,
                "batch norm without running statistics (it normalises each batch by itself)",
                "use BatchNorm with track_running_stats=True, trained, and export in eval mode",
            )
        eps = _arg(node, eps_index, "eps", 1e-5)
        name = self.layer_name(node, nn.BatchNorm1d, nn.BatchNorm2d)
        return self.builder.batch_norm(site, x, weight, bias, mean, var, eps, name)

    def batch_norm(self, node: fx.Node, site: Site) -> Any:
        if _arg(node, 5, "training", False):
            warnings.warn(
                f"{site}: batch norm was exported in training mode; its running statistics are "
                "used (the inference form). Export the model after model.eval()",
                stacklevel=2,
            )
        return self._batch_norm(node, site, 7)

    def batch_norm_legit(self, node: fx.Node, site: Site) -> Any:
        out = self._batch_norm(node, site, 6)
        return (out, None, None) if out is not BROKEN else BROKEN

    def relu(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        return self.builder.relu(site, x, self.layer_name(node, nn.ReLU))

    def relu6(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        return self.builder.clamp(site, x, 0.0, 6.0, self.layer_name(node, nn.ReLU6))

    def leaky_relu(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        slope = _arg(node, 1, "negative_slope", 0.01)
        return self.builder.leaky_relu(site, x, slope, self.layer_name(node, nn.LeakyReLU))

    def hardtanh(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        low, high = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
        return self.builder.clamp(site, x, low, high, self.layer_name(node, nn.Hardtanh))

    def clamp(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        low, high = _arg(node, 1, "min"), _arg(node, 2, "max")
        if isinstance(low, fx.Node) or isinstance(high, fx.Node):
            return self.builder.problem(site, "clamp with tensor bounds", "clamp to numbers")
        return self.builder.clamp(site, x, low, high, self.layer_name(node))

    def max_pool(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        return self.builder.max_pool(
            site,
            x,
            _arg(node, 1, "kernel_size"),
            _arg(node, 2, "stride"),
            _arg(node, 3, "padding", 0),
            _arg(node, 4, "dilation", 1),
            bool(_arg(node, 5, "ceil_mode", False)),
            self.layer_name(node, nn.MaxPool1d, nn.MaxPool2d),
        )

    def max_pool_with_indices(self, node: fx.Node, site: Site) -> Any:
        out = self.max_pool(node, site)
        if out is BROKEN:
            return BROKEN
        return (
            out,
            _Deferred(
                "the indices of a max pooling are used", "use max pooling without return_indices"
            ),
        )

    def avg_pool(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        return self.builder.avg_pool(
            site,
            x,
            _arg(node, 1, "kernel_size"),
            _arg(node, 2, "stride"),
            _arg(node, 3, "padding", 0),
            bool(_arg(node, 4, "ceil_mode", False)),
            bool(_arg(node, 5, "count_include_pad", True)),
            _arg(node, 6, "divisor_override"),
            self.layer_name(node, nn.AvgPool1d, nn.AvgPool2d),
        )

    def adaptive_avg_pool(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        return self.builder.adaptive_avg_pool(
            site,
            x,
            _arg(node, 1, "output_size"),
            self.layer_name(node, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d),
        )

    def mean(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        dims = _arg(node, 1, "dim")
        if dims is None:
            dims = []
        elif isinstance(dims, int):
            dims = [dims]
        return self.builder.mean(site, x, dims, bool(_arg(node, 2, "keepdim", False)))

    def add(self, node: fx.Node, site: Site) -> Any:
        if _arg(node, 2, "alpha", 1) != 1:
            return self.builder.problem(site, "a scaled addition (alpha != 1)", "use a plain sum")
        return self.builder.add(site, self.value(node.args[0]), self.value(node.args[1]))

    def cat(self, node: fx.Node, site: Site) -> Any:
        tensors = self.value(node.args[0])
        if any(t is BROKEN for t in tensors):
            return BROKEN
        return self.builder.cat(site, tensors, _arg(node, 1, "dim", 0))

    def reshape(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        val = node.meta.get("val")
        if not isinstance(val, Tensor):
            return self.builder.problem(site, "a reshape of unknown shape")
        before = self.builder.shape(x)
        after = [_hint(s) for s in val.shape]
        if after and before and after[0] != before[0] and _same_batch(node, val):
            after[0] = before[0]  # the example batch differs from the exported one
        return self.builder.reshape(site, x, after)

    def dropout(self, node: fx.Node, site: Site) -> Any:
        x = self.tensor_input(node, site)
        if x is None:
            return self._not_tensor(site)
        p = _arg(node, 1, "p", 0.5)
        return self.builder.dropout(site, x, p, self.layer_name(node))

    def native_dropout(self, node: fx.Node, site: Site) -> Any:
        out = self.dropout(node, site)
        mask = _Deferred("the dropout mask is used", "use dropout's output only")
        return (out, mask) if out is not BROKEN else BROKEN

    def identity(self, node: fx.Node, site: Site) -> Any:
        return self.value(node.args[0])

    def getitem(self, node: fx.Node, site: Site) -> Any:
        items = self.value(node.args[0])
        if not isinstance(items, tuple):
            return self.builder.problem(site, "indexing a tensor of the network")
        item = items[node.args[1]]
        if isinstance(item, _Deferred):
            return self.builder.problem(site, item.reason, item.fix)
        return item

    def _not_tensor(self, site: Site) -> Any:
        return self.builder.problem(
            site,
            "its input is a constant, not a tensor of the network",
            "apply layers to the network's input only",
        )


class _Deferred:
    """A tuple element whose use is a problem (max-pool indices, dropout masks)."""

    def __init__(self, reason: str, fix: str) -> None:
        self.reason = reason
        self.fix = fix


def _hint(size: Any) -> int:
    try:
        return int(size)
    except (TypeError, ValueError):
        node = getattr(size, "node", None)
        hint = getattr(node, "hint", None)
        return int(hint) if hint is not None else 2


def _same_batch(node: fx.Node, val: Tensor) -> bool:
    """Whether a reshape's output keeps the input's batch axis (compare the exported shapes)."""
    source = node.args[0]
    src = source.meta.get("val") if isinstance(source, fx.Node) else None
    if not isinstance(src, Tensor) or not val.shape or not src.shape:
        return False
    return str(val.shape[0]) == str(src.shape[0])


def program_to_module(program: ExportedProgram, name: str = "ExportedModel") -> fx.GraphModule:
    """The GraphModule of standard modules that computes what ``program`` computes.

    ``program``'s single input is an image batch [B, C, H, W] (any B: the batch axis of every
    reshape is left free); its output [B, K]. Raises
    :class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every operation that
    cannot be rebuilt, with the user's source line, and
    :class:`~spikebridge.loading.errors.ModelLoadError` for a program of several inputs or outputs.
    """
    return _ProgramMapper(program, name).run()


__all__ = ["program_to_module", "user_source_line"]
