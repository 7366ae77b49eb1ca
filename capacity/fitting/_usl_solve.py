"""The numerical core of the USL fit: bounded least squares from several starts.

Residuals are ``λ·s(N)/(1 + σ(N−1) + κN(N−1)) − x`` with ``s(N) = N`` (throughput space) or 1
(per-request space); bounds λ ≥ 0 and 0 ≤ σ, κ ≤ 1 as in R ``usl``; SciPy's trust-region
reflective solver with the analytic Jacobian and Jacobian-based scaling (λ ≈ 10², κ ≈ 10⁻⁴).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize

Space = Literal["per_request", "throughput"]
Floats = npt.NDArray[np.float64]


def denominator(n: Floats, sigma: float, kappa: float) -> Floats:
    """``1 + σ(N − 1) + κN(N − 1)``: the USL's slowdown of one request at concurrency N."""
    return 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)


def design(n: Floats, space: Space) -> tuple[Floats, Floats]:
    """``(N, s(N))``: the concurrency and the multiplier of λ/denominator in ``space``."""
    return (n, n) if space == "throughput" else (n, np.ones_like(n))


def _starts(n: Floats, x: Floats, scale: Floats) -> list[tuple[float, float, float]]:
    """R ``usl``'s start, and one from the linear form ``1/x(N) = a + b(N−1) + cN(N−1)``."""
    rate = x / scale
    starts = [(float(rate.max()), 0.01, 1e-4)]
    a = np.column_stack([np.ones_like(n), n - 1.0, n * (n - 1.0)])
    with np.errstate(divide="ignore"):
        coef, *_ = np.linalg.lstsq(a, 1.0 / rate, rcond=None)
    if coef[0] > 0:
        lam = 1.0 / coef[0]
        starts.append((lam, coef[1] * lam, coef[2] * lam))
    starts.append((float(rate.max()), 0.1, 1e-3))
    return starts


def solve(n: Floats, x: Floats, space: Space, fix_lambda: float | None) -> tuple[Floats, Floats]:
    """Best (λ, σ, κ) over a few starts, and the Jacobian of the residuals there."""
    _, scale = design(n, space)
    eps = 1e-12

    def unpack(p: Floats) -> tuple[float, float, float]:
        if fix_lambda is not None:
            return fix_lambda, float(p[0]), float(p[1])
        return float(p[0]), float(p[1]), float(p[2])

    def residuals(p: Floats) -> Floats:
        lam, s, k = unpack(p)
        return lam * scale / denominator(n, s, k) - x

    def jacobian(p: Floats) -> Floats:
        lam, s, k = unpack(p)
        d = denominator(n, s, k)
        cols = [scale / d, -lam * scale * (n - 1) / d**2, -lam * scale * n * (n - 1) / d**2]
        return np.column_stack(cols[1:] if fix_lambda is not None else cols)

    lower = [0.0, 0.0] if fix_lambda is not None else [0.0, 0.0, 0.0]
    upper = [1.0, 1.0] if fix_lambda is not None else [np.inf, 1.0, 1.0]
    best: Any = None
    for lam0, s0, k0 in _starts(n, x, scale):
        start = [s0, k0] if fix_lambda is not None else [lam0, s0, k0]
        p0 = np.clip(start, np.array(lower) + eps, np.array(upper) - eps)
        res = optimize.least_squares(
            residuals,
            p0,
            jac=jacobian,
            bounds=(lower, upper),
            method="trf",
            x_scale="jac",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
            max_nfev=20_000,
        )
        if best is None or res.cost < best.cost:
            best = res
    lam, s, k = unpack(best.x)
    # trf approaches a bound only asymptotically: snap σ, κ that sit on 0 to exactly 0.
    s, k = (0.0 if v < 1e-12 else v for v in (s, k))
    full = np.array([lam, s, k])
    d = denominator(n, s, k)
    jac = np.column_stack(
        [scale / d, -lam * scale * (n - 1) / d**2, -lam * scale * n * (n - 1) / d**2]
    )
    return full, jac
