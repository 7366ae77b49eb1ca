"""What to do when a target load cannot meet its SLO: each option with its computed effect."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from capacity.planning._inputs import Slo, Workload
from capacity.planning._loadcurve import LoadCurve, fmt
from capacity.planning._queueing import WaitStats, mgc_wait
from capacity.serving import QuotaRule, Scope, required_tpm

DEFAULT_CS2 = 0.3
"""Squared coefficient of variation of service time assumed for the concurrency-cap queue
(LLM requests with a steady output length: 0.1–0.5; docs/architecture.md, "Queueing")."""
TIGHT_MAX_TOKENS_FACTOR = 1.5
"""The "tighter max_tokens" option sizes max_tokens at this multiple of the expected output;
``recommend_max_tokens`` on measured outputs gives a better value."""


@dataclass(frozen=True)
class QuotaOption:
    """One remedy: a short ``name``, its ``effect`` in words and the ``figures`` behind it."""

    name: str
    effect: str
    figures: dict[str, float]


@dataclass(frozen=True)
class Shortfall:
    """The load that does not fit: average and busiest-minute rates (req/min), the busiest
    minute's in-flight count, the largest in-flight count that meets the SLO (at most the
    endpoint's N*, ``inflight_limit``) and the rate it carries (``rate_limit``, req/min), the TPM
    being asked, its headroom, the settlement charge per request and the ledger ``rule``."""

    requests_per_min: float
    peak_requests_per_min: float
    inflight: float
    inflight_limit: float
    rate_limit: float
    tpm: float
    headroom: float
    settlement_tokens: float
    rule: QuotaRule = "bucket"


def remedies(
    workload: Workload, curve: LoadCurve, slo: Slo | None, gap: Shortfall, scope: Scope
) -> tuple[QuotaOption, ...]:
    """Options when the busiest minute's rate exceeds ``gap.rate_limit``, each with its effect."""
    return (
        _tighter_max_tokens(workload, gap),
        _cross_region(gap, slo, scope),
        _prompt_caching(workload, curve, slo, gap),
        _provisioned(workload, gap),
        _concurrency_cap(curve, gap),
    )


def _tighter_max_tokens(w: Workload, gap: Shortfall) -> QuotaOption:
    tight = math.ceil(TIGHT_MAX_TOKENS_FACTOR * w.output_tokens)
    if tight >= w.max_tokens:
        effect = (
            f"max_tokens {fmt(w.max_tokens)} is already within {TIGHT_MAX_TOKENS_FACTOR:g}× the "
            "expected output: little admission capacity to gain"
        )
        return QuotaOption("tighter max_tokens", effect, {"max_tokens": float(w.max_tokens)})
    reservation = w.reservation_tokens - w.max_tokens + tight
    peak = gap.peak_requests_per_min
    latency_s = 60 * gap.inflight / peak if peak > 0 else 0.0  # Little's law: R = N / λ
    need, _ = required_tpm(
        peak, gap.inflight, reservation, gap.settlement_tokens, gap.rule, latency_s
    )
    new_tpm = math.ceil((1 + gap.headroom) * need)
    if new_tpm < gap.tpm:
        effect = (
            f"max_tokens {fmt(w.max_tokens)} → {fmt(tight)} shrinks each admission reservation, "
            f"so the TPM to request falls from {fmt(gap.tpm)} to about {fmt(new_tpm)}; latency "
            "of typical requests is unchanged (it only caps the longest completions)"
        )
    else:
        effect = (
            f"max_tokens {fmt(w.max_tokens)} → {fmt(tight)} shrinks each admission reservation "
            f"({fmt(w.reservation_tokens)} → {fmt(reservation)} tokens): the TPM to request is "
            "set by the settled charge and stays the same, but a full bucket admits "
            f"{fmt(w.reservation_tokens / reservation)}× more simultaneous requests"
        )
    figures = {"max_tokens": float(tight), "tpm": float(new_tpm), "tpm_saved": gap.tpm - new_tpm}
    return QuotaOption("tighter max_tokens", effect, figures)


def _cross_region(gap: Shortfall, slo: Slo | None, scope: Scope) -> QuotaOption:
    target = slo.describe() if slo is not None else "the endpoint's peak throughput"
    where = (
        "a global. profile spreads wider than the geo profile already in use"
        if scope == "cross-region"
        else "a geo or global profile (us., eu., apac., global.) has its own quota"
    )
    if gap.rate_limit <= 0:
        effect = (
            f"{where}; but {target} fails even with one request in flight: spreading won't help"
        )
        return QuotaOption("cross-region inference profile", effect, {})
    regions = math.ceil(gap.peak_requests_per_min / gap.rate_limit)
    effect = (
        f"{where}; it routes across Regions, and spread evenly over k Regions each carries "
        f"{fmt(gap.peak_requests_per_min)}/k req/min: k >= {regions} keeps each within {target} "
        f"({fmt(gap.rate_limit)} req/min; re-measure on the profile: the fitted curve is for one "
        "endpoint)"
    )
    return QuotaOption("cross-region inference profile", effect, {"regions": float(regions)})


