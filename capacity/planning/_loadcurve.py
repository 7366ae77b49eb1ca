"""Latency versus in-flight concurrency, and Little's law on it (N = λ·R(N)).

This is the one capacity curve: the planner, ``required_quota``, the fitted model's knees and the
app all read N*, the SLO limit and latencies from it (docs/architecture.md, "One capacity curve").

With a model (any ``Predictor``), the mean response time of the workload at N requests in flight
is R(N) = TTFT_p50(N) + (output_tokens − 1) / tps_p50(N) (medians stand in for means). p95 TTLT
is the model's own TTLT p95 curve when the workload's output length is the one the model was
fitted on (within 5 %); for another length it is approximated as p95 TTFT + (output − 1) /
tps_p5 — a sum of quantiles, said so in ``LoadPoint.ttlt_p95_method``, never passed off as
exact. The model is asked at the full prompt size (input + cache read + cache write tokens); N
below 1 is evaluated at N = 1. Models whose N is an offered level rather than requests in flight
(``concurrency="offered"``) are refused: Little's law needs in-flight counts.

Without a model R is a constant: ``Workload.latency_s`` if given, else the default
R = DEFAULT_TTFT_S + (output_tokens − 1) / DEFAULT_DECODE_TPS — the seed blog's single-request
Llama 3.3 70B figures (0.28 s, 136 tokens/s; docs/architecture.md), i.e. a *fast* endpoint. A fast
endpoint is the cautious choice for quota math: users come back sooner, so each user sends more
requests, giving fewer users per quota and more quota per user. It understates in-flight
concurrency; give ``latency_s`` or a model when concurrency matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from capacity.planning._inputs import PlanInputError, Slo, Workload
from capacity.prediction import Predictor

DEFAULT_TTFT_S = 0.28
DEFAULT_DECODE_TPS = 136.0
MAX_CONCURRENCY = 10_000.0
"""The largest in-flight count searched on a fitted curve (a search limit, never an answer)."""
OUTPUT_MATCH_TOLERANCE = 0.05
"""Use the model's TTLT quantiles when the output length is within 5 % of the fitted one."""

_GRID = tuple(float(n) for n in np.geomspace(1.0, MAX_CONCURRENCY, 241))
_BISECT_STEPS = 60


def fmt(x: float) -> str:
    """A number for a formula: thousands separators, about four significant digits."""
    if abs(x) >= 1e5 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 1000 else f"{x:.4g}"


@dataclass(frozen=True)
class LoadPoint:
    """Predicted performance of the workload at ``inflight`` requests in flight."""

    inflight: float
    latency_s: float
    ttft_p95_s: float
    ttlt_p95_s: float
    tps_p50: float
    tps_p5: float
    extrapolated: bool
    ttlt_p95_method: str
    measured_max: float | None
    """The largest in-flight count the model's evidence covered (None when unknown)."""
    source: str = "the fitted model"
    """What predicted this point (``Prediction.source``)."""

    @property
    def extrapolation_factor(self) -> float | None:
        """N / the largest measured N when beyond it (e.g. 2.3 = "extrapolated ×2.3"), else None."""
        if self.measured_max is None or self.measured_max <= 0:
            return None
        k = self.inflight / self.measured_max
        return k if k > 1 + 1e-9 else None


def _quantile(values: Mapping[float, float], q: float, what: str) -> float:
    for key, value in values.items():
        if abs(float(key) - q) < 1e-6:
            return float(value)
    raise PlanInputError(f"the model's prediction has no {q:g} quantile of {what}")


