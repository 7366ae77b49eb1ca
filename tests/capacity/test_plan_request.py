"""Users → quota: worked examples of ``required_quota``, feasibility and the options."""

from __future__ import annotations

import json
import math

import pytest

from capacity.planning import PlanInputError, Slo, Workload, plan_capacity, required_quota
from tests.capacity.plan_fakes import FakeModel

approx = pytest.approx
LLAMA_US = "us.meta.llama3-3-70b-instruct-v1:0"


@pytest.mark.parametrize(
    ("users", "input_tokens", "output_tokens", "max_tokens"),
    [(100, 600, 300, 400), (500, 100, 80, 100)],
)
def test_seed_blog_users_need_10k_tpm_back(
    users: int, input_tokens: int, output_tokens: int, max_tokens: int
) -> None:
    # The inverse of the seed-blog example under the window rule: 100 users × 0.1 req/min =
    # 10 req/min × 1,000 reserved tokens = 10,000 TPM; 500 × 0.1 = 50 req/min × 200 = 10,000.
    # Under the bucket rule the settled charge sets it: 10 × 900 = 50 × 180 = 9,000 TPM.
    # RPM (asked for only when enforced) = 10 and 50; TPD = λ × 1,440 × settlement = 12,960,000.
    w = Workload(input_tokens, output_tokens, max_tokens, requests_per_user_per_min=0.1)
    window = required_quota(w, users, headroom=0, rule="window", rpm_enforced=True)
    assert window.tpm == 10_000
    assert window.rpm == users // 10
    assert window.tpd == 12_960_000
    assert window.feasible and window.inflight_limit is None
    bucket = required_quota(w, users, headroom=0)
    assert bucket.tpm == 9_000 and bucket.rpm is None
    assert [line.kind for line in bucket.lines] == ["tpm", "tpd"]


def test_headroom_inflight_and_quota_codes_for_llama() -> None:
    # 600 users, think 30 s, default R = 0.28 + 299/136 = 2.4786 s:
    # λ = 600 × 60 / 32.4786 = 1,108.4 req/min; N = 1,108.4/60 × 2.4786 = 45.8 in flight.
    # TPM = 1.2 × max(settlement 800 × 1,108.4, ramp (45.8 + 1) × 1,500 / (1 + 2.4786/60))
    # = 1.2 × 886,740 = 1,064,088. Bedrock no longer enforces Llama's RPM: none is asked for.
    w = Workload(500, 300, 1000, think_time_s=30)
    request = required_quota(w, 600, model_id=LLAMA_US)
    rate = 600 * 60 / (0.28 + 299 / 136 + 30)
    assert request.requests_per_min == approx(rate)
    assert request.inflight == approx(rate / 60 * (0.28 + 299 / 136))
    assert request.tpm == math.ceil(1.2 * 800 * rate) == 1_064_088
    assert request.rpm is None
    assert request.scope == "cross-region"
    lines = {line.kind: line for line in request.lines}
    assert (lines["tpm"].code, lines["tpm"].default) == ("L-0E7AA8B7", 600_000)
    assert "rpm" not in lines
    assert lines["tpd"].code is None
    assert plan_capacity(request.to_quota(), w).users >= 600
    json.dumps(request.to_dict(), allow_nan=False)


def test_feasible_slo_target_round_trips_and_suggests_a_cap() -> None:
    # Fake model, p95 TTFT ≤ 1.5 s holds up to N_slo = 35.83 (see test_plan). 200 users at
    # think 30 s and PAR 1.5 need about 34 in flight at the busiest minute: feasible.
    model, slo = FakeModel(ttft_per_inflight_s=0.02), Slo(ttft_p95_s=1.5)
    w = Workload(43, 350, 1024, think_time_s=30, peak_to_average=1.5)
    request = required_quota(w, 200, model, slo)
    assert request.feasible and request.reason is None and request.options == ()
    assert request.inflight_limit == approx(35.83, abs=0.01)
    assert request.inflight is not None and request.inflight < 35.83
    assert any("client-side cap of 35" in note for note in request.notes)
    plan = plan_capacity(request.to_quota(), w, model, slo)
    assert plan.users >= 200


def test_infeasible_slo_lists_the_options_with_their_effect() -> None:
    model, slo = FakeModel(ttft_per_inflight_s=0.02), Slo(ttft_p95_s=1.5)
    w = Workload(43, 350, 1024, think_time_s=30, peak_to_average=1.5)
    request = required_quota(w, 300, model, slo)
    assert not request.feasible
    assert request.reason is not None and "35.83" in request.reason
    names = [o.name for o in request.options]
    assert names == [
        "tighter max_tokens",
        "cross-region inference profile",
        "prompt caching",
        "provisioned throughput",
        "client-side concurrency cap",
    ]
    by_name = {o.name: o for o in request.options}
    # max_tokens 1,024 → ceil(1.5 × 350) = 525: the reservation falls from 1,067 to 568 tokens;
    # the settled charge (393) sets the TPM, so it stays, and the option says so.
    tight = by_name["tighter max_tokens"]
    assert tight.figures["max_tokens"] == 525 and "stays the same" in tight.effect
    # The request itself asks only the TPM the SLO's limit can use (559.7 req/min, not the
    # 799.5 the target needs), and says what the whole target would need.
    assert tight.figures["tpm"] > request.runtime_tpm
    assert request.rpm is None and any("TPM asked only up to" in n for n in request.notes)
    # The SLO carries at most 60 × 35.83 / 3.841 = 559.7 req/min (see test_plan); the busiest
    # minute needs 1.5 × 533 = 799.5 req/min → 2 Regions.
    assert request.peak_requests_per_min == approx(1.5 * request.requests_per_min)
    assert by_name["cross-region inference profile"].figures["regions"] == 2
    caching = by_name["prompt caching"].figures
    assert caching["requests_per_min_limit"] > 559.7  # 21.5 fewer prompt tokens of prefill
    # The cap at 35 carries the average (533 req/min < 550 at the cap) but not the peak.
    cap = by_name["client-side concurrency cap"].figures
    assert cap["cap"] == 35 and 0 < cap["p_wait"] < 1 and cap["peak_backlog_per_min"] > 0
    assert all(o.effect for o in request.options)


def test_target_beyond_the_endpoint_is_infeasible() -> None:
    request = required_quota(Workload(6027, 350, 1024, think_time_s=5), 2000, FakeModel())
    assert not request.feasible and request.inflight is None
    assert request.reason is not None and "peaks at" in request.reason


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"target_users": 0}, "target_users must be > 0"),
        ({"target_users": 10, "headroom": -0.1}, "headroom must be >= 0"),
        ({"target_users": 10, "slo": Slo(ttft_p95_s=1)}, "slo needs a fitted model"),
    ],
)
def test_bad_request_inputs(kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(PlanInputError, match=text):
        required_quota(Workload(500, 300, 1000), **kwargs)  # type: ignore[arg-type]
