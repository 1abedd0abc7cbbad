"""The direct route: SNNs trained with STBP and tdBN (Wu et al. 2018; Zheng et al. 2021).

LIF neurons with surrogate gradients (:mod:`.lif`, :mod:`.surrogate`), threshold-dependent
BatchNorm and its fusion for inference (:mod:`.tdbn`, :mod:`.fusion`), networks built from the
shared architecture specs (:mod:`.snn`), and the trainer with checkpoints, resume and
data-parallel training (:mod:`.trainer`, :mod:`.checkpoint`, :mod:`.distributed`).
"""

from .checkpoint import CheckpointError, atomic_save, load_training_checkpoint
from .distributed import DistributedContext, setup_distributed
from .fusion import fuse_layer, fuse_module, fuse_norms
from .lif import LIFFunction, LIFNeuron, lif_reference
from .snn import DirectSNN, build_direct_snn
from .surrogate import SURROGATES, SpikeFunction, spike, surrogate_gradient
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
    "SpikeFunction",
    "ThresholdDependentBatchNorm1d",
    "ThresholdDependentBatchNorm2d",
    "TrainResult",
    "TrainingDiverged",
    "atomic_save",
    "build_direct_snn",
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