class LoadCurve:
    """R(N) for one workload, from a ``Predictor`` or a constant (see the module docstring)."""

    def __init__(self, workload: Workload, model: Predictor | None) -> None:
        if model is not None and not getattr(model, "concurrency_is_in_flight", True):
            raise PlanInputError(
                "the model was fitted against the offered level of interval/rate/sequential "
                "sweeps (concurrency='offered': a batch size or rate, not requests in flight); "
                "refit with `llmcap fit` (measured concurrency, the default) to plan with it"
            )
        self.model = model
        self.output_tokens = float(workload.output_tokens)
        self.prompt_tokens = workload.prompt_tokens
        self._points: dict[float, LoadPoint | None] = {}
        self._constant_s = 0.0
        # N* and X* (req/s): where N / R(N) peaks; a constant R never saturates.
        self.n_peak, self.x_peak = math.inf, math.inf
        # The fitted curves are used up to the first N where they stop making sense (a decode
        # speed <= 0 or a non-finite/negative TTFT): the endpoint is saturated beyond it.
        self.n_valid = MAX_CONCURRENCY
        self._grid = _GRID
        if model is not None:
            self.source = "model"
            self.n_valid = self._find_valid_limit()
            unloaded = self.point(1.0)
            self.formula = (
                "R(N) = TTFT_p50(N) + (output - 1) / tps_p50(N), from "
                f"{unloaded.source if unloaded else 'the model'} at "
                f"{fmt(self.prompt_tokens)} prompt tokens"
            )
            self._grid = (*(g for g in _GRID if g < self.n_valid), self.n_valid)
            self.n_peak, self.x_peak = self._find_peak()
        elif workload.latency_s is not None:
            self.source = "workload.latency_s"
            self._constant_s = float(workload.latency_s)
            self.formula = f"R = latency_s = {fmt(self._constant_s)} s"
        else:
            self.source = "default"
            self._constant_s = DEFAULT_TTFT_S + (self.output_tokens - 1) / DEFAULT_DECODE_TPS
            self.formula = (
                f"R = default TTFT + (output - 1) / default tps = {fmt(DEFAULT_TTFT_S)} + "
                f"({fmt(self.output_tokens)} - 1) / {fmt(DEFAULT_DECODE_TPS)} "
                f"= {fmt(self._constant_s)} s"
            )

    def point(self, n: float) -> LoadPoint | None:
        """Predictions at ``n`` in flight, clamped to [1, ``n_valid``] (None without a model)."""
        if self.model is None:
            return None
        hit = self._raw(min(max(float(n), 1.0), self.n_valid))
        assert hit is not None, "the fitted curves are only used where they are valid"
        return hit

    def _raw(self, n: float) -> LoadPoint | None:
        if n not in self._points:
            self._points[n] = self._predict(n)
        return self._points[n]

    def _predict(self, n: float) -> LoadPoint | None:
        assert self.model is not None
        p = self.model.predict(n, self.prompt_tokens)
        ttft50 = _quantile(p.ttft_s, 0.5, "TTFT")
        ttft95 = _quantile(p.ttft_s, 0.95, "TTFT")
        values = (ttft50, ttft95, p.tps_p50, p.tps_p5)
        if not all(math.isfinite(v) for v in values) or min(values) < 0:
            return None
        if p.tps_p50 <= 0 or p.tps_p5 <= 0:
            return None
        decode = self.output_tokens - 1
        ttlt95, method = ttft95 + decode / p.tps_p5, "p95 TTFT + (output − 1) / p5 tps (approx.)"
        fitted_out = p.output_tokens
        if (
            fitted_out is not None
            and abs(fitted_out - self.output_tokens) <= OUTPUT_MATCH_TOLERANCE * fitted_out
            and any(abs(float(q) - 0.95) < 1e-6 for q in p.ttlt_s)
        ):
            ttlt95, method = _quantile(p.ttlt_s, 0.95, "TTLT"), "the model's p95 TTLT curve"
        if not math.isfinite(ttlt95) or ttlt95 < 0:
            return None
        return LoadPoint(
            inflight=n,
            latency_s=ttft50 + decode / p.tps_p50,
            ttft_p95_s=ttft95,
            ttlt_p95_s=ttlt95,
            tps_p50=float(p.tps_p50),
            tps_p5=float(p.tps_p5),
            extrapolated=bool(p.extrapolated),
            ttlt_p95_method=method,
            measured_max=p.measured_concurrency_max,
            source=p.source,
        )

    def _find_valid_limit(self) -> float:
        if self._raw(1.0) is None:
            raise PlanInputError(
                "the model predicts no usable performance even at one request in flight "
                "(a decode speed <= 0 or a non-finite TTFT)"
            )
        lo = 1.0
        for n in _GRID[1:]:
            if self._raw(n) is None:
                return self._bisect(lambda m: self._raw(m) is None, lo, n)
            lo = n
        return MAX_CONCURRENCY

    def latency_s(self, n: float) -> float:
        """Mean response time R at ``n`` requests in flight."""
        point = self.point(n)
        return self._constant_s if point is None else point.latency_s

    def _rate(self, n: float) -> float:
        return n / self.latency_s(n)

    def _find_peak(self) -> tuple[float, float]:
        """(N*, X*): the in-flight count maximising throughput N / R(N), and that rate (req/s)."""
        grid = self._grid
        rates = [self._rate(n) for n in grid]
        i = int(np.argmax(rates))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        golden = (math.sqrt(5) - 1) / 2
        for _ in range(_BISECT_STEPS):  # golden-section search between the grid neighbours
            a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
            if self._rate(a) >= self._rate(b):
                hi = b
            else:
                lo = a
        mid = (lo + hi) / 2
        return max((grid[i], rates[i]), (mid, self._rate(mid)), key=lambda t: t[1])

    def max_rate_per_s(self, n_cap: float) -> float:
        """The largest arrival rate whose steady in-flight count stays ≤ ``n_cap``."""
        if n_cap <= 0:
            return 0.0
        if self.model is not None and n_cap >= self.n_peak:
            return self.x_peak
        return n_cap / self.latency_s(n_cap)

    def inflight_at(self, rate_per_s: float) -> float | None:
        """In-flight N solving N = λ·R(N) (the smallest root); None when λ exceeds the fitted
        endpoint's peak throughput (the queue would grow without bound)."""
        if rate_per_s <= 0:
            return 0.0
        if self.model is None:
            return rate_per_s * self._constant_s
        if rate_per_s > self.x_peak * (1 + 1e-12):
            return None
        if rate_per_s * self.latency_s(1.0) <= 1.0:
            return rate_per_s * self.latency_s(1.0)
        lo = 1.0
        for n in [*(g for g in self._grid if g < self.n_peak), self.n_peak]:
            if n - rate_per_s * self.latency_s(n) >= 0:
                return self._bisect(lambda m: m - rate_per_s * self.latency_s(m) >= 0, lo, n)
            lo = n
        return self.n_peak

    def slo_limit(self, slo: Slo) -> float:
        """The largest in-flight N at which every objective of ``slo`` holds (0 if none)."""
        if self.model is None:
            raise PlanInputError("an Slo can only be checked against a fitted model")
        if not self.meets(slo, 1.0):
            return 0.0
        lo = 1.0
        for n in self._grid[1:]:
            if not self.meets(slo, n):
                return self._bisect(lambda m: not self.meets(slo, m), lo, n)
            lo = n
        return self.n_valid

    def meets(self, slo: Slo, n: float) -> bool:
        """Whether every objective of ``slo`` holds at ``n`` in flight."""
        p = self.point(n)
        assert p is not None
        return (
            (slo.ttft_p95_s is None or p.ttft_p95_s <= slo.ttft_p95_s)
            and (slo.ttlt_p95_s is None or p.ttlt_p95_s <= slo.ttlt_p95_s)
            and (slo.min_tps_p5 is None or p.tps_p5 >= slo.min_tps_p5)
        )

    @staticmethod
    def _bisect(is_high: Callable[[float], bool], lo: float, hi: float) -> float:
        """The boundary in [lo, hi] where ``is_high`` turns true (false at lo, true at hi);
        returns the last point where it is still false."""
        for _ in range(_BISECT_STEPS):
            mid = (lo + hi) / 2
            if is_high(mid):
                hi = mid
            else:
                lo = mid
        return lo


