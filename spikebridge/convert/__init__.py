"""The conversion route: check, prepare, calibrate, build (Cao 2015; Diehl 2015; Rueckauer 2017;
Sengupta 2019; Kim 2020; Bu 2022)."""

from .build import MethodNotApplicable, build_snn, neuron_for, threshold_summary
from .check import BLOCKS, COSTS, ConstraintReport, Violation, check
from .converter import METHODS, Converter, applicable_methods, convert
from .graph import ConversionError, trace
from .prepare import prepare
from .tuning import PercentileChoice, select_percentile

__all__ = [
    "BLOCKS",
    "COSTS",
    "METHODS",
    "ConstraintReport",
    "ConversionError",
    "Converter",
    "MethodNotApplicable",
    "PercentileChoice",
    "Violation",
    "applicable_methods",
    "build_snn",
    "check",
    "convert",
    "neuron_for",
    "prepare",
    "select_percentile",
    "threshold_summary",
    "trace",
]
