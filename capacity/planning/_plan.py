"""Quota → users: how many users a quota supports, which limit binds, and the arithmetic.

Each constraint caps the busiest minute's request rate; users follow from Little's law,
U = λ·(R + Z) with think time Z (or U = λ / requests_per_user_per_min). Per-minute limits must
hold in the busiest minute, so they allow an average rate of limit / peak_to_average. The TPM
limits come from the quota ledger's own rule (``capacity.serving.tpm_limits``; the emulator
enforces the same ledger), so plan and emulator cannot disagree:

- ``tpm`` — the sustained rate: under rule "bucket" the refill pays each request's settled
  charge, λ_peak ≤ TPM / settlement; under rule "window" each request counts the larger of its
  reservation and its settlement, λ_peak ≤ TPM / max(reservation, settlement).
- bedrock-mantle's ``input_tpm`` (input + cache write + max_tokens taken, input + cache write
  kept), ``input_tpm_inflight`` (its ramp) and ``output_tpm`` (λ_peak ≤ output TPM / output),
  in place of ``tpm`` and ``tpm_inflight``.
- Reserved capacity (Reserved-tier workloads): its sustained rate adds to every quota
  constraint and its ramp to the in-flight one (``capacity/planning/_quotas.py``).
- ``tpm_inflight`` — the ramp: when the load steps up on a full bucket, reservations are taken
  for R seconds before the first refund, so N_peak × reservation ≤ TPM × (1 + R/60) −
  reservation (rule "bucket", only when something is refunded); λ_peak ≤ N / R(N) at that N.
- ``rpm`` — λ_peak ≤ RPM, only where an RPM quota is given (Bedrock no longer enforces RPM on
  bedrock-runtime for many models). ``tpd`` — the daily total over the active hours (no peak
  factor): λ ≤ TPD / (settlement × 60 × active hours).
- ``slo`` (with a model) — the largest in-flight N that meets the SLO, or without an SLO the
  endpoint's peak throughput N*; λ_peak ≤ N / R(N).

``reservation_slots`` (TPM / reservation) is reported as the burst limit: how many requests a full
bucket admits at the same instant. ``verify=True`` replays the plan through the ledger in
virtual time (``verify_plan``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capacity.planning._inputs import PlanInputError, Quota, Slo, Workload
from capacity.planning._loadcurve import (
    MAX_CONCURRENCY,
    LoadCurve,
    fmt,
    inflight_for_rate,
    users_for_rate,
)
from capacity.planning._notes import plan_notes
from capacity.planning._quotas import (
    Reserved,
    TokenQuota,
    ramp_cap,
    reserved_for,
    token_quotas,
)
from capacity.planning._verify import PlanVerification, verify_plan
from capacity.prediction import Predictor
from capacity.serving import Burndown, TpmLimits, resolve_burndown

CONSTRAINTS = (
    "tpm", "tpm_inflight", "input_tpm", "input_tpm_inflight", "output_tpm", "rpm", "tpd", "slo"
)  # fmt: skip
"""Constraint keys, in tie-breaking order."""

CONSTRAINT_WORDS: dict[str, str] = {
    "tpm": "tokens per minute",
    "tpm_inflight": "tokens held by requests in flight",
    "input_tpm": "input tokens per minute",
    "input_tpm_inflight": "input tokens held by requests in flight",
    "output_tpm": "output tokens per minute",
    "rpm": "requests per minute",
    "tpd": "tokens per day",
    "slo": "the latency objective",
}
"""Each constraint in plain words, for answers people read."""


@dataclass(frozen=True)
class CapacityPlan:
    """What a quota supports for a workload.

    Rates are requests per minute averaged over the active hours; in-flight counts are at the
    busiest minute (average × peak_to_average); ``users`` is fractional (floor it to promise).
    The ``*_by_constraint`` dicts are keyed by ``CONSTRAINTS``; a constraint that does not apply
    is absent. ``headroom_by_constraint[c]`` is the fraction of constraint c left unused at the
    supported load (0 for the binding one). Predicted ``ttft_p95_s``, ``ttlt_p95_s`` (computed
    as ``ttlt_p95_method`` says), ``tps_p50`` and ``tps_p5`` are at the busiest minute's
    in-flight count and None without a model. ``measured_max_inflight`` is the most requests in
    flight the model's evidence covered and ``extrapolation_factor`` the operating point's
    multiple of it (None inside the measured range or without a model). ``formulas`` maps each
    field to the arithmetic that produced it; ``verification`` holds the virtual-time replay
    (``verify=True``).
    """

    quota: Quota
    workload: Workload
    slo: Slo | None
    users: float
    binding: str
    requests_per_min: float
    peak_requests_per_min: float
    inflight: float
    latency_s: float
    ttft_p95_s: float | None
    ttlt_p95_s: float | None
    ttlt_p95_method: str | None
    tps_p50: float | None
    tps_p5: float | None
    requests_per_min_by_constraint: dict[str, float]
    max_inflight_by_constraint: dict[str, float]
    users_by_constraint: dict[str, float]
    headroom_by_constraint: dict[str, float]
    reservation_tokens: float
    settlement_tokens: float
    reservation_slots: float
    tpm_inflight_limit: float
    quota_rule: str
    burndown: float
    burndown_source: str
    latency_source: str
    measured_max_inflight: float | None
    extrapolation_factor: float | None
    formulas: dict[str, str]
    notes: tuple[str, ...]
    verification: PlanVerification | None = None
    endpoint: str = "runtime"
    service_tier: str = "default"
    reserved_requests_per_min: float | None = None
    """What Reserved capacity sustains for this workload (None: it does not serve it)."""
    overflow_share: float | None = None
    """The share of the busiest minute's requests beyond Reserved capacity, served by the
    on-demand quota (a fluid estimate: 1 − Reserved rate / λ_peak; bursts overflow more)."""

    @property
    def users_whole(self) -> int:
        """Whole users supported (floor, tolerant of rounding noise)."""
        return math.floor(self.users + 1e-9)

    @property
    def binding_words(self) -> str:
        """The binding constraint in plain words."""
        if self.binding == "slo" and self.slo is None:
            return "the endpoint's peak throughput"
        return CONSTRAINT_WORDS[self.binding]

    def answer(self) -> str:
        """The plan in one sentence of users, requests in flight, seconds and tokens."""
        parts = [
            f"{self.users_whole:,} users ({fmt(self.peak_requests_per_min)} requests/min at the "
            f"busiest minute, {fmt(self.inflight)} in flight), limited by {self.binding_words}"
        ]
        if self.ttft_p95_s is not None:
            parts.append(f"p95 time to first token {self.ttft_p95_s:.2f} s")
        if self.extrapolation_factor is not None:
            parts.append(
                f"extrapolated ×{self.extrapolation_factor:.1f} beyond the "
                f"{fmt(self.measured_max_inflight or 0)} in flight measured"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (inputs included)."""
        out = dataclasses.asdict(self)
        out["users_whole"] = self.users_whole
        out["notes"] = list(self.notes)
        out["answer"] = self.answer()
        for key in ("tpm_inflight_limit", "reservation_slots"):
            if math.isinf(out[key]):
                out[key] = None  # JSON has no infinity: null = no limit
        out["max_inflight_by_constraint"] = {
            k: (None if math.isinf(v) else v) for k, v in out["max_inflight_by_constraint"].items()
        }
        return out


