"""spikebridge: convert trained CNNs into spiking networks and compare them with directly trained SNNs.

The two routes end in one :class:`SpikingNetwork` ([T, B, ...] tensors):

- conversion (:mod:`spikebridge.convert`, :mod:`spikebridge.normalization`): :func:`check`,
  :func:`convert` / :class:`Converter` with the methods model, max, percentile, channel,
  spike-norm and qcfs;
- direct training (:mod:`spikebridge.direct`): :func:`build_direct_snn`, :func:`train_direct`
  (STBP with LIF neurons and tdBN);
- comparison (:mod:`spikebridge.compare`): :func:`compare_routes` -> tables, plots, report.
"""

from . import compare, convert, direct, normalization
from .compare import run as compare_routes
from .convert import METHODS, Converter, applicable_methods, check, prepare, select_percentile
from .convert import convert as convert_model
from .direct import build_snn as build_direct_snn
from .direct import fuse_norms
from .direct import train as train_direct
from .encoding import AnalogEncoder, PoissonEncoder, make_encoder
from .evaluation import Evaluation, evaluate_ann, evaluate_snn
from .models import MODEL_NAMES, build_model
from .network import Simulation, SpikingNetwork
from .neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool, SpikingNeuron
from .training import train_ann

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "MODEL_NAMES",
    "AnalogEncoder",
    "Converter",
    "Evaluation",
    "IFNeuron",
    "PoissonEncoder",
    "SignedIFNeuron",
    "Simulation",
    "SpikingMaxPool",
    "SpikingNetwork",
    "SpikingNeuron",
    "applicable_methods",
    "build_direct_snn",
    "build_model",
    "check",
    "compare",
    "compare_routes",
    "convert",
    "convert_model",
    "direct",
    "evaluate_ann",
    "evaluate_snn",
    "fuse_norms",
    "make_encoder",
    "normalization",
    "prepare",
    "select_percentile",
    "train_ann",
    "train_direct",
]
