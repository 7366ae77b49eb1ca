"""Quotas ↔ users: ``Quota``, ``Workload`` and ``Slo`` in; ``CapacityPlan`` and ``QuotaRequest``
out, with Bedrock's quota rules from ``capacity.serving`` (docs/architecture.md, "Planning").

Importing this package loads neither pandas nor statsmodels.
"""

from capacity.planning._inputs import (
    DEFAULT_SLO_FACTOR,
    PlanInputError,
    Quota,
    Slo,
    Workload,
    default_quota,
    default_slo,
)
from capacity.planning._max_tokens import MaxTokensAdvice, recommend_max_tokens
from capacity.planning._plan import CONSTRAINT_WORDS, CONSTRAINTS, CapacityPlan, plan_capacity
from capacity.planning._queueing import WaitStats, erlang_b, erlang_c, mgc_wait, min_servers
from capacity.planning._request import QuotaLine, QuotaRequest, required_quota
from capacity.planning._verify import PlanVerification, verify_plan

__all__ = [
    "CONSTRAINTS",
    "CONSTRAINT_WORDS",
    "DEFAULT_SLO_FACTOR",
    "CapacityPlan",
    "MaxTokensAdvice",
    "PlanInputError",
    "PlanVerification",
    "Quota",
    "QuotaLine",
    "QuotaRequest",
    "Slo",
    "WaitStats",
    "Workload",
    "default_quota",
    "default_slo",
    "erlang_b",
    "erlang_c",
    "mgc_wait",
    "min_servers",
    "plan_capacity",
    "recommend_max_tokens",
    "required_quota",
    "verify_plan",
]
