"""Plans checked against the quota ledger they are derived from (docs/architecture.md, "Quota
rules"): the planned rate runs clean through the ledger in virtual time, 1.5× does not."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings, strategies as st

from capacity.planning import Quota, Workload, plan_capacity, verify_plan
from capacity.serving import poisson_arrivals, simulate_quota


def throttled_share(
    quota: Quota, w: Workload, rate_per_min: float, minutes: float, seed: int
) -> float:
    arrivals = poisson_arrivals(rate_per_min, minutes, seed=seed)
    assert w.latency_s is not None
    results = simulate_quota(
        arrivals,
        quota.limits(),
        input_tokens=round(w.input_tokens),
        max_tokens=round(w.max_tokens),
        output_tokens=round(w.output_tokens),
        burndown=1.0,
        ttft_s=0.3,
        ttlt_s=w.latency_s,
    )
    return sum(r.status == "throttled" for r in results) / max(len(results), 1)


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(60.0, 4000.0),
    input_tokens=st.integers(50, 4000),
    output_tokens=st.integers(20, 800),
    max_factor=st.floats(1.0, 8.0),
    latency_s=st.floats(0.5, 150.0),
    rule=st.sampled_from(["bucket", "window"]),
    seed=st.integers(0, 1000),
)
def test_planned_rate_runs_clean_and_half_as_much_again_throttles(
    rate: float,
    input_tokens: int,
    output_tokens: int,
    max_factor: float,
    latency_s: float,
    rule: str,
    seed: int,
) -> None:
    # A quota sized for about ``rate`` settled requests per minute, so runs stay short.
    max_tokens = math.ceil(output_tokens * max_factor)
    w = Workload(input_tokens, output_tokens, max_tokens, latency_s=latency_s)
    quota = Quota(tpm=math.ceil(rate * (input_tokens + output_tokens)), rule=rule)  # type: ignore[arg-type]
    plan = plan_capacity(quota, w)
    # Poisson clumps beyond the burst limit throttle by design: quotas here hold many requests.
    # Windows carry nothing over, so a window must hold enough requests for Poisson noise
    # (√λ per minute) to stay inside 10 % of it.
    assume(plan.reservation_slots >= (50 if rule == "bucket" else 1000))
    # An in-flight limit (the ramp) caps a Poisson count: within the 10 % margin only when
    # 0.1 N ≥ 3 √(0.9 N), N ≥ 810.
    assume(not plan.binding.endswith("_inflight") or plan.inflight >= 810)
    planned = plan.peak_requests_per_min
    # 8 minutes: the bucket (one minute of tokens) drains in 2 minutes at 1.5×, the ramp ends
    # after R ≤ 150 s.
    assert throttled_share(quota, w, 0.9 * planned, 8, seed) < 0.01
    assert throttled_share(quota, w, 1.5 * planned, 8, seed + 1) > 0.0


def test_verification_agrees_with_the_worked_example_within_5_percent() -> None:
    plan = plan_capacity(
        Quota(tpm=2_000_000), Workload(500, 300, 1000, think_time_s=30), verify=True
    )
    check = plan.verification
    assert check is not None and check is not None
    assert check.throttled_share < 0.01
    assert abs(check.agreement - 1) < 0.05
    assert verify_plan(plan, None, minutes=10).requests > 0
