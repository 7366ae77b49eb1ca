"""Users → quota: the TPM, RPM and TPD to request for a target user count, and whether the SLO
can hold at the concurrency that brings.

The inverse of ``plan_capacity``: the average rate λ solves users = λ·(R + Z) (or
λ = users × requests_per_user_per_min); the busiest minute runs at λ_peak = λ × peak_to_average
with N = λ_peak·R(N) in flight. Then, with headroom h:

- TPM = (1 + h) × the smallest TPM whose ledger rule carries λ_peak with N in flight
  (``capacity.serving.required_tpm``: rule "bucket" max(settlement × λ_peak, (N + 1) ×
  reservation / (1 + R/60)); rule "window" reservation × λ_peak);
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
from capacity.planning._loadcurve import LoadCurve, fmt, inflight_for_rate
from capacity.planning._options import QuotaOption, Shortfall, cap_wait, describe_wait, remedies
from capacity.prediction import Predictor
from capacity.serving import QuotaRule, Scope, load_model_table, required_tpm, resolve_burndown


@dataclass(frozen=True)
class QuotaLine:
    """One value to ask AWS Support for: ``kind`` (tpm, rpm, tpd), the ``value``, and where the
    data table knows them, the quota ``code``, ``name`` and published ``default``."""

    kind: str
    value: int
    code: str | None
    name: str | None
    default: float | None


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
    tpm: int
    rpm: int | None
    tpd: int
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

    def applied_to(self, current: Quota) -> Quota:
        """The quota after this request is granted: each limit ``current`` has is raised to the
        requested value where that is higher; limits it does not have stay absent."""

        def raised(now: float | None, asked: float | None) -> float | None:
            if now is None:
                return None
            return float(now) if asked is None else max(float(now), float(asked))

        return dataclasses.replace(
            current,
            tpm=max(float(current.tpm), float(self.tpm)),
            rpm=raised(current.rpm, self.rpm),
            tpd=raised(current.tpd, self.tpd),
        )

    def to_quota(self) -> Quota:
        """The requested values as a ``Quota`` (to check with ``plan_capacity``)."""
        return Quota(
            tpm=self.tpm,
            rpm=self.rpm,
            tpd=self.tpd,
            model_id=self.model_id,
            scope=self.scope,
            rule=self.rule,
        )

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
) -> QuotaRequest:
    """TPM, RPM and TPD to request for ``target_users``, with feasibility against ``slo``.

    ``model_id`` picks the output burndown and the quota codes; ``scope`` defaults from it.
    ``headroom`` is the safety margin added on top (0.2 = 20 %); where the latency objective
    (or the endpoint's peak throughput) caps the users below target × (1 + headroom), TPM is
    asked only up to that cap (a note says so). ``rule is the ledger rule
    the TPM must satisfy. ``rpm_enforced`` says whether to ask for RPM too; by default, only when
    the model table says Bedrock still enforces it for ``model_id`` (never for unknown ids).
    """
    if as_number("target_users", target_users) <= 0:
        raise PlanInputError(f"target_users must be > 0, got {target_users!r}")
    if as_number("headroom", headroom) < 0:
        raise PlanInputError(f"headroom must be >= 0 (0.2 = 20 %), got {headroom!r}")
    if slo is not None and model is None:
        raise PlanInputError("slo needs a fitted model (model=...): latency cannot be predicted")
    probe = Quota(tpm=1, model_id=model_id, scope=scope)  # validates and resolves the scope
    resolved: Scope = probe.scope or "on-demand"
    bd = resolve_burndown(workload.burndown, model_id)
    curve = LoadCurve(workload, model)
    w, par, h = workload, workload.peak_to_average, float(headroom)
    q_res, q_set = w.reservation_tokens, w.settlement_tokens(bd.value)
    rate, rate_formula = _average_rate(float(target_users), w, curve)
    peak = rate * par
    n, r, saturated = inflight_for_rate(peak, curve)
    need, need_formula = required_tpm(peak, n, q_res, q_set, rule, r)
    notes = [f"output burndown {fmt(bd.value)} ({bd.rule}; source: {bd.source})"]
    limit: float | None = None
    reason: str | None = None
    options: tuple[QuotaOption, ...] = ()
    measured, k = None, None
    h_eff = h  # the headroom the request delivers under the latency objective
    tpm_cap: float | None = None  # TPM beyond which more quota buys no users under it
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
            # TPM past the limit buys no users under the objective: ask only up to it.
            h_eff = rate_limit / peak - 1
            n_lim, r_lim, _ = inflight_for_rate(rate_limit, curve)
            tpm_cap = required_tpm(rate_limit, n_lim, q_res, q_set, rule, r_lim)[0]
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
            gap = Shortfall(rate, peak, n, limit, rate_limit, (1 + h) * need, h, q_set, rule)
            options = remedies(w, curve, slo, gap, resolved)
            notes.append(
                f"TPM asked only up to what {bound} can use ({fmt(rate_limit)} req/min at the "
                f"busiest minute); the whole target with {h:.0%} headroom would need "
                f"{fmt(math.ceil((1 + h) * need))} TPM once the objective can hold there (see "
                "the options)"
            )
        elif tpm_cap is not None:
            notes.append(
                f"headroom {h_eff:.0%} instead of {h:.0%}: {bound} holds up to {fmt(limit)} "
                f"requests in flight ({fmt(rate_limit)} req/min at the busiest minute); more "
                f"TPM than {fmt(math.ceil(tpm_cap))} would buy no users under it"
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
    if tpm_cap is None:
        tpm = math.ceil((1 + h) * need)
    else:  # feasible: at least what the target needs; else what the limit can use
        tpm = math.ceil(max(need, tpm_cap) if reason is None else tpm_cap)
    rpm = math.ceil((1 + h_eff) * peak)
    tpd = math.ceil((1 + h_eff) * rate * 60 * w.active_hours_per_day * q_set)
    head = f"(1 + h) × {need_formula} = (1 + {fmt(h)}) × {fmt(need)}"
    if tpm_cap is not None:
        head = (
            f"min((1 + h) × need, TPM the limit can use) = min({fmt((1 + h) * need)}, "
            f"{fmt(tpm_cap)})"
        )
    f = {
        "requests_per_min": rate_formula,
        "peak_requests_per_min": f"λ × PAR = {fmt(rate)} × {fmt(par)} = {fmt(peak)} req/min",
        "inflight": f"N = λ_peak/60 × R(N) = {fmt(peak)}/60 × {fmt(r)} = {fmt(n)}",
        "latency_s": curve.formula,
        "tpm": f"{head} = {fmt(tpm)} tokens/min",
        "rpm": f"(1 + h) × λ_peak = (1 + {fmt(h_eff)}) × {fmt(peak)} = {fmt(rpm)} requests/min",
        "tpd": f"(1 + h) × λ × 60 × active hours × settlement = (1 + {fmt(h_eff)}) × {fmt(rate)} "
        f"× 60 × {fmt(w.active_hours_per_day)} × {fmt(q_set)} = {fmt(tpd)} tokens/day",
    }
    if w.requests_per_user_per_min is None and w.think_time_s is None:
        notes.append(f"think time not given: assumed {fmt(w.effective_think_time_s or 0)} s")
    known = {}
    if model_id is not None:
        known = {q.kind: q for q in load_model_table().quotas_for(model_id, resolved)}
    if rpm_enforced is None:
        rpm_enforced = "rpm" in known and known["rpm"].enforced
    if not rpm_enforced:
        notes.append(
            "RPM not requested: Bedrock no longer enforces requests per minute on bedrock-runtime "
            "for this model (pass rpm_enforced=True where it is)"
        )
    lines = tuple(
        QuotaLine(
            kind,
            value,
            known[kind].code if kind in known else None,
            known[kind].name if kind in known else None,
            known[kind].default if kind in known else None,
        )
        for kind, value in (("tpm", tpm), ("rpm", rpm), ("tpd", tpd))
        if kind != "rpm" or rpm_enforced
    )
    return QuotaRequest(
        workload=w,
        target_users=float(target_users),
        slo=slo,
        headroom=h,
        model_id=model_id,
        scope=resolved,
        tpm=tpm,
        rpm=rpm if rpm_enforced else None,
        tpd=tpd,
        rule=rule,
        requests_per_min=rate,
        peak_requests_per_min=peak,
        inflight=None if saturated else n,
        peak_inflight=n,
        inflight_limit=limit,
        latency_s=r,
        feasible=reason is None,
        reason=reason,
        options=options,
        lines=lines,
        reservation_tokens=q_res,
        settlement_tokens=q_set,
        burndown=bd.value,
        burndown_source=f"{bd.rule}: {bd.source}",
        latency_source=curve.source,
        measured_max_inflight=measured,
        extrapolation_factor=k,
        formulas=f,
        notes=tuple(notes),
    )
