"""Method ``calibrated``: thresholds (and biases) for a target T from unlabelled images.

A signed-IF network with u0 = theta/2 computes its quantised twin, the ANN whose activations are
the T-level quantiser q_T (:mod:`spikebridge.convert.quantised_twin`). Low-latency conversion
without retraining is therefore post-training quantisation of the ANN's activations to T levels,
and this module does it with the tools of that field, on the twin (one ANN pass per candidate,
never a T-step simulation), from calibration images alone (no labels, no end-to-end training):

1. **Thresholds, layer by layer** (in execution order, the layers before already quantised and
   corrected). Per channel c, theta_c = alpha_c * m_c with m_c the channel's largest input and
   alpha_c the grid value minimising E[(q_T(x_c) - relu(x^f_c))^2] against the float ANN's
   activation x^f: with uncorrelated channel errors the next layer's error
   E||W (q(x) - relu(x^f))||^2 is sum_c ||W_c||^2 E[Delta_c^2], so each channel's own error
   is its share of the next layer's error. One common factor beta is then chosen by the next
   layer's actual reconstruction error (the inputs of the activations this one feeds, or the
   logits), one twin pass per candidate.
2. **Bias correction** (Nagel et al. 2019; Li et al. 2021, "A free lunch from ANN: towards
   efficient, accurate spiking neural networks calibration"): the mean shift, per channel, of
   each next layer's input against the float ANN is subtracted from the bias of the conv/linear
   layer that produces it (when one layer produces it through channel-preserving ops: pooling,
   residual addition; not through a concatenation or a flatten).
3. **Reconstruction** (optional; AdaRound, Nagel 2020; BRECQ, Li 2021; Li et al. 2021's
   advanced pipeline): a unit of ``block`` consecutive activation layers at a time, Adam on the
   unit's thresholds and the biases (``weights``: and the weights) of the layers
   after it, to minimise the reconstruction error of the unit's outputs on calibration batches,
   the rounding passed straight through (STE). A unit whose error does not fall is rolled back;
   a loss that becomes NaN stops everything, naming the layers.
4. **Output check** (:mod:`.guard`): the searched twin against the twin of channel-wise
   percentile thresholds, by their outputs' KL divergence from the float ANN; the closer goes
   on (a :class:`CalibrationWarning` says when that is the percentile one).
   **Fine-tune** (optional, ``finetune_steps``; retraining, not post-training: :mod:`.finetune`):
   the network trained end to end for a few labelled steps on the calibration images' labels
   (training images): its own simulated forward, its twin's gradient (straight-through floor,
   LSQ-style learned thresholds; tandem learning, :mod:`.simulated_twin`). No SNN correction
   follows it.
5. **SNN correction** (Li et al. 2021's light pipeline): the network is simulated layer by layer
   with the neurons it will have (signed or plain IF) and each channel's mean input error is
   removed from a bias (or the initial potential); :func:`for_neurons` redoes only this step for
   the other kind of neuron.

Shapes: calibration images [N, C, H, W] (or any [N, ...] the ANN takes); thresholds 0-d or [C].
"""

from .errors import ReconstructionDiverged
from .finetune import FinetuneReport
from .graph import calibration_images
from .guard import CalibrationWarning
from .pipeline import calibrate_target, for_neurons
from .result import CalibratedResult, LayerCalibration

__all__ = [
    "CalibrationWarning",
    "LayerCalibration",
    "CalibratedResult",
    "FinetuneReport",
    "ReconstructionDiverged",
    "calibrate_target",
    "calibration_images",
    "for_neurons",
]
