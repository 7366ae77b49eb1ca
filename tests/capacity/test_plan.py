"""Worked examples of quota → users, each derived by hand in its comments."""

from __future__ import annotations

import json
import math

import pytest

from capacity.planning import CONSTRAINTS, PlanInputError, Quota, Slo, Workload, plan_capacity
from tests.capacity.plan_fakes import FakeModel

approx = pytest.approx


def test_aws_guidance_2m_tpm_sustains_2500_per_minute_with_1333_reservation_slots() -> None:
    # The architecture issue's worked example. 2,000,000 TPM, 500 input, 300 output, max_tokens
    # 1,000. The bucket refills 2,000,000 / 60 tokens per second and each request finally costs
    # its settlement 500 + 1 × 300 = 800, so the busiest minute can carry 2,000,000 / 800 =
    # 2,500 requests. Each admission reserves 500 + 1,000 = 1,500, so a full bucket admits
    # 2,000,000 / 1,500 = 1,333.3 requests at the same instant (AWS's "~1,333 concurrent
    # requests"): a burst limit, not a rate. Users at R = 0.28 + 299 / 136 = 2.4786 s and 30 s
    # of thinking: 2,500 / 60 × 32.4786 = 1,353.3.
    quota = Quota(tpm=2_000_000)
    plan = plan_capacity(quota, Workload(input_tokens=500, output_tokens=300, max_tokens=1000))
    assert plan.reservation_tokens == 1500 and plan.settlement_tokens == 800
    assert plan.reservation_slots == approx(1333.33, abs=0.01)
    assert plan.binding == "tpm"
    assert plan.requests_per_min == approx(2500)
    assert plan.users == approx(2500 / 60 * (0.28 + 299 / 136 + 30))
    assert "2,000,000 / 800" in plan.formulas["requests_per_min_by_constraint.tpm"]
    # The ramp: stepping up on a full bucket, requests hold their reservations for R seconds
    # before the first refund: N ≤ (2,000,000 × (1 + 2.4786/60) − 1,500) / 1,500 = 1,387.4.
    r = 0.28 + 299 / 136
    assert plan.tpm_inflight_limit == approx((2e6 * (1 + r / 60) - 1500) / 1500)
    # max_tokens left at a 64K maximum: (2,000,000 × 1.0413 − 64,500) / 64,500 = 31.29 requests
    # in flight, i.e. 60 × 31.29 / 2.4786 = 757 req/min: the ramp binds.
    unset = plan_capacity(quota, Workload(input_tokens=500, output_tokens=300, max_tokens=64_000))
    assert unset.reservation_slots == approx(2_000_000 / 64_500)
    assert unset.binding == "tpm_inflight"
    n_cap = (2e6 * (1 + r / 60) - 64_500) / 64_500
    assert unset.inflight == approx(n_cap)
    assert unset.requests_per_min == approx(60 * n_cap / r)
    # The window rule counts whole reservations: 2,000,000 / 1,500 = 1,333.3 req/min.
    window = plan_capacity(
        Quota(tpm=2_000_000, rule="window"),
        Workload(input_tokens=500, output_tokens=300, max_tokens=1000),
    )
    assert window.requests_per_min == approx(1333.33, abs=0.01)
    assert "tpm_inflight" not in window.requests_per_min_by_constraint


def test_long_requests_hold_reservations_until_the_ramp_binds() -> None:
    # The ramp: N ≤ (TPM × (1 + R/60) − 1,500) / 1,500. At R = 60 s: (4,000,000 − 1,500) /
    # 1,500 = 2,665.7 in flight = 2,665.7 req/min, above the sustained 2,500: tpm binds. At
    # R = 120 s: 3,999 in flight = 1,999.5 req/min: the ramp binds.
    quota = Quota(tpm=2_000_000)
    for latency_s, binding in ((60.0, "tpm"), (120.0, "tpm_inflight")):
        n_cap = (2e6 * (1 + latency_s / 60) - 1500) / 1500
        w = Workload(input_tokens=500, output_tokens=300, max_tokens=1000, latency_s=latency_s)
        plan = plan_capacity(quota, w)
        rate = plan.requests_per_min_by_constraint["tpm_inflight"]
        assert rate == approx(60 * n_cap / latency_s)
        assert plan.max_inflight_by_constraint["tpm_inflight"] == approx(n_cap)
        assert plan.binding == binding


