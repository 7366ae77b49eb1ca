"""A quota's per-minute token quotas as the planner sees them: for one workload, what each takes
at admission and keeps at settlement, on either endpoint, with Reserved capacity in front.

The rule of each is the ledger's (``capacity.serving``, docs/architecture.md "Quota rules"); the
closed forms are ``capacity.serving.bucket_limits`` and ``required_bucket``:

- bedrock-runtime: ``tpm`` takes the reservation (input + cache read + cache write +
  max_tokens) and keeps the settlement (input + cache write + burndown × output);
- bedrock-mantle: ``input_tpm`` takes input + cache write + max_tokens and keeps input + cache
  write (cached reads never count); ``output_tpm`` takes nothing and keeps the output tokens;
- Reserved capacity (Reserved-tier workloads only): an input bucket counting input + cache
  write, an output bucket reserving max_tokens and keeping the output. Its sustained rate adds
  to every on-demand constraint (overflow goes there), its in-flight ramp to the in-flight ones.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from capacity.planning._inputs import Quota, Workload
from capacity.planning._loadcurve import LoadCurve, fmt
from capacity.serving import (
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    Burndown,
    Endpoint,
    QuotaRule,
    TpmLimits,
    bucket_limits,
    load_model_table,
    ramp_inflight,
    required_bucket,
    reserved_rate,
)

__all__ = [
    "Reserved",
    "ReservedSize",
    "TokenQuota",
    "endpoint_notes",
    "on_demand_needs",
    "ramp_cap",
    "required_reserved",
    "reserved_for",
    "reserved_from",
    "token_quotas",
    "token_shapes",
]

QUOTA_WORDS = {
    "tpm": "tokens per minute",
    "input_tpm": "input tokens per minute",
    "output_tpm": "output tokens per minute",
}


@dataclass(frozen=True)
class TokenQuota:
    """One per-minute token quota for one workload: ``key`` (tpm, input_tpm, output_tpm), its
    ``capacity`` (None when asked for, not given), what a request ``taken`` at admission and
    ``kept`` at settlement, and their arithmetic."""

    key: str
    capacity: float | None
    taken: float
    kept: float
    taken_formula: str
    kept_formula: str

    @property
    def words(self) -> tuple[str, str]:
        """How the formulas name what is taken and what is kept."""
        return {"tpm": ("reservation", "settlement"), "input_tpm": ("input + max_tokens", "input"),
                "output_tpm": ("nothing", "output")}[self.key]  # fmt: skip

    @property
    def name(self) -> str:
        """``TPM``, ``input TPM`` or ``output TPM``."""
        return {"tpm": "TPM", "input_tpm": "input TPM", "output_tpm": "output TPM"}[self.key]

    def limits(self, rule: QuotaRule, latency_s: float) -> TpmLimits:
        """The closed-form limits of this quota at ``latency_s``."""
        assert self.capacity is not None
        taken, kept = self.words
        return bucket_limits(self.capacity, self.taken, self.kept, rule, latency_s,
                             name=self.name, taken_word=taken, kept_word=kept)  # fmt: skip

    def ramp(self, latency_s: float) -> float:
        """Requests in flight a step up from a full bucket allows (``math.inf``: no limit)."""
        assert self.capacity is not None
        return ramp_inflight(self.capacity, self.taken, self.kept, latency_s)


def token_quotas(quota: Quota, w: Workload, burndown: float) -> list[TokenQuota]:
    """The on-demand token quotas of ``quota`` for ``w`` (module docstring)."""
    return [
        dataclasses.replace(tq, capacity=getattr(quota, tq.key))
        for tq in token_shapes(quota.endpoint, w, burndown)
    ]


def token_shapes(endpoint: Endpoint, w: Workload, burndown: float) -> list[TokenQuota]:
    """The on-demand token quotas of ``endpoint`` for ``w``, without capacities."""
    if endpoint == "runtime":
        return [
            TokenQuota(
                "tpm", None, w.reservation_tokens, w.settlement_tokens(burndown),
                f"input + cache_read + cache_write + max_tokens = {fmt(w.input_tokens)} + "
                f"{fmt(w.cache_read_tokens)} + {fmt(w.cache_write_tokens)} + "
                f"{fmt(w.max_tokens)} = {fmt(w.reservation_tokens)} tokens",
                f"input + cache_write + burndown × output = {fmt(w.input_tokens)} + "
                f"{fmt(w.cache_write_tokens)} + {fmt(burndown)} × {fmt(w.output_tokens)} = "
                f"{fmt(w.settlement_tokens(burndown))} tokens",
            )
        ]  # fmt: skip
    return [
        TokenQuota(
            "input_tpm", None, w.input_check_tokens, w.input_kept_tokens,
            f"input + cache_write + max_tokens = {fmt(w.input_tokens)} + "
            f"{fmt(w.cache_write_tokens)} + {fmt(w.max_tokens)} = {fmt(w.input_check_tokens)} "
            "tokens (cached reads do not count)",
            f"input + cache_write = {fmt(w.input_kept_tokens)} tokens",
        ),
        TokenQuota(
            "output_tpm", None, 0.0, w.output_tokens, "nothing",
            f"output = {fmt(w.output_tokens)} tokens (no burndown on bedrock-mantle)",
        ),
    ]  # fmt: skip


@dataclass(frozen=True)
class Reserved:
    """What Reserved capacity carries for a Reserved-tier workload (``_ledger.py``'s table:
    input + cache write against its input TPM; max_tokens reserved and the output kept against
    its output TPM): its sustained rate, which bucket binds, and its in-flight ramp."""

    input_tpm: float
    output_tpm: float
    input_tokens: float
    max_tokens: float
    output_tokens: float
    rule: QuotaRule

    def limits(self, latency_s: float) -> tuple[TpmLimits, TpmLimits]:
        """The input and output buckets' limits at ``latency_s``."""
        return reserved_rate(self.input_tpm, self.output_tpm, self.input_tokens, self.max_tokens,
                             self.output_tokens, self.rule, latency_s)  # fmt: skip

    def rate_per_min(self, latency_s: float) -> float:
        """The most requests a minute Reserved capacity carries from the start of a busy period
        on: the smaller of its buckets' sustained rates and, under rule "bucket", what its
        output capacity holds in flight per latency (``60 × ramp / R``). Reserved capacity that
        overflows runs dry: it then admits as its refill allows until refunds return, a latency
        later, and reaches its sustained rate only after several latencies."""
        sustained = min(lim.rate_per_min for lim in self.limits(latency_s))
        ramp = self.ramp(latency_s)
        if math.isinf(ramp) or latency_s <= 0:
            return sustained
        return min(sustained, 60.0 * ramp / latency_s)

    def binding(self, latency_s: float) -> str:
        """What caps Reserved capacity's rate: ``"input"``, ``"output"`` or ``"in flight"``."""
        i, o = self.limits(latency_s)
        rate = self.rate_per_min(latency_s)
        if rate < min(i.rate_per_min, o.rate_per_min):
            return "in flight"
        return "input" if i.rate_per_min <= o.rate_per_min else "output"

    def ramp(self, latency_s: float) -> float:
        """Requests in flight Reserved capacity holds in a step up (rule "bucket"): what its
        output capacity, max_tokens each, holds."""
        if self.rule == "window":
            return math.inf
        return ramp_inflight(self.output_tpm, self.max_tokens, self.output_tokens, latency_s)

    def inflight(self, latency_s: float) -> float:
        """Requests in flight Reserved capacity takes off the on-demand quota: what it carries
        at its rate for a latency, at most what its output capacity holds (``ramp``)."""
        return min(self.ramp(latency_s), self.rate_per_min(latency_s) * latency_s / 60.0)

    def formula(self, latency_s: float) -> str:
        """How ``rate_per_min`` was computed."""
        i, o = self.limits(latency_s)
        parts = [i.formulas["rate_per_min"], o.formulas["rate_per_min"]]
        ramp = self.ramp(latency_s)
        if math.isfinite(ramp) and latency_s > 0:
            parts.append(
                f"60 × in flight / R = 60 × {fmt(ramp)} / {fmt(latency_s)} = "
                f"{fmt(60 * ramp / latency_s)} req/min (its output capacity, max_tokens per "
                "request, until refunds return)"
            )
        return f"Reserved capacity: min({'; '.join(parts)}) = {fmt(self.rate_per_min(latency_s))}"


