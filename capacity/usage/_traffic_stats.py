"""The statistics of the traffic analysis: exact percentiles from value counts, token
distributions and per-period rates (docs/traffic.md, "Analysis")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def percentile_of_counts(values: Floats | Ints, counts: Ints, q: float) -> float:
    """The ``q`` quantile (0–1) of the multiset where ``values[i]`` (ascending) occurs
    ``counts[i]`` times: numpy's default linear interpolation, computed without expanding."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    h = (n - 1) * q
    lo = math.floor(h)
    t = h - lo

    def at(k: int) -> float:
        return float(values[int(np.searchsorted(cum, k, side="right"))])

    a, b = at(lo), at(min(lo + 1, n - 1))
    # numpy's _lerp: from the nearer end, so the result is exact at both ends.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


@dataclass(frozen=True)
class Distribution:
    """A token count over served requests: percentiles and a power-of-two histogram
    (``(low, high, requests)`` for the bins [0, 1), [1, 2), [2, 4), …)."""

    count: int
    mean: float
    min: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    histogram: tuple[tuple[int, int, int], ...]

    @classmethod
    def of_counts(cls, values: Ints, counts: Ints) -> Distribution | None:
        """From value counts (None when there are none)."""
        if counts.size == 0 or counts.sum() == 0:
            return None
        order = np.argsort(values, kind="stable")
        v, c = values[order], counts[order]
        bins = np.where(v < 1, 0, np.floor(np.log2(np.maximum(v, 1))).astype(np.int64) + 1)
        hist = np.bincount(bins, weights=c).astype(np.int64)
        edges = [(0 if b == 0 else 2 ** (b - 1), 1 if b == 0 else 2**b) for b in range(hist.size)]
        pct = [percentile_of_counts(v, c, q) for q in (0.5, 0.9, 0.99, 0.999)]
        return cls(
            count=int(c.sum()),
            mean=float((v * c).sum() / c.sum()),
            min=float(v[0]),
            p50=pct[0],
            p90=pct[1],
            p99=pct[2],
            p999=pct[3],
            max=float(v[-1]),
            histogram=tuple((lo, hi, int(n)) for (lo, hi), n in zip(edges, hist, strict=True) if n),
        )


@dataclass(frozen=True)
class RateStats:
    """Rates over consecutive periods of ``period_s`` (empty periods count): requests arrived,
    tokens served (input + cache + output) and quota tokens (the settlement rule)."""

    period_s: int
    periods: int
    mean_requests: float
    peak_requests: float
    mean_tokens: float
    peak_tokens: float
    mean_quota_tokens: float
    peak_quota_tokens: float
    p99_quota_tokens: float
    peak_at: str

    @property
    def peak_to_mean_requests(self) -> float:
        """Busiest period's requests over the mean (1 when empty)."""
        return self.peak_requests / self.mean_requests if self.mean_requests else 1.0

    @property
    def peak_to_mean_tokens(self) -> float:
        """Busiest period's tokens over the mean (1 when empty)."""
        return self.peak_tokens / self.mean_tokens if self.mean_tokens else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields with the two ratios."""
        return {
            **self.__dict__,
            "peak_to_mean_requests": self.peak_to_mean_requests,
            "peak_to_mean_tokens": self.peak_to_mean_tokens,
        }