def plan_capacity(
    quota: Quota,
    workload: Workload,
    model: Predictor | None = None,
    slo: Slo | None = None,
    *,
    verify: bool = False,
    verify_minutes: float = 60.0,
    seed: int = 0,
) -> CapacityPlan:
    """Users, rates and in-flight concurrency that ``quota`` supports for ``workload``.

    ``model`` (a fitted ``CapacityModel``, a calibrated twin, or any ``Predictor``) adds the
    latency/SLO constraint and predicted latencies; ``slo`` needs a model. ``verify=True``
    replays the plan through the quota ledger in virtual time for ``verify_minutes``
    (``verify_plan``) and attaches the result.
    """
    _check_types(quota, workload, model, slo)
    if slo is not None and model is None:
        raise PlanInputError("slo needs a fitted model (model=...): latency cannot be predicted")
    bd = resolve_burndown(workload.burndown, quota.model_id)
    curve = LoadCurve(workload, model)
    w = workload
    reserved = reserved_for(quota, w)
    plan = _plan(quota, w, model, slo, curve, bd, reserved, curve.latency_s(1.0))
    if reserved is not None:  # Reserved capacity's rate at the plan's own latency
        plan = _plan(quota, w, model, slo, curve, bd, reserved, plan.latency_s)
        peak, r_res = plan.peak_requests_per_min, reserved.rate_per_min(plan.latency_s)
        share = max(0.0, 1.0 - r_res / peak) if peak > 0 else 0.0
        plan = dataclasses.replace(plan, reserved_requests_per_min=r_res, overflow_share=share)
    if verify:
        plan = dataclasses.replace(
            plan, verification=verify_plan(plan, model, minutes=verify_minutes, seed=seed)
        )
    return plan


