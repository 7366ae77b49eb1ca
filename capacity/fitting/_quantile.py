"""Latency quantile curves: the q-quantile of a per-request metric as a polynomial in N.

Point estimates are quantile regressions on per-request rows (statsmodels ``QuantReg``, design
``1, N, N²`` — lower degree with fewer levels). For speed, each level contributes at most
``max_rows_per_level`` rows, a seeded random subsample; the per-level empirical quantiles
reported alongside use every row.

Intervals come from a bootstrap that resamples requests within levels. Refitting ``QuantReg``
hundreds of times is too slow for million-row sweeps, so each replicate is refitted by the
minimum-distance estimator on the per-level sample quantiles (weighted by their bootstrap
precision) — asymptotically equivalent to quantile regression when the regressor takes few
values (Chamberlain 1994) — and the replicate deviations are centred on the ``QuantReg`` fit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.regression.quantile_regression import QuantReg

from capacity._jsonio import dec, dec_all, enc, enc_all, need
from capacity.errors import FitError

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class QuantileCurve:
    """The ``q``-quantile of ``metric`` vs concurrency: ``Σ coef[i]·(N/n_scale)^i``.

    ``cov``/``coef_low``/``coef_high`` are the bootstrap covariance and percentile intervals of
    the coefficients at ``level``; ``levels``/``level_values``/``level_rows`` are the measured
    concurrencies, the empirical quantile at each (all rows) and its row count.
    """

    metric: str
    q: float
    coef: tuple[float, ...]
    n_scale: float
    cov: tuple[tuple[float, ...], ...]
    coef_low: tuple[float, ...]
    coef_high: tuple[float, ...]
    level: float
    levels: tuple[float, ...]
    level_values: tuple[float, ...]
    level_rows: tuple[int, ...]
    n_rows: int
    n_boot: int
    notes: tuple[str, ...] = ()

    def _basis(self, n: Floats) -> Floats:
        return np.vander(n / self.n_scale, len(self.coef), increasing=True)

    @overload
    def predict(self, n: float) -> float: ...
    @overload
    def predict(self, n: Sequence[float] | Floats) -> Floats: ...
    def predict(self, n: float | Sequence[float] | Floats) -> float | Floats:
        """The fitted quantile at concurrency ``n``."""
        arr = np.asarray(n, dtype=np.float64)
        out = self._basis(arr.reshape(-1)) @ np.asarray(self.coef)
        return float(out[0]) if arr.ndim == 0 else out.reshape(arr.shape)

    def slope(self, n: float) -> float:
        """d(quantile)/dN at ``n``."""
        t = float(n) / self.n_scale
        return sum(i * c * t ** (i - 1) for i, c in enumerate(self.coef) if i) / self.n_scale

    def interval(self, n: float) -> tuple[float, float]:
        """Pointwise bootstrap interval of the fitted quantile at ``n`` (normal, at ``level``)."""
        x = self._basis(np.array([float(n)]))[0]
        sd = math.sqrt(max(float(x @ np.asarray(self.cov) @ x), 0.0))
        z = float(stats.norm.ppf(0.5 + self.level / 2))
        mid = self.predict(float(n))
        return (mid - z * sd, mid + z * sd)

    @property
    def n_max(self) -> float:
        """The largest measured concurrency."""
        return max(self.levels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_dict`` reads back exactly."""
        return {
            "metric": self.metric,
            "q": enc(self.q),
            "coef": enc_all(self.coef),
            "n_scale": enc(self.n_scale),
            "cov": [enc_all(r) for r in self.cov],
            "coef_low": enc_all(self.coef_low),
            "coef_high": enc_all(self.coef_high),
            "level": enc(self.level),
            "levels": enc_all(self.levels),
            "level_values": enc_all(self.level_values),
            "level_rows": list(self.level_rows),
            "n_rows": self.n_rows,
            "n_boot": self.n_boot,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "curve") -> QuantileCurve:
        """The inverse of ``to_dict``; raises ``ModelFileError`` naming a bad field."""

        def floats(key: str) -> tuple[float, ...]:
            return dec_all(need(doc, key, where), f"{where}.{key}")

        return cls(
            metric=str(need(doc, "metric", where)),
            q=dec(need(doc, "q", where), f"{where}.q"),
            coef=floats("coef"),
            n_scale=dec(need(doc, "n_scale", where), f"{where}.n_scale"),
            cov=tuple(dec_all(r, f"{where}.cov") for r in need(doc, "cov", where)),
            coef_low=floats("coef_low"),
            coef_high=floats("coef_high"),
            level=dec(need(doc, "level", where), f"{where}.level"),
            levels=floats("levels"),
            level_values=floats("level_values"),
            level_rows=tuple(int(v) for v in need(doc, "level_rows", where)),
            n_rows=int(need(doc, "n_rows", where)),
            n_boot=int(need(doc, "n_boot", where)),
            notes=tuple(str(v) for v in need(doc, "notes", where)),
        )