def reserved_for(quota: Quota, w: Workload) -> Reserved | None:
    """Reserved capacity as it serves ``w``: None unless ``quota`` has some and ``w`` asks for
    the Reserved tier (other tiers never use it)."""
    return reserved_from(quota.reserved_input_tpm, quota.reserved_output_tpm, w, quota.rule)


def reserved_from(
    input_tpm: float | None, output_tpm: float | None, w: Workload, rule: QuotaRule
) -> Reserved | None:
    """Reserved capacity of ``input_tpm`` and ``output_tpm`` as it serves ``w`` (None without
    it, or when ``w`` is not of the Reserved tier)."""
    if input_tpm is None or output_tpm is None or w.service_tier != "reserved":
        return None
    return Reserved(input_tpm, output_tpm, w.input_kept_tokens, w.max_tokens, w.output_tokens, rule)


@dataclass(frozen=True)
class ReservedSize:
    """The Reserved capacity that carries a rate on its own: ``input_tpm`` and ``output_tpm``
    (at least AWS's minimums), what the rate alone needs (``input_need``, ``output_need``) and
    the arithmetic."""

    input_tpm: int
    output_tpm: int
    input_need: float
    output_need: float
    formulas: dict[str, str]


def required_reserved(
    w: Workload, peak_rate_per_min: float, latency_s: float, rule: QuotaRule = "bucket"
) -> ReservedSize:
    """Reserved capacity that carries ``peak_rate_per_min`` requests of ``w`` at ``latency_s``
    without overflow (no headroom; a fluid estimate — replay traffic for bursts): input + cache
    write per request on its input TPM, and on its output TPM the output kept and max_tokens held
    for a latency (``capacity.serving.required_bucket``), each at least AWS's minimum."""
    n = peak_rate_per_min * latency_s / 60.0
    taken = w.input_kept_tokens
    i_need, i_f = required_bucket(peak_rate_per_min, n, taken, taken, rule, latency_s,
                                  name="Reserved input TPM")  # fmt: skip
    o_need, o_f = required_bucket(peak_rate_per_min, n, w.max_tokens, w.output_tokens, rule,
                                  latency_s, name="Reserved output TPM")  # fmt: skip
    i_tpm = max(RESERVED_MIN_INPUT_TPM, math.ceil(i_need))
    o_tpm = max(RESERVED_MIN_OUTPUT_TPM, math.ceil(o_need))
    return ReservedSize(i_tpm, o_tpm, i_need, o_need, {
        "input_tpm": f"max({RESERVED_MIN_INPUT_TPM:,}, {i_f}) = {i_tpm:,}",
        "output_tpm": f"max({RESERVED_MIN_OUTPUT_TPM:,}, {o_f}) = {o_tpm:,}",
    })  # fmt: skip


