"""Property tests of the quota math (Hypothesis): monotone, min over constraints, invertible,
always finite."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hypothesis import given, settings, strategies as st

from capacity.planning import CapacityPlan, Quota, Slo, Workload, plan_capacity, required_quota
from tests.capacity.plan_fakes import FakeModel

TOL = 1e-9


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    max_tokens = draw(st.floats(1, 200_000))
    users: dict[str, Any] = draw(
        st.one_of(
            st.fixed_dictionaries({"think_time_s": st.floats(0, 3600)}),
            st.fixed_dictionaries({"requests_per_user_per_min": st.floats(1e-4, 100)}),
            st.just({}),
        )
    )
    return Workload(
        input_tokens=draw(st.floats(1, 200_000)),
        output_tokens=draw(st.floats(1, max_tokens)),
        max_tokens=max_tokens,
        cache_read_tokens=draw(st.floats(0, 50_000)),
        cache_write_tokens=draw(st.floats(0, 50_000)),
        burndown=draw(st.one_of(st.none(), st.sampled_from([1.0, 5.0]), st.floats(0.1, 10))),
        peak_to_average=draw(st.floats(1, 10)),
        active_hours_per_day=draw(st.floats(0.5, 24)),
        latency_s=draw(st.one_of(st.none(), st.floats(0.05, 600))),
        **users,
    )


quotas = st.builds(
    Quota,
    tpm=st.floats(1, 1e10),
    rpm=st.one_of(st.none(), st.floats(1, 1e7)),
    tpd=st.one_of(st.none(), st.floats(1, 1e13)),
    model_id=st.sampled_from([None, "us.anthropic.claude-sonnet-4-20250514-v1:0"]),
)
factors = st.floats(1, 100)
models = st.builds(
    FakeModel,
    sigma=st.floats(0, 0.05),
    kappa=st.floats(0, 1e-3),
    ttft_per_inflight_s=st.floats(0, 0.05),
    tps_drop_per_inflight=st.one_of(st.just(0.0), st.floats(0, 2)),
)
slos = st.one_of(
    st.none(),
    st.builds(Slo, ttft_p95_s=st.floats(0.3, 30)),
    st.builds(Slo, min_tps_p5=st.floats(1, 120)),
)
model_settings = settings(max_examples=25, deadline=None)


def finite_everywhere(value: Any) -> bool:
    if isinstance(value, dict):
        return all(finite_everywhere(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(finite_everywhere(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def check_invariants(plan: CapacityPlan) -> None:
    assert plan.users == min(plan.users_by_constraint.values())
    assert plan.users_by_constraint[plan.binding] == plan.users
    assert plan.headroom_by_constraint[plan.binding] == 0
    assert all(0 <= h <= 1 for h in plan.headroom_by_constraint.values())
    assert plan.users >= 0 and plan.inflight >= 0
    assert finite_everywhere(plan.to_dict())


@given(quotas, workloads(), factors, factors, factors)
def test_more_quota_never_gives_fewer_users(
    quota: Quota, w: Workload, k_tpm: float, k_rpm: float, k_tpd: float
) -> None:
    bigger = dataclasses.replace(
        quota,
        tpm=quota.runtime_tpm * k_tpm,
        rpm=None if quota.rpm is None else quota.rpm * k_rpm,
        tpd=None if quota.tpd is None else quota.tpd * k_tpd,
    )
    before, after = plan_capacity(quota, w), plan_capacity(bigger, w)
    check_invariants(before)
    check_invariants(after)
    assert after.users >= before.users * (1 - TOL)


@given(quotas, workloads(), st.floats(0, 100_000), st.floats(0, 100_000))
def test_larger_prompts_or_max_tokens_never_give_more_users(
    quota: Quota, w: Workload, more_input: float, more_max: float
) -> None:
    # Without a model R does not depend on the prompt. (With one, a slower answer at a larger
    # prompt lengthens each user's cycle R + Z, so "users" can legitimately rise.)
    larger = dataclasses.replace(
        w, input_tokens=w.input_tokens + more_input, max_tokens=w.max_tokens + more_max
    )
    assert plan_capacity(quota, larger).users <= plan_capacity(quota, w).users * (1 + TOL)


@given(workloads(), st.floats(1e-3, 1e6), st.floats(0, 1))
def test_required_quota_supports_the_target(w: Workload, target: float, headroom: float) -> None:
    request = required_quota(w, target, headroom=headroom)
    assert request.feasible and finite_everywhere(request.to_dict())
    plan = plan_capacity(request.to_quota(), w)
    assert plan.users >= target * (1 - TOL)


@model_settings
@given(quotas, workloads(), models, slos, factors)
def test_with_a_model_more_tpm_never_gives_fewer_users(
    quota: Quota, w: Workload, model: FakeModel, slo: Slo | None, k: float
) -> None:
    before = plan_capacity(quota, w, model, slo)
    after = plan_capacity(dataclasses.replace(quota, tpm=quota.runtime_tpm * k), w, model, slo)
    check_invariants(before)
    check_invariants(after)
    assert "slo" in before.users_by_constraint
    assert after.users >= before.users * (1 - 1e-6)
    if slo is not None and slo.ttft_p95_s is not None and before.ttft_p95_s is not None:
        assert before.inflight == 0 or before.ttft_p95_s <= slo.ttft_p95_s * (1 + 1e-9)


@model_settings
@given(workloads(), st.floats(1, 5000), models, slos, st.floats(0, 0.5))
def test_with_a_model_feasible_requests_round_trip(
    w: Workload, target: float, model: FakeModel, slo: Slo | None, headroom: float
) -> None:
    request = required_quota(w, target, model, slo, headroom)
    assert finite_everywhere(request.to_dict())
    if request.feasible:
        plan = plan_capacity(request.to_quota(), w, model, slo)
        assert plan.users >= target * (1 - 1e-6)
    else:
        assert request.reason and len(request.options) == 5
