"""Plans checked by simulation: the plan's load replayed through the quota ledger in virtual time.

Two runs, Poisson arrivals, ``minutes`` each (docs/architecture.md, "Quota rules"):

1. **At the plan** — the busiest minute's rate (λ × peak_to_average) stepped up at once on full
   buckets and held for the whole run (so the ramp is checked too): the share of requests
   throttled (should be ≈ 0) and the simulated p95 TTFT.
2. **Overloaded** — 1.25 × the rate the quotas sustain (TPM, RPM, TPD; on bedrock-mantle input
   and output TPM; with Reserved capacity, plus its rate; the ramp limit is a transient): once
   the bucket drains, the ledger admits exactly what it sustains. The admitted
   rate over the second half of the run is the simulation's measure of the sustained capacity,
   compared with the plan's analytic one.

Requests take the plan's latency (TTFT and mean response time from its capacity curve). When the
model is a calibrated twin (it carries a serving ``profile``), the serving model runs too, so
queueing shows in the simulated TTFT.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from capacity.planning._inputs import Quota, Workload
from capacity.planning._loadcurve import fmt
from capacity.prediction import Predictor
from capacity.serving import (
    Profile,
    QuotaConfig,
    SimRequest,
    SimResult,
    poisson_arrivals,
    simulate,
    simulate_quota,
)


class Planned(Protocol):
    """What a verification reads of a ``CapacityPlan`` (which imports this module)."""

    @property
    def quota(self) -> Quota: ...
    @property
    def workload(self) -> Workload: ...
    @property
    def requests_per_min_by_constraint(self) -> Mapping[str, float]: ...
    @property
    def peak_requests_per_min(self) -> float: ...
    @property
    def latency_s(self) -> float: ...
    @property
    def tps_p50(self) -> float | None: ...
    @property
    def burndown(self) -> float: ...


OVERLOAD = 1.25
SUSTAINED = ("tpm", "input_tpm", "output_tpm", "rpm", "tpd")


@dataclass(frozen=True)
class PlanVerification:
    """What the ledger did with the plan's load in virtual time (module docstring).

    ``throttled_share`` at the plan's busiest-minute rate; ``ttft_p95_s`` simulated there (None
    when the plan has no model: its latency is then one constant, not a distribution);
    ``quota_rate_per_min`` the analytic busiest-minute rate the quotas sustain and
    ``simulated_rate_per_min`` what the overloaded ledger admitted per minute in steady state;
    ``agreement`` = simulated / analytic. ``server`` says how latency was modelled.
    """

    minutes: float
    seed: int
    requests: int
    throttled_share: float
    ttft_p95_s: float | None
    quota_rate_per_min: float
    overload_rate_per_min: float
    simulated_rate_per_min: float
    agreement: float
    server: str

    def describe(self) -> str:
        """One line for people."""
        ttft = "" if self.ttft_p95_s is None else f", p95 TTFT {self.ttft_p95_s:.2f} s"
        return (
            f"simulated {fmt(self.minutes)} min at the plan's busiest minute: "
            f"{100 * self.throttled_share:.2f} % throttled{ttft}; "
            f"overloaded at {fmt(self.overload_rate_per_min)} req/min the ledger sustained "
            f"{fmt(self.simulated_rate_per_min)} req/min vs {fmt(self.quota_rate_per_min)} "
            f"planned ({100 * (self.agreement - 1):+.1f} %) [{self.server}]"
        )


def verify_plan(
    plan: Planned, model: Predictor | None, *, minutes: float = 60.0, seed: int = 0
) -> PlanVerification:
    """Replay ``plan`` through the quota ledger (and a twin's serving model, if given)."""
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes!r}")
    par = plan.workload.peak_to_average
    quota_rates = [
        plan.requests_per_min_by_constraint[c] * par
        for c in SUSTAINED
        if c in plan.requests_per_min_by_constraint
    ]
    quota_rate = min(quota_rates)
    at_plan = _run(plan, model, plan.peak_requests_per_min, minutes, seed)
    overload_rate = OVERLOAD * quota_rate
    over = _run(plan, model, overload_rate, minutes, seed + 1)
    half = minutes * 30.0
    admitted = [r for r in over.results if r.status == "ok" and r.start_s >= half]
    simulated = len(admitted) / (minutes / 2)
    ok = [r.ttft_s for r in at_plan.results if r.status == "ok"]
    throttled = sum(r.status == "throttled" for r in at_plan.results)
    return PlanVerification(
        minutes=minutes,
        seed=seed,
        requests=len(at_plan.results),
        throttled_share=throttled / max(len(at_plan.results), 1),
        ttft_p95_s=_p95(ok) if model is not None else None,
        quota_rate_per_min=quota_rate,
        overload_rate_per_min=overload_rate,
        simulated_rate_per_min=simulated,
        agreement=simulated / quota_rate if quota_rate > 0 else math.nan,
        server=at_plan.server,
    )


@dataclass(frozen=True)
class _Run:
    results: list[SimResult]
    server: str


def _run(plan: Planned, model: Predictor | None, rate: float, minutes: float, seed: int) -> _Run:
    w = plan.workload
    arrivals = poisson_arrivals(rate, minutes, seed=seed)
    read, write, tier = round(w.cache_read_tokens), round(w.cache_write_tokens), w.service_tier
    limits = plan.quota.limits()
    profile = getattr(model, "profile", None)
    if isinstance(profile, Profile):
        served = profile.with_overrides(quotas=QuotaConfig.of(limits))
        schedule = [
            SimRequest(t, round(w.input_tokens), round(w.max_tokens), cache_read_tokens=read,
                       cache_write_tokens=write, service_tier=tier)
            for t in arrivals
        ]  # fmt: skip
        return _Run(simulate(served, schedule, seed=seed), "serving model + ledger (twin)")
    # Without a model only the mean response time is known: it is all that the ledger needs
    # (refunds land when a request ends).
    ttft = plan.latency_s - (w.output_tokens - 1) / plan.tps_p50 if plan.tps_p50 else 0.0
    results = simulate_quota(
        arrivals,
        limits,
        input_tokens=round(w.input_tokens),
        max_tokens=round(w.max_tokens),
        output_tokens=round(w.output_tokens),
        burndown=plan.burndown,
        ttft_s=max(ttft, 0.0),
        ttlt_s=plan.latency_s,
        cache_read_tokens=read,
        cache_write_tokens=write,
        service_tier=tier,
    )
    return _Run(results, "ledger; every request takes the plan's mean response time")


def _p95(values: list[float]) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]
