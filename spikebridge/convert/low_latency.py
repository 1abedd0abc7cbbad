"""The public names of method ``calibrated`` under their first module's name; the code lives in
:mod:`spikebridge.convert.calibration` (settings, graph walking, search, bias correction, SNN
correction, reconstruction)."""

from .calibration import *  # noqa: F403
from .calibration import __all__  # noqa: F401
