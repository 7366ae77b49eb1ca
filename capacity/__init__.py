"""capacity: the pure modelling core of llmcap (docs/architecture.md).

The public API, like scikit-learn's, is small:

- inputs: ``Quota``, ``Workload``, ``Slo`` and the latency ``Objective`` (``objective`` decides
  it the same way for every interface: given, the default, or none);
- records: ``load_records``, ``summarize``;
- models: ``fit_capacity`` (USL and latency quantile curves), ``calibrate`` (the digital twin),
  ``load_predictor`` (model.json or twin.json), the ``Predictor`` protocol;
- answers: ``answer`` (users today, the quota to request and what it buys: ``CapacityAnswer``),
  ``plan_capacity``, ``required_quota``, ``build_report`` (the quota-increase justification);
- the errors (``CapacityError`` and its kinds).

Everything else lives in its subpackage: ``capacity.records``, ``capacity.fitting``,
``capacity.serving``, ``capacity.planning``, ``capacity.usage``, ``capacity.report``,
``capacity.figures``. Names are loaded lazily: ``from capacity import Quota`` does not pay for
pandas or statsmodels. ``capacity`` imports nothing of bench, emulator, llmcap or app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # inputs
    "Quota": "capacity.planning",
    "Workload": "capacity.planning",
    "Slo": "capacity.planning",
    "Objective": "capacity.planning",
    "objective": "capacity.planning",
    # records
    "load_records": "capacity.records",
    "summarize": "capacity.records",
    # models
    "fit_capacity": "capacity.fitting",
    "calibrate": "capacity.serving",
    "load_predictor": "capacity.predictors",
    "Predictor": "capacity.prediction",
    # answers
    "CapacityAnswer": "capacity.planning",
    "answer": "capacity.planning",
    "plan_capacity": "capacity.planning",
    "required_quota": "capacity.planning",
    "build_report": "capacity.report",
    # errors
    "CapacityError": "capacity.errors",
    "FitError": "capacity.errors",
    "ModelFileError": "capacity.errors",
    "PlanInputError": "capacity.planning",
    "RecordsError": "capacity.errors",
    "ReportError": "capacity.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capacity' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # static names for type checkers and IDEs
    from capacity.errors import (
        CapacityError as CapacityError,
        FitError as FitError,
        ModelFileError as ModelFileError,
        RecordsError as RecordsError,
        ReportError as ReportError,
    )
    from capacity.fitting import fit_capacity as fit_capacity
    from capacity.planning import (
        CapacityAnswer as CapacityAnswer,
        Objective as Objective,
        PlanInputError as PlanInputError,
        Quota as Quota,
        Slo as Slo,
        Workload as Workload,
        answer as answer,
        objective as objective,
        plan_capacity as plan_capacity,
        required_quota as required_quota,
    )
    from capacity.prediction import Predictor as Predictor
    from capacity.predictors import load_predictor as load_predictor
    from capacity.records import load_records as load_records, summarize as summarize
    from capacity.report import build_report as build_report
    from capacity.serving import calibrate as calibrate
