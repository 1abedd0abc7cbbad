"""Every setting of spikebridge in one place, each with one default (dataclasses).

Six groups: :class:`ExperimentSettings` (data, architecture, seed, device),
:class:`TrainingSettings` (the ANN and the directly trained SNN), :class:`ConversionSettings`
(threshold methods and neurons), :class:`SimulationSettings` (T, input encoding, energy per
operation), :class:`StdpSettings` (the unsupervised STDP route) and :class:`RobustnessSettings`
(noisy test images). A field is declared with :func:`setting`, which records its help text and checks;
command-line flags (:func:`spikebridge.cli.flags.add_flags`) and config-file keys
(:func:`check_value`, used by :mod:`spikebridge.cli.config` and
:func:`spikebridge.compare.config.load_config`) are generated from
the fields, so adding a setting is one line in its group::

    noise_std: float = setting(0.0, "std of Gaussian noise added to test images", non_negative=True)

A pluggable part's own settings (a threshold method's: ``SpikeNormSettings``,
``CalibratedSettings``, ...) are a dataclass of :func:`setting` fields in that part's own file
(:mod:`spikebridge.convert.methods`), and get their flags and keys the same way. This module
imports nothing of spikebridge: a check only a higher layer can make (method names, noise specs)
is registered with :func:`register_check`.

Defaults chosen where commands used to disagree: ``calibration_samples`` 2000 (the count the
MNIST figures in benchmarks/RESULTS.md were measured with; 512 was compare's); the direct SNN's
optimizer ``sgd`` with momentum 0.9 (Zheng et al. 2021 train tdBN networks with SGD; compare's
choice; ``spikebridge train`` used adam), its learning rate 0.1 for sgd and 1e-3 for adam unless
given; in the library the direct SNN trains as many epochs as the ANN (``epochs``, 5) unless
``direct_epochs`` says otherwise (the commands resolve both: ``--epochs`` sets every network's,
``--ann-epochs`` and ``--direct-epochs`` one each; docs/cli.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

ACTIVATIONS = ("relu", "leaky-relu", "qcfs")
POOLS = ("avg", "max")
RESETS = ("subtract", "zero")
MAXPOOLS = ("spiking", "avg")
STATIC_ENCODINGS = ("analog", "poisson")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step")
SURROGATES = ("rectangular", "polynomial", "sigmoid", "gaussian")
DEVICES = ("auto", "cpu", "cuda")
MAX_TIMESTEPS = 100_000
"""The most timesteps T a simulation (and a target T, a selection T) may take."""
MAX_EPOCHS = 100_000
MAX_SAMPLES = 10_000_000
"""The most images a count of samples (limits, calibration, validation) may name."""
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**63 - 1
"""Seeds are 0 <= seed <= 2**63 - 1 (torch's generators take 64 bits; offsets are added)."""
MAX_LR = 10.0
MAX_TARGETS = 64
"""The most target T's of a per-T method (each builds and calibrates a network)."""
MAX_SPIKE_LEVELS = 255
"""The most threshold units K one graded spike may carry (an 8-bit payload, as Loihi 2's)."""
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}
"""The direct SNN's learning rate by optimizer when ``direct_lr`` is not given."""
DEFAULT_PERCENTILE = 99.9
"""p of the percentile methods (Rueckauer 2017 use 99.9 and 99.99)."""


class SettingsError(ValueError):
    """A setting has a wrong type or value; the message names it (and the file and line)."""


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    positive: bool = False,
    non_negative: bool = False,
    fraction: bool = False,
    maximum: float | None = None,
    below: float | None = None,
    runtime: bool = False,
    aliases: tuple[str, ...] = (),
    flag: bool = True,
    flag_name: str | None = None,
) -> Any:
    """A settings field: ``default``, a one-line ``help`` and the checks its values must pass.

    Args:
        choices: the allowed strings.
        positive / non_negative / fraction: a number > 0, >= 0, or in [0, 1).
        maximum / below: the largest value allowed / a bound the value must stay under; every
            number setting has one, so a huge value is refused when parsed, before any work.
        runtime: does not change the results (where data lives, which device); a re-run of an
            experiment may change it freely.
        aliases: other flag spellings (e.g. ``("--method",)`` for ``methods``).
        flag: whether the command line gets a flag for it.
        flag_name: its flag when not ``--`` and the name with ``-`` (``epochs``: ``--ann-epochs``;
            the record and config keys keep the field's name).
    """
    metadata = dict(
        help=help, choices=choices, positive=positive, non_negative=non_negative,
        fraction=fraction, maximum=maximum, below=below, runtime=runtime, aliases=aliases,
        flag=flag, flag_name=flag_name,
    )  # fmt: skip
    return field(default=default, metadata=metadata)


