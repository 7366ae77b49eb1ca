"""Bedrock's TPM rules in closed form: what the ledger (``_ledger.py``) sustains, derived once.

The planner asks these functions, the emulator enforces the ledger they are derived from, and a
simulation of the ledger checks them (``capacity.planning.verify_plan``); docs/architecture.md,
"Quota rules", states the derivation. Per request, ``reservation`` = input + cache + max_tokens
(taken at admission) and ``settlement`` = input + cache write + burndown × output (kept at the
end); ``excess`` = reservation − settlement is what comes back.

Rule "bucket" (the default): a bucket of capacity TPM refilled at TPM/60 per second.

- **Sustained rate.** Between admissions and refunds the bucket loses ``settlement`` per request
  and gains TPM/60 per second, so the busiest minute may carry at most TPM / settlement requests.
- **Reservations in flight (the ramp).** Excess comes back only when a request ends, R seconds
  after it was reserved. When the load steps from nothing to λ on a full bucket, the level after
  R seconds is TPM + (TPM/60)·R − N × reservation with N = λ·R in flight, and it must still hold
  one reservation: N ≤ (TPM·(1 + R/60) − reservation) / reservation. Afterwards refunds flow at
  the rate reservations are taken and only the sustained limit matters. No limit applies when
  nothing is refunded (settlement ≥ reservation). It binds for long requests with a generous
  ``max_tokens``.
- **Burst.** A full bucket admits at most TPM / reservation requests at the same instant
  (``reservation_slots``; AWS's "~1,333 concurrent requests at 2M TPM, 500 input, max_tokens
  1,000"). It limits simultaneous arrivals, not a steady rate.

Rule "window": every request's whole reservation counts against the minute that admitted it, so
the busiest minute carries at most TPM / reservation requests; nothing is refunded early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.serving._ledger import QuotaRule

__all__ = ["TpmLimits", "ramp_inflight", "required_tpm", "tpm_limits"]


@dataclass(frozen=True)
class TpmLimits:
    """What a TPM quota allows under one rule, for one request shape.

    ``rate_per_min``: the most requests the busiest minute may carry; ``inflight``: the most
    requests in flight (``math.inf`` when the rule puts no limit on them); ``burst``: the most
    simultaneous admissions from a full bucket. ``formulas`` say how each was computed.
    """

    rule: QuotaRule
    rate_per_min: float
    inflight: float
    burst: float
    formulas: dict[str, str]


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞"
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.4g}"


def ramp_inflight(tpm: float, reservation: float, settlement: float, latency_s: float) -> float:
    """The most requests in flight a step up from a full bucket allows at latency ``latency_s``
    (rule "bucket"; ``math.inf`` when nothing is refunded)."""
    if reservation - settlement <= 0:
        return math.inf
    return max(0.0, (tpm * (1 + latency_s / 60) - reservation) / reservation)


def tpm_limits(
    tpm: float, reservation: float, settlement: float, rule: QuotaRule, latency_s: float
) -> TpmLimits:
    """The sustained rate, in-flight (at ``latency_s``) and burst limits of ``tpm`` (see the
    module docstring)."""
    if not (tpm > 0 and reservation > 0 and settlement > 0):
        raise ValueError(
            f"tpm, reservation and settlement must be > 0; got {tpm}, {reservation}, {settlement}"
        )
    burst = tpm / reservation
    f = {
        "burst": f"TPM / reservation = {_fmt(tpm)} / {_fmt(reservation)} = {_fmt(burst)} "
        "simultaneous admissions from a full bucket",
    }
    if rule == "window":
        rate = tpm / reservation
        f["rate_per_min"] = (
            f"TPM / reservation = {_fmt(tpm)} / {_fmt(reservation)} = {_fmt(rate)} req/min "
            "(rule 'window': whole reservations count against their minute)"
        )
        f["inflight"] = "no in-flight limit under rule 'window' (nothing is refunded early)"
        return TpmLimits(rule, rate, math.inf, burst, f)
    rate = tpm / settlement
    f["rate_per_min"] = (
        f"TPM / settlement = {_fmt(tpm)} / {_fmt(settlement)} = {_fmt(rate)} req/min (rule "
        "'bucket': the refill TPM/60 per second pays each request's settled charge)"
    )
    inflight = ramp_inflight(tpm, reservation, settlement, latency_s)
    if math.isinf(inflight):
        f["inflight"] = "no in-flight limit: nothing is refunded (settlement ≥ reservation)"
    else:
        f["inflight"] = (
            f"(TPM × (1 + R/60) − reservation) / reservation = ({_fmt(tpm)} × (1 + "
            f"{_fmt(latency_s)}/60) − {_fmt(reservation)}) / {_fmt(reservation)} = "
            f"{_fmt(inflight)} requests in flight (a step up from a full bucket, R = "
            f"{_fmt(latency_s)} s)"
        )
    return TpmLimits(rule, rate, inflight, burst, f)


def required_tpm(
    peak_rate_per_min: float,
    inflight: float,
    reservation: float,
    settlement: float,
    rule: QuotaRule,
    latency_s: float,
) -> tuple[float, str]:
    """The smallest TPM whose ``tpm_limits`` allow ``peak_rate_per_min`` with ``inflight``
    requests running at ``latency_s`` (before headroom), and the arithmetic."""
    if rule == "window":
        need = reservation * peak_rate_per_min
        return need, (
            f"reservation × λ_peak = {_fmt(reservation)} × {_fmt(peak_rate_per_min)} = "
            f"{_fmt(need)} (rule 'window')"
        )
    sustained = settlement * peak_rate_per_min
    ramp = 0.0
    if reservation > settlement:
        ramp = (inflight + 1) * reservation / (1 + latency_s / 60)
    need = max(sustained, ramp)
    return need, (
        f"max(settlement × λ_peak, (N + 1) × reservation / (1 + R/60)) = max("
        f"{_fmt(settlement)} × {_fmt(peak_rate_per_min)}, ({_fmt(inflight)} + 1) × "
        f"{_fmt(reservation)} / (1 + {_fmt(latency_s)}/60)) = {_fmt(need)} (rule 'bucket')"
    )
