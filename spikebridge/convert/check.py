"""Architecture-constraint check (Cao, Chen & Khosla 2015; Sengupta et al. 2019; SPEC 1.1).

``check(model)`` lists every place where a model breaks a constraint of rate-coded conversion, what
that costs (it blocks conversion, or it converts with an expected accuracy loss) and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from torch import fx, nn

from ..engine import graph as g

BLOCKS = "blocks conversion"
COSTS = "costs accuracy"
NOTE = "converts unchanged"


@dataclass(frozen=True)
class Violation:
    """One broken constraint: the layer, the rule (SPEC 1.1), the consequence and the fix."""

    layer: str
    rule: str
    consequence: str
    fix: str
    automatic: bool = False


@dataclass
class ConstraintReport:
    """The result of :func:`check`; ``ok`` when nothing blocks conversion."""

    model: str
    violations: list[Violation] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.consequence == BLOCKS]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [vars(v) for v in self.violations],
            columns=["layer", "rule", "consequence", "fix", "automatic"],
        )

    def __str__(self) -> str:
        if not self.violations:
            return f"{self.model}: meets every conversion constraint"
        lines = [f"{self.model}: {len(self.violations)} finding(s)"]
        for v in self.violations:
            auto = " [fixed by prepare()]" if v.automatic else ""
            lines.append(f"- {v.layer}: {v.rule} -> {v.consequence}. Fix: {v.fix}{auto}")
        return "\n".join(lines)


def _is_output_tail(node: fx.Node) -> bool:
    """Whether the node's only consumer is the graph output."""
    return len(node.users) == 1 and next(iter(node.users)).op == "output"


def _check_module(gm: fx.GraphModule, node: fx.Node, mod: nn.Module) -> Violation | None:
    name = str(node.target)
    if isinstance(mod, nn.LeakyReLU):
        return Violation(
            name,
            "LeakyReLU is not rate-codable by plain IF neurons",
            NOTE,
            "converted to signed neurons with imbalanced threshold (Kim 2020)",
            True,
        )
    if isinstance(mod, nn.Hardtanh) and not isinstance(mod, nn.ReLU6) and mod.min_val != 0:
        return Violation(
            name,
            f"Hardtanh({mod.min_val}, {mod.max_val}) has a negative range",
            BLOCKS,
            "retrain with ReLU (or Hardtanh(0, max))",
        )
    if isinstance(mod, g.ACTIVATIONS):
        if _is_output_tail(node):
            return Violation(
                name,
                "the output layer must not spike (rule 6)",
                COSTS,
                "the final activation is dropped and the layer before it is read out",
                True,
            )
        return None
    if isinstance(mod, g.NORMS):
        producer = node.args[0] if node.args else None
        prod_mod = g.module_of(gm, producer) if isinstance(producer, fx.Node) else None
        if not isinstance(prod_mod, g.SYNAPTIC) or len(producer.users) != 1:
            return Violation(
                name,
                "BatchNorm does not directly follow a conv/linear layer (rule 3)",
                NOTE,
                "kept as a per-channel affine layer; put BatchNorm right after a conv/linear "
                "layer so it folds into its weights",
            )
        return None  # folded into the preceding layer by prepare() (SPEC 1.2)
    if isinstance(mod, g.MAX_POOLS):
        return Violation(
            name,
            "max pooling over rates (rule 2)",
            COSTS,
            "replaced by a spiking max-pool (maxpool='spiking': Rueckauer's gate, or the exact "
            "running rule in method 'calibrated') or by average pooling (maxpool='avg', changes "
            "the function); retrain with AvgPool for a lossless rate-coded conversion",
            True,
        )
    if isinstance(mod, g.DROPOUTS):
        return None  # training only (rule 5): removed by prepare()
    if isinstance(mod, g.BLOCKING_NORMS):
        return Violation(
            name,
            f"{type(mod).__name__} is a cross-channel/sample normalisation (rule 3)",
            BLOCKS,
            "retrain with BatchNorm after conv/linear layers",
        )
    if isinstance(mod, g.OUTPUT_ONLY):
        if _is_output_tail(node):
            return None  # dropped by prepare(): argmax is unchanged
        return Violation(
            name, f"{type(mod).__name__} inside the network", BLOCKS, "move it to the loss"
        )
    if isinstance(mod, (g.SYNAPTIC, g.AVG_POOLS, g.SHAPE_MODULES, nn.Identity, g.TimeAware)):
        return None  # biases are fed as a constant current every step (rule 4, modern reading)
    return Violation(
        name,
        f"unsupported layer {type(mod).__name__}",
        BLOCKS,
        "conversion supports Conv1d/2d, Linear, BatchNorm, ReLU/LeakyReLU/QCFS, pooling, "
        "Flatten, Dropout, residual additions and concatenation; replace this layer",
    )


