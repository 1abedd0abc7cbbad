"""The errors of method ``calibrated``'s machinery (its settings are
:class:`~spikebridge.convert.methods.calibrated.CalibratedSettings`)."""

from __future__ import annotations


class ReconstructionDiverged(RuntimeError):
    """The reconstruction loss became NaN or infinite; the message names the layers."""