class _Checked:
    """Checks every field when an instance is made (a wrong value raises SettingsError)."""

    def __post_init__(self) -> None:
        check_all(self)


@dataclass
class ExperimentSettings(_Checked):
    """What data, which architecture, which seed and device."""

    arch: str = setting("cnn", "architecture: cnn, vgg11, resnet20, resnet19 or torchvision:NAME")
    dataset: str = setting("digits", "digits (offline default), mnist, fashion-mnist, cifar10")
    data_root: str | None = setting(
        None, "folder holding the dataset files (or torchvision's root)", runtime=True
    )
    download: bool = setting(False, "let torchvision download a missing dataset", runtime=True)
    width: float = setting(1.0, "channel width multiplier (both routes)", positive=True,
                           maximum=64)  # fmt: skip
    activation: str = setting(
        "relu", "ANN activation: relu, leaky-relu (signed neurons) or qcfs (Bu 2022)",
        choices=ACTIVATIONS,
    )  # fmt: skip
    alpha: float = setting(0.1, "LeakyReLU slope of the ANN", positive=True, maximum=1)
    levels: int = setting(4, "QCFS quantisation levels L", positive=True, maximum=1024)
    pool: str = setting("avg", "pooling of the architecture: avg or max", choices=POOLS)
    batch_size: int = setting(128, "batch size for training and simulation", positive=True,
                              maximum=MAX_BATCH_SIZE)  # fmt: skip
    limit: int | None = setting(None, "use only the first N test images", positive=True,
                                maximum=MAX_SAMPLES)  # fmt: skip
    train_limit: int | None = setting(
        None, "train on a fixed random subset of N images", positive=True, maximum=MAX_SAMPLES
    )
    normalize: str | None = setting(
        None, "MEAN,STD the model was trained with (torchvision's Normalize): inputs become "
        "(x - MEAN) / STD on every route; per channel: M1,M2,M3,S1,S2,S3 (default: none, "
        "inputs in [0, 1])",
    )  # fmt: skip
    validation_fraction: float = setting(
        0.1, "fraction of the training images held out to validate training (0: none)",
        fraction=True,
    )  # fmt: skip
    seed: int = setting(0, "random seed (weights, data order, calibration subset)",
                        non_negative=True, maximum=MAX_SEED)  # fmt: skip
    device: str = setting("auto", "auto, cpu or cuda", choices=DEVICES, runtime=True)
    export_nir: bool = setting(
        False, "also write every spiking network as NIR (needs the nir extra; docs/nir.md)",
        runtime=True,
    )  # fmt: skip