def _plan(
    quota: Quota,
    w: Workload,
    model: Predictor | None,
    slo: Slo | None,
    curve: LoadCurve,
    bd: Burndown,
    reserved: Reserved | None,
    r_reserved: float,
) -> CapacityPlan:
    """The plan, with Reserved capacity's rate taken at latency ``r_reserved``."""
    par, hours = w.peak_to_average, w.active_hours_per_day
    quotas = token_quotas(quota, w, bd.value)
    r_res = 0.0 if reserved is None else reserved.rate_per_min(r_reserved)
    plus = "" if reserved is None else f" + {reserved.formula(r_reserved)}"
    f: dict[str, str] = {"latency_s": curve.formula}
    avg: dict[str, float] = {}
    first: tuple[TokenQuota, TpmLimits] | None = None
    for tq in quotas:
        n_ramp = ramp_cap(curve, quota.rule, tq, reserved)
        r_ramp = curve.latency_s(max(n_ramp, 1.0) if math.isfinite(n_ramp) else 1.0)
        lim = tq.limits(quota.rule, r_ramp)
        first = first or (tq, lim)
        avg[tq.key] = (lim.rate_per_min + r_res) / par
        f[f"requests_per_min_by_constraint.{tq.key}"] = (
            f"{lim.formulas['rate_per_min']}{plus}; / PAR {fmt(par)} = {fmt(avg[tq.key])} req/min"
        )
        if math.isfinite(n_ramp):
            key = f"{tq.key}_inflight"
            avg[key] = 60 * curve.max_rate_per_s(n_ramp) / par
            f[f"requests_per_min_by_constraint.{key}"] = (
                f"60 × N / R(N) / PAR at N = {fmt(n_ramp)} = 60 × {fmt(n_ramp)} / "
                f"{fmt(curve.latency_s(max(n_ramp, 1.0)))} / {fmt(par)} = {fmt(avg[key])} req/min"
            )
    assert first is not None
    tq0, lim = first
    f["reservation_tokens"] = tq0.taken_formula
    f["settlement_tokens"] = tq0.kept_formula
    f["reservation_slots"] = lim.formulas["burst"]
    f["tpm_inflight_limit"] = lim.formulas["inflight"]
    if quota.rpm is not None:
        avg["rpm"] = (quota.rpm + r_res) / par
        f["requests_per_min_by_constraint.rpm"] = (
            f"(RPM{' + Reserved' if reserved else ''}) / PAR = ({fmt(quota.rpm)} + {fmt(r_res)})"
            f" / {fmt(par)} = {fmt(avg['rpm'])} req/min"
            if reserved
            else f"RPM / PAR = {fmt(quota.rpm)} / {fmt(par)} = {fmt(avg['rpm'])} req/min"
        )
    if quota.tpd is not None:
        q_set = w.settlement_tokens(bd.value)
        avg["tpd"] = quota.tpd / (q_set * 60 * hours) + r_res
        f["requests_per_min_by_constraint.tpd"] = (
            f"TPD / (settlement × 60 × active hours) = {fmt(quota.tpd)} / ({fmt(q_set)} × 60 × "
            f"{fmt(hours)}) = {fmt(quota.tpd / (q_set * 60 * hours))} req/min (a daily total: "
            "no peak factor)" + (f" + Reserved {fmt(r_res)} req/min" if reserved else "")
        )
    notes: list[str] = []
    if model is not None:
        avg["slo"] = _slo_rate(curve, slo, par, f, notes)
    return _assemble(quota, w, slo, curve, avg, f, notes, bd, lim, tq0)


