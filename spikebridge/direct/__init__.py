"""The direct route: SNNs trained with STBP and tdBN (Wu et al. 2018; Zheng et al. 2021).

LIF neurons with surrogate gradients (:mod:`spikebridge.engine.lif`, :mod:`spikebridge.engine.surrogate`), threshold-dependent
BatchNorm and its fusion for inference (:mod:`.tdbn`, :mod:`.fusion`), networks built from the
shared architecture specs (:mod:`.snn`) or from a user's own graph (:mod:`.graph`), and the trainer with checkpoints, resume and
data-parallel training (:mod:`.trainer`, :mod:`.checkpoint`, :mod:`.distributed`).
"""

from ..engine.lif import LIFFunction, LIFNeuron, lif_reference
from ..engine.surrogate import SURROGATES, SpikeFunction, spike, surrogate_gradient
from .checkpoint import CheckpointError, atomic_save, load_training_checkpoint
from .distributed import DistributedContext, setup_distributed
from .fusion import fuse_layer, fuse_module, fuse_norms
from .graph import NotDirectlyTrainable, direct_from_graph
from .snn import DirectSNN, build_direct_snn
from .tdbn import (
    ThresholdDependentBatchNorm1d,
    ThresholdDependentBatchNorm2d,
    tdbn,
    tdbn_factory,
)
from .trainer import (
    OPTIMIZERS,
    SCHEDULES,
    TrainingDiverged,
    TrainResult,
    load_trained,
    stbp_loss,
    train_direct,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SURROGATES",
    "CheckpointError",
    "DirectSNN",
    "DistributedContext",
    "LIFFunction",
    "LIFNeuron",
    "NotDirectlyTrainable",
    "SpikeFunction",
    "ThresholdDependentBatchNorm1d",
    "ThresholdDependentBatchNorm2d",
    "TrainResult",
    "TrainingDiverged",
    "atomic_save",
    "build_direct_snn",
    "direct_from_graph",
    "fuse_layer",
    "fuse_module",
    "fuse_norms",
    "lif_reference",
    "load_training_checkpoint",
    "load_trained",
    "setup_distributed",
    "spike",
    "stbp_loss",
    "surrogate_gradient",
    "tdbn",
    "tdbn_factory",
    "train_direct",
]