@dataclass
class TrainingSettings(_Checked):
    """Training of the ANN (Adam, cosine schedule) and of the direct SNN (STBP-tdBN)."""

    epochs: int = setting(
        5, "training epochs of the ANN (0: none, e.g. for a loaded checkpoint)",
        non_negative=True, maximum=MAX_EPOCHS, flag_name="--ann-epochs",
    )  # fmt: skip
    lr: float = setting(1e-3, "learning rate of the ANN (Adam)", positive=True, maximum=MAX_LR,
                        flag_name="--ann-lr")  # fmt: skip
    direct_epochs: int | None = setting(
        None, "training epochs of the direct SNN (default: --epochs, else 5; 0 skips the direct "
        "route in compare)", non_negative=True, maximum=MAX_EPOCHS,
    )  # fmt: skip
    direct_timesteps: int = setting(4, "timesteps T per sample while training the direct SNN",
                                    positive=True, maximum=1000)  # fmt: skip
    direct_optimizer: str = setting("sgd", "direct SNN optimizer: sgd or adam", choices=OPTIMIZERS)
    direct_lr: float | None = setting(
        None,
        "direct SNN learning rate (default 0.1 for sgd, 1e-3 for adam)",
        positive=True,
        maximum=MAX_LR,
    )
    direct_momentum: float = setting(0.9, "direct SNN SGD momentum", non_negative=True, below=1)
    direct_weight_decay: float = setting(0.0, "direct SNN weight decay", non_negative=True,
                                         maximum=1)  # fmt: skip
    direct_schedule: str = setting("cosine", "direct SNN learning-rate schedule", choices=SCHEDULES)
    direct_threshold: float = setting(0.5, "LIF threshold V_th of the direct SNN", positive=True,
                                     maximum=1000)  # fmt: skip
    direct_tau_decay: float = setting(0.25, "LIF leak factor per step of the direct SNN",
                                      positive=True, maximum=1)  # fmt: skip
    direct_surrogate: str = setting("rectangular", "surrogate gradient of the LIF spike",
                                    choices=SURROGATES)  # fmt: skip
    direct_surrogate_width: float = setting(1.0, "surrogate width a", positive=True, maximum=100)

    def direct_learning_rate(self) -> float:
        """``direct_lr``, or the optimizer's default (:data:`DEFAULT_LR`)."""
        return self.direct_lr if self.direct_lr is not None else DEFAULT_LR[self.direct_optimizer]

    def direct_epoch_count(self) -> int:
        """``direct_epochs``, or as many as the ANN's ``epochs``."""
        return self.direct_epochs if self.direct_epochs is not None else self.epochs


@dataclass
class ConversionSettings(_Checked):
    """How the conversion route chooses thresholds and builds neurons."""

    methods: str | list[str] = setting(
        "all", "conversion methods: 'all' (every applicable one) or comma-separated names",
        aliases=("--method",),
    )  # fmt: skip
    percentile: float | str = setting(
        DEFAULT_PERCENTILE, "p of the percentile and channel methods, or 'auto': the best of 99, "
        "99.5, 99.9, 99.99 on --validation-samples held-out training images",
    )  # fmt: skip
    calibration_samples: int = setting(
        2000,
        "training images for the conversion's calibration pass",
        positive=True,
        maximum=MAX_SAMPLES,
    )
    validation_samples: int = setting(
        1000, "held-out training images (not the calibration ones) for --percentile auto",
        positive=True, maximum=MAX_SAMPLES,
    )  # fmt: skip
    selection_timesteps: int | None = setting(
        None, "the latency T at which --percentile auto compares p (default --timesteps)",
        positive=True, maximum=MAX_TIMESTEPS,
    )  # fmt: skip
    reset: str = setting("subtract", "IF reset of converted networks: subtract or zero",
                         choices=RESETS)  # fmt: skip
    initial_potential: float | None = setting(
        None, "initial membrane potential as a fraction of threshold (default: the method's, "
        "0.5 for qcfs, else 0)", fraction=True,
    )  # fmt: skip
    negative_spikes: bool | None = setting(
        None, "signed IF neurons that take back excess spikes (Wang 2022, Hu 2023; default: "
        "the method's, on for qcfs)",
    )  # fmt: skip
    maxpool: str = setting("spiking", "max-pooling in converted networks: spiking (Rueckauer's gate; "
                           "calibrated: the exact running rule) or avg (changes the function)",
                           choices=MAXPOOLS)  # fmt: skip
    targets: str | None = setting(
        None, "target T's of methods that build one network per T (calibrated), comma-separated "
        "(default: 1, 2, 4, ... and --timesteps)",
    )  # fmt: skip
    spike_levels: int | str = setting(
        1, "graded spikes: the most threshold units K a spike carries per step (1: binary); "
        "comma-separated K's build one network per K (e.g. 1,2,4), labelled -K<K>",
        maximum=MAX_SPIKE_LEVELS,
    )  # fmt: skip