@pytest.mark.parametrize(
    ("kind", "input_tokens", "output_tokens", "max_tokens", "users"),
    [("complex", 600, 300, 400, 100), ("simple", 100, 80, 100, 500)],
)
def test_seed_blog_10k_tpm_serves_100_complex_or_500_simple_users(
    kind: str, input_tokens: int, output_tokens: int, max_tokens: int, users: int
) -> None:
    # The blog: "a 10,000 TPM quota might support 100 users making complex requests or 500
    # making simple ones". True under the window rule when each user asks once every 10 minutes
    # (0.1 req/min), complex = 600 in + max_tokens 400 (reservation 1,000), simple = 100 in +
    # max_tokens 100 (reservation 200): 10,000 / 1,000 = 10 req/min → 100 users; 10,000 / 200 =
    # 50 req/min → 500 users. The bucket rule refunds unused reservations, so settlement sets the
    # rate: 600 + 300 = 900 and 100 + 80 = 180 tokens → 111.1 and 555.6 users.
    w = Workload(input_tokens, output_tokens, max_tokens, requests_per_user_per_min=0.1)
    window = plan_capacity(Quota(tpm=10_000, rule="window"), w)
    assert window.binding == "tpm", kind
    assert window.users == approx(users)
    bucket = plan_capacity(Quota(tpm=10_000), w)
    assert bucket.binding == "tpm", kind
    assert bucket.users == approx(10_000 / 0.1 / (input_tokens + output_tokens))


@pytest.mark.parametrize(
    ("input_tokens", "latency_s", "users", "binding"),
    [(43, 3.32, 400 / 60 * 33.32, "rpm"), (6027, 7.06, 800_000 / 6377 / 2 / 60 * 37.06, "tpm")],
)
def test_800k_tpm_800_rpm_peak_2(
    input_tokens: int, latency_s: float, users: float, binding: str
) -> None:
    # TPM 800,000, RPM 800 (given explicitly: where RPM is still enforced), PAR 2, think 30 s,
    # max_tokens 1,024, 350 output tokens. Small: settlement 43 + 350 = 393 →
    # 800,000 / 393 / 2 = 1,017.8 req/min, above RPM 800 / 2 = 400, so RPM binds: users =
    # 400 / 60 × (3.32 + 30) = 222.1. Large: settlement 6,377 → 800,000 / 6,377 / 2 =
    # 62.7 req/min → 62.7 / 60 × 37.06 = 38.7 users.
    w = Workload(input_tokens, 350, 1024, think_time_s=30, peak_to_average=2, latency_s=latency_s)
    plan = plan_capacity(Quota(tpm=800_000, rpm=800), w)
    assert plan.binding == binding
    assert plan.users == approx(users)
    assert plan.users_by_constraint["rpm"] == approx(400 / 60 * (latency_s + 30))
    # In flight at the busiest minute: the peak rate 2 × λ, times R.
    assert plan.inflight == approx(plan.requests_per_min * 2 / 60 * latency_s)


