"""capacity: the pure modelling core of llmcap.

records → ``load_records`` → ``summarize`` → ``fit_capacity`` (USL and latency quantile curves per
prompt size) → ``plan_capacity`` / ``required_quota`` (quotas ↔ users with Bedrock's quota rules).
``capacity`` never imports ``bench``: the records file is the seam (DESIGN §2).
"""

from capacity.errors import CapacityError, FitError, ModelFileError, RecordsError
from capacity.fit import fit_capacity
from capacity.max_tokens import MaxTokensAdvice, recommend_max_tokens
from capacity.metrics import concurrency_timeline, derive_metrics
from capacity.model import CapacityModel, Knees, PromptModel
from capacity.models_data import burndown_for, default_quota, load_model_table
from capacity.plan import CONSTRAINTS, CapacityPlan, plan_capacity
from capacity.prediction import Prediction, Predictor
from capacity.quantile import QuantileCurve, fit_quantile_curves
from capacity.queueing import WaitStats, erlang_b, erlang_c, mgc_wait, min_servers
from capacity.quota import PlanInputError, Quota, Slo, Workload
from capacity.records import load_records
from capacity.request import QuotaRequest, required_quota
from capacity.schema import RECORD_COLUMNS, STATUSES
from capacity.summary import SUMMARY_COLUMNS, compare_prompts, seed_table, summarize
from capacity.synthetic import SyntheticPrompt, synthetic_records
from capacity.usl import UslFit, fit_usl
from capacity.validate import validate_records

__all__ = [
    "CONSTRAINTS",
    "RECORD_COLUMNS",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "CapacityError",
    "CapacityModel",
    "CapacityPlan",
    "FitError",
    "Knees",
    "MaxTokensAdvice",
    "ModelFileError",
    "PlanInputError",
    "Prediction",
    "Predictor",
    "PromptModel",
    "QuantileCurve",
    "Quota",
    "QuotaRequest",
    "RecordsError",
    "Slo",
    "SyntheticPrompt",
    "UslFit",
    "WaitStats",
    "Workload",
    "burndown_for",
    "compare_prompts",
    "concurrency_timeline",
    "default_quota",
    "derive_metrics",
    "erlang_b",
    "erlang_c",
    "fit_capacity",
    "fit_quantile_curves",
    "fit_usl",
    "load_model_table",
    "load_records",
    "mgc_wait",
    "min_servers",
    "plan_capacity",
    "recommend_max_tokens",
    "required_quota",
    "seed_table",
    "summarize",
    "synthetic_records",
    "validate_records",
]
