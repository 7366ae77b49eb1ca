"""Bedrock's quota rules in closed form: what the ledger (``_ledger.py``) sustains, derived once.

The planner asks these functions, the emulator enforces the ledger they are derived from, and a
simulation of the ledger checks them (``capacity.planning.verify_plan``); docs/architecture.md,
"Quota rules", states the derivation. Every per-minute quota is a bucket of capacity C that a
request takes ``taken`` from at admission and keeps ``kept`` of at settlement (``_ledger.py``'s
table): on bedrock-runtime's TPM the *reservation* input + cache + max_tokens and the
*settlement* input + cache write + burndown × output; on bedrock-mantle's input TPM (and
Reserved input capacity) input + cache write + max_tokens and input + cache write; on an output
TPM nothing and the output tokens.

Rule "bucket" (the default): a bucket of capacity C refilled at C/60 per second.

- **Sustained rate.** Between admissions and settlements the bucket loses ``kept`` per request
  and gains C/60 per second, so the busiest minute may carry at most C / kept requests.
- **Reservations in flight (the ramp).** When ``taken > kept`` the excess comes back only when a
  request ends, R seconds after it was taken. When the load steps from nothing to λ on a full
  bucket, the level after R seconds is C + (C/60)·R − N × taken with N = λ·R in flight, and it
  must still hold one admission: N ≤ (C·(1 + R/60) − taken) / taken. Afterwards refunds flow at
  the rate admissions are taken and only the sustained limit matters. No limit applies when
  nothing is refunded (kept ≥ taken). It binds for long requests with a generous ``max_tokens``.
- **Burst.** A full bucket admits at most C / taken requests at the same instant
  (``reservation_slots``; AWS's "~1,333 concurrent requests at 2M TPM, 500 input, max_tokens
  1,000"). It limits simultaneous arrivals, not a steady rate; none when nothing is taken.

Rule "window": every request counts max(taken, kept) against a minute (what it took at
admission, plus what its settlement keeps beyond that), so the busiest minute carries at most
C / max(taken, kept) requests — never more than the bucket; nothing is refunded early.

**Reserved capacity** (``reserved_rate``): Reserved-tier requests go to Reserved capacity first
and overflow to the on-demand quota, so the two add up: the busiest minute carries Reserved
capacity's sustained rate (the smaller of its input and output buckets') plus what the on-demand
quota carries, and the requests in flight add the same way (Reserved output capacity holds
max_tokens per request in flight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.serving._limits import QuotaRule

__all__ = [
    "TpmLimits",
    "bucket_limits",
    "ramp_inflight",
    "required_bucket",
    "required_tpm",
    "reserved_rate",
    "tpm_limits",
]


@dataclass(frozen=True)
class TpmLimits:
    """What one per-minute token quota allows under one rule, for one request shape.

    ``rate_per_min``: the most requests the busiest minute may carry; ``inflight``: the most
    requests in flight (``math.inf`` when the rule puts no limit on them); ``burst``: the most
    simultaneous admissions from a full bucket (``math.inf`` when a request takes nothing at
    admission). ``formulas`` say how each was computed.
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


def bucket_limits(
    capacity: float,
    taken: float,
    kept: float,
    rule: QuotaRule,
    latency_s: float,
    *,
    name: str = "TPM",
    taken_word: str = "reservation",
    kept_word: str = "settlement",
) -> TpmLimits:
    """The sustained rate, in-flight (at ``latency_s``) and burst limits of a per-minute quota of
    ``capacity`` that each request takes ``taken`` from and keeps ``kept`` of (module docstring).
    ``name``, ``taken_word`` and ``kept_word`` name them in the formulas."""
    if not (capacity > 0 and taken >= 0 and kept > 0):
        raise ValueError(
            f"capacity and kept must be > 0 and taken >= 0; got {capacity}, {kept}, {taken}"
        )
    c, t, k = _fmt(capacity), _fmt(taken), _fmt(kept)
    burst = capacity / taken if taken > 0 else math.inf
    f = {
        "burst": f"{name} / {taken_word} = {c} / {t} = {_fmt(burst)} simultaneous admissions "
        "from a full bucket"
        if taken > 0
        else f"no burst limit: {name} takes nothing at admission",
    }
    if rule == "window":
        per = max(taken, kept)
        rate = capacity / per
        f["rate_per_min"] = (
            f"{name} / max({taken_word}, {kept_word}) = {c} / max({t}, {k}) = {_fmt(rate)} "
            "req/min (rule 'window': each request counts the most it takes or keeps)"
        )
        f["inflight"] = "no in-flight limit under rule 'window' (nothing is refunded early)"
        return TpmLimits(rule, rate, math.inf, burst, f)
    rate = capacity / kept
    f["rate_per_min"] = (
        f"{name} / {kept_word} = {c} / {k} = {_fmt(rate)} req/min (rule 'bucket': the refill "
        f"{name}/60 per second pays each request's {kept_word})"
    )
    inflight = ramp_inflight(capacity, taken, kept, latency_s)
    if math.isinf(inflight):
        f["inflight"] = f"no in-flight limit: nothing is refunded ({kept_word} ≥ {taken_word})"
    else:
        f["inflight"] = (
            f"({name} × (1 + R/60) − {taken_word}) / {taken_word} = ({c} × (1 + "
            f"{_fmt(latency_s)}/60) − {t}) / {t} = {_fmt(inflight)} requests in flight (a step "
            f"up from a full bucket, R = {_fmt(latency_s)} s)"
        )
    return TpmLimits(rule, rate, inflight, burst, f)


