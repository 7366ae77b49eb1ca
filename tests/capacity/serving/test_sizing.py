"""Quota sizing by bisection over replays (capacity.serving.size_quota): the recommended quota,
replayed, meets the throttle target and 0.9x of it does not; hand-derived cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from capacity.serving import QuotaLimits, ReplayError, RequestArrays, replay, size_quota

LLAMA = "meta.llama3-3-70b-instruct-v1:0"
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
TARGET = 0.001


def bursty_traffic(minutes: int, mean_per_s: float, seed: int) -> RequestArrays:
    """A day-like trace in miniature: a per-minute rate that wanders (lognormal) with bursts of
    5-30 s at 8x, lognormal prompts and outputs, max_tokens logged for half the requests,
    latency logged for 90 %, 1 % failed."""
    rng = np.random.default_rng(seed)
    seconds = minutes * 60
    rate = mean_per_s * np.repeat(rng.lognormal(-0.125, 0.5, minutes), 60)
    for start in rng.choice(seconds, size=max(minutes // 3, 1), replace=False):
        rate[start : start + rng.integers(5, 31)] *= 8.0
    counts = rng.poisson(rate)
    n = int(counts.sum())
    arrival = np.repeat(np.arange(seconds), counts) + rng.random(n)
    prompt = np.minimum(rng.lognormal(np.log(1_200), 0.9, n), 60_000).astype(np.int64)
    cached = np.where(rng.random(n) < 0.3, prompt // 2, 0)
    output = np.minimum(rng.lognormal(np.log(250), 0.8, n), 4_000).astype(np.int64)
    max_tokens = np.where(rng.random(n) < 0.5, rng.choice([1_000, 2_000, 4_096], n), -1)
    output = np.where(max_tokens >= 0, np.minimum(output, np.maximum(max_tokens, 0)), output)
    latency = np.where(rng.random(n) < 0.9, 0.4 + output * 0.02 * rng.uniform(0.8, 1.5, n), np.nan)
    return RequestArrays(
        arrival_s=arrival, input_tokens=prompt - cached, cache_read_tokens=cached,
        cache_write_tokens=np.zeros(n, np.int64), output_tokens=output, max_tokens=max_tokens,
        latency_s=latency, ok=rng.random(n) >= 0.01,
    )  # fmt: skip


@pytest.fixture(scope="module")
def traffic() -> RequestArrays:
    return bursty_traffic(minutes=90, mean_per_s=6.0, seed=11)


@pytest.mark.parametrize("rule", ["bucket", "window"])
def test_the_recommended_quota_is_tight(traffic: RequestArrays, rule: Any) -> None:
    """The issue's acceptance: the recommended quota, replayed, throttles <= the target, and
    0.9x of it throttles more — for TPM, TPD, the other rule's TPM and the max_tokens policy."""
    s = size_quota(traffic, LLAMA, rule=rule, throttle_target=TARGET)
    assert s.requests == len(traffic) > 20_000
    assert s.allowed_throttles == math.floor(TARGET * len(traffic))

    def share(tpm: int, tpd: int | None = None, rule: Any = rule, **kw: Any) -> float:
        return replay(
            traffic, LLAMA, QuotaLimits(tpm=tpm, tpd=tpd, rule=rule), **kw
        ).throttled_share

    assert share(s.tpm) <= TARGET < share(math.floor(0.9 * s.tpm))
    assert s.at_recommended.throttled_share <= TARGET
    assert s.at_recommended.quota == QuotaLimits(tpm=s.tpm, tpd=s.tpd, rule=rule)
    assert share(s.tpm, s.tpd) <= TARGET < share(s.tpm, math.floor(0.9 * s.tpd))
    other = s.other_rule
    assert other != rule
    assert share(s.tpm_other_rule, rule=other) <= TARGET
    assert share(math.floor(0.9 * s.tpm_other_rule), rule=other) > TARGET
    saving = s.max_tokens
    assert saving is not None
    ok_out = traffic.output_tokens[traffic.ok]
    assert saving.max_tokens == math.ceil(np.quantile(ok_out, 0.99))
    assert saving.cut_requests == np.count_nonzero(ok_out > saving.max_tokens)
    capped = {"max_tokens_cap": saving.max_tokens}
    assert share(saving.tpm, **capped) <= TARGET < share(math.floor(0.9 * saving.tpm), **capped)
    assert saving.saving_share == pytest.approx(1 - saving.tpm / s.tpm)
    assert s.replays > 20 and s.current is None
    assert s.to_dict()["tpm"] == s.tpm


def test_the_bucket_needs_less_than_the_window_and_a_cap_saves(traffic: RequestArrays) -> None:
    s = size_quota(traffic, LLAMA)
    assert s.rule == "bucket" and s.tpm < s.tpm_other_rule  # refunds let the bucket reuse tokens
    assert s.max_tokens is not None and s.max_tokens.saving_share > 0.05
    assert any("under 'window' the same traffic needs" in n for n in s.notes)


def test_todays_quota_is_replayed_as_given(traffic: RequestArrays) -> None:
    today = QuotaLimits(tpm=1_000_000, tpd=200_000_000)
    s = size_quota(traffic, LLAMA, current=today)
    assert s.current is not None and s.current.quota == today
    assert s.current.throttled_share == replay(traffic, LLAMA, today).throttled_share > TARGET


def test_a_burst_needs_exactly_its_reservations() -> None:
    """N simultaneous reservations of R from a full bucket need TPM = N x R (target 0); the
    search returns it within its tolerance."""
    n, reservation = 400, 500 + 1_000
    burst = RequestArrays(
        arrival_s=np.zeros(n), input_tokens=np.full(n, 500), cache_read_tokens=np.zeros(n, int),
        cache_write_tokens=np.zeros(n, int), output_tokens=np.full(n, 200),
        max_tokens=np.full(n, 1_000), latency_s=np.full(n, 5.0), ok=np.ones(n, bool),
    )  # fmt: skip
    for rule in ("bucket", "window"):
        s = size_quota(burst, LLAMA, rule=rule, throttle_target=0.0)
        assert n * reservation <= s.tpm <= math.ceil(n * reservation * 1.005)


def test_a_steady_rate_under_the_window_rule_needs_a_minute_of_reservations() -> None:
    """One request per second, each reserving 3,000 tokens: every 60-s window holds 60 of them,
    so rule "window" needs 180,000 TPM (target 0)."""
    n = 600
    steady = RequestArrays(
        arrival_s=np.arange(n) + 0.5, input_tokens=np.full(n, 1_000),
        cache_read_tokens=np.zeros(n, int), cache_write_tokens=np.zeros(n, int),
        output_tokens=np.full(n, 100), max_tokens=np.full(n, 2_000), latency_s=np.full(n, 3.0),
        ok=np.ones(n, bool),
    )  # fmt: skip
    s = size_quota(steady, LLAMA, rule="window", throttle_target=0.0)
    assert 180_000 <= s.tpm <= math.ceil(180_000 * 1.005)
    assert s.at_recommended.throttled == 0


def test_an_rpm_that_alone_misses_the_target_is_named(traffic: RequestArrays) -> None:
    with pytest.raises(ReplayError, match=r"RPM 10 alone throttles more than 0\.1 %"):
        size_quota(traffic, LLAMA, rpm=10)


def test_bad_targets_are_named(traffic: RequestArrays) -> None:
    with pytest.raises(ReplayError, match="throttle_target must be in"):
        size_quota(traffic, LLAMA, throttle_target=1.5)