def test_claude_4_burndown_makes_settlement_exceed_the_reservation() -> None:
    # Claude Sonnet 4 burns 5 quota tokens per output token: settlement = 2,000 + 5 × 500 =
    # 4,500 > reservation 2,000 + 1,000 = 3,000, so nothing is refunded and no in-flight limit
    # applies. 200,000 TPM → 44.4 req/min. Users at R = 10 s, think 30 s: 44.44 / 60 × 40 = 29.6.
    quota = Quota(tpm=200_000, model_id="us.anthropic.claude-sonnet-4-20250514-v1:0")
    w = Workload(2000, 500, 1000, think_time_s=30, latency_s=10)
    plan = plan_capacity(quota, w)
    assert plan.burndown == 5 and "claude-sonnet-4" in plan.burndown_source
    assert plan.binding == "tpm"
    assert plan.users == approx(200_000 / 4500 / 60 * 40)
    assert math.isinf(plan.tpm_inflight_limit)
    assert "tpm_inflight" not in plan.requests_per_min_by_constraint
    assert plan.headroom_by_constraint["tpm"] == 0


def test_tpd_spreads_over_active_hours_without_the_peak_factor() -> None:
    # Settlement 700 + 300 = 1,000 tokens; TPD 7,200,000 over 8 active hours:
    # 7,200,000 / (1,000 × 60 × 8) = 15 req/min (no PAR: a day's total is an average).
    # TPM 100,000 at PAR 3: 100,000 / 1,000 / 3 = 33.3 req/min. TPD binds: 15 / 0.5 req per
    # user-minute = 30 users.
    w = Workload(700, 300, 400, requests_per_user_per_min=0.5, peak_to_average=3,
                 active_hours_per_day=8)  # fmt: skip
    plan = plan_capacity(Quota(tpm=100_000, tpd=7_200_000), w)
    assert plan.binding == "tpd"
    assert plan.requests_per_min == approx(15)
    assert plan.users == approx(30)
    assert plan.peak_requests_per_min == approx(45)
    assert plan.headroom_by_constraint["tpm"] == approx(1 - 15 / (100 / 3))
    assert set(plan.users_by_constraint) == {"tpm", "tpm_inflight", "tpd"}


def test_slo_constraint_solves_littles_law_on_the_fitted_curve() -> None:
    # Fake model: TTFT_p50(N) = 0.28 + 78e-6 × 43 + 0.02 N = 0.28335 + 0.02 N, p95 = 1.5 ×.
    # p95 ≤ 1.5 s ⇔ 0.28335 + 0.02 N ≤ 1 ⇔ N ≤ 35.83 = N_slo.
    # There tps = 136 / (1 + 0.002 × 34.83 + 3e-5 × 35.83 × 34.83) = 122.84, so
    # R = 1.0 + 349 / 122.84 = 3.841 s and λ = 60 × 35.83 / 3.841 = 559.7 req/min.
    model = FakeModel(ttft_per_inflight_s=0.02)
    w = Workload(43, 350, 1024, think_time_s=30)
    plan = plan_capacity(Quota(tpm=10_000_000, rpm=5000), w, model, Slo(ttft_p95_s=1.5))
    assert plan.binding == "slo"
    assert plan.requests_per_min == approx(559.7, abs=0.2)
    assert plan.inflight == approx(35.83, abs=0.01)
    assert plan.latency_s == approx(3.841, abs=0.001)
    assert plan.ttft_p95_s == approx(1.5, abs=1e-6)
    assert plan.ttlt_p95_s == approx(1.5 + 349 / (0.8 * 122.84), abs=0.01)
    assert plan.users == approx(559.7 / 60 * (3.841 + 30), abs=0.05)
    # Little's law on the curve, N = λ·R(N), for every constraint the endpoint can carry;
    # the others (10M TPM, 5,000 RPM) lie beyond its peak throughput, and the plan says so.
    carried = [c for c, r in plan.requests_per_min_by_constraint.items() if r <= 559.8]
    assert carried == ["slo"]
    n = plan.max_inflight_by_constraint["slo"]
    assert n == approx(559.7 / 60 * model_latency(model, n, 43, 350), rel=1e-3)
    assert any("in-flight figures are lower bounds" in note for note in plan.notes)


