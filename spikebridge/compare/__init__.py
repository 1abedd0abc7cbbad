"""Comparing the conversion route with the direct route (SPEC 3): accuracy against latency,
operations and energy per inference, per-layer firing rates; plots and a self-contained report.

The pipeline (:mod:`.pipeline`) scores the networks every route offers (:mod:`.routes`, one
module per route) with the one evaluator, plus any extra evaluation pass (:mod:`.passes`).

Example:
    >>> from spikebridge import compare                                  # doctest: +SKIP
    >>> result = compare.run("cnn", "digits", timesteps=32, out="cmp")   # doctest: +SKIP
    >>> result.energy[["route", "method", "accuracy", "energy_pJ"]]      # doctest: +SKIP
"""

from ..energy.table import E_AC_PJ, E_MAC_PJ, energy_pj, firing_rate
from ..plots import energy_accuracy_figure, firing_rate_figure, latency_accuracy_figure
from .config import ConfigError, Settings, load_config
from .directory import RESULT_FILES, claim_directory
from .passes import EvaluationPass
from .pipeline import DEMO_SETTINGS, Comparison, run, run_settings
from .report import render_report
from .routes import Candidate, Route

__all__ = [
    "DEMO_SETTINGS",
    "E_AC_PJ",
    "E_MAC_PJ",
    "RESULT_FILES",
    "Candidate",
    "Comparison",
    "ConfigError",
    "EvaluationPass",
    "Route",
    "Settings",
    "claim_directory",
    "energy_accuracy_figure",
    "energy_pj",
    "firing_rate",
    "firing_rate_figure",
    "latency_accuracy_figure",
    "load_config",
    "render_report",
    "run",
    "run_settings",
]
