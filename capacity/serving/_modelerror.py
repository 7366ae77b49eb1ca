"""The serving model's own error, so that a forecast's 90 % band covers what it says it does.

A twin's coefficient uncertainty (its probe-consistent ensemble) says how far the coefficients
could be off *if the serving model were exact*. It is not: a real engine batches, pages KV and
schedules in ways the step-time model approximates, and the approximation error grows with the
distance from the probe. Two measured terms, per metric family (TTFT, TPOT, TTLT, the
endpoint's throughput), on a log scale:

- **in the probe**: the part of the fit's residuals that the measurement errors do not explain
  (σ_in² = mean(r² − se²), at least the fit's 2 % model floor);
- **beyond it**: leave the probe's heaviest level out, refit on the rest, predict it: the miss
  per unit of log in-flight ratio (k = |miss| / ln(r), measurement variance removed).

A forecast at ``ratio`` times the probe's largest in-flight count then carries a 90 % half-width
(log scale) of √((1.645·σ_in)² + (t·k·ln ratio)²), added in quadrature to the coefficient band,
where t is Student's 95 % quantile with as many degrees of freedom as there were misses: k is
estimated from one or two of them, and a predictive interval from an estimated variance is
that much wider (6.3 for one miss, 2.9 for two). A probe with two load levels cannot leave one
out: its ``basis`` says so and its bands carry the in-probe term only (docs/twin.md, "Bands").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("ttft", "tpot", "ttlt", "system")
Z90 = 1.6449
"""Half-width of a two-sided 90 % band in standard deviations."""

_BY_STAT = {
    "ttft": "ttft",
    "tpot": "tpot",
    "tps": "tpot",
    "gap": "tpot",
    "ttlt": "ttlt",
    "speed": "ttlt",
    "system": "system",
    "output": "system",
}


def family(stat: str) -> str | None:
    """The metric family of a statistic (``ttft_mean`` → ``ttft``, ``tps_p50`` → ``tpot``,
    ``output_tps``/``system_tps`` → ``system``); None outside them (in flight, throttled)."""
    return _BY_STAT.get(stat.split("_", 1)[0])


@dataclass(frozen=True)
class ModelError:
    """Measured model error per metric family (log scale): ``in_probe`` σ and ``per_log_ratio``
    k; ``basis`` says how they were measured (or why the second was not)."""

    in_probe: Mapping[str, float] = field(default_factory=dict)
    per_log_ratio: Mapping[str, float] = field(default_factory=dict)
    basis: str = "not measured"
    floor: float = 0.02
    t90: Mapping[str, float] = field(default_factory=dict)
    """Per family, the 90 % multiplier of the beyond-the-probe term (Student's t, the misses
    it was estimated from as degrees of freedom)."""

    def half_width(self, stat: str, ratio: float) -> float:
        """The 90 % half-width of ``stat``'s log at ``ratio`` × the probe's in-flight count
        (0 for a statistic outside the families)."""
        fam = family(stat)
        if fam is None:
            return 0.0
        inside = Z90 * self.in_probe.get(fam, self.floor)
        k = self.per_log_ratio.get(fam, 0.0)
        beyond = self.t90.get(fam, Z90) * k * math.log(ratio) if ratio > 1 else 0.0
        return math.sqrt(inside**2 + beyond**2)

    def widen(
        self, stat: str, ratio: float, band: tuple[float, float, float]
    ) -> tuple[float, float, float]:
        """``band`` (low, estimate, high) widened by the model error, in quadrature on a log
        scale on each side; non-positive or non-finite values are left as they are."""
        low, est, high = band
        half = self.half_width(stat, ratio)
        if half <= 0 or not all(math.isfinite(v) and v > 0 for v in band):
            return band
        down = math.sqrt(math.log(est / low) ** 2 + half**2)
        up = math.sqrt(math.log(high / est) ** 2 + half**2)
        return (est * math.exp(-down), est, est * math.exp(up))

    def describe(self) -> str:
        """One line: the terms per family and how they were measured."""
        parts = []
        for fam in FAMILIES:
            if fam in self.in_probe or fam in self.per_log_ratio:
                k = self.per_log_ratio.get(fam)
                beyond = "" if k is None else f", +{k:.1%} per e-fold beyond the probe"
                parts.append(f"{fam} {self.in_probe.get(fam, self.floor):.1%}{beyond}")
        terms = "; ".join(parts) or f"{self.floor:.0%} everywhere"
        return f"model error (σ, log scale): {terms} ({self.basis})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "in_probe": dict(self.in_probe),
            "per_log_ratio": dict(self.per_log_ratio),
            "basis": self.basis,
            "floor": self.floor,
            "t90": dict(self.t90),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ModelError:
        """Inverse of ``to_dict``; an absent section is the floor alone, not measured."""
        if not raw:
            return cls()
        return cls(
            in_probe={str(k): float(v) for k, v in raw.get("in_probe", {}).items()},
            per_log_ratio={str(k): float(v) for k, v in raw.get("per_log_ratio", {}).items()},
            basis=str(raw.get("basis", "not measured")),
            floor=float(raw.get("floor", 0.02)),
            t90={str(k): float(v) for k, v in raw.get("t90", {}).items()},
        )


def in_probe_sigma(
    stats: Sequence[str], residuals: Sequence[float], variances: Sequence[float], floor: float
) -> dict[str, float]:
    """Per family, √(floor² + max(0, mean(r² − v))): the fit's misfit beyond its measurement
    errors (``residuals`` r and ``variances`` v of the log statistics, spreads excluded)."""
    out: dict[str, float] = {}
    for fam in FAMILIES:
        pairs = [(r, v) for s, r, v in zip(stats, residuals, variances, strict=True)
                 if family(s) == fam]  # fmt: skip
        if pairs:
            excess = max(0.0, sum(r * r - v for r, v in pairs) / len(pairs))
            out[fam] = math.sqrt(floor**2 + excess)
    return out


def per_log_ratio(
    stats: Sequence[str], misses: Sequence[float], variances: Sequence[float], ratio: float
) -> tuple[dict[str, float], dict[str, int]]:
    """Per family, the held-out level's miss per unit of log in-flight ratio,
    √(max(0, mean(miss² − v))) / ln(ratio), and how many misses it rests on."""
    if ratio <= 1.05:
        return {}, {}
    out: dict[str, float] = {}
    counts: dict[str, int] = {}
    for fam in FAMILIES:
        pairs = [(m, v) for s, m, v in zip(stats, misses, variances, strict=True)
                 if family(s) == fam and math.isfinite(m)]  # fmt: skip
        if pairs:
            excess = max(0.0, sum(m * m - v for m, v in pairs) / len(pairs))
            out[fam] = math.sqrt(excess) / math.log(ratio)
            counts[fam] = len(pairs)
    return out, counts
