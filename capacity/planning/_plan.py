"""Quota → users: how many users a quota supports, which limit binds, and the arithmetic.

Each constraint caps the request rate; users follow from Little's law, U = λ·(R + Z) with think
time Z (or U = λ / requests_per_user_per_min). Per-minute limits must hold in the busiest minute,
so they allow an average rate of limit / peak_to_average.

- ``tpm_admission`` — Bedrock reserves input + cache + max_tokens against the per-minute TPM
  bucket when it admits a request and refunds the unused part at settlement. Counting every
  reservation against the minute in which it was taken (exact when no refund lands within that
  minute, conservative otherwise), TPM / reservation reservations can be taken per minute; and
  since all reservations in flight must fit in the bucket at once, at most TPM / reservation
  requests can be in flight (``reservation_slots``). That bucket ceiling is what AWS calls
  "concurrent requests" (2,000,000 TPM, 500 input + 1,000 max_tokens → about 1,333). It caps
  the rate only when requests last longer than a minute: λ ≤ min(slots, 60 · slots / R(slots)).
- ``tpm_settlement`` — the optimistic view: each request is charged input + cache write +
  burndown × output once refunds land, so λ ≤ TPM / that. The truth lies between the two views.
- ``rpm`` — λ ≤ RPM. ``tpd`` — the daily total, spread over the active hours (no peak factor:
  a day's total is an average): λ ≤ TPD / (settlement × 60 × active hours).
- ``slo`` (only with a fitted model) — the largest in-flight N that meets the SLO, or without an
  SLO the endpoint's peak throughput N*; λ ≤ N / R(N).
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
    LoadPoint,
    fmt,
    inflight_for_rate,
    users_for_rate,
)
from capacity.prediction import Predictor
from capacity.serving._models import Burndown, resolve_burndown

CONSTRAINTS = ("tpm_admission", "tpm_settlement", "rpm", "tpd", "slo")
"""Constraint keys, in tie-breaking order."""


@dataclass(frozen=True)
class CapacityPlan:
    """What a quota supports for a workload.

    Rates are requests per minute averaged over the active hours; in-flight counts are at the
    busiest minute (average × peak_to_average); ``users`` is fractional (floor it to promise).
    The ``*_by_constraint`` dicts are keyed by ``CONSTRAINTS``; a constraint that does not apply
    is absent. ``headroom_by_constraint[c]`` is the fraction of constraint c left unused at the
    supported load (0 for the binding one). Predicted ``ttft_p95_s``, ``ttlt_p95_s``,
    ``tps_p50`` and ``tps_p5`` are at the busiest minute's in-flight count and None without a
    model. ``formulas`` maps each field (``"users_by_constraint.rpm"``) to the arithmetic that
    produced it.
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
    tps_p50: float | None
    tps_p5: float | None
    requests_per_min_by_constraint: dict[str, float]
    max_inflight_by_constraint: dict[str, float]
    users_by_constraint: dict[str, float]
    headroom_by_constraint: dict[str, float]
    reservation_tokens: float
    settlement_tokens: float
    reservation_slots: float
    burndown: float
    burndown_source: str
    latency_source: str
    formulas: dict[str, str]
    notes: tuple[str, ...]

    @property
    def users_whole(self) -> int:
        """Whole users supported (floor, tolerant of rounding noise)."""
        return math.floor(self.users + 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (inputs included)."""
        out = dataclasses.asdict(self)
        out["users_whole"] = self.users_whole
        out["notes"] = list(self.notes)
        return out


def plan_capacity(
    quota: Quota,
    workload: Workload,
    model: Predictor | None = None,
    slo: Slo | None = None,
) -> CapacityPlan:
    """Users, rates and in-flight concurrency that ``quota`` supports for ``workload``.

    ``model`` (a fitted ``CapacityModel`` or any ``Predictor``) adds the latency/SLO
    constraint and predicted latencies; ``slo`` needs a model.
    """
    if slo is not None and model is None:
        raise PlanInputError("slo needs a fitted model (model=...): latency cannot be predicted")
    bd = resolve_burndown(workload.burndown, quota.model_id)
    curve = LoadCurve(workload, model)
    w, par, hours = workload, workload.peak_to_average, workload.active_hours_per_day
    q_res, q_set = w.reservation_tokens, w.settlement_tokens(bd.value)
    slots = quota.tpm / q_res
    f: dict[str, str] = {
        "reservation_tokens": f"input + cache_read + cache_write + max_tokens = "
        f"{fmt(w.input_tokens)} + {fmt(w.cache_read_tokens)} + {fmt(w.cache_write_tokens)} + "
        f"{fmt(w.max_tokens)} = {fmt(q_res)} tokens",
        "settlement_tokens": f"input + cache_write + burndown × output = {fmt(w.input_tokens)} + "
        f"{fmt(w.cache_write_tokens)} + {fmt(bd.value)} × {fmt(w.output_tokens)} = "
        f"{fmt(q_set)} tokens",
        "reservation_slots": f"TPM / reservation = {fmt(quota.tpm)} / {fmt(q_res)} = {fmt(slots)} "
        "reservations fit in the bucket at once",
        "latency_s": curve.formula,
    }
    avg: dict[str, float] = {}
    ceiling = _ceiling_per_min(curve, slots)
    avg["tpm_admission"] = min(slots, ceiling) / par
    f["requests_per_min_by_constraint.tpm_admission"] = (
        f"TPM / reservation / PAR = {fmt(quota.tpm)} / {fmt(q_res)} / {fmt(par)} = "
        f"{fmt(slots / par)} req/min"
        if ceiling >= slots
        else f"60 × slots / R(slots) / PAR = 60 × {fmt(slots)} / {fmt(curve.latency_s(slots))} / "
        f"{fmt(par)} = {fmt(ceiling / par)} req/min (requests outlast a minute, so the bucket's "
        "reservation ceiling binds before its per-minute rate)"
    )
    avg["tpm_settlement"] = quota.tpm / q_set / par
    f["requests_per_min_by_constraint.tpm_settlement"] = (
        f"TPM / settlement / PAR = {fmt(quota.tpm)} / {fmt(q_set)} / {fmt(par)} = "
        f"{fmt(avg['tpm_settlement'])} req/min"
    )
    if quota.rpm is not None:
        avg["rpm"] = quota.rpm / par
        f["requests_per_min_by_constraint.rpm"] = (
            f"RPM / PAR = {fmt(quota.rpm)} / {fmt(par)} = {fmt(avg['rpm'])} req/min"
        )
    if quota.tpd is not None:
        avg["tpd"] = quota.tpd / (q_set * 60 * hours)
        f["requests_per_min_by_constraint.tpd"] = (
            f"TPD / (settlement × 60 × active hours) = {fmt(quota.tpd)} / ({fmt(q_set)} × 60 × "
            f"{fmt(hours)}) = {fmt(avg['tpd'])} req/min (a daily total: no peak factor)"
        )
    notes: list[str] = []
    if model is not None:
        n_lim = curve.n_peak if slo is None else curve.slo_limit(slo)
        n_use = min(n_lim, curve.n_peak)  # past N* more in flight only adds latency
        avg["slo"] = 60 * curve.max_rate_per_s(n_use) / par
        if slo is None:
            why = f"N* = {fmt(n_use)}: the endpoint's peak throughput"
        else:
            why = f"N_slo = {fmt(n_lim)}: the most in flight meeting {slo.describe()}"
            if n_lim > curve.n_peak:
                why += f", beyond the peak-throughput point N* = {fmt(curve.n_peak)}"
            if n_lim == 0:
                notes.append(f"the SLO ({slo.describe()}) fails even with one request in flight")
        r_use = curve.latency_s(max(n_use, 1.0))
        f["requests_per_min_by_constraint.slo"] = (
            f"60 × N / R(N) / PAR = 60 × {fmt(n_use)} / {fmt(r_use)} / {fmt(par)} = "
            f"{fmt(avg['slo'])} req/min ({why})"
        )
    return _assemble(quota, workload, slo, curve, avg, f, notes, bd, q_res, q_set, slots)


def _ceiling_per_min(curve: LoadCurve, slots: float) -> float:
    """The rate (req/min) at which the in-flight count reaches the bucket's reservation ceiling;
    infinite when the endpoint saturates below it (the ceiling is then never reached)."""
    if curve.model is not None and slots >= curve.n_peak:
        return math.inf
    return 60 * slots / curve.latency_s(slots)


def _assemble(
    quota: Quota,
    workload: Workload,
    slo: Slo | None,
    curve: LoadCurve,
    avg: Mapping[str, float],
    f: dict[str, str],
    notes: list[str],
    bd: Burndown,
    q_res: float,
    q_set: float,
    slots: float,
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
        f["ttlt_p95_s"] = (
            f"TTFT_p95 + (output - 1) / tps_p5 = {fmt(point.ttft_p95_s)} + "
            f"({fmt(workload.output_tokens)} - 1) / {fmt(point.tps_p5)} = {fmt(point.ttlt_p95_s)} s"
        )
    notes += _notes(quota, workload, curve, bd, users, binding, saturated, slots, point)
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
        tps_p50=None if point is None else point.tps_p50,
        tps_p5=None if point is None else point.tps_p5,
        requests_per_min_by_constraint=rates,
        max_inflight_by_constraint=inflight,
        users_by_constraint=users,
        headroom_by_constraint=headroom,
        reservation_tokens=q_res,
        settlement_tokens=q_set,
        reservation_slots=slots,
        burndown=bd.value,
        burndown_source=f"{bd.rule}: {bd.source}",
        latency_source=curve.source,
        formulas=f,
        notes=tuple(notes),
    )


def _notes(
    quota: Quota,
    w: Workload,
    curve: LoadCurve,
    bd: Burndown,
    users: Mapping[str, float],
    binding: str,
    saturated: list[str],
    slots: float,
    point: LoadPoint | None,
) -> list[str]:
    notes = [f"output burndown {fmt(bd.value)} ({bd.rule}; source: {bd.source})"]
    if curve.source == "default":
        notes.append(
            f"no model and no latency_s: assumed {curve.formula} (the seed blog's single-request "
            "Llama 3.3 70B speed); a fast endpoint gives cautious user counts but understates "
            "in-flight concurrency"
        )
    if w.think_time_s is None and w.requests_per_user_per_min is None:
        notes.append(f"think time not given: assumed {fmt(w.effective_think_time_s or 0)} s")
    if quota.rpm is None:
        notes.append(
            "no RPM given: Bedrock no longer enforces RPM on bedrock-runtime for many models"
        )
    if quota.tpd is None:
        notes.append("no TPD given: Bedrock's default TPM × 1440 never binds before TPM settlement")
    notes.append(
        f"a full TPM bucket holds {fmt(slots)} reservations at once (AWS's 'concurrent requests')"
    )
    if binding == "tpm_admission" and users["tpm_settlement"] > users[binding]:
        notes.append(
            f"admission is the conservative TPM view; if refunds land within the minute the "
            f"settlement view allows up to {fmt(users['tpm_settlement'])} users"
        )
    if w.max_tokens >= 4 * w.output_tokens:
        notes.append(
            f"max_tokens is {fmt(w.max_tokens / w.output_tokens)}× the expected output; every "
            "admission reserves it (see recommend_max_tokens)"
        )
    if saturated:
        notes.append(
            f"{', '.join(saturated)} would allow more than the endpoint's peak throughput "
            f"({fmt(60 * curve.x_peak)} req/min): their in-flight figures are lower bounds"
        )
    if curve.model is not None and curve.n_valid < MAX_CONCURRENCY:
        notes.append(
            f"the fitted curves stop making sense beyond {fmt(curve.n_valid)} in flight (decode "
            "speed <= 0 or TTFT not finite): the endpoint is treated as saturated there"
        )
    if point is not None and point.extrapolated:
        notes.append("the operating point lies outside the model's fitted range (extrapolated)")
    return notes
