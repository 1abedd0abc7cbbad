"""Comparing the conversion route with the direct route (SPEC 3): accuracy against latency,
operations and energy per inference, per-layer firing rates; plots and a self-contained report.

Example:
    >>> from spikebridge import compare                                  # doctest: +SKIP
    >>> result = compare.run("cnn", "digits", timesteps=32, out="cmp")   # doctest: +SKIP
    >>> result.energy[["route", "method", "accuracy", "energy_pJ"]]      # doctest: +SKIP
"""

from .config import ConfigError, Settings, load_config
from .energy import E_AC_PJ, E_MAC_PJ, energy_pj, firing_rate
from .evaluate import (
    NetworkEvaluation,
    Shard,
    current_shard,
    evaluate_ann_sharded,
    evaluate_network,
)
from .ops import AnnOps, LayerOps, SnnOpCounter, count_ann_ops, fanout_map
from .plots import energy_accuracy_figure, firing_rate_figure, latency_accuracy_figure
from .report import render_report
from .runner import DEMO_SETTINGS, Comparison, claim_directory, run, run_settings

__all__ = [
    "DEMO_SETTINGS",
    "E_AC_PJ",
    "E_MAC_PJ",
    "AnnOps",
    "Comparison",
    "ConfigError",
    "LayerOps",
    "NetworkEvaluation",
    "Settings",
    "Shard",
    "SnnOpCounter",
    "claim_directory",
    "count_ann_ops",
    "current_shard",
    "energy_accuracy_figure",
    "energy_pj",
    "evaluate_ann_sharded",
    "evaluate_network",
    "fanout_map",
    "firing_rate",
    "firing_rate_figure",
    "latency_accuracy_figure",
    "load_config",
    "render_report",
    "run",
    "run_settings",
]
