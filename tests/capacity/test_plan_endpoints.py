"""The planner on both endpoints, with service tiers and Reserved capacity: AWS's worked examples
agree with the ledger's replay, and plans hold when replayed through the ledger (0.9× the planned
rate runs clean, 1.5× throttles) — docs/architecture.md, "Quota rules"."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from capacity.planning import (
    CapacityPlan,
    PlanInputError,
    Quota,
    Workload,
    answer,
    plan_capacity,
    required_quota,
    required_reserved,
)
from capacity.serving import (
    QUOTA_RULES,
    QuotaRule,
    RequestArrays,
    ServiceTier,
    poisson_arrivals,
    replay,
    simulate_quota,
)

LLAMA = "meta.llama3-3-70b-instruct-v1:0"


def burst(n: int, input_tokens: int, max_tokens: int, cache_read: int = 0) -> RequestArrays:
    """``n`` requests arriving at the same instant, each lasting 20 s."""

    def col(x: Any, dtype: Any) -> Any:
        return np.full(n, x, dtype=dtype)

    return RequestArrays(
        arrival_s=col(0.0, float), input_tokens=col(input_tokens, np.int64),
        cache_read_tokens=col(cache_read, np.int64), cache_write_tokens=col(0, np.int64),
        output_tokens=col(300, np.int64), max_tokens=col(max_tokens, np.int64),
        latency_s=col(20.0, float), ok=col(True, bool),
    )  # fmt: skip


@pytest.mark.parametrize(("max_tokens", "slots"), [(1_000, 1_333), (64_000, 31)])
def test_reservation_slots_are_awss_concurrent_requests_and_the_replays(
    max_tokens: int, slots: int
) -> None:
    """AWS's example (Claude Sonnet, 2 M TPM, 500 input tokens): max_tokens 1,000 reserves
    1,500 → ~1,333 concurrent requests; max_tokens unset (64 K) reserves ~64,500 → ~31."""
    plan = plan_capacity(Quota(tpm=2_000_000), Workload(500, 300, max_tokens))
    assert math.floor(plan.reservation_slots) == slots
    got = replay(burst(2_000, 500, max_tokens), LLAMA, Quota(tpm=2_000_000).limits())
    assert got.admitted == slots


def test_mantle_checks_input_plus_max_tokens_and_leaves_cached_reads_out() -> None:
    """quotas-mantle.html: input + max_tokens is checked against the input TPM; cached reads do
    not count. bedrock-runtime reserves them."""
    w = Workload(500, 300, 1_000, cache_read_tokens=20_000)
    mantle = Quota(endpoint="mantle", input_tpm=100_000, output_tpm=1_000_000)
    plan = plan_capacity(mantle, w)
    assert plan.reservation_tokens == 1_500 and plan.settlement_tokens == 500
    assert math.floor(plan.reservation_slots) == 66
    got = replay(burst(200, 500, 1_000, cache_read=20_000), LLAMA, mantle.limits())
    assert got.admitted == 66 and got.throttled_by_kind == {"input_tokens": 134, "output_tokens": 0}
    runtime = plan_capacity(Quota(tpm=100_000), w)
    assert runtime.reservation_tokens == 21_500 and math.floor(runtime.reservation_slots) == 4
    # Sustained: input TPM / (input + cache write) vs output TPM / output, the smaller binds.
    assert plan.requests_per_min_by_constraint["input_tpm"] == pytest.approx(100_000 / 500)
    assert plan.requests_per_min_by_constraint["output_tpm"] == pytest.approx(1_000_000 / 300)
    assert plan.binding == "input_tpm"


def test_mantle_quotas_and_requests_name_both_quotas() -> None:
    w = Workload(500, 300, 1_000, think_time_s=30, latency_s=3.0)
    result = answer(
        Quota(endpoint="mantle", input_tpm=100_000, output_tpm=20_000,
              model_id="openai.gpt-oss-120b-1:0"), w, target_users=500,
    )  # fmt: skip
    assert result.plan.binding == "output_tpm" and result.tpm is None
    assert [line.kind for line in result.asks] == ["input_tpm", "output_tpm"]
    names = [line.name for line in result.asks]
    assert names == ["Bedrock Mantle input tokens per minute for gpt-oss-120b",
                     "Bedrock Mantle output tokens per minute for gpt-oss-120b"]  # fmt: skip
    assert all(line.code is None for line in result.asks)  # unpublished: not invented
    assert result.users_at_request is not None and result.users_at_request >= 500
    text = result.headline()
    assert "100,000 input and 20,000 output tokens per minute on bedrock-mantle" in text
    assert "input TPM and" in text and "output TPM" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tpm": 1e6, "reserved_input_tpm": 99_999, "reserved_output_tpm": 10_000},
         "reserved_input_tpm must be >= 100,000"),
        ({"tpm": 1e6, "reserved_input_tpm": 100_000, "reserved_output_tpm": 9_999},
         "reserved_output_tpm must be >= 10,000"),
        ({"tpm": 1e6, "reserved_input_tpm": 100_000}, "needs both"),
        ({"endpoint": "mantle", "input_tpm": 1e5}, "Quota.output_tpm must be > 0"),
        ({"endpoint": "mantle", "input_tpm": 1e5, "output_tpm": 1e4, "rpm": 10},
         "Quota.rpm is not a bedrock-mantle quota"),
        ({"input_tpm": 1e5}, "Quota.tpm must be > 0"),
        ({"tpm": 1e5, "input_tpm": 1e5}, "Quota.input_tpm is a bedrock-mantle quota"),
    ],
)  # fmt: skip
def test_reserved_minimums_and_endpoint_quotas_are_checked(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlanInputError, match=message) as info:
        Quota(**kwargs)
    assert "\n" not in str(info.value)


def test_priority_standard_and_flex_plan_on_one_quota() -> None:
    base = Workload(500, 300, 1_000, think_time_s=30)
    plans = {
        tier: plan_capacity(Quota(tpm=1_000_000), Workload(500, 300, 1_000, think_time_s=30,
                                                            service_tier=tier))
        for tier in ("priority", "default", "flex")
    }  # fmt: skip
    assert {p.users for p in plans.values()} == {plan_capacity(Quota(tpm=1e6), base).users}
    assert any("up to 25% better output tokens per second" in n for n in plans["priority"].notes)
    assert any("lower priority" in n for n in plans["flex"].notes)


def test_reserved_capacity_adds_its_rate_and_is_used_by_the_reserved_tier_only() -> None:
    quota = Quota(tpm=300_000, reserved_input_tpm=200_000, reserved_output_tpm=30_000)
    reserved = Workload(500, 300, 1_000, latency_s=5.0, service_tier="reserved")
    plan = plan_capacity(quota, reserved)
    # Reserved: min(200,000 / 500, 30,000 / 300) = 100 req/min; on-demand 300,000 / 800 = 375.
    assert plan.reserved_requests_per_min == pytest.approx(100)
    assert plan.requests_per_min_by_constraint["tpm"] == pytest.approx(475)
    assert plan.overflow_share == pytest.approx(1 - 100 / 475)
    standard = plan_capacity(quota, Workload(500, 300, 1_000, latency_s=5.0))
    assert standard.requests_per_min_by_constraint["tpm"] == pytest.approx(375)
    assert standard.reserved_requests_per_min is None
    assert any("serves only requests with service_tier 'reserved'" in n for n in standard.notes)
    request = required_quota(reserved, 2_000, rule="bucket", reserved_input_tpm=200_000,
                             reserved_output_tpm=30_000)  # fmt: skip
    alone = required_quota(reserved, 2_000)
    assert request.tpm is not None and alone.tpm is not None and request.tpm < alone.tpm
    assert plan_capacity(request.to_quota(), reserved).users >= 2_000 * (1 - 1e-9)


def throttled_share(
    quota: Quota, w: Workload, rate_per_min: float, minutes: float, seed: int
) -> float:
    assert w.latency_s is not None
    results = simulate_quota(
        poisson_arrivals(rate_per_min, minutes, seed=seed), quota.limits(),
        input_tokens=round(w.input_tokens), max_tokens=round(w.max_tokens),
        output_tokens=round(w.output_tokens), burndown=1.0, ttft_s=0.3, ttlt_s=w.latency_s,
        cache_read_tokens=round(w.cache_read_tokens),
        cache_write_tokens=round(w.cache_write_tokens), service_tier=w.service_tier,
    )  # fmt: skip
    return sum(r.status == "throttled" for r in results) / max(len(results), 1)


shapes = st.fixed_dictionaries(
    {
        "input_tokens": st.integers(50, 4_000),
        "output_tokens": st.integers(20, 800),
        "max_factor": st.floats(1.0, 8.0),
        "cache_read_tokens": st.sampled_from([0, 0, 2_000, 20_000]),
        "cache_write_tokens": st.sampled_from([0, 0, 300]),
        "latency_s": st.floats(0.5, 150.0),
    }
)


def workload(shape: dict[str, Any], tier: ServiceTier = "default") -> Workload:
    s = dict(shape)
    s["max_tokens"] = math.ceil(s["output_tokens"] * s.pop("max_factor"))
    return Workload(**s, service_tier=tier)


def poisson_fits(plan: CapacityPlan) -> bool:
    """Whether Poisson noise stays within the 10 % margin: an in-flight limit (the ramp) is a
    hard cap on a Poisson count, so at 0.9× it needs 0.1 N ≥ 3 √(0.9 N), N ≥ 810."""
    return not plan.binding.endswith("_inflight") or 0.1 * plan.inflight >= 3 * math.sqrt(
        0.9 * plan.inflight
    )


def check_plan_holds(quota: Quota, w: Workload, seed: int, minutes: float = 8) -> None:
    """0.9× the planned busiest minute throttles less than 1 %; 1.5× throttles."""
    plan = plan_capacity(quota, w)
    assume(poisson_fits(plan))
    planned = plan.peak_requests_per_min
    # 8 minutes: a bucket (one minute of tokens) drains within 2 minutes at 1.5×; the ramp ends
    # after R ≤ 150 s.
    assert throttled_share(quota, w, 0.9 * planned, minutes, seed) < 0.01
    assert throttled_share(quota, w, 1.5 * planned, minutes, seed + 1) > 0.0


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(60.0, 3_000.0),
    shape=shapes,
    split=st.floats(0.3, 3.0),
    rule=st.sampled_from(QUOTA_RULES),
    seed=st.integers(0, 1_000),
)
def test_a_mantle_plan_runs_clean_and_half_as_much_again_throttles(
    rate: float, shape: dict[str, Any], split: float, rule: QuotaRule, seed: int
) -> None:
    w = workload(shape)
    # Quotas for about ``rate`` requests a minute, either one binding.
    quota = Quota(
        endpoint="mantle", rule=rule, input_tpm=math.ceil(rate * w.input_kept_tokens * split),
        output_tpm=math.ceil(rate * w.output_tokens / split),
    )  # fmt: skip
    plan = plan_capacity(quota, w)
    # Poisson clumps beyond a bucket's burst throttle by design: quotas here hold many
    # requests; windows carry nothing over, so they must hold enough for Poisson noise.
    enough = 50 if rule == "bucket" else 1_000
    assume(plan.reservation_slots >= enough)
    assume(quota.output_tpm is not None and quota.output_tpm / w.output_tokens >= enough)
    check_plan_holds(quota, w, seed)


@settings(max_examples=15, deadline=None)
@given(
    rate=st.floats(200.0, 3_000.0),
    shape=shapes,
    split=st.tuples(st.floats(0.2, 1.0), st.floats(0.2, 1.0), st.floats(0.2, 1.0)),
    endpoint=st.sampled_from(["runtime", "mantle"]),
    seed=st.integers(0, 1_000),
)
def test_reserved_capacity_with_overflow_runs_clean_and_half_as_much_again_throttles(
    rate: float,
    shape: dict[str, Any],
    split: tuple[float, float, float],
    endpoint: str,
    seed: int,
) -> None:
    w = workload(shape, "reserved")
    a, b, c = split
    r_in = max(100_000, math.ceil(rate * w.input_kept_tokens * a))
    r_out = max(10_000, math.ceil(rate * w.output_tokens * b))
    if endpoint == "runtime":
        quota = Quota(tpm=math.ceil(rate * w.settlement_tokens(1.0) * c), reserved_input_tpm=r_in,
                      reserved_output_tpm=r_out)  # fmt: skip
    else:
        quota = Quota(endpoint="mantle", input_tpm=math.ceil(rate * w.input_kept_tokens * c),
                      output_tpm=math.ceil(rate * w.output_tokens * c), reserved_input_tpm=r_in,
                      reserved_output_tpm=r_out)  # fmt: skip
    plan = plan_capacity(quota, w)
    assert plan.reserved_requests_per_min is not None
    # Every bucket holds many requests (Poisson clumps beyond a burst throttle by design).
    assume(plan.reservation_slots >= 50)
    assume(r_in / w.input_kept_tokens >= 50 and r_out / w.max_tokens >= 50)
    # Two ramps (Reserved output capacity's, then the on-demand quota's) add up at the start of
    # the run: Poisson noise of the in-flight count around their sum throttles a little there,
    # so the run is longer than a single bucket's (the transient is one R, at most 150 s).
    check_plan_holds(quota, w, seed, minutes=15)


@pytest.mark.parametrize(
    "quota",
    [
        Quota(endpoint="mantle", input_tpm=400_000, output_tpm=100_000),
        Quota(tpm=400_000, reserved_input_tpm=200_000, reserved_output_tpm=40_000),
        Quota(endpoint="mantle", input_tpm=200_000, output_tpm=60_000,
              reserved_input_tpm=200_000, reserved_output_tpm=40_000),
    ],
)  # fmt: skip
def test_verification_replays_both_endpoints_and_reserved_capacity(quota: Quota) -> None:
    """``plan --verify``: the plan's rate runs clean through the ledger in virtual time, and
    overloaded, the ledger sustains the planned rate (within 5 %)."""
    w = Workload(500, 300, 1_000, cache_read_tokens=1_000, latency_s=6.0, think_time_s=30,
                 service_tier="reserved")  # fmt: skip
    check = plan_capacity(quota, w, verify=True).verification
    assert check is not None
    assert check.throttled_share < 0.01
    assert abs(check.agreement - 1) < 0.05


@pytest.mark.parametrize(("rate", "max_tokens"), [(300.0, 1_000), (2_000.0, 4_000), (50.0, 350)])
def test_required_reserved_carries_the_rate_without_overflow(rate: float, max_tokens: int) -> None:
    w = Workload(1_200, 300, max_tokens, cache_write_tokens=100, latency_s=20.0,
                 service_tier="reserved")  # fmt: skip
    size = required_reserved(w, rate, 20.0)
    assert size.input_tpm >= 100_000 and size.output_tpm >= 10_000
    assert size.input_need == pytest.approx(rate * 1_300)
    # Reserved capacity alone (a token on-demand quota) carries the rate: the plan and the ledger.
    quota = Quota(tpm=1, reserved_input_tpm=size.input_tpm, reserved_output_tpm=size.output_tpm)
    plan = plan_capacity(quota, w)
    assert plan.reserved_requests_per_min is not None
    assert plan.reserved_requests_per_min >= rate * (1 - 1e-9)
    assert throttled_share(quota, w, 0.9 * rate, 6, seed=1) < 0.01