def _quantreg(y: Floats, x: Floats, q: float) -> tuple[Floats, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params = QuantReg(y, x).fit(q=q, max_iter=5000, p_tol=1e-8).params
    notes = sorted({f"QuantReg q={q:g}: {w.message}" for w in caught})
    return np.asarray(params, dtype=np.float64), notes


def fit_quantile_curves(
    n: npt.ArrayLike,
    y: npt.ArrayLike,
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
    *,
    metric: str,
    degree: int = 2,
    n_boot: int = 200,
    max_rows_per_level: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[QuantileCurve, ...]:
    """Quantile curves of per-request values ``y`` against their level's concurrency ``n``.

    Rows with a non-finite ``n`` or ``y`` are ignored (failed requests). Returns one curve per
    quantile, in the order given. Raises ``FitError`` when no finite rows remain.
    """
    n_arr, y_arr = np.asarray(n, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    keep = np.isfinite(n_arr) & np.isfinite(y_arr)
    if not keep.any():
        raise FitError(f"no finite {metric} values to fit: are there ok requests?")
    qs = np.asarray(quantiles, dtype=np.float64)
    if np.any((qs <= 0) | (qs >= 1)):
        raise FitError(f"quantiles must lie in (0, 1), got {list(quantiles)}")
    levels, inverse = np.unique(n_arr[keep], return_inverse=True)
    y_kept = y_arr[keep]
    rng = np.random.default_rng(seed)
    groups = [y_kept[inverse == k] for k in range(levels.size)]
    subs = [
        g if g.size <= max_rows_per_level else rng.choice(g, max_rows_per_level, replace=False)
        for g in groups
    ]
    deg = max(0, min(degree, levels.size - 1))
    scale = float(levels.max())
    x_sub = np.vander(np.repeat(levels / scale, [s.size for s in subs]), deg + 1, increasing=True)
    y_sub = np.concatenate(subs)
    x_levels = np.vander(levels / scale, deg + 1, increasing=True)
    empirical = np.array([np.quantile(g, qs) for g in groups]).T  # (len(qs), K)
    boot = _bootstrap_cells(subs, qs, n_boot, rng)  # (len(qs), K, B)
    curves = []
    for j, q in enumerate(qs):
        coef, notes = _quantreg(y_sub, x_sub, float(q))
        cov, low, high = _intervals(coef, x_levels, subs, float(q), boot[j], level)
        curves.append(
            QuantileCurve(
                metric=metric,
                q=float(q),
                coef=tuple(map(float, coef)),
                n_scale=scale,
                cov=tuple(tuple(map(float, r)) for r in cov),
                coef_low=tuple(map(float, low)),
                coef_high=tuple(map(float, high)),
                level=level,
                levels=tuple(map(float, levels)),
                level_values=tuple(map(float, empirical[j])),
                level_rows=tuple(int(g.size) for g in groups),
                n_rows=int(y_sub.size),
                n_boot=n_boot,
                notes=tuple(notes),
            )
        )
    return tuple(curves)


def _bootstrap_cells(
    subs: list[Floats], qs: Floats, n_boot: int, rng: np.random.Generator
) -> Floats:
    """Sample quantiles of each level's resampled rows: shape (len(qs), levels, n_boot)."""
    out = np.empty((qs.size, len(subs), n_boot))
    for k, rows in enumerate(subs):
        if n_boot == 0:
            continue
        draws = rows[rng.integers(0, rows.size, size=(n_boot, rows.size))]
        out[:, k, :] = np.quantile(draws, qs, axis=1)
    return out


def _intervals(
    coef: Floats, x_levels: Floats, subs: list[Floats], q: float, boot: Floats, level: float
) -> tuple[Floats, Floats, Floats]:
    """Bootstrap covariance and percentile interval of the coefficients (see module doc)."""
    p = coef.size
    if boot.shape[1] == 0 or boot.shape[-1] < 2:
        nan = np.full(p, np.nan)
        return np.full((p, p), np.nan), nan, nan
    var = boot.var(axis=1, ddof=1)
    floor = max(float(var.max()) * 1e-9, 1e-300)
    w = 1.0 / np.maximum(var, floor)
    a = x_levels.T @ (w[:, None] * x_levels)
    cells = np.array([np.quantile(s, q) for s in subs])
    centre = np.linalg.lstsq(a, x_levels.T @ (w * cells), rcond=None)[0]
    reps = np.linalg.lstsq(a, x_levels.T @ (w[:, None] * boot), rcond=None)[0]  # (p, B)
    delta = reps - centre[:, None]
    cov = np.atleast_2d(np.cov(delta))
    alpha = (1 - level) / 2
    low, high = np.percentile(delta, [100 * alpha, 100 * (1 - alpha)], axis=1)
    return cov, coef + low, coef + high
