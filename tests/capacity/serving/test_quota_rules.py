"""The quota rules of both endpoints, service tiers and Reserved capacity, worked from AWS's own
statements (docs/architecture.md, "Quota rules"), on a hand-driven clock."""

from __future__ import annotations

import dataclasses
import math

import pytest

from capacity.serving import (
    QUOTA_RULES,
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    Admission,
    QuotaError,
    QuotaLedger,
    QuotaLimits,
    Rejection,
    ServiceTier,
)


class Clock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


def burst(ledger: QuotaLedger, n: int, *args: int, **kwargs: object) -> list[Admission]:
    """``n`` simultaneous admissions; returns those admitted."""
    out = [ledger.admit("m", *args, **kwargs) for _ in range(n)]  # type: ignore[arg-type]
    return [a for a in out if isinstance(a, Admission)]


def test_mantle_checks_input_plus_max_tokens_against_input_tpm() -> None:
    """quotas-mantle.html: "the number of input tokens in the request and the value of
    max_tokens" are checked against the input-tokens-per-minute quota; HTTP 429 when over."""
    q = QuotaLedger(QuotaLimits(endpoint="mantle", input_tpm=100_000, output_tpm=50_000), Clock())
    assert len(burst(q, 100, 500, 1_000)) == 100_000 // 1_500  # 66, not 100,000 // 500
    refused = q.admit("m", 500, 1_000)
    assert isinstance(refused, Rejection) and refused.kind == "input_tokens"
    # An unset max_tokens reserves the model's maximum (the caller passes it): 8,192 here.
    q = QuotaLedger(QuotaLimits(endpoint="mantle", input_tpm=100_000), Clock())
    assert len(burst(q, 100, 500, 8_192)) == 100_000 // 8_692  # 11


def test_mantle_leaves_cached_reads_out_and_runtime_reserves_them() -> None:
    """quotas-mantle.html: "Cached input tokens read via prompt caching do not count against the
    input-tokens-per-minute quota"; bedrock-runtime reserves InputTokens +
    CacheWriteInputTokens + CacheReadInputTokens + maxTokens."""
    mantle = QuotaLedger(QuotaLimits(endpoint="mantle", input_tpm=100_000), Clock())
    runtime = QuotaLedger(QuotaLimits(tpm=100_000), Clock())
    shape = {"cache_read_tokens": 20_000, "cache_write_tokens": 500}
    assert len(burst(mantle, 100, 500, 1_000, **shape)) == 100_000 // 2_000  # 500 + 500 + 1,000
    assert len(burst(runtime, 100, 500, 1_000, **shape)) == 100_000 // 22_000  # 4


def test_mantle_output_tokens_count_against_output_tpm_without_burndown() -> None:
    clock = Clock()
    q = QuotaLedger(QuotaLimits(endpoint="mantle", input_tpm=1_000_000, output_tpm=6_000), clock)
    a = burst(q, 2, 100, 4_000)
    assert q.settle(a[0], 100, 4_000, burndown=5.0) == 4_100  # raw output, no burndown
    assert q.settle(a[1], 100, 4_000, burndown=5.0) == 4_100
    assert q.available("m")["output_tpm"] == pytest.approx(-2_000)  # a debt
    refused = q.admit("m", 100, 10)
    assert isinstance(refused, Rejection) and refused.kind == "output_tokens"
    assert refused.retry_after_s == pytest.approx(20.0)  # 2,000 tokens at 100 per second
    clock.t_s = 20.0
    assert isinstance(q.admit("m", 100, 10), Admission)


def test_output_charged_as_generated_ends_where_settlement_alone_ends() -> None:
    limits = QuotaLimits(endpoint="mantle", input_tpm=100_000, output_tpm=10_000)
    live, late = QuotaLedger(limits, Clock()), QuotaLedger(limits, Clock())
    assert live.charges_as_generated and not QuotaLedger(QuotaLimits(tpm=1), Clock())\
        .charges_as_generated  # fmt: skip
    adm = live.admit("m", 200, 3_000)
    assert isinstance(adm, Admission)
    for generated in (1, 17, 17, 900, 2_400):
        live.charge_output(adm, generated)
    assert live.available("m")["output_tpm"] == 10_000 - 2_400  # charged while it streams
    assert live.settle(adm, 200, 2_500) == 2_700
    adm2 = late.admit("m", 200, 3_000)
    assert isinstance(adm2, Admission)
    late.settle(adm2, 200, 2_500)
    assert live.available("m") == late.available("m")


def test_priority_standard_and_flex_share_one_on_demand_quota() -> None:
    """service-tiers-inference.html: "Your on-demand quota for a model is shared across all
    service tiers"."""
    q = QuotaLedger(QuotaLimits(tpm=3_000), Clock())
    tiers: tuple[ServiceTier, ...] = ("priority", "default", "flex")
    for tier in tiers:
        assert isinstance(q.admit("m", 500, 500, service_tier=tier), Admission)
    for tier in tiers:
        refused = q.admit("m", 500, 500, service_tier=tier)
        assert isinstance(refused, Rejection) and refused.kind == "tokens"
    with pytest.raises(QuotaError, match="service_tier 'standard' is not a Bedrock tier"):
        q.admit("m", 1, 1, service_tier="standard")  # type: ignore[arg-type]