PRIORITY_NOTE = (
    "service tier 'priority': served ahead of Standard and Flex for a price premium (AWS: 'up "
    "to 25% better output tokens per second' for most models); it shares the on-demand quota, "
    "so the quota figures hold, but latency is predicted from the model as measured — measure "
    "Priority requests to plan on their latency"
)
FLEX_NOTE = (
    "service tier 'flex': a discount for lower priority 'during periods of high demand' (AWS); "
    "it shares the on-demand quota, so the quota figures hold, but latency under load may be "
    "worse than predicted (AWS publishes no figure)"
)


def endpoint_notes(quota: Quota, w: Workload, bd: Burndown) -> list[str]:
    """What the endpoint, the service tier and Reserved capacity change, in words."""
    notes = []
    if quota.endpoint == "runtime":
        notes.append(f"output burndown {fmt(bd.value)} ({bd.rule}; source: {bd.source})")
    else:
        notes.append(
            "bedrock-mantle: separate input and output TPM quotas, tracked apart from "
            "bedrock-runtime's; input + cache write + max_tokens is checked at admission (cached "
            "reads do not count), output tokens count as they are generated (no burndown), no "
            "RPM quota (quotas-mantle.html)"
        )
    if w.service_tier == "priority":
        notes.append(PRIORITY_NOTE)
    elif w.service_tier == "flex":
        notes.append(FLEX_NOTE)
    if quota.reserved and w.service_tier != "reserved":
        notes.append(
            f"Reserved capacity serves only requests with service_tier 'reserved'; this "
            f"workload's tier is '{w.service_tier}', so it is planned on the on-demand quota"
        )
    elif quota.reserved:
        notes.append(
            "Reserved capacity first, overflow to the on-demand quota (the Standard tier): the "
            "two rates add up; Reserved capacity counts input + cache write against its input "
            "TPM (AWS's sizing note) and is assumed to reserve max_tokens of its output TPM at "
            "admission (capacity guaranteed to a request must hold its output; AWS does not "
            "publish how it decides) — the overflow share is a fluid estimate, replay traffic "
            "for bursts"
        )
    elif w.service_tier == "reserved":
        notes.append(
            "service tier 'reserved' without Reserved capacity in the quota: planned on the "
            "on-demand quota (give reserved_input_tpm and reserved_output_tpm)"
        )
    if quota.model_id is not None:
        listed = load_model_table().service_tiers_for(quota.model_id)
        if w.service_tier not in listed:
            notes.append(
                f"the model table does not list {quota.model_id} for the '{w.service_tier}' "
                f"tier (listed: {', '.join(listed)})"
            )
    return notes