@dataclass
class SimulationSettings(_Checked):
    """How long networks are simulated, their input encoding and the energy per operation."""

    timesteps: int = setting(32, "simulate T steps; accuracy is reported after every t <= T",
                             positive=True, maximum=MAX_TIMESTEPS)  # fmt: skip
    encoding: str = setting("analog", "input encoding: analog or poisson",
                            choices=STATIC_ENCODINGS)  # fmt: skip
    e_mac: float = setting(4.6, "energy per multiply-accumulate, pJ (Horowitz 2014: 4.6)",
                           non_negative=True, maximum=1e6)  # fmt: skip
    e_ac: float = setting(0.9, "energy per accumulate / synaptic operation, pJ (Horowitz 2014: "
                          "0.9)", non_negative=True, maximum=1e6)  # fmt: skip
    energy_models: str = setting(
        "all", "energy models of energy.csv (convert, train, compare): 'all' or comma-separated names (ops, lemaire, "
        "reuse, loihi; docs/energy.md)", aliases=("--energy-model",), runtime=True,
    )  # fmt: skip


@dataclass
class ModelFileSettings(_Checked):
    """A trained ANN from the user's file instead of one trained on an architecture by name."""

    checkpoint: str | None = setting(
        None, "the trained ANN: a .pt2 (torch.export) or .onnx file carries its own graph (no "
        "--arch); a state dict needs --arch; a pickled module needs --trust-checkpoint",
    )  # fmt: skip
    trust_checkpoint: bool = setting(
        False, "allow --checkpoint's pickles (a whole pickled module, pickled .pt2 payloads): "
        "this RUNS CODE from the file; only for files you trust", runtime=True,
    )  # fmt: skip


@dataclass
class StdpSettings(_Checked):
    """The unsupervised STDP route (Tavanaei & Maida 2017; docs/stdp.md)."""

    stdp_epochs: int = setting(
        1, "STDP epochs of the feature discovery layer (0 skips the stdp route in compare)",
        non_negative=True, maximum=MAX_EPOCHS,
    )  # fmt: skip
    stdp_ae_epochs: int = setting(1, "epochs of the spiking auto-encoder (conv1 kernels)",
                                  positive=True, maximum=MAX_EPOCHS)  # fmt: skip
    stdp_conv_channels: int = setting(32, "conv1 kernels learned by the auto-encoder",
                                      positive=True, maximum=4096)  # fmt: skip
    stdp_feature_channels: int = setting(64, "features of the STDP feature discovery layer",
                                         positive=True, maximum=4096)  # fmt: skip
    stdp_timesteps: int = setting(16, "timesteps per image while training the STDP route",
                                  positive=True, maximum=10_000)  # fmt: skip


@dataclass
class RobustnessSettings(_Checked):
    """Scoring every network on seeded noisy test images as well (docs/stdp.md, Noise)."""

    noise: list[str] | None = setting(
        None, "noise specs NAME:LEVEL[,LEVEL...] (gaussian, salt-pepper, speckle), repeatable: "
        "--noise gaussian:0.1,0.2,0.3 --noise salt-pepper:0.05,0.1",
    )  # fmt: skip


SETTINGS_GROUPS = (
    ExperimentSettings,
    TrainingSettings,
    ConversionSettings,
    SimulationSettings,
    StdpSettings,
    RobustnessSettings,
)

TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
              tuple: "a tuple"}  # fmt: skip

VALUE_CHECKS: dict[str, Callable[[Any], Any]] = {}
"""Setting name -> the check of its value, registered by the layer that knows the values (the
method registry checks ``methods``, the noise models ``noise``): settings import nothing above
them."""


def register_check(name: str, check: Callable[[Any], Any]) -> None:
    """Let ``check(value) -> value`` (raising :class:`SettingsError`) judge setting ``name``."""
    VALUE_CHECKS[name] = check


def setting_fields(cls: type) -> dict[str, Any]:
    """Name -> dataclass field of every setting of ``cls``."""
    return {f.name: f for f in fields(cls)}


def _kinds(f) -> tuple[type, ...]:
    """The Python types a field accepts (from its annotation)."""
    annotation = _annotation(f)
    kinds: list[type] = []
    for part in (p.strip() for p in annotation.split("|")):
        if part.startswith("list"):
            kinds.append(list)
        elif part.startswith("tuple"):
            kinds.append(tuple)
        elif part in ("int", "float", "bool", "str"):
            kinds.append({"int": int, "float": float, "bool": bool, "str": str}[part])
    return tuple(kinds)