def users_for_rate(rate_per_min: float, workload: Workload, curve: LoadCurve) -> tuple[float, str]:
    """(users, formula) at an average rate: λ·(R + Z), or λ / requests_per_user_per_min.

    R is taken at the average in-flight count (at saturation, at the peak-throughput point).
    """
    if workload.requests_per_user_per_min is not None:
        users = rate_per_min / workload.requests_per_user_per_min
        return users, (
            f"λ / requests_per_user_per_min = {fmt(rate_per_min)} / "
            f"{fmt(workload.requests_per_user_per_min)} = {fmt(users)}"
        )
    think = workload.effective_think_time_s
    assert think is not None
    n = curve.inflight_at(rate_per_min / 60)
    r = curve.latency_s(curve.n_peak if n is None else n)
    users = rate_per_min / 60 * (r + think)
    return users, (
        f"λ/60 × (R + think) = {fmt(rate_per_min)}/60 × ({fmt(r)} + {fmt(think)}) = {fmt(users)}"
    )


def inflight_for_rate(rate_per_min: float, curve: LoadCurve) -> tuple[float, float, bool]:
    """(N, R, saturated): in-flight requests at a rate by Little's law N = λ·R(N). Beyond the
    endpoint's peak throughput the queue has no steady state: N = λ·R(N*) (a lower bound)."""
    n = curve.inflight_at(rate_per_min / 60)
    if n is not None:
        return n, curve.latency_s(n), False
    r = curve.latency_s(curve.n_peak)
    return rate_per_min / 60 * r, r, True
