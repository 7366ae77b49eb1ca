"""Growth trend and exhaustion forecast: when does the busiest minute reach a share of the quota?

Two robust linear fits in log space (statsmodels RLM, Huber's T, so one anomalous day — a surge
that ran into the quota — does not bend them), t in days:

- traffic growth, on each whole day's total quota tokens: ``exp(b) − 1`` is the compound growth
  per day, with its confidence interval;
- the busiest minute, on each day's p99 minute TPM. It grows a little more slowly than the
  traffic (a percentile of Poisson-noisy minutes carries relative noise that shrinks as the rate
  grows), so it is fitted on its own rather than scaled from the traffic.

The crossing day of ``threshold × quota`` is where the p99 trend reaches it; its interval is where
the band around that trend crosses the line — the confidence band of the fitted mean widened by
the fit's robust residual scale, since a single day's p99 is what crosses — the upper band first
(earliest date), the lower band last (latest date; None when it does not cross within the
horizon, e.g. when growth may be zero). statsmodels is imported when a fit runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Forecast:
    """A growth fit and, when a quota is known, the date the trend reaches ``threshold`` of it."""

    n_days: int
    first_day: date
    level_today: float
    growth_per_day: float
    growth_ci: tuple[float, float]
    peak_growth_per_day: float
    doubling_days: float | None
    r_squared: float
    confidence: float
    threshold: float
    quota: float | None
    threshold_tpm: float | None
    crossing: date | None
    crossing_interval: tuple[date | None, date | None]
    already_above: bool
    horizon_days: int

    def traffic_growth(self) -> str:
        """The traffic's compound growth per day (the fit on daily totals) with its interval:
        ``+3.0%/day (95% interval +2.9% to +3.1%)``."""
        lo, hi = self.growth_ci
        return (
            f"{self.growth_per_day:+.1%}/day ({self.confidence:.0%} interval {lo:+.1%} to "
            f"{hi:+.1%})"
        )

    def peak_trend(self) -> str:
        """The p99 minute's trend per day, ``+2.8%/day``: the rate the crossing date is computed
        on, as both the statement and the forecast figure's legend say it."""
        return f"{self.peak_growth_per_day:+.1%}/day"

    def statement(self) -> str:
        """One sentence: the forecast as a planner would say it. The p99 minute's trend (which
        dates the crossing) and the traffic's growth are two fits, named apart."""
        trend = f"its trend of {self.peak_trend()}"
        traffic = f"traffic grows {self.traffic_growth()}"
        if self.quota is None or self.threshold_tpm is None:
            return f"p99 minute on {trend}; {traffic}; no quota known, so no exhaustion date"
        share = f"{self.threshold:.0%} of the quota ({self.threshold_tpm:,.0f} TPM)"
        if self.already_above:
            return f"p99 minute is already above {share} ({trend}); {traffic}"
        lo, hi = self.crossing_interval
        if self.crossing is None:
            if lo is None:
                return (
                    f"p99 minute does not reach {share} within {self.horizon_days} days on "
                    f"{trend}; {traffic}"
                )
            return (
                f"p99 minute reaches {share} no earlier than {lo.isoformat()} "
                f"({self.confidence:.0%} interval; {trend} does not reach it within "
                f"{self.horizon_days} days); {traffic}"
            )
        upper = hi.isoformat() if hi is not None else f"beyond {self.horizon_days} days"
        low = lo.isoformat() if lo is not None else "?"
        return (
            f"p99 minute reaches {share} on {self.crossing.isoformat()} on {trend} "
            f"({self.confidence:.0%} interval {low} to {upper}); {traffic}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        lo, hi = self.crossing_interval
        return {
            "n_days": self.n_days, "first_day": self.first_day.isoformat(),
            "level_today": self.level_today, "growth_per_day": self.growth_per_day,
            "growth_ci": list(self.growth_ci),
            "peak_growth_per_day": self.peak_growth_per_day, "doubling_days": self.doubling_days,
            "r_squared": self.r_squared, "confidence": self.confidence,
            "threshold": self.threshold, "quota": self.quota,
            "threshold_tpm": self.threshold_tpm,
            "crossing": None if self.crossing is None else self.crossing.isoformat(),
            "crossing_interval": [None if d is None else d.isoformat() for d in (lo, hi)],
            "already_above": self.already_above, "horizon_days": self.horizon_days,
            "statement": self.statement(),
        }  # fmt: skip


@dataclass(frozen=True)
class GrowthFit:
    """The fit of ``log y = a + b·t``: coefficients, their covariance, residual dof, R² and the
    robust residual ``scale`` (log units)."""

    a: float
    b: float
    cov: np.ndarray
    df_resid: float
    r_squared: float
    scale: float = 0.0

    def band(
        self, t: np.ndarray, confidence: float, scatter: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted log level at ``t`` and the lower/upper band: the confidence band of the mean,
        widened by a day-to-day ``scatter`` (standard deviation, log scale) when given."""
        from scipy import stats

        x = np.column_stack([np.ones_like(t), t])
        mean = self.a + self.b * t
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.cov, x) + scatter**2)
        q = float(stats.t.ppf(0.5 + confidence / 2, self.df_resid))
        return mean, mean - q * se, mean + q * se


def fit_growth(t_days: np.ndarray, level: np.ndarray) -> GrowthFit:
    """Robust linear fit of ``log(level)`` on ``t_days`` (statsmodels RLM, Huber's T), so one
    anomalous day — a surge that ran into the quota — does not bend the trend. Needs ≥ 3
    positive points. ``r_squared`` is that of the fitted line on all points."""
    import statsmodels.api as sm

    keep = level > 0
    if keep.sum() < 3:
        raise ValueError("a growth trend needs at least 3 days with traffic")
    t = np.asarray(t_days, float)[keep]
    y = np.log(np.asarray(level, float)[keep])
    res = sm.RLM(y, sm.add_constant(t), M=sm.robust.norms.HuberT()).fit()
    a, b = (float(v) for v in res.params)
    resid = y - (a + b * t)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else 0.0
    return GrowthFit(a, b, np.asarray(res.cov_params()), float(res.df_resid), r2, float(res.scale))


def forecast_exhaustion(
    days: list[date],
    daily_total: np.ndarray,
    daily_p99: np.ndarray,
    quota: float | None,
    *,
    threshold: float = 0.8,
    confidence: float = 0.95,
    horizon_days: int = 365,
) -> Forecast:
    """Fit the growth of ``daily_total`` (quota tokens per day, one value per day in ``days``)
    and the trend of ``daily_p99`` (the p99 minute TPM of each day), and find when that trend
    reaches ``threshold × quota``."""
    from scipy import stats

    t = np.array([(d - days[0]).days for d in days], float)
    traffic = fit_growth(t, np.asarray(daily_total, float))
    peak = fit_growth(t, np.asarray(daily_p99, float))
    q = float(stats.t.ppf(0.5 + confidence / 2, traffic.df_resid))
    se_b = math.sqrt(float(traffic.cov[1, 1]))
    growth = math.expm1(traffic.b)
    growth_ci = (math.expm1(traffic.b - q * se_b), math.expm1(traffic.b + q * se_b))
    doubling = math.log(2) / traffic.b if traffic.b > 0 else None
    t_last = float(t[-1])
    level_today = math.exp(peak.a + peak.b * t_last)
    base: dict[str, Any] = dict(
        n_days=len(days), first_day=days[0], level_today=level_today, growth_per_day=growth,
        growth_ci=growth_ci, peak_growth_per_day=math.expm1(peak.b), doubling_days=doubling,
        r_squared=traffic.r_squared, confidence=confidence, threshold=threshold, quota=quota,
        horizon_days=horizon_days,
    )  # fmt: skip
    if quota is None:
        return Forecast(
            **base, threshold_tpm=None, crossing=None, crossing_interval=(None, None),
            already_above=False,
        )  # fmt: skip
    target = math.log(threshold * quota)
    grid = np.arange(0.0, horizon_days + 1e-9, 0.25) + t_last
    mean, lower, upper = peak.band(grid, confidence, peak.scale)

    def first(curve: np.ndarray) -> date | None:
        hit = np.nonzero(curve >= target)[0]
        return None if hit.size == 0 else days[0] + timedelta(days=math.ceil(grid[hit[0]]))

    already = bool(mean[0] >= target)
    crossing = None
    if peak.b > 0 and not already:
        t_star = (target - peak.a) / peak.b
        if t_star <= t_last + horizon_days:
            crossing = days[0] + timedelta(days=math.ceil(t_star))
    return Forecast(
        **base, threshold_tpm=threshold * quota, crossing=crossing,
        crossing_interval=(first(upper), first(lower)), already_above=already,
    )  # fmt: skip
