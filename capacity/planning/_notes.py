"""The notes of a capacity plan: what was assumed, what the endpoint, tier and Reserved capacity
change, and where the figures stop being evidence."""

from __future__ import annotations

from capacity.planning._inputs import Quota, Workload
from capacity.planning._loadcurve import MAX_CONCURRENCY, LoadCurve, LoadPoint, fmt
from capacity.planning._quotas import endpoint_notes
from capacity.serving import Burndown, TpmLimits

__all__ = ["plan_notes"]


def plan_notes(
    quota: Quota,
    w: Workload,
    curve: LoadCurve,
    bd: Burndown,
    saturated: list[str],
    lim: TpmLimits,
    point: LoadPoint | None,
) -> list[str]:
    notes = [
        f"quota rule '{lim.rule}'"
        + (
            " (a refilling token bucket; unused reservations come back when a request ends)"
            if lim.rule == "bucket"
            else " (per-minute windows; each request counts the larger of what it takes at "
            "admission and what it keeps, nothing comes back early)"
        ),
        *endpoint_notes(quota, w, bd),
    ]
    if curve.source == "default":
        notes.append(
            f"no model and no latency_s: assumed {curve.formula} (the seed blog's single-request "
            "Llama 3.3 70B speed); a fast endpoint gives cautious user counts but understates "
            "in-flight concurrency"
        )
    if w.think_time_s is None and w.requests_per_user_per_min is None:
        notes.append(f"think time not given: assumed {fmt(w.effective_think_time_s or 0)} s")
    if quota.rpm is None and quota.endpoint == "runtime":
        notes.append(
            "no RPM quota: Bedrock no longer enforces requests per minute on bedrock-runtime for "
            "most models; pass one where it is still enforced"
        )
    if quota.tpd is None and quota.endpoint == "runtime":
        notes.append("no TPD given: Bedrock's default TPM × 1440 never binds before TPM itself")
    notes.append(
        f"bursts: a full bucket admits {fmt(lim.burst)} requests at the same instant "
        "(AWS's 'concurrent requests'); more simultaneous arrivals are throttled"
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
    if point is not None:
        k = point.extrapolation_factor
        if k is not None:
            notes.append(
                f"extrapolated ×{k:.1f}: the operating point ({fmt(point.inflight)} in flight) "
                f"lies beyond the {fmt(point.measured_max or 0)} in flight measured; predicted "
                "latencies there are model extrapolations and their intervals widen — measure "
                "at that load, or use a calibrated twin (llmcap twin fit)"
            )
        elif point.extrapolated:
            notes.append("the operating point needs prompt sizes outside the measured ones")
        if not point.ttlt_p95_method.startswith("the model"):
            notes.append(
                "p95 TTLT is approximated as p95 TTFT + (output − 1) / p5 tps (the workload's "
                "output length differs from the fitted one; a sum of quantiles, not exact)"
            )
    return notes