def _annotation(f) -> str:
    """A field's annotation as text (a string already under ``from __future__ import
    annotations``; else the type's name, or its text for a union such as ``int | None``)."""
    return f.type.__name__ if isinstance(f.type, type) else str(f.type)


def _optional(f) -> bool:
    return "None" in _annotation(f)


def scalar_type(f) -> type:
    """The type of a field's flag value: bool, float, int or str (str for mixed types)."""
    kinds = _kinds(f)
    if len(kinds) == 1:
        return kinds[0]
    return str


def _type_name(f) -> str:
    if f.name == "methods":
        return "a string ('all' or comma-separated names) or a list of method names"
    if f.name == "percentile":
        return "a number or 'auto'"
    if f.name == "noise":
        return "a list of noise specs (e.g. ['gaussian:0.1,0.2'])"
    kinds = _kinds(f)
    names = [TYPE_NAMES[t] for t in kinds if t in TYPE_NAMES]
    return " or ".join(names)


def check_value(f, value: Any) -> Any:
    """``value`` checked (and normalised) for settings field ``f``; SettingsError names it."""
    name, meta = f.name, f.metadata
    if value is None:
        if _optional(f):
            return None
        raise SettingsError(f"{name} must be {_type_name(f)}, got None")
    kinds = _kinds(f)
    bad_bool = isinstance(value, bool) and bool not in kinds
    accepted = kinds + ((int,) if float in kinds else ())
    if bad_bool or not isinstance(value, accepted):
        raise SettingsError(
            f"{name} must be {_type_name(f)}, got {type(value).__name__} {shown(value)}"
        )
    if name in VALUE_CHECKS:  # a value only a higher layer can judge (method names, noise specs)
        return VALUE_CHECKS[name](value)
    if name == "spike_levels":  # one canonical form: 4 (an int) or "1,2,4" (sorted, each once)
        levels = parse_spike_levels(value)
        return levels[0] if len(levels) == 1 else ",".join(map(str, levels))
    if isinstance(value, str) and float in kinds:  # a number or a keyword (percentile: 'auto')
        if value != "auto":
            raise SettingsError(f"{name} must be {_type_name(f)}, got {shown(value)}")
        return value
    if float in kinds and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            limit = bound_text(f) or "finite"
            raise SettingsError(f"{name} must be {limit}, got {shown(value)}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be finite, got {shown(value)}")
    if meta.get("positive") and value <= 0:
        what = "a positive integer" if int in kinds and float not in kinds else "positive"
        raise SettingsError(f"{name} must be {what}, got {shown(value)}")
    if meta.get("non_negative") and value < 0:
        raise SettingsError(f"{name} must be >= 0, got {shown(value)}")
    if meta.get("fraction") and not 0 <= value < 1:
        raise SettingsError(f"{name} must be a fraction in [0, 1), got {shown(value)}")
    check_bounds(f, value)
    if name == "targets":
        parse_targets(value)
    if name == "normalize":
        parse_normalize(value)
    if name == "percentile":
        check_percentile(value)
    choices = meta.get("choices")
    if choices and value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def check_percentile(value: float) -> float:
    """``value`` if it is a percentile p in (0, 100]; SettingsError otherwise (the one check of p,
    for the settings, the flags and the percentile functions)."""
    if not 0 < value <= 100:
        raise SettingsError(f"percentile must be in (0, 100], got {shown(value)}")
    return value


