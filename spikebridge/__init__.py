"""spikebridge: convert trained CNNs into spiking networks and compare them with directly trained SNNs.

The two routes end in one :class:`SpikingNetwork` ([T, B, ...] tensors), scored by one evaluator:

- engine (:mod:`spikebridge.engine`): neurons, encoders, :class:`SpikingNetwork`, fx helpers;
- conversion (:mod:`spikebridge.convert`, its threshold methods in :mod:`spikebridge.convert.methods`,
  :mod:`spikebridge.normalization`): :func:`check`, :func:`convert_model` / :class:`Converter`;
- direct training (:mod:`spikebridge.direct`): :func:`build_direct_snn`, :func:`train_direct`
  (STBP with LIF neurons and tdBN);
- evaluation (:mod:`spikebridge.evaluation`): :func:`evaluate` for ANNs and SNNs;
- comparison (:mod:`spikebridge.compare`): ``compare.run`` -> tables, plots, report;
- settings (:mod:`spikebridge.settings`): every setting and its one default.
"""

from . import compare, convert, direct, evaluation, normalization, settings
from .convert import (
    METHODS,
    Converter,
    LowLatencySettings,
    applicable_methods,
    calibrate_low_latency,
    check,
    convert_model,
    prepare,
    quantised_twin,
    select_percentile,
)
from .direct import build_direct_snn, fuse_norms, train_direct
from .engine.encoding import AnalogEncoder, EventEncoder, PoissonEncoder, make_encoder
from .engine.network import Simulation, SpikingNetwork
from .engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool, SpikingNeuron
from .evaluation import Evaluation, evaluate
from .models import MODEL_NAMES, build_model
from .settings import ConversionSettings, ExperimentSettings, SimulationSettings, TrainingSettings
from .training import train_ann

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "MODEL_NAMES",
    "AnalogEncoder",
    "ConversionSettings",
    "Converter",
    "Evaluation",
    "EventEncoder",
    "ExperimentSettings",
    "IFNeuron",
    "LowLatencySettings",
    "PoissonEncoder",
    "SignedIFNeuron",
    "Simulation",
    "SimulationSettings",
    "SpikingMaxPool",
    "SpikingNetwork",
    "SpikingNeuron",
    "TrainingSettings",
    "applicable_methods",
    "build_direct_snn",
    "build_model",
    "calibrate_low_latency",
    "check",
    "compare",
    "convert",
    "convert_model",
    "direct",
    "evaluate",
    "evaluation",
    "fuse_norms",
    "make_encoder",
    "normalization",
    "prepare",
    "quantised_twin",
    "select_percentile",
    "settings",
    "train_ann",
    "train_direct",
]