def _check_types(quota: object, workload: object, model: object, slo: object) -> None:
    """Wrong argument types get a message naming the constructor to use, not an AttributeError
    deep inside the arithmetic."""
    if not isinstance(quota, Quota):
        raise TypeError(
            f"quota must be a Quota(tpm=..., rpm=None, tpd=None, model_id=...), got "
            f"{type(quota).__name__} {quota!r}"
        )
    if not isinstance(workload, Workload):
        raise TypeError(
            "workload must be a Workload(input_tokens=..., output_tokens=..., max_tokens=..., "
            f"think_time_s=...), got {type(workload).__name__} {workload!r}"
        )
    if model is not None and not callable(getattr(model, "predict", None)):
        raise TypeError(
            "model must be a Predictor (CapacityModel.load('model.json'), a twin, or anything "
            f"with predict(concurrency, input_tokens)), got {type(model).__name__}"
        )
    if slo is not None and not isinstance(slo, Slo):
        raise TypeError(f"slo must be an Slo(ttft_p95_s=...) or None, got {type(slo).__name__}")


def _slo_rate(
    curve: LoadCurve, slo: Slo | None, par: float, f: dict[str, str], notes: list[str]
) -> float:
    n_lim = curve.n_peak if slo is None else curve.slo_limit(slo)
    n_use = min(n_lim, curve.n_peak)  # past N* more in flight only adds latency
    rate = 60 * curve.max_rate_per_s(n_use) / par
    if slo is None:
        why = f"N* = {fmt(n_use)}: the endpoint's peak throughput"
    else:
        why = f"N_slo = {fmt(n_lim)}: the most in flight meeting {slo.describe()}"
        if n_lim >= curve.n_valid and curve.n_valid >= MAX_CONCURRENCY:
            why = (
                f"{slo.describe()} holds at every in-flight count searched (up to "
                f"{fmt(MAX_CONCURRENCY)}, a search limit, not a measured capacity)"
            )
        elif n_lim > curve.n_peak:
            why += f", beyond the peak-throughput point N* = {fmt(curve.n_peak)}"
        if n_lim == 0:
            notes.append(f"the SLO ({slo.describe()}) fails even with one request in flight")
    r_use = curve.latency_s(max(n_use, 1.0))
    f["requests_per_min_by_constraint.slo"] = (
        f"60 × N / R(N) / PAR = 60 × {fmt(n_use)} / {fmt(r_use)} / {fmt(par)} = "
        f"{fmt(rate)} req/min ({why})"
    )
    return rate