def model_latency(model: FakeModel, n: float, prompt: float, output: float) -> float:
    p = model.predict(max(n, 1.0), prompt)
    return p.ttft_s[0.5] + (output - 1) / p.tps_p50


def test_model_without_slo_caps_at_peak_throughput() -> None:
    # Without an SLO the latency constraint is the endpoint's peak throughput N / R(N).
    model = FakeModel()
    w = Workload(6027, 350, 1024, think_time_s=30)
    plan = plan_capacity(Quota(tpm=1e9), w, model)
    assert plan.binding == "slo"
    grid = [n / 10 for n in range(10, 20_000)]
    best = max(n / model_latency(model, n, 6027, 350) for n in grid)
    assert plan.requests_per_min == approx(60 * best, rel=1e-4)


def test_curves_that_go_negative_are_used_only_where_they_make_sense() -> None:
    # tps = 136 / (1 + ...) − 1.0 × N reaches 0 near N = 120: beyond it the endpoint is treated
    # as saturated, and every reported number stays finite.
    model = FakeModel(sigma=0, kappa=0, tps_drop_per_inflight=1.0)
    w = Workload(500, 350, 1024, think_time_s=10)
    plan = plan_capacity(Quota(tpm=1e9), w, model)
    assert plan.binding == "slo"
    assert 0 < plan.inflight < 136
    assert plan.tps_p5 is not None and plan.tps_p5 > 0
    assert any("stop making sense beyond" in note for note in plan.notes)
    json.dumps(plan.to_dict(), allow_nan=False)


def test_slo_that_fails_at_one_request_supports_nobody() -> None:
    plan = plan_capacity(Quota(tpm=1e6), Workload(43, 350, 1024), FakeModel(), Slo(ttft_p95_s=0.1))
    assert plan.users == 0 and plan.binding == "slo"
    assert any("fails even with one request" in n for n in plan.notes)


def test_slo_without_model_is_rejected() -> None:
    with pytest.raises(PlanInputError, match="slo needs a fitted model"):
        plan_capacity(Quota(tpm=1e6), Workload(43, 350, 1024), slo=Slo(ttft_p95_s=1))


def test_every_number_carries_its_formula_and_the_plan_is_json() -> None:
    plan = plan_capacity(
        Quota(tpm=600_000, rpm=800, tpd=1e8, model_id="us.meta.llama3-3-70b-instruct-v1:0"),
        # max_tokens 8,000 holds (600,000 − 10,000) / 7,650 = 77 reservations in flight, below
        # the endpoint's peak: every constraint applies.
        Workload(2000, 350, 8000, think_time_s=20),
        FakeModel(),
        Slo(ttft_p95_s=2),
    )
    runtime = [c for c in CONSTRAINTS if not c.startswith(("input", "output"))]
    assert list(plan.users_by_constraint) == runtime
    for field in ("requests_per_min", "max_inflight", "users", "headroom"):
        for c in runtime:
            assert f"{field}_by_constraint.{c}" in plan.formulas
    for key in (
        "users",
        "inflight",
        "requests_per_min",
        "reservation_tokens",
        "latency_s",
        "settlement_tokens",
        "reservation_slots",
        "ttft_p95_s",
        "ttlt_p95_s",
        "tps_p5",
    ):
        assert key in plan.formulas
    assert plan.users == min(plan.users_by_constraint.values())
    doc = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    assert doc["binding"] == plan.binding and doc["users_whole"] == math.floor(plan.users)


def test_default_slo_is_twice_the_unloaded_p95_ttft() -> None:
    # FakeModel: p95 TTFT = 1.5 × (0.28 + 78e-6 × 43 + 0.002 × 1) at one in flight = 0.4280 s.
    from capacity.planning import default_slo

    slo = default_slo(FakeModel(), 43)
    assert slo.ttft_p95_s == approx(round(2 * 1.5 * (0.28 + 78e-6 * 43 + 0.002), 2))
