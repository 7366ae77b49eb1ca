"""The one answer: a quota and a workload in; users today, the quota to request for a target
and what that request buys, all under one stated latency objective.

Every interface (``llmcap plan``, ``llmcap report``, ``llmcap demo``, the app's pages, the
figures) asks ``answer`` and shows what it returns, so none of them can take a decision of its
own: the objective (``objective``: given, the default, or none), the headroom, whether RPM is
asked (only where given or enforced), and the plan on the quota after the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from capacity.planning._inputs import PlanInputError, Quota, Workload
from capacity.planning._lines import QuotaLine
from capacity.planning._objective import Objective, objective
from capacity.planning._plan import CapacityPlan, plan_capacity
from capacity.planning._request import QuotaRequest, required_quota
from capacity.prediction import Predictor

__all__ = ["DEFAULT_HEADROOM", "MAX_TARGET_USERS", "CapacityAnswer", "answer", "count"]

DEFAULT_HEADROOM = 0.2
"""The safety margin asked on top of what a target needs (20 %)."""

_KIND = {"tpm": "TPM", "rpm": "RPM", "tpd": "TPD", "input_tpm": "input TPM",
         "output_tpm": "output TPM"}  # fmt: skip

MAX_TARGET_USERS = 1e9
"""The largest target accepted: beyond a billion users no Bedrock quota answer is meaningful."""


def count(x: float) -> str:
    """A whole count for people: ``52``, ``2,206``, ``23.4 million``, ``1.2 billion``."""
    if not math.isfinite(x):
        return "unlimited" if x > 0 else "n/a"
    n = math.floor(x + 1e-9)
    if n >= 1e9:
        return f"{n / 1e9:,.1f} billion"
    if n >= 1e7:
        return f"{n / 1e6:,.1f} million"
    return f"{n:,}"


@dataclass(frozen=True)
class CapacityAnswer:
    """Users today on ``quota``, and with ``target_users`` the quota to request (``request``)
    and the plan on the quota after it is granted (``requested``), under ``objective``."""

    quota: Quota
    workload: Workload
    objective: Objective
    plan: CapacityPlan
    target_users: float | None = None
    request: QuotaRequest | None = None
    requested: CapacityPlan | None = None

    @property
    def users_today(self) -> int:
        """Whole users the current quota serves."""
        return self.plan.users_whole

    @property
    def limited_by_today(self) -> str:
        """What limits them, in words."""
        return self.plan.binding_words

    @property
    def users_at_request(self) -> int | None:
        """Whole users the quota serves once the request is granted."""
        return None if self.requested is None else self.requested.users_whole

    @property
    def limited_by_at_request(self) -> str | None:
        """What limits them then, in words."""
        return None if self.requested is None else self.requested.binding_words

    @property
    def headroom_delivered(self) -> float | None:
        """Users the requested quota serves over the target, minus one: the headroom it buys
        (below ``request.headroom`` where more quota would serve no more users under the
        objective; negative when even the request falls short of the target)."""
        if self.requested is None or not self.target_users:
            return None
        return self.requested.users / self.target_users - 1

    @property
    def asks(self) -> tuple[QuotaLine, ...]:
        """The quotas to request: TPM (bedrock-mantle: input and output TPM); RPM where enforced
        (the request says); TPD only where the account has a TPD quota (Bedrock's default, TPM ×
        1440, never binds first)."""
        if self.request is None:
            return ()
        return tuple(
            line for line in self.request.lines if line.kind != "tpd" or self.quota.tpd is not None
        )

    @property
    def tpm(self) -> int | None:
        """The TPM to request (None without a target, and on bedrock-mantle)."""
        return None if self.request is None else self.request.tpm

    def headline(self) -> str:
        """The answer in one paragraph of users, requests in flight, tokens and seconds."""
        q, p = self.quota, self.plan
        ttft = "" if p.ttft_p95_s is None else f" at p95 first token {p.ttft_p95_s:.2f} s"
        text = (
            f"{q.describe()} serve {count(p.users)} users{ttft}, limited "
            f"by {p.binding_words} ({p.inflight:,.0f} requests in flight at the busiest minute; "
            f"objective: {self.objective.describe()}; quota rule '{p.quota_rule}')."
        )
        if p.extrapolation_factor is not None:
            text += (
                f" That operating point is ×{p.extrapolation_factor:.1f} beyond the "
                f"{p.measured_max_inflight or 0:,.0f} requests in flight measured."
            )
        r, then = self.request, self.requested
        if r is None or then is None or self.target_users is None:
            return text
        asks = " and ".join(f"{line.value:,} {_KIND[line.kind]}" for line in self.asks)
        code = next((line.code for line in r.lines if "tpm" in line.kind and line.code), None)
        think = self.workload.effective_think_time_s
        who = f"{count(self.target_users)} users" + (
            f" at {think:g} s think time" if think is not None else ""
        )
        text += f" For {who} request {asks}" + (f" (quota {code})" if code else "") + ":"
        text += f" it serves {count(then.users)} users, limited by {then.binding_words} ("
        text += self.headroom_words() + ")."
        if r.extrapolation_factor is not None and r.measured_max_inflight is not None:
            text += (
                f" That load means {r.peak_inflight:,.0f} requests in flight, "
                f"×{r.extrapolation_factor:.1f} beyond the {r.measured_max_inflight:,.0f} "
                "measured: an extrapolation — "
                + (
                    "probe closer to it before relying on its latency."
                    if r.latency_source == "the calibrated twin"
                    else "measure closer to it or fit a twin (llmcap twin fit) before relying "
                    "on its latency."
                )
            )
        if not r.feasible and r.reason:
            text += f" The objective cannot hold there: {r.reason}."
        return text

    def headroom_words(self) -> str:
        """The headroom the request buys, and why it differs from the one asked."""
        got, r = self.headroom_delivered, self.request
        if got is None or r is None:
            return ""
        if got < 0:
            return f"{-got:.0%} short of the target"
        if got < r.headroom - 0.005:
            return (
                f"headroom {got:.0%}, not the {r.headroom:.0%} asked: more quota would serve no "
                "more users under the objective"
            )
        return f"headroom {got:.0%}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the headline figures first, then the full plan, request and the plan on
        the requested quota."""
        return {
            "objective": self.objective.to_dict(),
            "users_today": self.users_today,
            "limited_by_today": self.limited_by_today,
            "target_users": self.target_users,
            "tpm": self.tpm,
            "users_at_request": self.users_at_request,
            "limited_by_at_request": self.limited_by_at_request,
            "headroom": None if self.request is None else self.request.headroom,
            "headroom_delivered": self.headroom_delivered,
            "endpoint": self.quota.endpoint,
            "service_tier": self.workload.service_tier,
            "asks": [
                {"kind": line.kind, "value": line.value, "code": line.code} for line in self.asks
            ],
            "answer": self.headline(),
            "plan": self.plan.to_dict(),
            "request": None if self.request is None else self.request.to_dict(),
            "requested": None if self.requested is None else self.requested.to_dict(),
        }


