"""capacity: the pure modelling core of llmcap (docs/architecture.md).

records → ``load_records`` → ``summarize`` → ``fit_capacity`` (USL and latency quantile curves per
prompt size) → ``plan_capacity`` / ``required_quota`` (quotas ↔ users with Bedrock's quota rules,
the same ledger the emulator enforces). Sub-packages: ``capacity.records``, ``capacity.fitting``,
``capacity.serving``, ``capacity.planning``, ``capacity.figures``.

Names are loaded lazily: ``import capacity.planning`` or ``from capacity import Quota`` does not
pay for pandas or statsmodels. ``capacity`` imports nothing of bench, emulator, llmcap or app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # errors
    "CapacityError": "capacity.errors",
    "FitError": "capacity.errors",
    "ModelFileError": "capacity.errors",
    "RecordsError": "capacity.errors",
    # predictions (the seam between fits, the twin and the planner)
    "Prediction": "capacity.prediction",
    "Predictor": "capacity.prediction",
    "PredictorInfo": "capacity.predictors",
    "describe_predictor": "capacity.predictors",
    "load_predictor": "capacity.predictors",
    # records
    "RECORD_COLUMNS": "capacity.records",
    "STATUSES": "capacity.records",
    "SUMMARY_COLUMNS": "capacity.records",
    "SyntheticPrompt": "capacity.records",
    "compare_prompts": "capacity.records",
    "concurrency_timeline": "capacity.records",
    "derive_metrics": "capacity.records",
    "load_records": "capacity.records",
    "seed_table": "capacity.records",
    "summarize": "capacity.records",
    "synthetic_records": "capacity.records",
    "validate_records": "capacity.records",
    # fitting
    "CapacityModel": "capacity.fitting",
    "Knees": "capacity.fitting",
    "PromptModel": "capacity.fitting",
    "QuantileCurve": "capacity.fitting",
    "UslFit": "capacity.fitting",
    "fit_capacity": "capacity.fitting",
    "fit_quantile_curves": "capacity.fitting",
    "fit_usl": "capacity.fitting",
    # serving
    "QuotaLedger": "capacity.serving",
    "QuotaLimits": "capacity.serving",
    "burndown_for": "capacity.serving",
    "load_model_table": "capacity.serving",
    "simulate": "capacity.serving",
    # planning
    "CONSTRAINTS": "capacity.planning",
    "CapacityPlan": "capacity.planning",
    "MaxTokensAdvice": "capacity.planning",
    "PlanInputError": "capacity.planning",
    "Quota": "capacity.planning",
    "QuotaRequest": "capacity.planning",
    "Slo": "capacity.planning",
    "WaitStats": "capacity.planning",
    "Workload": "capacity.planning",
    "default_quota": "capacity.planning",
    "erlang_b": "capacity.planning",
    "erlang_c": "capacity.planning",
    "mgc_wait": "capacity.planning",
    "min_servers": "capacity.planning",
    "plan_capacity": "capacity.planning",
    "recommend_max_tokens": "capacity.planning",
    "required_quota": "capacity.planning",
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
    )
    from capacity.fitting import (
        CapacityModel as CapacityModel,
        Knees as Knees,
        PromptModel as PromptModel,
        QuantileCurve as QuantileCurve,
        UslFit as UslFit,
        fit_capacity as fit_capacity,
        fit_quantile_curves as fit_quantile_curves,
        fit_usl as fit_usl,
    )
    from capacity.planning import (
        CONSTRAINTS as CONSTRAINTS,
        CapacityPlan as CapacityPlan,
        MaxTokensAdvice as MaxTokensAdvice,
        PlanInputError as PlanInputError,
        Quota as Quota,
        QuotaRequest as QuotaRequest,
        Slo as Slo,
        WaitStats as WaitStats,
        Workload as Workload,
        default_quota as default_quota,
        erlang_b as erlang_b,
        erlang_c as erlang_c,
        mgc_wait as mgc_wait,
        min_servers as min_servers,
        plan_capacity as plan_capacity,
        recommend_max_tokens as recommend_max_tokens,
        required_quota as required_quota,
    )
    from capacity.prediction import Prediction as Prediction, Predictor as Predictor
    from capacity.predictors import (
        PredictorInfo as PredictorInfo,
        describe_predictor as describe_predictor,
        load_predictor as load_predictor,
    )
    from capacity.records import (
        RECORD_COLUMNS as RECORD_COLUMNS,
        STATUSES as STATUSES,
        SUMMARY_COLUMNS as SUMMARY_COLUMNS,
        SyntheticPrompt as SyntheticPrompt,
        compare_prompts as compare_prompts,
        concurrency_timeline as concurrency_timeline,
        derive_metrics as derive_metrics,
        load_records as load_records,
        seed_table as seed_table,
        summarize as summarize,
        synthetic_records as synthetic_records,
        validate_records as validate_records,
    )
    from capacity.serving import (
        QuotaLedger as QuotaLedger,
        QuotaLimits as QuotaLimits,
        burndown_for as burndown_for,
        load_model_table as load_model_table,
        simulate as simulate,
    )
