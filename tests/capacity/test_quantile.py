"""Latency quantile curves recover known quantiles, with honest bootstrap intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from capacity.errors import FitError
from capacity.fitting import QuantileCurve, fit_quantile_curves

LEVELS = np.array([1, 5, 10, 20, 30, 40, 50], dtype=float)


def sample(per_level: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """TTFT = 0.3 + 0.002N + 1e-5N² + Exp(scale 0.05 + 0.001N): every quantile is quadratic."""
    rng = np.random.default_rng(seed)
    n = np.repeat(LEVELS, per_level)
    y = 0.3 + 0.002 * n + 1e-5 * n**2 + (0.05 + 0.001 * n) * rng.exponential(1.0, n.size)
    return n, y


def true_quantile(n: np.ndarray, q: float) -> np.ndarray:
    return 0.3 + 0.002 * n + 1e-5 * n**2 - (0.05 + 0.001 * n) * math.log(1 - q)


def test_recovers_known_quantiles_within_bootstrap_intervals() -> None:
    n, y = sample(2000, seed=3)
    curves = fit_quantile_curves(n, y, (0.5, 0.95, 0.99), metric="ttft_s", n_boot=200)
    assert [c.q for c in curves] == [0.5, 0.95, 0.99]
    for c in curves:
        truth = true_quantile(LEVELS, c.q)
        assert np.allclose(c.predict(LEVELS), truth, rtol=0.06), c.q
        inside = [lo <= t <= hi for t, (lo, hi) in zip(truth, map(c.interval, LEVELS), strict=True)]
        assert sum(inside) >= len(LEVELS) - 2, (c.q, inside)
        assert all(lo <= b <= hi for b, lo, hi in zip(c.coef, c.coef_low, c.coef_high, strict=True))
        assert c.n_rows == 7 * 1000 and c.level_rows == (2000,) * 7  # subsampled per level
        assert np.allclose(c.level_values, [np.quantile(y[n == v], c.q) for v in LEVELS])


def test_intervals_cover_the_truth_about_as_often_as_they_claim() -> None:
    hits = total = 0
    for seed in range(12):
        n, y = sample(400, seed)
        (c,) = fit_quantile_curves(n, y, (0.9,), metric="ttft_s", n_boot=150, seed=seed)
        for v in (5.0, 25.0, 45.0):
            lo, hi = c.interval(v)
            hits += lo <= true_quantile(np.array([v]), 0.9)[0] <= hi
            total += 1
    assert hits / total >= 0.75


def test_degree_drops_with_few_levels_and_nan_rows_are_ignored() -> None:
    n = np.array([1.0, 1, 1, 10, 10, 10, np.nan])
    y = np.array([0.3, 0.31, 0.32, 0.5, 0.52, 0.51, 0.4])
    (c,) = fit_quantile_curves(n, np.append(y[:-1], np.nan), (0.5,), metric="ttft_s", n_boot=50)
    assert len(c.coef) == 2  # two levels: a line
    assert c.predict(1.0) == pytest.approx(0.31, abs=0.011)
    assert c.predict(10.0) == pytest.approx(0.51, abs=0.011)
    (flat,) = fit_quantile_curves([5.0] * 4, [1.0, 2.0, 3.0, 4.0], (0.5,), metric="x", n_boot=0)
    assert len(flat.coef) == 1 and math.isnan(flat.coef_low[0])


def test_errors() -> None:
    with pytest.raises(FitError, match="no finite ttft_s"):
        fit_quantile_curves([1.0], [math.nan], metric="ttft_s")
    with pytest.raises(FitError, match="quantiles must lie in"):
        fit_quantile_curves([1.0], [1.0], (1.0,), metric="ttft_s")


def test_json_round_trip_is_exact() -> None:
    n, y = sample(200, seed=1)
    (c,) = fit_quantile_curves(n, y, (0.95,), metric="ttlt_s", n_boot=50)
    text = json.dumps(c.to_dict(), allow_nan=False)
    back = QuantileCurve.from_dict(json.loads(text))
    assert back == c
    assert back.predict(33.3) == c.predict(33.3)