def tpm_limits(
    tpm: float, reservation: float, settlement: float, rule: QuotaRule, latency_s: float
) -> TpmLimits:
    """bedrock-runtime's TPM: `bucket_limits` with the reservation taken and the settlement
    kept."""
    if not (tpm > 0 and reservation > 0 and settlement > 0):
        raise ValueError(
            f"tpm, reservation and settlement must be > 0; got {tpm}, {reservation}, {settlement}"
        )
    return bucket_limits(tpm, reservation, settlement, rule, latency_s)


def required_bucket(
    peak_rate_per_min: float,
    inflight: float,
    taken: float,
    kept: float,
    rule: QuotaRule,
    latency_s: float,
    *,
    name: str = "TPM",
) -> tuple[float, str]:
    """The smallest capacity whose `bucket_limits` allow ``peak_rate_per_min`` with
    ``inflight`` requests running at ``latency_s`` (before headroom), and the arithmetic."""
    if rule == "window":
        per = max(taken, kept)
        need = per * peak_rate_per_min
        return need, (
            f"max(taken, kept) × λ_peak = {_fmt(per)} × {_fmt(peak_rate_per_min)} = "
            f"{_fmt(need)} {name} (rule 'window')"
        )
    sustained = kept * peak_rate_per_min
    ramp = 0.0
    if taken > kept:
        ramp = (inflight + 1) * taken / (1 + latency_s / 60)
    need = max(sustained, ramp)
    if taken <= kept:
        return need, (
            f"kept × λ_peak = {_fmt(kept)} × {_fmt(peak_rate_per_min)} = {_fmt(need)} {name} "
            "(rule 'bucket')"
        )
    return need, (
        f"max(kept × λ_peak, (N + 1) × taken / (1 + R/60)) = max({_fmt(kept)} × "
        f"{_fmt(peak_rate_per_min)}, ({_fmt(inflight)} + 1) × {_fmt(taken)} / (1 + "
        f"{_fmt(latency_s)}/60)) = {_fmt(need)} {name} (rule 'bucket')"
    )


def required_tpm(
    peak_rate_per_min: float,
    inflight: float,
    reservation: float,
    settlement: float,
    rule: QuotaRule,
    latency_s: float,
) -> tuple[float, str]:
    """bedrock-runtime's TPM for ``peak_rate_per_min``: `required_bucket` with the reservation
    taken and the settlement kept."""
    need, formula = required_bucket(
        peak_rate_per_min, inflight, reservation, settlement, rule, latency_s
    )
    return need, formula.replace("taken", "reservation").replace("kept", "settlement")


def reserved_rate(
    input_tpm: float,
    output_tpm: float,
    input_tokens: float,
    max_tokens: float,
    output_tokens: float,
    rule: QuotaRule,
    latency_s: float,
) -> tuple[TpmLimits, TpmLimits]:
    """Reserved capacity's two buckets (``_ledger.py``'s table): input takes and keeps
    ``input_tokens`` (input + cache write); output takes ``max_tokens`` at admission and keeps
    ``output_tokens``. Their `bucket_limits`: what Reserved capacity sustains is the smaller
    rate; what it holds in flight, the output bucket's ramp."""
    return (
        bucket_limits(input_tpm, input_tokens, input_tokens, rule, latency_s,
                      name="Reserved input TPM", taken_word="input", kept_word="input"),
        bucket_limits(output_tpm, max_tokens, output_tokens, rule, latency_s,
                      name="Reserved output TPM", taken_word="max_tokens", kept_word="output"),
    )  # fmt: skip