def _check_call(gm: fx.GraphModule, node: fx.Node) -> Violation | None:
    target = node.target
    label = g.describe(node)
    if node.op == "call_function":
        if target in g.RELU_FUNCTIONS:
            if _is_output_tail(node):
                return Violation(
                    label, "the output layer must not spike (rule 6)", COSTS, "dropped", True
                )
            return None
        if target in g.ADD_FUNCTIONS:
            if node.kwargs.get("alpha", 1) != 1:
                return Violation(label, "scaled addition", BLOCKS, "use a plain sum")
            return None
        if target in g.SHAPE_FUNCTIONS or target in g.LINEAR_FUNCTIONS:
            return None
        if target in g.MAX_POOL_FUNCTIONS:
            return Violation(
                label,
                "max pooling over rates (rule 2)",
                COSTS,
                "replaced as for MaxPool modules",
                True,
            )
        if target in g.DROPOUT_FUNCTIONS or (
            target in g.OUTPUT_FUNCTIONS and _is_output_tail(node)
        ):
            return None  # removed by prepare(): dropout is for training, softmax keeps the argmax
        if target is torch_mean():
            return _check_mean(node, label)
    elif node.op == "call_method":
        if target in g.RELU_METHODS:
            return None
        if target in g.SHAPE_METHODS or target in ("add", "add_"):
            return None
        if target == "mean":
            return _check_mean(node, label)
        if target in ("softmax", "log_softmax") and _is_output_tail(node):
            return None
    return Violation(
        label,
        "unsupported operation",
        BLOCKS,
        "only linear operations (pooling, flatten/view/reshape, addition, concatenation, spatial "
        "mean) and ReLU-like activations convert; express this part with supported layers",
    )


def torch_mean():
    import torch

    return torch.mean


def _check_mean(node: fx.Node, label: str) -> Violation | None:
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    if dims and all(isinstance(d, int) and (d >= 2 or d < -1) for d in dims):
        return None
    return Violation(
        label, "mean over batch or channel axes", BLOCKS, "average only over spatial axes"
    )


def check(model: nn.Module) -> ConstraintReport:
    """Report the constraints of SPEC 1.1 that ``model`` breaks.

    Each finding names the layer, the rule, whether it blocks conversion or costs accuracy, and the
    fix (``automatic`` when :func:`spikebridge.convert.prepare` applies it).
    """
    gm = g.trace(model)
    report = ConstraintReport(type(model).__name__)
    outputs = [n for n in gm.graph.nodes if n.op == "output"]
    for node in gm.graph.nodes:
        if node.op == "call_module":
            found = _check_module(gm, node, g.module_of(gm, node))
        elif node.op in ("call_function", "call_method"):
            found = _check_call(gm, node)
        else:
            found = None
        if found is not None:
            report.violations.append(found)
    if outputs and isinstance(outputs[0].args[0], (tuple, list, dict)):
        report.violations.append(
            Violation(
                "output",
                "the model returns several outputs",
                BLOCKS,
                "return one tensor of class scores",
            )
        )
    if not any(g.is_activation_node(gm, n) for n in gm.graph.nodes):
        report.violations.append(
            Violation(
                type(model).__name__,
                "no activation to turn into neurons",
                BLOCKS,
                "nothing spikes; check the model",
            )
        )
    return report
