"""Users → quota: the TPM, RPM and TPD (bedrock-mantle: input and output TPM) to request for a
target user count, and whether the SLO can hold at the concurrency that brings.

The inverse of ``plan_capacity``: the average rate λ solves users = λ·(R + Z) (or
λ = users × requests_per_user_per_min); the busiest minute runs at λ_peak = λ × peak_to_average
with N = λ_peak·R(N) in flight. Then, with headroom h:

- TPM = (1 + h) × the smallest TPM whose ledger rule carries λ_peak with N in flight
  (``capacity.serving.required_bucket``: rule "bucket" max(settlement × λ_peak, (N + 1) ×
  reservation / (1 + R/60)); rule "window" max(reservation, settlement) × λ_peak); on
  bedrock-mantle the same for input TPM (input + cache write + max_tokens taken, input + cache
  write kept) and output TPM (output × λ_peak). With Reserved capacity (Reserved-tier
  workloads) the on-demand quota carries only what Reserved capacity does not: λ_peak minus its
  sustained rate, N minus what it holds in flight;
- RPM = (1 + h) × λ_peak (asked for only where RPM is still enforced);
  TPD = (1 + h) × λ × 60 × active hours × settlement.

All three are rounded up, so ``plan_capacity`` on ``request.to_quota()`` supports at least the
target whenever the request is feasible. Headroom is never asked where it buys nothing: when
the latency objective (or, without one, the endpoint's peak throughput N*) caps the busiest
minute at λ_lim < (1 + h) × λ_peak, TPM is asked up to what λ_lim needs and h shrinks to
λ_lim / λ_peak − 1, with a note saying why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from capacity.planning._inputs import PlanInputError, Quota, Slo, Workload, as_number
from capacity.planning._lines import QuotaLine, quota_lines
from capacity.planning._loadcurve import LoadCurve, fmt, inflight_for_rate
from capacity.planning._options import QuotaOption, Shortfall, cap_wait, describe_wait, remedies
from capacity.planning._quotas import on_demand_needs, reserved_from, token_shapes
from capacity.prediction import Predictor
from capacity.serving import (
    Endpoint,
    QuotaRule,
    Scope,
    resolve_burndown,
)


@dataclass(frozen=True)
class QuotaRequest:
    """The quota to request for ``target_users`` (see the module docstring for the arithmetic).

    ``inflight`` is the busiest minute's in-flight count (None when the fitted endpoint cannot
    carry the rate at all); ``inflight_limit`` the most that meets the SLO, capped at the
    endpoint's peak-throughput point N* (None without a model); ``peak_inflight`` is λ_peak × R
    even where the endpoint could not carry it. ``measured_max_inflight`` is the most in flight
    the model's evidence covered, ``extrapolation_factor`` = peak_inflight / that when beyond it.
    ``feasible`` is False when the SLO cannot hold, with the ``reason`` and ``options``.
    ``formulas`` show the arithmetic.
    """

    workload: Workload
    target_users: float
    slo: Slo | None
    headroom: float
    model_id: str | None
    scope: Scope
    tpm: int | None
    """bedrock-runtime's TPM to request (None on bedrock-mantle)."""
    rpm: int | None
    tpd: int | None
    """bedrock-runtime's TPD (None on bedrock-mantle, which has none)."""
    rule: QuotaRule
    requests_per_min: float
    peak_requests_per_min: float
    inflight: float | None
    peak_inflight: float
    inflight_limit: float | None
    latency_s: float
    feasible: bool
    reason: str | None
    options: tuple[QuotaOption, ...]
    lines: tuple[QuotaLine, ...]
    reservation_tokens: float
    settlement_tokens: float
    burndown: float
    burndown_source: str
    latency_source: str
    measured_max_inflight: float | None
    extrapolation_factor: float | None
    formulas: dict[str, str]
    notes: tuple[str, ...]
    endpoint: Endpoint = "runtime"
    input_tpm: int | None = None
    """bedrock-mantle's input TPM to request (None on bedrock-runtime)."""
    output_tpm: int | None = None
    """bedrock-mantle's output TPM to request (None on bedrock-runtime)."""
    reserved_input_tpm: float | None = None
    """The Reserved capacity the request was computed with (None: none)."""
    reserved_output_tpm: float | None = None

    @property
    def runtime_tpm(self) -> int:
        """The combined TPM asked on bedrock-runtime (a `PlanInputError` on bedrock-mantle)."""
        if self.tpm is None:
            raise PlanInputError(
                "this view is drawn on bedrock-runtime's combined TPM: on bedrock-mantle the "
                "request asks input_tpm and output_tpm"
            )
        return self.tpm

    def applied_to(self, current: Quota) -> Quota:
        """The quota after this request is granted: each limit ``current`` has is raised to the
        requested value where that is higher; limits it does not have stay absent."""

        def raised(now: float | None, asked: float | None) -> float | None:
            if now is None:
                return None
            return float(now) if asked is None else max(float(now), float(asked))

        return dataclasses.replace(
            current,
            tpm=raised(current.tpm, self.tpm),
            rpm=raised(current.rpm, self.rpm),
            tpd=raised(current.tpd, self.tpd),
            input_tpm=raised(current.input_tpm, self.input_tpm),
            output_tpm=raised(current.output_tpm, self.output_tpm),
        )

    def to_quota(self) -> Quota:
        """The requested values as a ``Quota`` (to check with ``plan_capacity``)."""
        return Quota(
            tpm=self.tpm, rpm=self.rpm, tpd=self.tpd, model_id=self.model_id, scope=self.scope,
            rule=self.rule, endpoint=self.endpoint, input_tpm=self.input_tpm,
            output_tpm=self.output_tpm, reserved_input_tpm=self.reserved_input_tpm,
            reserved_output_tpm=self.reserved_output_tpm,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        out = dataclasses.asdict(self)
        out["options"] = [dataclasses.asdict(o) for o in self.options]
        out["lines"] = [dataclasses.asdict(line) for line in self.lines]
        out["notes"] = list(self.notes)
        return out


def _average_rate(target: float, w: Workload, curve: LoadCurve) -> tuple[float, str]:
    """The average rate (req/min) at which ``target`` users are served, and how."""
    if w.requests_per_user_per_min is not None:
        rate = target * w.requests_per_user_per_min
        return rate, (
            f"users × requests_per_user_per_min = {fmt(target)} × "
            f"{fmt(w.requests_per_user_per_min)} = {fmt(rate)} req/min"
        )
    think = w.effective_think_time_s
    assert think is not None
    r = curve.latency_s(1.0)
    rate = 60 * target / (r + think)
    if curve.model is not None:
        # At N in flight the rate is N / R(N) and users = N / R(N) × (R(N) + Z), rising in N up
        # to the peak-throughput point N*: bisect on N (beyond N*, R stays at R(N*)).
        def users_at(n: float) -> float:
            return n / curve.latency_s(n) * (curve.latency_s(n) + think)

        r = curve.latency_s(curve.n_peak)
        rate = 60 * target / (r + think)
        if users_at(curve.n_peak) >= target:
            lo, hi = 0.0, curve.n_peak
            for _ in range(60):
                mid = (lo + hi) / 2
                if users_at(mid) >= target:
                    hi = mid
                else:
                    lo = mid
            r = curve.latency_s(hi)
            rate = 60 * hi / r
    return rate, (
        f"users × 60 / (R + think) = {fmt(target)} × 60 / ({fmt(r)} + {fmt(think)}) = "
        f"{fmt(rate)} req/min" + (" (R solved on the model)" if curve.model is not None else "")
    )


def _cap_note(
    curve: LoadCurve, limit: float, peak: float, measured: float | None, notes: list[str]
) -> None:
    """Advise a client-side cap at the SLO limit only inside the measured range; beyond it,
    say how far the limit lies from the evidence instead of recommending it."""
    cap = math.floor(limit)
    if measured and cap > measured * (1 + 1e-9):
        notes.append(
            f"the SLO limit lies at about {fmt(cap)} in flight, ×{cap / measured:.1f} beyond the "
            f"{fmt(measured)} measured: no client-side cap is advised from this evidence"
        )
        return
    stats = cap_wait(curve, cap, peak)
    if stats is not None:
        notes.append(
            f"a client-side cap of {cap} in flight keeps bursts within the SLO; at the busiest "
            f"minute (M/G/c) {describe_wait(stats)}"
        )


def required_quota(
    workload: Workload,
    target_users: float,
    model: Predictor | None = None,
    slo: Slo | None = None,
    headroom: float = 0.2,
    *,
    model_id: str | None = None,
    scope: Scope | None = None,
    rule: QuotaRule = "bucket",
    rpm_enforced: bool | None = None,
    endpoint: Endpoint = "runtime",
    reserved_input_tpm: float | None = None,
    reserved_output_tpm: float | None = None,
) -> QuotaRequest:
    """The quota to request for ``target_users``, with feasibility against ``slo``: TPM, RPM
    and TPD on bedrock-runtime, input and output TPM on bedrock-mantle (``endpoint``).

    ``model_id`` picks the output burndown and the quota codes; ``scope`` defaults from it.
    ``headroom`` is the safety margin added on top (0.2 = 20 %); where the latency objective
    (or the endpoint's peak throughput) caps the users below target × (1 + headroom), quotas are
    asked only up to that cap (a note says so). ``rule`` is the ledger rule they must satisfy.
    ``rpm_enforced`` says whether to ask for RPM too; by default, only when the model table says
    Bedrock still enforces it for ``model_id`` (never for unknown ids, never on bedrock-mantle).
    ``reserved_input_tpm`` and ``reserved_output_tpm``: Reserved capacity already bought, which
    a Reserved-tier workload uses first (the request covers the overflow).
    """
    if as_number("target_users", target_users) <= 0:
        raise PlanInputError(f"target_users must be > 0, got {target_users!r}")
    if as_number("headroom", headroom) < 0:
        raise PlanInputError(f"headroom must be >= 0 (0.2 = 20 %), got {headroom!r}")
    if slo is not None and model is None:
        raise PlanInputError("slo needs a fitted model (model=...): latency cannot be predicted")
    probe = Quota(
        tpm=1 if endpoint == "runtime" else None, input_tpm=None if endpoint == "runtime" else 1,
        output_tpm=None if endpoint == "runtime" else 1, model_id=model_id, scope=scope,
        endpoint=endpoint, reserved_input_tpm=reserved_input_tpm,
        reserved_output_tpm=reserved_output_tpm,
    )  # fmt: skip  # validates and resolves the scope
    resolved: Scope = probe.scope or "on-demand"
    bd = resolve_burndown(workload.burndown, model_id)
    curve = LoadCurve(workload, model)
    w, par, h = workload, workload.peak_to_average, float(headroom)
    shapes = token_shapes(endpoint, w, bd.value)
    reserved = reserved_from(reserved_input_tpm, reserved_output_tpm, w, rule)
    q_set = w.settlement_tokens(bd.value)
    rate, rate_formula = _average_rate(float(target_users), w, curve)
    peak = rate * par
    n, r, saturated = inflight_for_rate(peak, curve)
    needs = on_demand_needs(shapes, reserved, peak, n, r, rule)
    notes = [f"output burndown {fmt(bd.value)} ({bd.rule}; source: {bd.source})"]
    if endpoint == "mantle":
        notes = ["bedrock-mantle: input and output TPM asked apart; no RPM or TPD quota there"]
    if reserved is not None:
        notes.append(
            f"Reserved capacity carries {fmt(reserved.rate_per_min(r))} req/min of the busiest "
            f"minute's {fmt(peak)}; the on-demand quota is asked for the rest"
        )
    limit: float | None = None
    reason: str | None = None
    options: tuple[QuotaOption, ...] = ()
    measured, k = None, None
    h_eff = h  # the headroom the request delivers under the latency objective
    caps: dict[str, float] | None = None  # quotas beyond which more buys no users
    if model is None:
        notes.append("no model: latency and SLO feasibility are not checked")
        if curve.source == "default":
            notes.append(f"assumed {curve.formula} (the seed blog's single-request speed)")
    else:
        unloaded = curve.point(1.0)
        measured = None if unloaded is None else unloaded.measured_max
        if measured and n > measured * (1 + 1e-9):
            k = n / measured
        slo_limit = curve.n_peak if slo is None else curve.slo_limit(slo)
        limit = min(slo_limit, curve.n_peak)  # beyond N* more in flight only adds latency
        rate_limit = 60 * curve.max_rate_per_s(limit)
        what = slo.describe() if slo is not None and slo_limit < curve.n_peak else None
        bound = what or f"the endpoint's peak throughput (N* = {fmt(curve.n_peak)} in flight)"
        if peak * (1 + h) > rate_limit * (1 + 1e-9):
            # Quota past the limit buys no users under the objective: ask only up to it.
            h_eff = rate_limit / peak - 1
            n_lim, r_lim, _ = inflight_for_rate(rate_limit, curve)
            at_limit = on_demand_needs(shapes, reserved, rate_limit, n_lim, r_lim, rule)
            caps = {key: v[0] for key, v in at_limit.items()}
        if peak > rate_limit * (1 + 1e-9):
            if what is not None:
                reason = (
                    f"{what} holds up to {fmt(limit)} requests in flight "
                    f"({fmt(rate_limit)} req/min); the target needs {fmt(peak)} req/min at the "
                    f"busiest minute, {fmt(n)} in flight"
                )
            else:
                reason = (
                    f"the fitted endpoint peaks at {fmt(60 * curve.x_peak)} req/min "
                    f"(N* = {fmt(curve.n_peak)} in flight); the target needs {fmt(peak)} req/min "
                    "at the busiest minute"
                )
            need0 = needs[shapes[0].key][0]
            gap = Shortfall(rate, peak, n, limit, rate_limit, (1 + h) * need0, h, shapes[0].kept,
                            rule)  # fmt: skip
            options = remedies(w, curve, slo, gap, resolved)
            whole = " and ".join(f"{fmt(math.ceil((1 + h) * needs[tq.key][0]))} {tq.name}"
                                 for tq in shapes)  # fmt: skip
            notes.append(
                f"{shapes[0].name} asked only up to what {bound} can use ({fmt(rate_limit)} "
                f"req/min at the busiest minute); the whole target with {h:.0%} headroom would "
                f"need {whole} once the objective can hold there (see the options)"
            )
        elif caps is not None:
            more = " or ".join(f"{fmt(math.ceil(caps[tq.key]))} {tq.name}" for tq in shapes)
            notes.append(
                f"asked only up to what the limit can use: {bound} holds up to {fmt(limit)} "
                f"requests in flight ({fmt(rate_limit)} req/min at the busiest minute, "
                f"{h_eff:.0%} above the target's {fmt(peak)}, not {h:.0%}); more than {more} "
                "would buy no users under it"
            )
        if reason is None and slo is not None:
            _cap_note(curve, limit, peak, measured, notes)
        if k is not None:
            notes.append(
                f"extrapolated ×{k:.1f}: the target needs {fmt(n)} requests in flight at the "
                f"busiest minute, beyond the {fmt(measured or 0)} measured; latency there is a "
                "model extrapolation (intervals widen) — "
                + (
                    "probe closer to the target"
                    if unloaded is not None and unloaded.source == "the calibrated twin"
                    else "measure closer or calibrate a twin"
                )
            )
    f = {
        "requests_per_min": rate_formula,
        "peak_requests_per_min": f"λ × PAR = {fmt(rate)} × {fmt(par)} = {fmt(peak)} req/min",
        "inflight": f"N = λ_peak/60 × R(N) = {fmt(peak)}/60 × {fmt(r)} = {fmt(n)}",
        "latency_s": curve.formula,
    }
    asked: dict[str, int] = {}
    for tq in shapes:
        need, formula = needs[tq.key]
        cap = None if caps is None else caps[tq.key]
        if cap is None:
            value = max(1, math.ceil((1 + h) * need))
        else:  # feasible: at least what the target needs; else what the limit can use
            value = max(1, math.ceil(max(need, cap) if reason is None else cap))
        head = f"(1 + h) × {formula} = (1 + {fmt(h)}) × {fmt(need)}"
        if cap is not None:
            head = f"min((1 + h) × need, {tq.name} the limit can use) = min("
            head += f"{fmt(math.ceil((1 + h) * need))}, {fmt(math.ceil(cap))})"
        asked[tq.key] = value
        f[tq.key] = f"{head} = {fmt(value)} tokens/min"
    tpd = None
    if endpoint == "runtime":
        r_res = 0.0 if reserved is None else reserved.rate_per_min(r)
        od_share = max(0.0, 1.0 - r_res / peak) if peak > 0 else 1.0
        tpd = math.ceil((1 + h_eff) * rate * od_share * 60 * w.active_hours_per_day * q_set)
        f["tpd"] = (
            f"(1 + h) × λ × 60 × active hours × settlement = (1 + {fmt(h_eff)}) × {fmt(rate)} × "
            f"60 × {fmt(w.active_hours_per_day)} × {fmt(q_set)}"
            + ("" if reserved is None else f" × on-demand share {fmt(od_share)}")
            + f" = {fmt(tpd)} tokens/day"
        )
    rpm = math.ceil((1 + h_eff) * peak)
    f["rpm"] = f"(1 + h) × λ_peak = (1 + {fmt(h_eff)}) × {fmt(peak)} = {fmt(rpm)} requests/min"
    if w.requests_per_user_per_min is None and w.think_time_s is None:
        notes.append(f"think time not given: assumed {fmt(w.effective_think_time_s or 0)} s")
    lines, rpm_enforced = quota_lines(endpoint, model_id, resolved, asked, rpm, tpd, rpm_enforced)
    if not rpm_enforced and endpoint == "runtime":
        notes.append(
            "RPM not requested: Bedrock no longer enforces requests per minute on bedrock-runtime "
            "for this model (pass rpm_enforced=True where it is)"
        )
    return QuotaRequest(
        workload=w, target_users=float(target_users), slo=slo, headroom=h, model_id=model_id,
        scope=resolved, tpm=asked.get("tpm"), rpm=rpm if rpm_enforced else None, tpd=tpd,
        rule=rule, requests_per_min=rate, peak_requests_per_min=peak,
        inflight=None if saturated else n, peak_inflight=n, inflight_limit=limit, latency_s=r,
        feasible=reason is None, reason=reason, options=options, lines=lines,
        reservation_tokens=shapes[0].taken, settlement_tokens=shapes[0].kept, burndown=bd.value,
        burndown_source=f"{bd.rule}: {bd.source}", latency_source=curve.source,
        measured_max_inflight=measured, extrapolation_factor=k, formulas=f, notes=tuple(notes),
        endpoint=endpoint, input_tpm=asked.get("input_tpm"), output_tpm=asked.get("output_tpm"),
        reserved_input_tpm=reserved_input_tpm, reserved_output_tpm=reserved_output_tpm,
    )  # fmt: skip
