"""spikebridge: convert trained CNNs into spiking networks and compare them with directly trained SNNs.

The two routes end in one :class:`SpikingNetwork` ([T, B, ...] tensors), scored by one evaluator:

- engine (:mod:`spikebridge.engine`): neurons, encoders, :class:`SpikingNetwork`, fx helpers;
- conversion (:mod:`spikebridge.convert`, its threshold methods in :mod:`spikebridge.convert.methods`,
  :mod:`spikebridge.normalization`): :func:`check`, :func:`convert_model` / :class:`Converter`;
- direct training (:mod:`spikebridge.direct`): :func:`build_direct_snn`, :func:`train_direct`
  (STBP with LIF neurons and tdBN);
- unsupervised STDP (:mod:`spikebridge.stdp`): :func:`spikebridge.stdp.train` (sparse spiking
  auto-encoder kernels, probabilistic STDP, linear readout; Tavanaei & Maida 2017);
- evaluation (:mod:`spikebridge.evaluation`): :func:`evaluate` for ANNs and SNNs;
- energy (:mod:`spikebridge.energy`, docs/energy.md): :func:`estimate_energy` under the models
  of :data:`ENERGY_MODELS` (``ops``, ``lemaire``, ``reuse``, ``loihi``), the fair quantised ANN
  (:func:`quantised_ann`, :func:`network_twin`) and :func:`break_even` firing rates;
- your own CNN from a file (:mod:`spikebridge.loading`): :func:`load_model` for .pt2
  (torch.export) and ONNX graphs, state dicts and trusted pickled modules;
- comparison (:mod:`spikebridge.compare`): ``compare.run`` -> tables, plots, report; noise
  robustness on the same seeded noisy images (:func:`parse_noise`, :class:`NoisyDataset`);
- settings (:mod:`spikebridge.settings`): every setting and its one default;
- interchange (:mod:`spikebridge.interop`): :func:`export_nir` / :func:`import_nir` (NIR, the
  ``nir`` extra; docs/nir.md);
- output directories (:mod:`spikebridge.rundir`): :func:`claim` (one run per directory, its
  ownership record), :func:`check_resume`.
"""

from . import (
    compare,
    convert,
    direct,
    energy,
    evaluation,
    interop,
    loading,
    normalization,
    rundir,
    settings,
    stdp,
)
from .batchnorm import reestimate_batchnorm
from .compare.noise import NoisyDataset, add_noise, noisy_loader, parse_noise
from .convert import (
    METHODS,
    CalibratedSettings,
    Converter,
    PercentileSettings,
    SpikeNormSettings,
    applicable_methods,
    calibrate_target,
    check,
    convert_model,
    prepare,
    quantised_twin,
    select_percentile,
)
from .direct import build_direct_snn, fuse_norms, train_direct
from .energy import (
    ENERGY_MODELS,
    EnergyReport,
    break_even,
    estimate_energy,
    get_energy_model,
    network_twin,
    quantised_ann,
)
from .engine.encoding import AnalogEncoder, EventEncoder, PoissonEncoder, make_encoder
from .engine.network import Simulation, SpikingNetwork
from .engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool, SpikingNeuron
from .evaluation import Evaluation, evaluate
from .health import weak_network
from .interop import export_nir, import_nir
from .loading import load_model
from .models import MODEL_NAMES, build_model
from .rundir import RunDirectory, check_resume, claim
from .settings import (
    ConversionSettings,
    ExperimentSettings,
    ModelFileSettings,
    RobustnessSettings,
    SimulationSettings,
    StdpSettings,
    TrainingSettings,
)
from .snn_files import load_snn, save_snn
from .stdp import StdpConfig, WTALIFNeuron
from .tables import write_table
from .training import train_ann

__version__ = "0.1.0"

__all__ = [
    "ENERGY_MODELS",
    "METHODS",
    "MODEL_NAMES",
    "AnalogEncoder",
    "CalibratedSettings",
    "ConversionSettings",
    "EnergyReport",
    "Converter",
    "Evaluation",
    "break_even",
    "estimate_energy",
    "get_energy_model",
    "network_twin",
    "quantised_ann",
    "EventEncoder",
    "ExperimentSettings",
    "IFNeuron",
    "ModelFileSettings",
    "NoisyDataset",
    "PercentileSettings",
    "PoissonEncoder",
    "RobustnessSettings",
    "RunDirectory",
    "SignedIFNeuron",
    "Simulation",
    "SimulationSettings",
    "SpikingMaxPool",
    "SpikingNetwork",
    "SpikingNeuron",
    "SpikeNormSettings",
    "StdpConfig",
    "StdpSettings",
    "TrainingSettings",
    "WTALIFNeuron",
    "add_noise",
    "applicable_methods",
    "build_direct_snn",
    "build_model",
    "calibrate_target",
    "check",
    "check_resume",
    "claim",
    "compare",
    "convert",
    "convert_model",
    "direct",
    "evaluate",
    "energy",
    "evaluation",
    "export_nir",
    "fuse_norms",
    "import_nir",
    "interop",
    "load_model",
    "load_snn",
    "loading",
    "make_encoder",
    "noisy_loader",
    "normalization",
    "parse_noise",
    "prepare",
    "quantised_twin",
    "reestimate_batchnorm",
    "rundir",
    "save_snn",
    "select_percentile",
    "settings",
    "stdp",
    "train_ann",
    "train_direct",
    "weak_network",
    "write_table",
]
