"""Erlang C and the Allen–Cunneen M/G/c approximation, checked by hand and against the notes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from capacity.planning import PlanInputError, erlang_b, erlang_c, mgc_wait, min_servers

approx = pytest.approx


def test_small_cases_by_hand() -> None:
    # B(1, 1) = 1 / (1 + 1) = 0.5; M/M/1 waits with probability ρ: C(1, 0.5) = 0.5.
    assert erlang_b(1, 1.0) == approx(0.5)
    assert erlang_c(1, 0.5) == approx(0.5)
    # B(2, 1) = (1 × 0.5) / (2 + 0.5) = 0.2; C = 0.2 / (1 − 0.5 × 0.8) = 1/3.
    assert erlang_b(2, 1.0) == approx(0.2)
    assert erlang_c(2, 1.0) == approx(1 / 3)


def test_mm1_wait() -> None:
    # M/M/1, λ = 0.5/s, R = 1 s: W_q = ρ / (μ − λ) = 0.5 / 0.5 = 1 s;
    # P(W > 2 s) = ρ e^{−(μ−λ)·2} = 0.5 e^{−1}.
    stats = mgc_wait(0.5, 1.0, 1)
    assert stats.utilization == approx(0.5)
    assert stats.mean_wait_s == approx(1.0)
    assert stats.p_wait_longer_than(2.0) == approx(0.5 * math.exp(-1))
    # The 95th percentile: 0.5 e^{−0.5 t} = 0.05 ⇔ t = 2 ln 10.
    assert stats.wait_quantile_s(0.95) == approx(2 * math.log(10))
    assert stats.wait_quantile_s(0.4) == 0  # 50 % never wait


@pytest.mark.parametrize(
    ("rate", "p_wait", "mean_wait_s", "p_over_1s"),
    [(13.0, 0.23, None, 0.0055), (14.5, 0.72, 0.71, 0.26)],
)
def test_notes_example_cap_50_at_r_3_32_s(
    rate: float, p_wait: float, mean_wait_s: float | None, p_over_1s: float
) -> None:
    # A worked example: c = 50, R = 3.32 s, C_s² = 0.1 (Poisson arrivals).
    # λ = 13/s: ρ = 0.86, P_wait = 0.23, P(W > 1 s) = 0.55 %.
    # λ = 14.5/s: ρ = 0.96, P_wait = 0.72, W_q = 0.72 / (50/3.32 − 14.5) × 0.55 = 0.71 s,
    # P(W > 1 s) = 0.72 e^{−0.72/0.71} = 26 %.
    stats = mgc_wait(rate, 3.32, 50, cs2=0.1)
    assert stats.p_wait == approx(p_wait, abs=0.01)
    if mean_wait_s is not None:
        assert stats.mean_wait_s == approx(mean_wait_s, abs=0.01)
    assert stats.p_wait_longer_than(1.0) == approx(p_over_1s, rel=0.05)


def test_min_servers_is_the_smallest_cap_meeting_the_target() -> None:
    c = min_servers(13.0, 3.32, wait_s=1.0, probability=0.01, cs2=0.1)
    assert mgc_wait(13.0, 3.32, c, cs2=0.1).p_wait_longer_than(1.0) <= 0.01
    assert mgc_wait(13.0, 3.32, c - 1, cs2=0.1).p_wait_longer_than(1.0) > 0.01


def test_unstable_and_bad_inputs_are_named() -> None:
    with pytest.raises(PlanInputError, match="must be < servers"):
        mgc_wait(16.0, 3.32, 50)
    with pytest.raises(PlanInputError, match="servers must be an integer >= 1"):
        erlang_c(0, 0.1)
    with pytest.raises(PlanInputError, match="mean_service_s"):
        mgc_wait(1.0, 0.0, 5)


@given(
    servers=st.integers(1, 2000),
    rho=st.floats(0.0, 0.999),
    cs2=st.floats(0.0, 4.0),
    t=st.floats(0.0, 100.0),
)
def test_probabilities_are_probabilities(servers: int, rho: float, cs2: float, t: float) -> None:
    stats = mgc_wait(rho * servers / 2.0, 2.0, servers, cs2=cs2)
    values = (stats.p_wait, stats.mean_wait_s, stats.p_wait_longer_than(t))
    assert all(math.isfinite(v) for v in values)
    assert 0 <= stats.p_wait <= 1 and 0 <= stats.p_wait_longer_than(t) <= stats.p_wait
