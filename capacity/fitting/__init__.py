"""Curve fits: the Universal Scalability Law, latency quantile curves, and the ``CapacityModel``
that predicts performance at any concurrency and prompt size (docs/architecture.md, "Fitting")."""

from capacity.fitting._fit import fit_capacity
from capacity.fitting._model import FORMAT as MODEL_FORMAT, CapacityModel
from capacity.fitting._prompt import Basis, Knees, PromptModel
from capacity.fitting._quantile import QuantileCurve, fit_quantile_curves
from capacity.fitting._usl import EXTRAPOLATION_LIMIT, UslFit, fit_usl

__all__ = [
    "EXTRAPOLATION_LIMIT",
    "MODEL_FORMAT",
    "Basis",
    "CapacityModel",
    "Knees",
    "PromptModel",
    "QuantileCurve",
    "UslFit",
    "fit_capacity",
    "fit_quantile_curves",
    "fit_usl",
]
