"""Quotas ↔ users: ``Quota``, ``Workload`` and ``Slo`` in; ``CapacityPlan`` and ``QuotaRequest``
out, with Bedrock's quota rules from ``capacity.serving`` (docs/architecture.md, "Planning").

Importing this package loads neither pandas nor statsmodels.
"""

from capacity.planning._answer import (
    DEFAULT_HEADROOM,
    MAX_TARGET_USERS,
    CapacityAnswer,
    answer,
    count,
)
from capacity.planning._inputs import (
    DEFAULT_THINK_TIME_S,
    PlanInputError,
    Quota,
    Slo,
    Workload,
    default_quota,
)
from capacity.planning._lines import QuotaLine
from capacity.planning._loadcurve import MAX_CONCURRENCY, LoadCurve, fmt
from capacity.planning._max_tokens import MaxTokensAdvice, recommend_max_tokens
from capacity.planning._objective import DEFAULT_SLO_FACTOR, Objective, default_slo, objective
from capacity.planning._plan import CONSTRAINT_WORDS, CONSTRAINTS, CapacityPlan, plan_capacity
from capacity.planning._probe import (
    PROBE_BATCHES,
    PROBE_PROMPT_TOKENS,
    ProbeBudgetError,
    ProbeLevel,
    ProbePlan,
    RequestPrice,
    plan_probe,
)
from capacity.planning._prompts import SEED_PROMPT, PromptSize, pick_prompt
from capacity.planning._queueing import WaitStats, erlang_b, erlang_c, mgc_wait, min_servers
from capacity.planning._quotas import ReservedSize, required_reserved
from capacity.planning._request import QuotaRequest, required_quota
from capacity.planning._verify import PlanVerification, verify_plan

__all__ = [
    "CONSTRAINTS",
    "CONSTRAINT_WORDS",
    "DEFAULT_HEADROOM",
    "DEFAULT_SLO_FACTOR",
    "DEFAULT_THINK_TIME_S",
    "MAX_CONCURRENCY",
    "MAX_TARGET_USERS",
    "PROBE_BATCHES",
    "PROBE_PROMPT_TOKENS",
    "SEED_PROMPT",
    "CapacityAnswer",
    "CapacityPlan",
    "LoadCurve",
    "MaxTokensAdvice",
    "Objective",
    "PlanInputError",
    "PlanVerification",
    "ProbeBudgetError",
    "ProbeLevel",
    "ProbePlan",
    "PromptSize",
    "Quota",
    "QuotaLine",
    "QuotaRequest",
    "RequestPrice",
    "ReservedSize",
    "Slo",
    "WaitStats",
    "Workload",
    "answer",
    "count",
    "default_quota",
    "default_slo",
    "erlang_b",
    "erlang_c",
    "fmt",
    "mgc_wait",
    "min_servers",
    "objective",
    "pick_prompt",
    "plan_capacity",
    "plan_probe",
    "recommend_max_tokens",
    "required_quota",
    "required_reserved",
    "verify_plan",
]
