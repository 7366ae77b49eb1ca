"""Per-level summaries: counts, percentiles, throughput, quota use, concurrency."""

from __future__ import annotations

import numpy as np
import pytest

from capacity.records import SUMMARY_COLUMNS, compare_prompts, seed_table, summarize
from capacity.records._schema import SEED_SUMMARY_COLUMNS
from tests.capacity.record_factory import frame, rec


def level_one() -> list[dict[str, object]]:
    """Three ok requests back to back in [0, 6), one throttle, one error, one n=1 response."""
    return [
        rec(start_s=0.0, first_token_s=0.2, last_token_s=1.2, end_s=1.3, output_tokens=101.0),
        rec(start_s=1.0, first_token_s=1.4, last_token_s=3.4, end_s=3.5, output_tokens=101.0),
        rec(start_s=2.0, first_token_s=2.3, last_token_s=5.3, end_s=6.0, output_tokens=101.0),
        rec(
            start_s=2.5,
            first_token_s=None,
            last_token_s=None,
            end_s=2.6,
            output_tokens=None,
            status="throttled",
        ),
        rec(
            start_s=3.0,
            first_token_s=3.1,
            last_token_s=None,
            end_s=3.5,
            output_tokens=None,
            status="error",
        ),
        rec(start_s=4.0, first_token_s=4.5, last_token_s=4.5, end_s=4.6, output_tokens=1.0),
    ]


def test_counts_percentiles_and_rates_by_hand() -> None:
    s = summarize(frame(*level_one()))
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    (row,) = s.itertuples(index=False)
    assert (row.n, row.n_ok, row.n_throttled, row.n_error, row.n_tps_undefined) == (6, 4, 1, 1, 1)
    assert (row.throttle_rate, row.error_rate) == pytest.approx((1 / 6, 1 / 6))
    tps = np.array([100 / 1.0, 100 / 2.0, 100 / 3.0])
    assert row.tps_p50 == pytest.approx(50.0)
    assert row.tps_mean == pytest.approx(tps.mean())
    assert row.tps_p90 == pytest.approx(np.percentile(tps, 90))  # linear interpolation
    ttft = np.array([0.2, 0.4, 0.3, 0.5])
    assert row.ttft_p50_s == pytest.approx(np.median(ttft))
    assert row.ttft_p99_s == pytest.approx(np.percentile(ttft, 99))
    assert row.duration_s == pytest.approx(6.0)
    assert row.output_tps == pytest.approx(304 / 6.0)
    assert row.input_tps == pytest.approx(4 * 43 / 6.0)
    assert row.achieved_rpm == pytest.approx(4 / 6.0 * 60)
    assert row.sent_rpm == pytest.approx(60.0)
    assert row.achieved_tpm == pytest.approx((304 + 172) / 6.0 * 60)
    # intervals [0,1.3) [1,3.5) [2,6) [2.5,2.6) [3,3.5) [4,4.6): area 9.0 over 6 s
    assert row.concurrency_mean == pytest.approx(9.0 / 6.0)
    assert row.concurrency_max == 3
    assert row.ttlt_mean_s == pytest.approx(np.mean([1.2, 2.4, 3.3, 0.5]))


def test_levels_from_several_runs_pool_their_windows() -> None:
    one = [
        rec(run_id="a"),
        rec(run_id="b", start_s=100.0, first_token_s=100.3, last_token_s=102.3, end_s=102.4),
    ]
    (row,) = summarize(frame(*one)).itertuples(index=False)
    assert row.duration_s == pytest.approx(4.8)  # two 2.4 s windows, not 102.4 s
    assert row.concurrency_mean == pytest.approx(1.0)
    assert row.concurrency_max == 1


def test_rows_ordered_by_prompt_size_then_level_and_seed_views() -> None:
    rows = [
        rec(prompt_label="large", input_tokens=6027.0, level=10.0),
        rec(level=5.0),
        rec(prompt_label="large", input_tokens=6027.0, level=1.0, end_s=3.0),
        rec(level=1.0),
    ]
    s = summarize(frame(*rows))
    assert list(zip(s["prompt_label"], s["level"], strict=True)) == [
        ("small", 1.0),
        ("small", 5.0),
        ("large", 1.0),
        ("large", 10.0),
    ]
    table = seed_table(s)
    assert list(table.columns) == ["Prompt", *SEED_SUMMARY_COLUMNS.values()]
    comparison = compare_prompts(s)
    assert comparison is not None
    assert comparison.attrs["prompts"] == ("small", "large")
    assert comparison["level"].tolist() == [1.0]
    expected = 100 * ((349 + 1) / 3.0 / ((349 + 1) / 2.4) - 1)
    assert comparison["difference_pct"][0] == pytest.approx(expected)
    assert compare_prompts(summarize(frame(rec()))) is None


def test_plateau_share_and_in_flight_count_of_an_interval_level() -> None:
    # 20 one-second batches of 2 requests, each lasting 3 s: the in-flight count ramps for 3 s,
    # holds 6 from t = 3 s to the last send at 19 s, then drains. The plateau window is
    # [0 + 3, 19 − 3] = [3, 16]: batches 3..16, 28 of 40 requests (70 %), 6 in flight.
    rows = [
        rec(
            start_s=b + 0.01 * i,
            first_token_s=b + 0.5 + 0.01 * i,
            last_token_s=b + 2.9 + 0.01 * i,
            end_s=b + 3.0 + 0.01 * i,
            mode="interval",
            level=2.0,
            batch=b,
        )
        for b in range(20)
        for i in range(2)
    ]
    (row,) = summarize(frame(*rows)).itertuples()
    assert row.plateau_share == pytest.approx(28 / 40)
    assert row.concurrency_plateau_mean == pytest.approx(6.0, abs=0.01)
    # Two batches are all ramp: no plateau, and the summary says so.
    short = summarize(frame(*rows[:4]))
    assert short["plateau_share"].iloc[0] == 0
    assert short["concurrency_plateau_mean"].isna().all()