def ramp_cap(curve: LoadCurve, rule: QuotaRule, tq: TokenQuota, reserved: Reserved | None) -> float:
    """The in-flight count at which a step up from full buckets runs ``tq`` (and Reserved
    capacity before it) dry, solving N = ramp(R(N)) on the curve; ``math.inf`` when the rule or
    the workload puts no limit on it, or the endpoint saturates first
    (``capacity.serving.ramp_inflight``)."""
    if rule == "window" or tq.taken <= tq.kept:
        return math.inf

    def room(n: float) -> float:
        r = curve.latency_s(max(n, 1.0))
        return tq.ramp(r) + (0.0 if reserved is None else reserved.inflight(r)) - n

    if curve.model is None:
        return max(0.0, room(0.0))
    hi = min(curve.n_peak, curve.n_valid)
    if room(hi) >= 0:
        return math.inf  # the endpoint saturates before the bucket runs dry
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if room(mid) >= 0 else (lo, mid)
    return lo


def on_demand_needs(
    shapes: list[TokenQuota],
    reserved: Reserved | None,
    peak: float,
    n: float,
    r: float,
    rule: QuotaRule,
) -> dict[str, tuple[float, str]]:
    """Each on-demand quota's need (before headroom) for ``peak`` req/min with ``n`` in flight
    at latency ``r``: what Reserved capacity does not carry, by ``required_bucket``."""
    if reserved is not None:
        peak = max(0.0, peak - reserved.rate_per_min(r))
        n = max(0.0, n - reserved.inflight(r))
    return {
        tq.key: required_bucket(peak, n, tq.taken, tq.kept, rule, r, name=tq.name) for tq in shapes
    }
