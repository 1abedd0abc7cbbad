"""QCFS thresholds (Bu et al. 2022): each neuron fires at the trained clip value lambda."""

from __future__ import annotations

from ...activations import QCFS
from ...normalization import activation_layers
from . import ThresholdMethod, register


def thresholds(source, settings):
    """Each QCFS layer's trained lambda."""
    acts = activation_layers(source.prepared)
    return {name: act.lambda_.detach().abs().clone() for name, act in acts.items()}


register(
    ThresholdMethod(
        name="qcfs",
        paper="Bu 2022",
        help="theta = the trained lambda of a QCFS network, u0 = theta/2, signed IF neurons",
        plot_label="QCFS (Bu 2022)",
        build=thresholds,
        needs_data=False,
        activations=(QCFS,),
        requirement="needs an ANN trained with QCFS activations",
        fix="train with --activation qcfs or pick another method",
        initial_potential=0.5,
        negative_spikes=True,
        order=60,
    )
)
