"""Sizing every option for real traffic: each quota is the smallest whose replay of the
traffic's requests throttles at most the target share — bedrock-runtime's TPM by
``capacity.serving.size_quota`` (the same TPM as ``llmcap plan --from-trace``), bedrock-mantle's
input then output TPM, Reserved capacity for the overflow target and the on-demand TPM beside
it — by the same search (``smallest_passing``). No latency objective: the traffic's own
requests are replayed, each settling at its logged latency."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capacity.compare._demand import SEARCH_TOLERANCE, Demand, reserved_for_overflow
from capacity.compare._given import GivenFigures
from capacity.compare._rows import Latency, Sized
from capacity.compare._table import BuyLine
from capacity.compare._workload import (
    BATCH_VIA,
    RESERVED_VIA,
    listed_endpoint,
    listed_tier,
    pt_sized,
)
from capacity.planning import Quota, fmt, required_reserved
from capacity.serving import (
    QuotaInfo,
    QuotaLimits,
    QuotaSizing,
    ReplayResult,
    Scope,
    allowed_throttles,
    load_model_table,
    size_quota,
    smallest_passing,
)

__all__ = ["TrafficSizing", "deferred_mask", "size_traffic"]


@dataclass(frozen=True)
class TrafficSizing:
    """Every option sized for the traffic: the standard sizing (``size_quota``'s) and the
    ``Sized`` option by key."""

    standard: QuotaSizing
    sized: dict[str, Sized]


def deferred_mask(n: int, share: float, arrival_s: np.ndarray) -> np.ndarray:
    """Which of ``n`` requests are deferred to batch: ``share`` of them, spread evenly over the
    arrival order (request i of that order goes when floor((i + 1)·share) > floor(i·share))."""
    i = np.arange(n, dtype=np.float64)
    in_order = np.floor((i + 1) * share) > np.floor(i * share)
    out = np.zeros(n, dtype=bool)
    out[np.argsort(arrival_s, kind="stable")] = in_order
    return out


def _tpm_lines(model_id: str, scope: Scope | None, tpm: int, tpd: int | None) -> list[BuyLine]:
    """The TPM (and TPD) lines with the model table's codes for ``scope`` (None: no codes)."""
    table = load_model_table()
    known: dict[str, QuotaInfo] = (
        {q.kind: q for q in table.quotas_for(model_id, scope)} if scope else {}
    )
    out = []
    for kind, value in (("tpm", tpm), ("tpd", tpd)):
        if value is not None:
            q = known.get(kind)
            out.append(BuyLine(kind, float(value), q.code if q else None, q.name if q else None))
    return out


def _smallest(
    demand: Demand,
    make: Callable[[int], QuotaLimits],
    guess: float,
    throttle_target: float,
    tier: str = "default",
) -> tuple[int, ReplayResult]:
    """The smallest whole value whose limits' replay throttles at most the target."""
    allowed = allowed_throttles(len(demand.arrays), throttle_target)

    def passes(v: int) -> bool:
        return demand.replay(make(v), tier).throttled <= allowed  # type: ignore[arg-type]

    value = smallest_passing(passes, max(1, math.ceil(guess)), 0, SEARCH_TOLERANCE)
    return value, demand.replay(make(value), tier)  # type: ignore[arg-type]


def size_traffic(
    demand: Demand,
    quota: Quota | None,
    *,
    throttle_target: float,
    given: GivenFigures,
    latency: Latency,
    baseline: str,
) -> TrafficSizing:
    """Every option of the comparison for ``demand`` (module docstring); ``quota`` is today's
    bedrock-runtime quota when known (its RPM applies, its TPD makes TPD asked); ``baseline``
    is the Standard option of today's scope, on which the tiers, Reserved capacity and batch
    are asked."""
    model_id, rule = demand.model_id, demand.rule
    rpm = None if quota is None or quota.rpm is None else int(quota.rpm)
    std = size_quota(
        demand.arrays,
        model_id,
        rule=rule,
        throttle_target=throttle_target,
        rpm=rpm,
        max_tokens=demand.max_tokens,
        burndown=demand.burndown,
    )
    tpd = std.tpd if quota is not None and quota.tpd is not None else None
    sized: dict[str, Sized] = {}
    scopes: dict[str, Scope | None] = {
        "standard-in-region": "on-demand",
        "standard-cross-region": "cross-region",
        "standard-global": None,
    }
    scope = scopes[baseline]
    base_limits = QuotaLimits(tpm=std.tpm, rpm=rpm, tpd=tpd, rule=rule)
    base_result = demand.replay(base_limits)
    for key, key_scope in scopes.items():
        lines = tuple(_tpm_lines(model_id, key_scope, std.tpm, tpd))
        notes: tuple[str, ...] = (
            ("a global profile has its own quota; its code is not in the model table",)
            if key_scope is None
            else ()
        )
        sized[key] = Sized(lines, base_result, latency, notes=notes, listed=True)
    for tier in ("priority", "flex"):
        listed, notes = listed_tier(model_id, tier)
        sized[tier] = Sized(
            sized[baseline].lines,
            demand.replay(base_limits, tier),
            latency,
            notes=notes,
            listed=listed,
        )
    sized["mantle"] = _mantle(demand, throttle_target, latency)
    reserved = _reserved(demand, std, rpm, throttle_target, given, latency, scope)
    sized["reserved-1m"] = sized["reserved-3m"] = reserved
    _, prompt, output = demand.busiest_minute()
    pt = pt_sized(prompt, output, given, latency, "of the traffic (no headroom)")
    for term in ("none", "1m", "6m"):
        sized[f"pt-{term}"] = pt
    sized["batch"] = _batch(demand, rpm, throttle_target, given, latency, scope)
    return TrafficSizing(std, sized)


def _mantle(demand: Demand, throttle_target: float, latency: Latency) -> Sized:
    """bedrock-mantle's input TPM (output unlimited), then its output TPM with that input."""
    rule = demand.rule
    _, prompt, output = demand.busiest_minute()
    in_tpm, _ = _smallest(
        demand,
        lambda v: QuotaLimits(rule=rule, endpoint="mantle", input_tpm=v),
        prompt,
        throttle_target,
    )
    out_tpm, result = _smallest(
        demand,
        lambda v: QuotaLimits(rule=rule, endpoint="mantle", input_tpm=in_tpm, output_tpm=v),
        output,
        throttle_target,
    )
    known = {q.kind: q for q in load_model_table().mantle_quotas_for(demand.model_id)}
    lines = tuple(
        BuyLine(
            kind,
            float(v),
            known[kind].code if kind in known else None,
            known[kind].name if kind in known else None,
        )
        for kind, v in (("input_tpm", in_tpm), ("output_tpm", out_tpm))
    )
    listed, notes = listed_endpoint(demand.model_id, "mantle")
    notes += (
        "bedrock-mantle's quotas are separate from bedrock-runtime's, even for the same "
        "model (quotas.html); input TPM sized first (output unlimited), then output TPM",
    )
    return Sized(lines, result, latency, notes=notes, listed=listed)


def _reserved(
    demand: Demand,
    std: QuotaSizing,
    rpm: int | None,
    throttle_target: float,
    given: GivenFigures,
    latency: Latency,
    scope: Scope | None,
) -> Sized:
    """Reserved capacity for the overflow target (the shape of ``required_reserved`` on the
    traffic's mean request at its busiest minute), then the on-demand TPM for the overflow."""
    rule = demand.rule
    rate, _, _ = demand.busiest_minute()
    wr = dataclasses.replace(demand.measured_workload(), service_tier="reserved")
    shape = required_reserved(wr, rate, latency.latency_s or 0.0, rule)

    r_in, r_out = reserved_for_overflow(demand, shape, rule, given.overflow_target)
    tpm, result = _smallest(
        demand,
        lambda v: QuotaLimits(
            tpm=v, rpm=rpm, rule=rule, reserved_input_tpm=r_in, reserved_output_tpm=r_out
        ),
        std.tpm * given.overflow_target,
        throttle_target,
        "reserved",
    )
    lines = (
        BuyLine("reserved_input_tpm", r_in, via=RESERVED_VIA),
        BuyLine("reserved_output_tpm", r_out, via=RESERVED_VIA),
        *_tpm_lines(demand.model_id, scope, tpm, None),
    )
    listed, notes = listed_tier(demand.model_id, "reserved")
    notes += (
        f"Reserved capacity sized by replay: the smallest multiple of {fmt(shape.input_need)} "
        f"input and {fmt(shape.output_need)} output TPM (required_reserved on the mean request "
        "at the busiest minute) overflowing at most the target, at least AWS's minimums; the "
        "on-demand TPM is the smallest that then keeps throttles within the target",
    )
    return Sized(
        lines,
        result,
        latency,
        capacity={"reserved_input_tpm": float(r_in), "reserved_output_tpm": float(r_out)},
        notes=notes,
        listed=listed,
    )


def _batch(
    demand: Demand,
    rpm: int | None,
    throttle_target: float,
    given: GivenFigures,
    latency: Latency,
    scope: Scope | None,
) -> Sized:
    """The interactive requests sized on demand (``size_quota``), the deferred as batch."""
    d = given.deferrable_share
    if d <= 0:
        return Sized((), None, latency, "no deferrable share given: nothing goes to batch")
    keep = ~deferred_mask(len(demand.arrays), d, demand.arrays.arrival_s)
    part = size_quota(
        demand.arrays.take(keep),
        demand.model_id,
        rule=demand.rule,
        throttle_target=throttle_target,
        rpm=rpm,
        max_tokens=demand.max_tokens,
        burndown=demand.burndown,
    )
    lines = (
        *_tpm_lines(demand.model_id, scope, part.tpm, None),
        BuyLine("batch_share", d, via=BATCH_VIA),
    )
    result = demand.replay(QuotaLimits(tpm=part.tpm, rpm=rpm, rule=demand.rule), keep=keep)
    note = (
        f"the interactive {int(keep.sum()):,} requests (every request but an evenly spread "
        f"{100 * d:g} %) sized on demand; the rest runs as batch jobs"
    )
    return Sized(lines, result, latency, notes=(note,))