def shown(value: Any, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters (a huge number in a message stays short)."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= width else f"{text[: width - 3]}..."


def bound_text(f) -> str:
    """The upper bound of a number setting for messages and help texts ("" when it has none):
    ``"at most 100000"`` or ``"below 1"``."""
    maximum, below = f.metadata.get("maximum"), f.metadata.get("below")
    if maximum is not None:
        return f"at most {maximum:g}" if isinstance(maximum, float) else f"at most {maximum}"
    if below is not None:
        return f"below {below:g}"
    return ""


def check_bounds(f, value: Any) -> None:
    """SettingsError naming ``f`` when the number ``value`` is past its ``maximum`` / ``below``."""
    maximum, below = f.metadata.get("maximum"), f.metadata.get("below")
    if (maximum is not None and value > maximum) or (below is not None and value >= below):
        raise SettingsError(f"{f.name} must be {bound_text(f)}, got {shown(value)}")


def parse_spike_levels(value: int | str) -> list[int]:
    """``4`` or ``"1,2,4"`` -> [4] or [1, 2, 4]: the spike levels K of graded neurons (sorted,
    each once, each in 1..MAX_SPIKE_LEVELS); SettingsError naming ``spike_levels`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SettingsError(
            f"spike_levels must be an integer or comma-separated integers, got {shown(value)}"
        )
    try:
        parts = [value] if isinstance(value, int) else value.split(",")
        values = sorted({int(part) for part in parts if str(part).strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1 or values[-1] > MAX_SPIKE_LEVELS:
        raise SettingsError(
            f"spike_levels must be integers in 1..{MAX_SPIKE_LEVELS} (the threshold units one "
            f"spike carries; 1: binary), one or comma-separated (e.g. 4 or 1,2,4), got {shown(value)}"
        )
    return values


def parse_targets(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: the target T's of a per-T method (sorted, each once)."""
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        values = []
    if not values or values[0] <= 0:
        raise SettingsError(
            f"targets must be positive integers separated by commas (e.g. 1,2,4), got {shown(text)}"
        )
    if values[-1] > MAX_TIMESTEPS:
        raise SettingsError(
            f"targets must be at most {MAX_TIMESTEPS} (the most timesteps), got {shown(values[-1])}"
        )
    if len(values) > MAX_TARGETS:
        raise SettingsError(f"targets: at most {MAX_TARGETS} target T's, got {len(values)}")
    return values


def parse_normalize(text: str) -> tuple[list[float], list[float]]:
    """``"0.1307,0.3081"`` -> ([0.1307], [0.3081]); ``"M1,M2,M3,S1,S2,S3"`` -> one mean and one
    standard deviation per channel (the first half are the means)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or len(values) % 2 or not all(math.isfinite(v) for v in values):
        raise SettingsError(
            f"normalize must be MEAN,STD (e.g. 0.1307,0.3081) or one mean per channel then one "
            f"std per channel (e.g. 0.4914,0.4822,0.4465,0.247,0.243,0.261), got {text!r}"
        )
    half = len(values) // 2
    mean, std = values[:half], values[half:]
    if any(s <= 0 for s in std):
        raise SettingsError(f"normalize: every STD must be positive, got {text!r}")
    return mean, std


def check_all(settings: Any) -> None:
    """Check (and normalise) every field of a settings dataclass instance in place (a frozen
    one too)."""
    for f in fields(settings):
        object.__setattr__(settings, f.name, check_value(f, getattr(settings, f.name)))


def defaults(cls: type) -> dict[str, Any]:
    """The default value of every setting of ``cls``."""
    return {f.name: (f.default if f.default is not MISSING else None) for f in fields(cls)}


def runtime_keys(cls: type) -> tuple[str, ...]:
    """The settings of ``cls`` that do not change the results (data location, device)."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("runtime"))


def build(cls: type, values: dict[str, Any]) -> Any:
    """An instance of settings class ``cls`` from ``values`` (only its own fields are taken)."""
    own = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in own})


def primary_flag(f) -> str:
    """The command-line flag of settings field ``f``: its ``flag_name``, else ``--`` and its name
    with ``-`` (``batch_size`` -> ``--batch-size``; ``epochs`` -> ``--ann-epochs``)."""
    return f.metadata.get("flag_name") or "--" + f.name.replace("_", "-")


def flag_of(name: str) -> str:
    """The command-line flag of the setting called ``name`` in records and config files (a name
    that is no field of the settings groups here gets ``--`` and ``-``)."""
    for cls in (*SETTINGS_GROUPS, ModelFileSettings):
        f = setting_fields(cls).get(name)
        if f is not None:
            return primary_flag(f)
    return "--" + name.replace("_", "-")