def test_reserved_capacity_comes_first_and_overflows_to_the_on_demand_quota() -> None:
    """service-tiers-inference.html: Reserved tier requests beyond the reserved tokens per
    minute overflow to the Standard tier, whose on-demand quota they then share. Reserved input
    counts input + cache write; Reserved output holds max_tokens until the request settles."""
    limits = QuotaLimits(tpm=10_000, reserved_input_tpm=100_000, reserved_output_tpm=10_000)
    q = QuotaLedger(limits, Clock())
    first = burst(q, 100, 4_000, 200, service_tier="reserved")
    # 25 × 4,000 fill the Reserved input TPM (output: 25 × 200 of 10,000); two more requests of
    # 4,200 fit the on-demand 10,000 TPM.
    assert [a.on_reserved for a in first] == [True] * 25 + [False] * 2
    assert isinstance(q.admit("m", 1_000, 1_000, service_tier="default"), Rejection)  # shared
    assert q.settle(first[0], 4_000, 150, burndown=5.0) == 4_150  # raw output on Reserved
    assert q.settle(first[-1], 4_000, 150, burndown=5.0) == 4_000 + 5 * 150
    levels = q.available("m")
    assert levels["reserved_input_tpm"] == 0
    assert levels["reserved_output_tpm"] == 10_000 - 24 * 200 - 150
    # A Standard request never uses Reserved capacity, even when it has room.
    q2 = QuotaLedger(dataclasses.replace(limits, tpm=2_200), Clock())
    out = burst(q2, 12, 100, 1_000, service_tier="reserved")  # output capacity: 10 × 1,000
    assert [a.on_reserved for a in out] == [True] * 10 + [False] * 2
    assert isinstance(q2.admit("m", 100, 1_000, service_tier="reserved"), Rejection)
    assert q2.settle(out[0], 100, 400) == 500  # 600 of its 1,000 come back
    assert isinstance(q2.admit("m", 100, 700, service_tier="default"), Rejection)
    assert q2.admit("m", 100, 600, service_tier="reserved").on_reserved  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"reserved_input_tpm": RESERVED_MIN_INPUT_TPM - 1, "reserved_output_tpm": 10_000},
         "reserved_input_tpm 99,999 is below AWS's minimum of 100,000"),
        ({"reserved_input_tpm": 100_000, "reserved_output_tpm": RESERVED_MIN_OUTPUT_TPM - 1},
         "reserved_output_tpm 9,999 is below AWS's minimum of 10,000"),
        ({"reserved_input_tpm": 100_000}, "needs both reserved_input_tpm and reserved_output"),
        ({"endpoint": "mantle", "tpm": 1_000}, "QuotaLimits.tpm is not a bedrock-mantle quota"),
        ({"endpoint": "mantle", "rpm": 10}, "QuotaLimits.rpm is not a bedrock-mantle quota"),
        ({"input_tpm": 1_000}, "QuotaLimits.input_tpm is not a bedrock-runtime quota"),
        ({"endpoint": "bedrock"}, "QuotaLimits.endpoint must be one of"),
        ({"endpoint": "mantle", "output_tpm": 0}, "QuotaLimits.output_tpm must be a positive"),
    ],
)  # fmt: skip
def test_reserved_minimums_and_endpoint_quotas_are_enforced_in_one_line(
    limits: dict[str, object], message: str
) -> None:
    with pytest.raises(QuotaError, match=message) as info:
        QuotaLimits(**limits)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_the_window_charges_what_a_settlement_keeps_beyond_its_reservation() -> None:
    """Burndown 5: 100 input, max_tokens 200 and 200 output tokens reserve 300 but settle
    1,100. The window keeps max(reservation, settlement), so it never lets through more than the
    bucket: both carry TPM / 1,100 requests a minute, not TPM / 300."""
    for rule in QUOTA_RULES:
        clock = Clock()
        q = QuotaLedger(QuotaLimits(tpm=11_000, rule=rule), clock)
        admitted = 0
        for i in range(600):  # one request a second for 10 minutes, each lasting 0.5 s
            clock.t_s = float(i)
            adm = q.admit("m", 100, 200)
            if isinstance(adm, Admission):
                admitted += 1
                clock.t_s = i + 0.5
                q.settle(adm, 100, 200, burndown=5.0)
        assert admitted <= 10 * (11_000 // 1_100) + 11  # 10 a minute, plus the first full bucket
        assert admitted >= 10 * (11_000 // 1_100)


def test_unlimited_mantle_and_reserved_report_their_buckets() -> None:
    q = QuotaLedger(
        QuotaLimits(endpoint="mantle", reserved_input_tpm=100_000, reserved_output_tpm=10_000),
        Clock(),
    )
    assert q.available("m") == {"reserved_input_tpm": 100_000.0, "reserved_output_tpm": 10_000.0}
    big = q.admit("m", 200_000, 1, service_tier="reserved")  # beyond Reserved capacity: overflow
    assert isinstance(big, Admission) and not big.on_reserved  # to the unlimited on-demand quota
    never = QuotaLedger(QuotaLimits(endpoint="mantle", input_tpm=10), Clock()).admit("m", 5, 6)
    assert isinstance(never, Rejection) and math.isinf(never.retry_after_s)
