"""spikebridge: convert trained CNNs into spiking networks and compare them with directly trained SNNs."""

from .encoding import AnalogEncoder, PoissonEncoder, make_encoder
from .evaluation import Evaluation, evaluate_ann, evaluate_snn
from .models import MODEL_NAMES, build_model
from .network import Simulation, SpikingNetwork
from .neurons import IFNeuron, SignedIFNeuron, SpikingNeuron

__version__ = "0.1.0"

__all__ = [
    "MODEL_NAMES",
    "AnalogEncoder",
    "Evaluation",
    "IFNeuron",
    "PoissonEncoder",
    "SignedIFNeuron",
    "Simulation",
    "SpikingNetwork",
    "SpikingNeuron",
    "build_model",
    "evaluate_ann",
    "evaluate_snn",
    "make_encoder",
]
