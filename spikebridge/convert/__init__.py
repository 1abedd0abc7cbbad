"""The conversion route: check, prepare, calibrate, choose thresholds, build, score (Cao 2015;
Diehl 2015; Rueckauer 2017; Sengupta 2019; Kim 2020; Bu 2022; Li 2021).

The threshold methods are a registry (:mod:`.methods`, one module per method); the one
conversion loop is :mod:`.loop`.
"""

from ..engine.graph import ConversionError, MethodNotApplicable, trace
from ..engine.substitution import neuron_for
from .build import build_spiking_module, spiking_network, threshold_summary
from .calibration import CalibratedResult, ReconstructionDiverged, calibrate_target
from .check import BLOCKS, COSTS, ConstraintReport, Violation, check
from .converter import Converter, applicable_methods, convert_model
from .loop import ConversionResult, ConvertedNetwork, converted_networks, run_conversion
from .methods import (
    METHODS,
    PERCENTILE_METHODS,
    MethodInput,
    MethodOutput,
    MethodSettings,
    ThresholdMethod,
    get_method,
    method_list,
    method_settings_class,
    resolve_settings,
)
from .methods.calibrated import CalibratedSettings
from .methods.model_based import ModelBasedSettings
from .methods.percentile import PercentileSettings
from .methods.spike_norm import SpikeNormSettings
from .prepare import prepare
from .quantised_twin import count_agreement, quantised_twin, settled_samples, twin_of
from .tuning import PercentileChoice, select_percentile

__all__ = [
    "BLOCKS",
    "COSTS",
    "METHODS",
    "PERCENTILE_METHODS",
    "ConstraintReport",
    "ConversionError",
    "ConversionResult",
    "ConvertedNetwork",
    "Converter",
    "CalibratedResult",
    "CalibratedSettings",
    "MethodInput",
    "MethodOutput",
    "MethodSettings",
    "ModelBasedSettings",
    "PercentileSettings",
    "SpikeNormSettings",
    "MethodNotApplicable",
    "PercentileChoice",
    "ReconstructionDiverged",
    "ThresholdMethod",
    "Violation",
    "applicable_methods",
    "build_spiking_module",
    "calibrate_target",
    "check",
    "convert_model",
    "converted_networks",
    "count_agreement",
    "get_method",
    "method_list",
    "method_settings_class",
    "resolve_settings",
    "spiking_network",
    "neuron_for",
    "prepare",
    "quantised_twin",
    "run_conversion",
    "select_percentile",
    "settled_samples",
    "threshold_summary",
    "trace",
    "twin_of",
]
