"""The Universal Scalability Law, fitted by bounded nonlinear least squares (docs/architecture.md).

``X(N) = λN / (1 + σ(N − 1) + κN(N − 1))``. ``space="per_request"`` fits the per-request rate
``x(N) = X(N)/N`` (e.g. median decode tokens/s per request), which weights levels evenly — the
recommended space for LLM sweeps, whose noise in X grows with N. ``space="throughput"`` is the
classic fit on X(N); it reproduces the R package ``usl`` (``nlsr::nlxb``, bounds λ ≥ 0,
0 ≤ σ, κ ≤ 1, standard errors √(diag((JᵀJ)⁻¹)·RSS/dof)) on its published examples.

Intervals are two-sided Student-t with the residual degrees of freedom. (R's ``confint`` uses
``qt(level, n − 1)``, a narrower one-sided quantile; the estimates and standard errors agree.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import stats

from capacity._jsonio import dec, dec_all, enc, enc_all, need
from capacity.errors import FitError
from capacity.fitting._usl_solve import Space, denominator, design, solve

Floats = npt.NDArray[np.float64]
EXTRAPOLATION_LIMIT = 1.5
"""Predictions beyond this multiple of the largest measured N are flagged as extrapolation."""
MIN_LEVELS = 6
"""Fewer measured levels than this leave σ and κ poorly determined (a warning)."""


@dataclass(frozen=True)
class UslFit:
    """A fitted USL curve with standard errors, intervals, fit quality and warnings.

    ``n``/``x`` are the fitted data (x in ``space``); ``cov`` is the covariance of
    (λ, σ, κ); intervals are ``estimate ± t_quantile · se`` at ``level``.
    """

    lam: float
    sigma: float
    kappa: float
    lam_se: float
    sigma_se: float
    kappa_se: float
    cov: tuple[tuple[float, ...], ...]
    level: float
    t_quantile: float
    r2: float
    dof: int
    rss: float
    space: Space
    n: tuple[float, ...]
    x: tuple[float, ...]
    lambda_fixed: bool
    warnings: tuple[str, ...]

    def _ci(self, value: float, se: float) -> tuple[float, float]:
        half = self.t_quantile * se
        return (value - half, value + half)

    @property
    def lam_ci(self) -> tuple[float, float]:
        """Confidence interval of λ (the single-request rate)."""
        return self._ci(self.lam, self.lam_se)

    @property
    def sigma_ci(self) -> tuple[float, float]:
        """Confidence interval of σ (contention)."""
        return self._ci(self.sigma, self.sigma_se)

    @property
    def kappa_ci(self) -> tuple[float, float]:
        """Confidence interval of κ (coherency)."""
        return self._ci(self.kappa, self.kappa_se)

    @property
    def n_max(self) -> float:
        """The largest measured concurrency."""
        return max(self.n)

    @overload
    def throughput(self, n: float) -> float: ...
    @overload
    def throughput(self, n: Sequence[float] | Floats) -> Floats: ...
    def throughput(self, n: float | Sequence[float] | Floats) -> float | Floats:
        """System throughput ``X(N)``."""
        arr = np.asarray(n, dtype=np.float64)
        out = self.lam * arr / denominator(arr, self.sigma, self.kappa)
        return float(out) if arr.ndim == 0 else out

    @overload
    def per_request(self, n: float) -> float: ...
    @overload
    def per_request(self, n: Sequence[float] | Floats) -> Floats: ...
    def per_request(self, n: float | Sequence[float] | Floats) -> float | Floats:
        """Per-request rate ``x(N) = X(N)/N``."""
        arr = np.asarray(n, dtype=np.float64)
        out = self.lam / denominator(arr, self.sigma, self.kappa)
        return float(out) if arr.ndim == 0 else out

    @overload
    def predict(self, n: float) -> float: ...
    @overload
    def predict(self, n: Sequence[float] | Floats) -> Floats: ...
    def predict(self, n: float | Sequence[float] | Floats) -> float | Floats:
        """The fitted quantity at ``n``, in the fit's ``space`` (the units of ``x``)."""
        return self.throughput(n) if self.space == "throughput" else self.per_request(n)

    @overload
    def efficiency(self, n: float) -> float: ...
    @overload
    def efficiency(self, n: Sequence[float] | Floats) -> Floats: ...
    def efficiency(self, n: float | Sequence[float] | Floats) -> float | Floats:
        """``X(N) / (λN)``: 1 at N = 1, falling with contention and coherency."""
        arr = np.asarray(n, dtype=np.float64)
        out = 1.0 / denominator(arr, self.sigma, self.kappa)
        return float(out) if arr.ndim == 0 else out

    def peak_concurrency(self) -> float:
        """``N* = √((1 − σ)/κ)``, where throughput peaks (inf when κ = 0)."""
        return math.sqrt((1.0 - self.sigma) / self.kappa) if self.kappa > 0 else math.inf

    def peak_throughput(self) -> float:
        """``X(N*)``, or the Amdahl ceiling ``λ/σ`` when κ = 0 (inf if σ = 0 too)."""
        if self.kappa > 0:
            return self.throughput(self.peak_concurrency())
        return self.lam / self.sigma if self.sigma > 0 else math.inf

    def concurrency_at_efficiency(self, efficiency: float) -> float:
        """The N at which ``efficiency(N)`` falls to ``efficiency`` (0 < e ≤ 1)."""
        if not 0 < efficiency <= 1:
            raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
        s, k, target = self.sigma, self.kappa, 1.0 / efficiency
        if k == 0:
            return 1.0 + (target - 1.0) / s if s > 0 else math.inf
        b, c = s - k, 1.0 - s - target
        return (-b + math.sqrt(b * b - 4.0 * k * c)) / (2.0 * k)

    def check(self, n: float) -> tuple[str, ...]:
        """Warnings for a prediction at ``n`` (extrapolation beyond 1.5 × the largest N)."""
        if n > EXTRAPOLATION_LIMIT * self.n_max:
            return (
                f"N = {n:.3g} is {n / self.n_max:.1f}× the largest measured N ({self.n_max:.3g}): "
                f"beyond the {EXTRAPOLATION_LIMIT}× extrapolation limit",
            )
        return ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_dict`` reads back exactly."""
        return {
            "lam": enc(self.lam),
            "sigma": enc(self.sigma),
            "kappa": enc(self.kappa),
            "lam_se": enc(self.lam_se),
            "sigma_se": enc(self.sigma_se),
            "kappa_se": enc(self.kappa_se),
            "cov": [enc_all(row) for row in self.cov],
            "level": enc(self.level),
            "t_quantile": enc(self.t_quantile),
            "r2": enc(self.r2),
            "dof": self.dof,
            "rss": enc(self.rss),
            "space": self.space,
            "n": enc_all(self.n),
            "x": enc_all(self.x),
            "lambda_fixed": self.lambda_fixed,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "usl") -> UslFit:
        """The inverse of ``to_dict``; raises ``ModelFileError`` naming a bad field."""
        f = {
            k: dec(need(doc, k, where), f"{where}.{k}")
            for k in (
                "lam",
                "sigma",
                "kappa",
                "lam_se",
                "sigma_se",
                "kappa_se",
                "level",
                "t_quantile",
                "r2",
                "rss",
            )
        }
        space = need(doc, "space", where)
        if space not in ("per_request", "throughput"):
            raise FitError(f"{where}.space must be per_request or throughput, got {space!r}")
        cov = need(doc, "cov", where)
        return cls(
            **f,
            cov=tuple(dec_all(row, f"{where}.cov") for row in cov),
            dof=int(need(doc, "dof", where)),
            space=space,
            n=dec_all(need(doc, "n", where), f"{where}.n"),
            x=dec_all(need(doc, "x", where), f"{where}.x"),
            lambda_fixed=bool(need(doc, "lambda_fixed", where)),
            warnings=tuple(str(w) for w in need(doc, "warnings", where)),
        )


def fit_usl(
    n: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    space: Space = "per_request",
    fix_lambda: float | None = None,
    level: float = 0.95,
) -> UslFit:
    """Fit the USL to concurrencies ``n`` and observations ``x``.

    ``x`` is the per-request rate X/N when ``space="per_request"`` (default) and the system
    throughput X when ``space="throughput"``. ``fix_lambda`` fixes λ (e.g. to the measured
    single-request rate) and fits σ and κ only. Raises ``FitError`` for unusable data.
    """
    n_arr = np.asarray(n, dtype=np.float64).ravel()
    x_arr = np.asarray(x, dtype=np.float64).ravel()
    if n_arr.size != x_arr.size:
        raise FitError(f"n and x differ in length ({n_arr.size} vs {x_arr.size})")
    if not (np.all(np.isfinite(n_arr)) and np.all(np.isfinite(x_arr))):
        raise FitError("n and x must be finite: drop levels without ok requests")
    if np.any(n_arr <= 0) or np.any(x_arr < 0):
        raise FitError("concurrency must be > 0 and the observed rate ≥ 0")
    p = 2 if fix_lambda is not None else 3
    distinct = np.unique(n_arr).size
    if distinct < p:
        raise FitError(
            f"the USL needs at least {p} distinct concurrency levels, got {distinct}: "
            f"measure more levels (6–8 recommended)"
        )
    if fix_lambda is not None and not (math.isfinite(fix_lambda) and fix_lambda > 0):
        raise FitError(f"fix_lambda must be a positive number, got {fix_lambda}")
    theta, jac = solve(n_arr, x_arr, space, fix_lambda)
    free = jac[:, 1:] if fix_lambda is not None else jac
    resid = x_arr - (theta[0] * design(n_arr, space)[1] / denominator(n_arr, *theta[1:]))
    rss = float(resid @ resid)
    dof = n_arr.size - p
    cov = np.full((3, 3), np.nan)
    if dof > 0:
        try:
            inner = np.linalg.inv(free.T @ free) * (rss / dof)
        except np.linalg.LinAlgError:
            inner = np.full((p, p), np.nan)
        sl = slice(1, 3) if fix_lambda is not None else slice(0, 3)
        cov[sl, sl] = inner
    if fix_lambda is not None:
        cov[0, :] = cov[:, 0] = 0.0
    se = np.sqrt(np.abs(np.diag(cov)))
    t_q = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.nan
    tss = float(np.sum((x_arr - x_arr.mean()) ** 2))
    fit = UslFit(
        lam=float(theta[0]),
        sigma=float(theta[1]),
        kappa=float(theta[2]),
        lam_se=float(se[0]),
        sigma_se=float(se[1]),
        kappa_se=float(se[2]),
        cov=tuple(tuple(float(v) for v in row) for row in cov),
        level=level,
        t_quantile=t_q,
        r2=1.0 - rss / tss if tss > 0 else math.nan,
        dof=dof,
        rss=rss,
        space=space,
        n=tuple(float(v) for v in n_arr),
        x=tuple(float(v) for v in x_arr),
        lambda_fixed=fix_lambda is not None,
        warnings=(),
    )
    return _with_warnings(fit)


def _with_warnings(fit: UslFit) -> UslFit:
    out: list[str] = []
    levels = len(set(fit.n))
    if levels < MIN_LEVELS:
        out.append(
            f"only {levels} levels: σ and κ are poorly determined below {MIN_LEVELS} "
            "(measure 6–8 levels, with replicates)"
        )
    if fit.dof <= 0:
        out.append("no residual degrees of freedom: standard errors and intervals are undefined")
    for name, value in (("σ", fit.sigma), ("κ", fit.kappa)):
        if value <= 1e-12:
            out.append(
                f"{name} = 0 at its lower bound: the data show no {name} effect (or a "
                "superlinear one); its interval ignores the bound"
            )
        elif value >= 1 - 1e-12:
            out.append(f"{name} = 1 at its upper bound: the fit is degenerate")
    lo, hi = fit.kappa_ci
    if fit.kappa > 1e-12 and lo <= 0 <= hi:
        pct = f"{fit.level:.0%}"
        out.append(
            f"κ's {pct} interval [{lo:.3g}, {hi:.3g}] contains 0: no retrograde effect "
            "is resolved, so the peak N* is not identified"
        )
    peak = fit.peak_concurrency()
    if math.isinf(peak):
        out.append("κ = 0: no throughput peak (X rises to the Amdahl ceiling λ/σ)")
    elif peak > EXTRAPOLATION_LIMIT * fit.n_max:
        out.append(
            f"the peak N* = {peak:.0f} is {peak / fit.n_max:.1f}× the largest measured N "
            f"({fit.n_max:.3g}): an extrapolation"
        )
    return UslFit(**{**fit.__dict__, "warnings": tuple(out)})