def _prompt_caching(w: Workload, curve: LoadCurve, slo: Slo | None, gap: Shortfall) -> QuotaOption:
    cached = w.input_tokens / 2
    lighter = LoadCurve(dataclasses.replace(w, input_tokens=w.input_tokens - cached), curve.model)
    limit = min(lighter.n_peak, lighter.n_peak if slo is None else lighter.slo_limit(slo))
    rate = 60 * lighter.max_rate_per_s(limit)
    saved = (1 + gap.headroom) * gap.peak_requests_per_min * cached
    within = "its peak throughput" if slo is None else slo.describe()
    effect = (
        f"if half the prompt ({fmt(cached)} tokens) is a cached prefix and costs no prefill, the "
        f"most the endpoint carries within {within} moves from {fmt(gap.rate_limit)} to "
        f"{fmt(rate)} req/min (needed: {fmt(gap.peak_requests_per_min)}); cache reads are not "
        f"charged at settlement (about {fmt(saved)} TPM less) but still count in the admission "
        "reservation"
    )
    figures = {
        "inflight_limit": limit,
        "requests_per_min_limit": rate,
        "settlement_tpm_saved": saved,
    }
    return QuotaOption("prompt caching", effect, figures)


def _provisioned(w: Workload, gap: Shortfall) -> QuotaOption:
    prompt = w.input_tokens + w.cache_read_tokens + w.cache_write_tokens
    tin, tout = gap.peak_requests_per_min * prompt, gap.peak_requests_per_min * w.output_tokens
    effect = (
        f"dedicated model units: no shared-pool contention or TPM throttling; size them for "
        f"{fmt(tin)} input and {fmt(tout)} output tokens/min at the busiest minute (per-unit "
        "throughput comes from your AWS account team), then re-measure the SLO on them"
    )
    figures = {"input_tokens_per_min": tin, "output_tokens_per_min": tout}
    return QuotaOption("provisioned throughput", effect, figures)


def cap_wait(curve: LoadCurve, cap: int, rate_per_min: float) -> WaitStats | None:
    """Queueing before admission under a client-side cap of ``cap`` in flight at an arrival rate
    (M/G/c with service time R(cap), C_s² = ``DEFAULT_CS2``); None if the cap cannot carry it."""
    service_s = curve.latency_s(cap)
    if cap < 1 or rate_per_min / 60 * service_s >= cap:
        return None
    return mgc_wait(rate_per_min / 60, service_s, cap, cs2=DEFAULT_CS2)


def describe_wait(stats: WaitStats) -> str:
    """P(wait), mean, p95 and P(wait > 1 s) in words."""
    return (
        f"{stats.p_wait:.1%} of requests wait, mean wait {fmt(stats.mean_wait_s)} s, p95 wait "
        f"{fmt(stats.wait_quantile_s(0.95))} s, {stats.p_wait_longer_than(1.0):.2%} over 1 s"
    )


def _concurrency_cap(curve: LoadCurve, gap: Shortfall) -> QuotaOption:
    name = "client-side concurrency cap"
    cap = math.floor(gap.inflight_limit)
    if cap < 1:
        return QuotaOption(name, "no cap helps: the SLO fails at one request in flight", {})
    most = 60 * cap / curve.latency_s(cap)
    figures = {"cap": float(cap), "max_requests_per_min": most}
    stats = cap_wait(curve, cap, gap.requests_per_min)
    if stats is None:
        effect = (
            f"a cap of {cap} in flight keeps admitted requests within the SLO but serves at most "
            f"{fmt(most)} req/min (< {fmt(gap.requests_per_min)} on average): the queue would "
            "grow without bound; combine with another option"
        )
        return QuotaOption(name, effect, figures)
    backlog = gap.peak_requests_per_min - most
    effect = (
        f"cap in-flight requests at {cap}: admitted requests meet the SLO and TTFT grows by the "
        f"wait; at the average rate ({fmt(gap.requests_per_min)} req/min, M/G/c with C_s² = "
        f"{DEFAULT_CS2:g}) {describe_wait(stats)}; at the busiest minute arrivals exceed the "
        f"cap's {fmt(most)} req/min and about {fmt(backlog)} requests per busy minute queue until "
        "the load falls"
    )
    figures |= {
        "utilization": stats.utilization,
        "p_wait": stats.p_wait,
        "mean_wait_s": stats.mean_wait_s,
        "p95_wait_s": stats.wait_quantile_s(0.95),
        "p_wait_over_1s": stats.p_wait_longer_than(1.0),
        "peak_backlog_per_min": backlog,
    }
    return QuotaOption(name, effect, figures)