def _assemble(
    quota: Quota,
    workload: Workload,
    slo: Slo | None,
    curve: LoadCurve,
    avg: Mapping[str, float],
    f: dict[str, str],
    notes: list[str],
    bd: Burndown,
    lim: TpmLimits,
    tq: TokenQuota,
) -> CapacityPlan:
    par = workload.peak_to_average
    keys = [c for c in CONSTRAINTS if c in avg]
    rates = {c: avg[c] for c in keys}
    users: dict[str, float] = {}
    inflight: dict[str, float] = {}
    saturated = []
    for c in keys:
        users[c], f[f"users_by_constraint.{c}"] = users_for_rate(rates[c], workload, curve)
        inflight[c], r, sat = inflight_for_rate(rates[c] * par, curve)
        if sat:
            saturated.append(c)
        f[f"max_inflight_by_constraint.{c}"] = (
            f"λ × PAR / 60 × R = {fmt(rates[c] * par)}/60 × {fmt(r)} = {fmt(inflight[c])} in flight"
            + (" (solving N = λ·R(N) on the model)" if curve.model is not None else "")
        )
    binding = min(keys, key=lambda c: (users[c], keys.index(c)))
    rate = rates[binding]
    headroom = {c: (1 - rate / rates[c]) if rates[c] > 0 else 0.0 for c in keys}
    for c in keys:
        f[f"headroom_by_constraint.{c}"] = (
            f"1 - λ / λ_{c} = 1 - {fmt(rate)} / {fmt(rates[c])} = {fmt(headroom[c])}"
        )
    n = inflight[binding]
    point = curve.point(n) if curve.model is not None else None
    f["users"] = f"min over constraints = users_by_constraint.{binding} = {fmt(users[binding])}"
    f["requests_per_min"] = f"requests_per_min_by_constraint.{binding} = {fmt(rate)} req/min"
    f["peak_requests_per_min"] = f"λ × PAR = {fmt(rate)} × {fmt(par)} = {fmt(rate * par)} req/min"
    f["inflight"] = f"max_inflight_by_constraint.{binding} = {fmt(n)}"
    if point is not None:
        at = f"from the model at N = {fmt(n)} in flight, {fmt(curve.prompt_tokens)} prompt tokens"
        f["ttft_p95_s"] = f"TTFT_p95(N) = {fmt(point.ttft_p95_s)} s, {at}"
        f["tps_p50"] = f"tps_p50(N) = {fmt(point.tps_p50)} tokens/s, {at}"
        f["tps_p5"] = f"tps_p5(N) = {fmt(point.tps_p5)} tokens/s, {at}"
        f["ttlt_p95_s"] = f"{point.ttlt_p95_method} = {fmt(point.ttlt_p95_s)} s, {at}"
    notes += plan_notes(quota, workload, curve, bd, saturated, lim, point)
    return CapacityPlan(
        quota=quota,
        workload=workload,
        slo=slo,
        users=users[binding],
        binding=binding,
        requests_per_min=rate,
        peak_requests_per_min=rate * par,
        inflight=n,
        latency_s=curve.latency_s(n),
        ttft_p95_s=None if point is None else point.ttft_p95_s,
        ttlt_p95_s=None if point is None else point.ttlt_p95_s,
        ttlt_p95_method=None if point is None else point.ttlt_p95_method,
        tps_p50=None if point is None else point.tps_p50,
        tps_p5=None if point is None else point.tps_p5,
        requests_per_min_by_constraint=rates,
        max_inflight_by_constraint=inflight,
        users_by_constraint=users,
        headroom_by_constraint=headroom,
        reservation_tokens=tq.taken,
        settlement_tokens=tq.kept,
        reservation_slots=lim.burst,
        tpm_inflight_limit=lim.inflight if math.isfinite(lim.inflight) else math.inf,
        quota_rule=lim.rule,
        burndown=bd.value,
        burndown_source=f"{bd.rule}: {bd.source}",
        latency_source=curve.source,
        measured_max_inflight=None if point is None else point.measured_max,
        extrapolation_factor=None if point is None else point.extrapolation_factor,
        formulas=f,
        notes=tuple(notes),
        endpoint=quota.endpoint,
        service_tier=workload.service_tier,
    )
