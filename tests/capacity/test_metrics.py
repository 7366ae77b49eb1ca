"""Metric derivation from raw offsets and the exact sweep-line concurrency
(docs/architecture.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from capacity.records import validate_records
from capacity.records._derive import (
    active_at_start,
    concurrency_stats,
    concurrency_timeline,
    derive_metrics,
    interval_end_s,
)
from tests.capacity.record_factory import frame, rec


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_derived_metrics_match_hand_computation() -> None:
    # 350 tokens: first at 0.3 s, last at 2.3 s → 349 gaps over 2.0 s.
    m = derive_metrics(arr(1.0), arr(1.3), arr(3.3), arr(3.4), arr(350))
    assert m["ttft_s"][0] == pytest.approx(0.3)
    assert m["ttlt_s"][0] == pytest.approx(2.3)
    assert m["e2e_s"][0] == pytest.approx(2.4)
    assert m["tpot_s"][0] == pytest.approx(2.0 / 349)
    assert m["tps"][0] == pytest.approx(349 / 2.0)


def test_tpot_is_nan_below_two_tokens_and_tps_is_never_inf() -> None:
    m = derive_metrics(
        arr(0, 0, 0, 0),
        arr(0.3, 0.3, 0.3, np.nan),
        arr(0.3, 0.3, 0.3, np.nan),
        arr(0.4, 0.4, 0.4, 0.1),
        arr(1, 0, 5, np.nan),
    )
    assert np.isnan(m["tpot_s"][[0, 1, 3]]).all()
    assert m["tpot_s"][2] == 0.0  # five tokens in one chunk
    assert np.isnan(m["tps"]).all()
    assert not np.isinf(m["tps"]).any()


def test_validated_records_recompute_derived_columns() -> None:
    out = validate_records(
        frame(
            rec(
                start_s=10.0, first_token_s=10.5, last_token_s=12.5, end_s=12.6, output_tokens=101.0
            )
        )
    )
    row = out.iloc[0]
    assert (row.ttft_s, row.ttlt_s) == pytest.approx((0.5, 2.5))
    assert row.e2e_s == pytest.approx(2.6)
    assert row.tpot_s == pytest.approx(0.02)
    assert row.tps == pytest.approx(50.0)


def intervals(*pairs: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_s": [p[0] for p in pairs],
            "first_token_s": np.nan,
            "last_token_s": np.nan,
            "end_s": [p[1] for p in pairs],
        }
    )


def test_timeline_of_hand_made_intervals() -> None:
    tl = concurrency_timeline(intervals((0, 4), (1, 2), (2, 3), (3, 5)))
    # [0,1):1 [1,2):2 [2,3):2 (one ends at 2, one starts) [3,4):2 [4,5):1 then 0
    assert tl["time"].tolist() == [0, 1, 2, 3, 4, 5]
    assert tl["active"].tolist() == [1, 2, 2, 2, 1, 0]
    stats = concurrency_stats(arr(0, 1, 2, 3), arr(4, 2, 3, 5))
    assert stats.max == 2
    assert stats.mean == pytest.approx((1 + 2 + 2 + 2 + 1) / 5)
    assert stats.duration_s == 5 and stats.area == pytest.approx(8)


def test_touching_intervals_do_not_overlap_and_zero_length_ones_never_count() -> None:
    tl = concurrency_timeline(intervals((0, 1), (1, 2), (1.5, 1.5)))
    assert tl["active"].max() == 1
    assert active_at_start(arr(0, 1, 1.5), arr(1, 2, 1.5)).tolist() == [0, 0, 1]


def test_failed_requests_without_end_stop_at_their_last_known_time() -> None:
    df = pd.DataFrame(
        {
            "start_s": [0.0, 1.0, 2.0],
            "first_token_s": [np.nan, 1.4, np.nan],
            "last_token_s": [np.nan, np.nan, np.nan],
            "end_s": [np.nan, np.nan, 2.5],
        }
    )
    assert interval_end_s(df).tolist() == [0.0, 1.4, 2.5]


def test_active_at_start_counts_others_in_flight() -> None:
    got = active_at_start(arr(0, 0, 1, 2, 5), arr(3, 1, 4, 6, 6))
    # at 0: none sent before; at 1: #0 in flight (#1 ended at 1); at 2: #0, #2; at 5: #3
    assert got.tolist() == [0, 0, 1, 2, 1]


def test_empty_timeline() -> None:
    assert concurrency_timeline(intervals()).empty
    assert math.isnan(concurrency_stats(arr(), arr()).mean)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), min_size=1, max_size=30))
def test_sweep_line_equals_brute_force(pairs: list[tuple[int, int]]) -> None:
    start = np.array([float(a) for a, _ in pairs])
    end = start + np.array([float(d) for _, d in pairs])
    tl = concurrency_timeline(intervals(*zip(start, end, strict=True)))
    grid = np.arange(0, 71) + 0.5  # between integer event times
    brute = [(np.sum((start <= t) & (t < end))) for t in grid]
    idx = np.searchsorted(tl["time"].to_numpy(), grid, side="right") - 1
    swept = np.where(idx >= 0, tl["active"].to_numpy()[np.maximum(idx, 0)], 0)
    assert swept.tolist() == brute
    stats = concurrency_stats(start, end)
    window = end.max() - start.min()
    if window > 0:
        assert stats.area == pytest.approx(float(np.sum(end - start)))
        assert stats.mean == pytest.approx(float(np.sum(end - start)) / window)
