"""The load the options are compared on, replayed through the quota ledger (``capacity.serving
.replay``): a workload's Poisson arrivals at the target's busiest minute, or real traffic's own
requests (a trace or invocation logs, scaled to the target).

Every option's throttle share is a replay of these requests through the quotas it asks, and
the sizes that only a replay can find (Reserved capacity for an overflow target, quotas for a
trace) are searched with ``capacity.serving.smallest_passing``, the search ``size_quota`` uses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from capacity.planning import ReservedSize, Workload, fmt
from capacity.serving import (
    DEFAULT_PROFILE,
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    SERVICE_TIERS,
    MaxTokensPolicy,
    QuotaLimits,
    QuotaRule,
    ReplayResult,
    RequestArrays,
    ServiceTier,
    load_profile,
    poisson_arrivals,
    replay,
    smallest_passing,
    spec_for,
    unloaded_latency_s,
)

__all__ = [
    "SEARCH_TOLERANCE",
    "Demand",
    "poisson_demand",
    "reserved_for_overflow",
    "smallest_scale",
    "traffic_demand",
]

SEARCH_TOLERANCE = 0.005
"""Relative precision of the replay searches (as ``size_quota``'s)."""


@dataclass(frozen=True, eq=False)
class Demand:
    """The requests replayed for one option (module docstring): ``arrays`` of ``model_id``,
    what they are in ``words``, the quota ``rule``, the burndown override and the max_tokens
    policy for requests whose log does not say it."""

    source: Literal["workload", "traffic"]
    model_id: str
    arrays: RequestArrays
    words: str
    rule: QuotaRule
    burndown: float | None = None
    max_tokens: MaxTokensPolicy = "model default"

    def replay(
        self,
        limits: QuotaLimits,
        tier: ServiceTier = "default",
        keep: np.ndarray | None = None,
    ) -> ReplayResult:
        """These requests (those ``keep`` selects), all of ``tier``, through ``limits``."""
        arrays = self.arrays if keep is None else self.arrays.take(keep)
        if tier != "default":
            codes = np.full(len(arrays), SERVICE_TIERS.index(tier), dtype=np.int8)
            arrays = dataclasses.replace(arrays, service_tier=codes)
        return replay(
            arrays, self.model_id, limits, max_tokens=self.max_tokens, burndown=self.burndown
        )

    @property
    def span_s(self) -> float:
        """Seconds from the first arrival to the last (at least a minute)."""
        a = self.arrays.arrival_s
        return max(60.0, float(a.max() - a.min())) if len(a) else 60.0

    def max_tokens_of(self) -> np.ndarray:
        """Each request's max_tokens, the policy's where the log does not say it."""
        mx = self.arrays.max_tokens
        policy = self.max_tokens
        fill = spec_for(self.model_id).max_output_tokens if policy == "model default" else policy
        out: np.ndarray = np.where(mx < 0, fill, mx)
        return out

    def latency_s(self) -> tuple[float, str]:
        """The mean response time of these requests and where it comes from: their logged
        latency, the serving model's unloaded latency where the log has none."""
        lat = self.arrays.latency_s
        known = ~np.isnan(lat)
        if np.all(known):
            return float(lat.mean()), "the traffic's logged latency"
        a = self.arrays
        serving = load_profile(DEFAULT_PROFILE).serving
        prompt = a.input_tokens + a.cache_read_tokens + a.cache_write_tokens
        est = unloaded_latency_s(serving, prompt[~known], a.output_tokens[~known])
        mean = (float(lat[known].sum()) + float(est.sum())) / len(lat)
        unloaded = f"the unloaded latency of serving profile {DEFAULT_PROFILE!r}"
        if not np.any(known):
            return mean, f"{unloaded} (the traffic logs no latency)"
        return mean, (
            f"the traffic's logged latency ({int(known.sum()):,} of {len(lat):,} requests), "
            f"{unloaded} for the rest"
        )

    def busiest_minute(self) -> tuple[float, float, float]:
        """The busiest arrival minute's requests, prompt tokens (input + cache read + cache
        write) and output tokens, each the largest of its own per-minute series."""
        a = self.arrays
        minute = ((a.arrival_s - a.arrival_s.min()) // 60.0).astype(np.int64)
        prompt = a.input_tokens + a.cache_read_tokens + a.cache_write_tokens

        def peak(weights: np.ndarray | None) -> float:
            return float(np.bincount(minute, weights=weights).max())

        return peak(None), peak(prompt.astype(np.float64)), peak(a.output_tokens.astype(float))

    def measured_workload(self) -> Workload:
        """The requests' mean tokens as a planning ``Workload`` (max_tokens: the mean reserved,
        at least the mean output), with their mean latency."""
        a = self.arrays
        out = max(float(a.output_tokens.mean()), 1.0)
        return Workload(
            input_tokens=max(float(a.input_tokens.mean()), 1.0),
            output_tokens=out,
            max_tokens=max(float(self.max_tokens_of().mean()), out),
            cache_read_tokens=float(a.cache_read_tokens.mean()),
            cache_write_tokens=float(a.cache_write_tokens.mean()),
            burndown=self.burndown,
            latency_s=self.latency_s()[0],
        )


def poisson_demand(
    model_id: str,
    workload: Workload,
    peak_requests_per_min: float,
    latency_s: float,
    rule: QuotaRule,
    *,
    minutes: float,
    seed: int = 0,
) -> Demand:
    """Poisson arrivals at ``peak_requests_per_min`` for ``minutes``, each request carrying the
    workload's tokens (rounded to whole tokens) and settling after ``latency_s`` — the load
    ``verify_plan`` replays, at the target's busiest minute."""
    arrivals = poisson_arrivals(peak_requests_per_min, minutes, seed=seed) or [0.0]
    # RequestArrays count seconds from the first request: the windows of rule 'window' start there.
    first = arrivals[0]
    n = len(arrivals)
    w = workload

    def col(x: float) -> np.ndarray:
        return np.full(n, math.floor(x + 0.5), dtype=np.int64)

    arrays = RequestArrays(
        np.asarray(arrivals, dtype=np.float64) - first,
        col(w.input_tokens),
        col(w.cache_read_tokens),
        col(w.cache_write_tokens),
        col(w.output_tokens),
        col(w.max_tokens),
        np.full(n, float(latency_s)),
        np.ones(n, dtype=bool),
    )
    words = (
        f"{n:,} Poisson arrivals at the target's busiest minute ({fmt(peak_requests_per_min)} "
        f"requests/min for {fmt(minutes)} min, seed {seed}), each settling after "
        f"{fmt(latency_s)} s"
    )
    return Demand("workload", model_id, arrays, words, rule, workload.burndown)


def traffic_demand(
    arrays: RequestArrays,
    model_id: str,
    rule: QuotaRule,
    words: str,
    *,
    max_tokens: MaxTokensPolicy = "model default",
    burndown: float | None = None,
) -> Demand:
    """Real traffic's requests of ``model_id`` (``capacity.usage.request_arrays``), as
    ``words`` describe them (scaled to the target, where it was)."""
    return Demand("traffic", model_id, arrays, words, rule, burndown, max_tokens)


def smallest_scale(passes: Callable[[float], bool], guess: float) -> float:
    """The smallest factor (to 0.1 %, within ``SEARCH_TOLERANCE``) at which ``passes`` holds,
    searched as ``size_quota`` searches a quota (a larger factor never fails more)."""
    permille = smallest_passing(
        lambda v: passes(v / 1000.0), max(1, round(1000 * guess)), 0, SEARCH_TOLERANCE
    )
    return permille / 1000.0


def reserved_for_overflow(
    demand: Demand, shape: ReservedSize, rule: QuotaRule, overflow_target: float
) -> tuple[int, int]:
    """Reserved input and output TPM: the smallest scale of ``shape``'s needs (each at least
    AWS's minimum) at which ``demand``, replayed on the Reserved tier, overflows at most
    ``overflow_target`` of its requests to the on-demand quota."""

    def sizes(f: float) -> tuple[int, int]:
        return (
            max(RESERVED_MIN_INPUT_TPM, math.ceil(f * shape.input_need)),
            max(RESERVED_MIN_OUTPUT_TPM, math.ceil(f * shape.output_need)),
        )

    def passes(f: float) -> bool:
        r_in, r_out = sizes(f)
        limits = QuotaLimits(rule=rule, reserved_input_tpm=r_in, reserved_output_tpm=r_out)
        return demand.replay(limits, "reserved").overflow_share <= overflow_target

    return sizes(smallest_scale(passes, 1 - overflow_target))
