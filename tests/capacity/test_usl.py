"""The USL fit: agreement with R ``usl``, recovery of known parameters, warnings, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from capacity.errors import FitError
from capacity.fitting import UslFit, fit_usl

SPECSDM91 = ([1, 18, 36, 72, 108, 144, 216], [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.2])
RAYTRACER = (
    [1, 4, 8, 12, 16, 20, 24, 28, 32, 48, 64],
    [20, 78, 130, 170, 190, 200, 210, 230, 260, 280, 310],
)


def sig3(x: float) -> str:
    return f"{x:.3g}"


def test_specsdm91_matches_r_usl_to_three_significant_figures() -> None:
    # R usl 3.x, tests/usl-nlxb.Rout.save and tests/summary.Rout.save (smoeding/usl):
    # alpha 0.0277285 (se 0.0091217), beta 0.0001044 (se 0.0000199), gamma 89.9952330
    # (se 14.2134894); residual standard error 82.85 on 4 dof; R² 0.9896.
    f = fit_usl(*SPECSDM91, space="throughput")
    assert sig3(f.sigma) == sig3(0.0277285) and sig3(f.sigma_se) == sig3(0.0091217)
    assert sig3(f.kappa) == sig3(0.0001044) and sig3(f.kappa_se) == sig3(0.0000199)
    assert sig3(f.lam) == sig3(89.9952330) and sig3(f.lam_se) == sig3(14.2134894)
    assert f.dof == 4 and sig3(math.sqrt(f.rss / f.dof)) == "82.8"
    assert sig3(f.r2) == sig3(0.9896)
    assert f.peak_concurrency() == pytest.approx(math.sqrt((1 - f.sigma) / f.kappa))


def test_raytracer_matches_r_usl_including_its_confint() -> None:
    # R usl, tests/confint.Rout.save: coef alpha 0.0578, beta 0.0000, gamma 21.8488;
    # confint alpha [0.033677, 0.081864], beta ±0.000214, gamma [17.868380, 25.829306].
    # R's confint is estimate ± se · qt(level, n − 1): reproduce it from our standard errors.
    f = fit_usl(*RAYTRACER, space="throughput")
    assert (sig3(f.sigma), f.kappa, sig3(f.lam)) == ("0.0578", 0.0, "21.8")
    q = stats.t.ppf(0.95, len(RAYTRACER[0]) - 1)
    assert sig3(f.sigma - q * f.sigma_se) == "0.0337" and sig3(f.sigma + q * f.sigma_se) == "0.0819"
    assert sig3(q * f.kappa_se) == "0.000214"
    assert sig3(f.lam - q * f.lam_se) == "17.9" and sig3(f.lam + q * f.lam_se) == "25.8"
    assert any("κ = 0 at its lower bound" in w for w in f.warnings)
    assert math.isinf(f.peak_concurrency())


def test_recovers_known_parameters_within_its_intervals() -> None:
    lam, sigma, kappa = 130.0, 0.01, 2e-4
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    truth = lam / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    rng = np.random.default_rng(7)
    covered, trials = 0, 100
    for _ in range(trials):
        f = fit_usl(n, truth + rng.normal(0, 1.0, n.size))
        covered += all(
            lo <= v <= hi
            for v, (lo, hi) in ((lam, f.lam_ci), (sigma, f.sigma_ci), (kappa, f.kappa_ci))
        )
    # each 95 % interval should cover its parameter; jointly at least ~85 % of the time
    assert covered / trials >= 0.85
    f = fit_usl(n, truth + rng.normal(0, 0.2, n.size))
    assert f.lam == pytest.approx(lam, rel=0.01)
    assert f.sigma == pytest.approx(sigma, rel=0.1)
    assert f.kappa == pytest.approx(kappa, rel=0.1)
    assert f.r2 > 0.99 and f.dof == n.size - 3 and f.warnings == ()


def test_both_spaces_and_fixed_lambda() -> None:
    n = np.array([1, 5, 10, 20, 30, 40, 50], dtype=float)
    x = 100 / (1 + 0.02 * (n - 1) + 1e-4 * n * (n - 1))
    per = fit_usl(n, x)
    thr = fit_usl(n, n * x, space="throughput")
    fixed = fit_usl(n, x, fix_lambda=100.0)
    for f in (per, thr, fixed):
        assert (f.lam, f.sigma, f.kappa) == pytest.approx((100, 0.02, 1e-4), rel=1e-6)
    assert per.predict(7.0) == pytest.approx(per.per_request(7.0))
    assert (
        thr.predict(7.0)
        == pytest.approx(thr.throughput(7.0))
        == pytest.approx(7 * per.predict(7.0))
    )
    assert fixed.lambda_fixed and fixed.lam_se == 0.0 and fixed.dof == n.size - 2
    assert per.efficiency(np.array([1.0]))[0] == 1.0


def test_warnings_for_few_levels_unresolved_kappa_and_extrapolated_peak() -> None:
    f = fit_usl([1, 10, 30, 50], [136, 134, 126, 117])  # the seed blog, small prompt
    text = " ".join(f.warnings)
    assert "only 4 levels" in text
    assert "κ's 95% interval" in text and "contains 0" in text
    assert "an extrapolation" in text
    assert f.check(60.0) == () and "1.5×" in f.check(80.0)[0]
    exact = fit_usl([1, 10, 30], [136, 134, 126])
    assert exact.dof == 0 and "no residual degrees of freedom" in " ".join(exact.warnings)
    assert math.isnan(exact.sigma_se)


@pytest.mark.parametrize(
    ("n", "x", "kwargs", "message"),
    [
        ([1, 2], [1, 1], {}, "at least 3 distinct concurrency levels, got 2"),
        ([1, 1, 1, 2], [5, 5, 5, 4], {}, "got 2"),
        ([1, 2, 3], [1, 2], {}, "differ in length"),
        ([1, 2, math.nan], [1, 2, 3], {}, "must be finite"),
        ([0, 2, 3], [1, 2, 3], {}, "concurrency must be > 0"),
        ([1, 2, 3], [1, 2, 3], {"fix_lambda": -1.0}, "fix_lambda must be a positive number"),
    ],
)
def test_unusable_data_raise_fit_errors(
    n: list[float], x: list[float], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(FitError, match=message):
        fit_usl(n, x, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 0.2), st.floats(1e-6, 1e-2), st.floats(0.3, 0.99))
def test_efficiency_knee_inverts_efficiency(sigma: float, kappa: float, e: float) -> None:
    f = fit_usl([1, 5, 10, 20], [100, 95, 90, 80])
    g = UslFit(**{**f.__dict__, "sigma": sigma, "kappa": kappa})
    n = g.concurrency_at_efficiency(e)
    assert g.efficiency(n) == pytest.approx(e, rel=1e-9)
    peak = g.peak_concurrency()
    assert g.throughput(peak) >= max(g.throughput(peak * 0.9), g.throughput(peak * 1.1))


def test_json_round_trip_is_exact() -> None:
    for f in (fit_usl(*SPECSDM91, space="throughput"), fit_usl([1, 10, 30], [136, 134, 126])):
        text = json.dumps(f.to_dict(), allow_nan=False)
        back = UslFit.from_dict(json.loads(text))
        assert json.dumps(back.to_dict(), allow_nan=False) == text
        assert back.lam == f.lam
        assert np.array_equal(np.array(back.cov), np.array(f.cov), equal_nan=True)