def answer(
    quota: Quota,
    workload: Workload,
    model: Predictor | None = None,
    goal: Objective | None = None,
    target_users: float | None = None,
    *,
    headroom: float = DEFAULT_HEADROOM,
    rpm_enforced: bool | None = None,
    verify: bool = False,
    verify_minutes: float = 60.0,
) -> CapacityAnswer:
    """Users on ``quota`` and, with ``target_users``, the quota to request, under ``goal``
    (default: ``objective(model, workload.prompt_tokens)`` — the default objective wherever a
    model is given). RPM is asked where ``quota`` has one or the model table says Bedrock
    enforces it (``rpm_enforced`` overrides)."""
    goal = goal if goal is not None else objective(model, workload.prompt_tokens)
    if not isinstance(goal, Objective):
        raise TypeError(f"goal must be an Objective (capacity.objective), got {goal!r}")
    slo = goal.slo
    plan = plan_capacity(quota, workload, model, slo, verify=verify, verify_minutes=verify_minutes)
    if target_users is None:
        return CapacityAnswer(quota, workload, goal, plan)
    if not 0 < float(target_users) <= MAX_TARGET_USERS:
        raise PlanInputError(
            f"target users must be between 1 and {MAX_TARGET_USERS:,.0f}, got {target_users!r}"
        )
    enforced = rpm_enforced if rpm_enforced is not None else (True if quota.rpm else None)
    request = required_quota(
        workload, target_users, model, slo, headroom, model_id=quota.model_id,
        scope=quota.scope, rule=quota.rule, rpm_enforced=enforced, endpoint=quota.endpoint,
        reserved_input_tpm=quota.reserved_input_tpm,
        reserved_output_tpm=quota.reserved_output_tpm,
    )  # fmt: skip
    requested = plan_capacity(request.applied_to(quota), workload, model, slo)
    return CapacityAnswer(quota, workload, goal, plan, float(target_users), request, requested)
