"""Sizing every option for a workload and a target: the planner asks (``capacity.answer`` and
``required_quota``, the same as ``llmcap plan``), Reserved capacity searched by replay for the
overflow target, model units from the given per-unit throughput, and each option's asks
replayed with Poisson arrivals at the target's busiest minute (docs/architecture.md, "What to
buy")."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from capacity.compare._demand import Demand, poisson_demand, reserved_for_overflow
from capacity.compare._given import GivenFigures
from capacity.compare._rows import Latency, Sized
from capacity.compare._table import BuyLine
from capacity.planning import (
    CapacityAnswer,
    LoadCurve,
    Objective,
    Quota,
    QuotaLine,
    QuotaRequest,
    Workload,
    answer,
    fmt,
    required_quota,
    required_reserved,
)
from capacity.prediction import Predictor
from capacity.serving import (
    QuotaLimits,
    QuotaRule,
    base_model_id,
    is_profile_id,
    load_model_table,
)

__all__ = [
    "BATCH_VIA",
    "PT_REPLAY_WHY",
    "RESERVED_VIA",
    "WorkloadSizing",
    "baseline_key",
    "buy_lines",
    "limits_of",
    "listed_endpoint",
    "listed_tier",
    "pt_sized",
    "size_workload",
]

PT_REPLAY_WHY = (
    "not replayed: how a model unit admits requests is not published; the units carry the "
    "busiest minute's tokens"
)
RESERVED_VIA = "your AWS account team (Reserved tier)"
PT_VIA = "Provisioned Throughput (console or CreateProvisionedModelThroughput)"


@dataclass(frozen=True)
class WorkloadSizing:
    """Every option sized for the workload: the standard answer (``llmcap plan``'s), the
    objective it is stated under, the demand replayed and the ``Sized`` option by key."""

    standard: CapacityAnswer
    objective: Objective
    demand: Demand
    sized: dict[str, Sized]


def buy_lines(asks: Sequence[QuotaLine], *, codes: bool = True) -> tuple[BuyLine, ...]:
    """Quota lines to request (``codes=False`` drops codes and names that do not apply)."""
    return tuple(
        BuyLine(a.kind, float(a.value), a.code if codes else None, a.name if codes else None)
        for a in asks
    )


def limits_of(
    lines: Sequence[BuyLine], rule: QuotaRule, reserved: tuple[int, int] | None = None
) -> QuotaLimits:
    """The quota the ledger enforces once ``lines`` are granted (with Reserved capacity)."""
    v = {line.kind: int(line.value) for line in lines}
    r_in, r_out = (None, None) if reserved is None else reserved
    if "input_tpm" in v:
        return QuotaLimits(
            rule=rule,
            endpoint="mantle",
            input_tpm=v["input_tpm"],
            output_tpm=v["output_tpm"],
            reserved_input_tpm=r_in,
            reserved_output_tpm=r_out,
        )
    return QuotaLimits(
        tpm=v.get("tpm"),
        rpm=v.get("rpm"),
        tpd=v.get("tpd"),
        rule=rule,
        reserved_input_tpm=r_in,
        reserved_output_tpm=r_out,
    )


def listed_tier(model_id: str, tier: str) -> tuple[bool | None, tuple[str, ...]]:
    """Whether the model table lists ``model_id`` for ``tier``, and a note when it does not."""
    info = load_model_table().model(model_id)
    if info is None:
        return None, (f"{model_id} is not in the model table: check its tiers on AWS's page",)
    if tier in info.service_tiers:
        return True, ()
    return False, (
        f"the model table does not list {model_id} for the '{tier}' tier (it lists "
        f"{', '.join(info.service_tiers)}; check service-tiers-inference.html)",
    )


def listed_endpoint(model_id: str, endpoint: str) -> tuple[bool | None, tuple[str, ...]]:
    """Whether the model table shows ``endpoint`` serving ``model_id``, and a note if not."""
    info = load_model_table().model(model_id)
    if info is None:
        return None, (f"{model_id} is not in the model table",)
    if endpoint in info.endpoints:
        return True, ()
    return False, (
        f"the model table's sources do not show bedrock-{endpoint} serving {model_id} "
        f"(they show {', '.join('bedrock-' + e for e in info.endpoints)})",
    )


def _latency(request: QuotaRequest, w: Workload, model: Predictor | None) -> Latency:
    """Latency at the target's busiest minute: the model's, else the workload's (said so)."""
    curve = LoadCurve(w, model)
    r = request.latency_s
    if model is None:
        why = (
            "the workload's latency (given; no performance model)"
            if w.latency_s is not None
            else f"no performance model: {curve.formula}, the seed blog's single-request speed"
        )
        return Latency(r, None, f"mean response {fmt(r)} s: {why}")
    point = curve.point(request.peak_inflight)
    assert point is not None
    words = (
        f"p95 TTFT {point.ttft_p95_s:.2f} s, mean response {fmt(r)} s at "
        f"{fmt(request.peak_inflight)} in flight, the target's busiest minute ({point.source})"
    )
    if request.extrapolation_factor is not None:
        words += f"; extrapolated ×{request.extrapolation_factor:.1f} beyond the measured range"
    return Latency(r, point.ttft_p95_s, words)


def pt_sized(
    need_in: float, need_out: float, given: GivenFigures, latency: Latency, sized_for: str
) -> Sized:
    """Provisioned Throughput for ``need_in`` input and ``need_out`` output tokens per minute:
    ceil(need / per-unit TPM) model units, the larger of the two (none without the per-unit
    figures); ``sized_for`` says what the needs carry (headroom, traffic)."""
    capacity = {"input_need_tpm": need_in, "output_need_tpm": need_out}
    ui, uo = given.pt_unit_input_tpm, given.pt_unit_output_tpm
    units: tuple[BuyLine, ...] = ()
    if ui is not None and uo is not None:
        n = max(1, math.ceil(need_in / ui), math.ceil(need_out / uo))
        capacity["model_units"] = float(n)
        units = (BuyLine("model_units", float(n), via=PT_VIA),)
    return Sized(
        units,
        None,
        latency,
        f"{PT_REPLAY_WHY} {sized_for}",
        capacity,
        (
            "inference profiles do not support Provisioned Throughput (prov-throughput.html):"
            " it serves one Region",
        ),
    )


def baseline_key(quota: Quota) -> str:
    """The Standard option of today's quota: its scope, or the global profile it names."""
    if (quota.model_id or "").startswith("global."):
        return "standard-global"
    return "standard-cross-region" if quota.scope == "cross-region" else "standard-in-region"


def _scope_quota(quota: Quota, key: str) -> Quota:
    base = base_model_id(quota.model_id or "")
    if key == "standard-in-region":
        return dataclasses.replace(quota, model_id=base, scope="on-demand")
    if key == "standard-global":
        return dataclasses.replace(quota, model_id=f"global.{base}", scope="cross-region")
    own = quota.model_id or base
    geo = own if is_profile_id(own) and not own.startswith("global.") else base
    return dataclasses.replace(quota, model_id=geo, scope="cross-region")


def size_workload(
    quota: Quota,
    workload: Workload,
    target_users: float,
    *,
    model: Predictor | None,
    goal: Objective | None,
    headroom: float,
    given: GivenFigures,
    minutes: float,
    seed: int,
) -> WorkloadSizing:
    """Every option of the comparison for ``workload`` at ``target_users`` (module
    docstring); ``quota`` is today's bedrock-runtime quota."""
    w = dataclasses.replace(workload, service_tier="default")
    std = answer(quota, w, model, goal, target_users, headroom=headroom)
    goal = std.objective
    req = std.request
    assert req is not None
    model_id, rule = quota.model_id or "", quota.rule
    demand = poisson_demand(
        base_model_id(model_id),
        w,
        req.peak_requests_per_min,
        req.latency_s,
        rule,
        minutes=minutes,
        seed=seed,
    )
    lat = _latency(req, w, model)
    sized: dict[str, Sized] = {}
    ask = _Ask(model, goal, headroom, target_users, baseline_key(quota) != "standard-global")

    for key in ("standard-in-region", "standard-cross-region", "standard-global"):
        lines = buy_lines(ask(_scope_quota(quota, key), w).asks, codes=key != "standard-global")
        notes: tuple[str, ...] = (
            ("a global profile has its own quota; its code is not in the model table",)
            if key == "standard-global"
            else ()
        )
        sized[key] = Sized(
            lines, demand.replay(limits_of(lines, rule)), lat, notes=notes, listed=True
        )
    for tier in ("priority", "flex"):
        tiered = dataclasses.replace(w, service_tier=tier)
        lines = buy_lines(ask(quota, tiered).asks, codes=ask.codes)
        listed, notes = listed_tier(model_id, tier)
        sized[tier] = Sized(
            lines, demand.replay(limits_of(lines, rule), tier), lat, notes=notes, listed=listed
        )
    mantle = required_quota(
        w,
        target_users,
        model,
        goal.slo,
        headroom,
        model_id=base_model_id(model_id),
        rule=rule,
        endpoint="mantle",
    )
    lines = buy_lines(mantle.lines)
    listed, notes = listed_endpoint(model_id, "mantle")
    notes += (
        "bedrock-mantle's quotas are separate from bedrock-runtime's, even for the same "
        "model (quotas.html)",
    )
    sized["mantle"] = Sized(
        lines, demand.replay(limits_of(lines, rule)), lat, notes=notes, listed=listed
    )
    reserved = _reserved(quota, w, req, demand, given, ask, lat)
    sized["reserved-1m"] = sized["reserved-3m"] = reserved
    h = req.headroom
    peak = req.peak_requests_per_min
    pt = pt_sized((1 + h) * peak * w.prompt_tokens, (1 + h) * peak * w.output_tokens, given,
                  lat, f"with {h:.0%} headroom")  # fmt: skip
    for term in ("none", "1m", "6m"):
        sized[f"pt-{term}"] = pt
    sized["batch"] = _batch(quota, w, given, ask, lat, minutes, seed)
    return WorkloadSizing(std, goal, demand, sized)


@dataclass(frozen=True)
class _Ask:
    """``capacity.answer`` with the comparison's model, objective, headroom and target."""

    model: Predictor | None
    goal: Objective
    headroom: float
    target_users: float
    codes: bool
    """Whether today's quota's codes apply (not for a global profile's quota)."""

    def __call__(self, q: Quota, wl: Workload, share: float = 1.0) -> CapacityAnswer:
        return answer(
            q, wl, self.model, self.goal, self.target_users * share, headroom=self.headroom
        )


def _reserved(
    quota: Quota,
    w: Workload,
    req: QuotaRequest,
    demand: Demand,
    given: GivenFigures,
    ask: _Ask,
    lat: Latency,
) -> Sized:
    """Reserved capacity with the smallest scale of ``required_reserved`` whose replay
    overflows at most the target, and the on-demand quota asked for the rest."""
    rule = quota.rule
    wr = dataclasses.replace(w, service_tier="reserved")
    shape = required_reserved(wr, req.peak_requests_per_min, req.latency_s, rule)

    r_in, r_out = reserved_for_overflow(demand, shape, rule, given.overflow_target)
    with_reserved = dataclasses.replace(quota, reserved_input_tpm=r_in, reserved_output_tpm=r_out)
    on_demand = buy_lines(ask(with_reserved, wr).asks, codes=ask.codes)
    lines = (
        BuyLine("reserved_input_tpm", r_in, via=RESERVED_VIA),
        BuyLine("reserved_output_tpm", r_out, via=RESERVED_VIA),
        *on_demand,
    )
    result = demand.replay(limits_of(on_demand, rule, (r_in, r_out)), "reserved")
    listed, notes = listed_tier(quota.model_id or "", "reserved")
    notes += (
        f"Reserved capacity sized by replay: the smallest multiple of {fmt(shape.input_need)} "
        f"input and {fmt(shape.output_need)} output TPM (required_reserved at the busiest "
        "minute) overflowing at most the target, at least AWS's minimums; the on-demand quota "
        "is asked for the rest",
    )
    return Sized(
        lines,
        result,
        lat,
        capacity={"reserved_input_tpm": float(r_in), "reserved_output_tpm": float(r_out)},
        notes=notes,
        listed=listed,
    )


BATCH_VIA = "batch inference jobs (CreateModelInvocationJob)"


def _batch(
    quota: Quota,
    w: Workload,
    given: GivenFigures,
    ask: _Ask,
    lat: Latency,
    minutes: float,
    seed: int,
) -> Sized:
    """The interactive share on demand (Standard), the deferrable share as batch jobs."""
    d = given.deferrable_share
    if d <= 0:
        return Sized((), None, lat, "no deferrable share given: nothing goes to batch")
    part = ask(quota, w, 1 - d)
    req = part.request
    assert req is not None
    demand = poisson_demand(
        base_model_id(quota.model_id or ""),
        w,
        req.peak_requests_per_min,
        req.latency_s,
        quota.rule,
        minutes=minutes,
        seed=seed,
    )
    on_demand = buy_lines(part.asks, codes=ask.codes)
    lines = (*on_demand, BuyLine("batch_share", d, via=BATCH_VIA))
    note = (
        f"the interactive share, {100 * (1 - d):g} % of the target's requests, is planned as "
        f"{fmt(ask.target_users * (1 - d))} users on demand; the rest runs as batch jobs"
    )
    return Sized(
        lines,
        demand.replay(limits_of(on_demand, quota.rule)),
        _latency(req, w, ask.model),
        notes=(note,),
    )
