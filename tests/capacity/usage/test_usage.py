"""capacity.usage: the arithmetic of measured usage, and the forecast against known growth."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity.usage import (
    SyntheticTraffic,
    UsageFileError,
    UsageMeta,
    quota_tokens,
    read_usage,
    summarize_usage,
    synthetic_usage,
    usage_figures,
    write_usage,
)
from capacity.usage._analysis import daily_rows

END = datetime(2026, 11, 1, tzinfo=UTC)
META = UsageMeta("us.meta.llama3-3-70b-instruct-v1:0", "us-west-2", quota_tpm=300_000)


def _frame(**kw: Any) -> pd.DataFrame:
    return synthetic_usage(dataclasses.replace(SyntheticTraffic(quota_tpm=300_000), **kw), END)


def test_quota_tokens_use_burndown_and_prefer_bedrocks_estimate() -> None:
    f = pd.DataFrame({
        "input_tokens": [100.0, 100.0], "output_tokens": [10.0, 10.0],
        "cache_write_tokens": [5.0, 5.0], "cache_read_tokens": [1000.0, 1000.0],
        "estimated_tpm_quota_usage": [np.nan, 999.0],
    })  # fmt: skip
    assert quota_tokens(f, 5.0).tolist() == [155.0, 999.0]  # cache reads are free


def test_summary_arithmetic_on_a_hand_made_frame() -> None:
    ts = pd.date_range("2026-01-01", periods=4, freq="1min", tz="UTC")
    f = pd.DataFrame({"timestamp": ts, "invocations": [1.0, 3.0, 0.0, 4.0],
                      "throttles": [0.0, 2.0, 0.0, 0.0], "input_tokens": [100.0, 300.0, 0, 400],
                      "output_tokens": [10.0, 30, 0, 40], "cache_read_tokens": 0.0,
                      "cache_write_tokens": 0.0, "estimated_tpm_quota_usage": np.nan})  # fmt: skip
    for col in ("ttft_ms_avg", "latency_ms_avg", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
                "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"):  # fmt: skip
        f[col] = np.nan
    s = summarize_usage(f, UsageMeta("m", "r", quota_tpm=500.0, burndown=2.0))
    assert s.tpm.max == 400 + 2 * 40 and s.rpm.max == 4 and s.rpm.mean == 2.0
    assert (s.invocations, s.throttles, s.throttled_minutes) == (8, 2, 1)
    assert (s.mean_input_tokens, s.mean_output_tokens) == (100.0, 10.0)
    assert s.minutes_above_threshold == 1  # 480 ≥ 0.8 × 500
    assert s.forecast is None and any("fewer than 3 whole days" in n for n in s.notes)
    f5 = f.assign(timestamp=pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC"))
    s5 = summarize_usage(f5, UsageMeta("m", "r", period_s=300, burndown=2.0))
    assert s5.tpm.max == pytest.approx(480 / 5) and any("understated" in n for n in s5.notes)


def test_sparse_traffic_takes_the_busiest_minute_as_its_peak() -> None:
    """Requests in under 1 % of the minutes: the p99 minute is empty, so the peak-to-average
    is the busiest minute over the mean (12 / (12 / 200) = 200), never below 1."""
    ts = pd.date_range("2026-01-01", periods=200, freq="1min", tz="UTC")
    f = pd.DataFrame({"timestamp": ts, "invocations": 0.0, "throttles": 0.0,
                      "input_tokens": 0.0, "output_tokens": 0.0, "cache_read_tokens": 0.0,
                      "cache_write_tokens": 0.0, "estimated_tpm_quota_usage": np.nan})  # fmt: skip
    f.loc[100, ["invocations", "input_tokens", "output_tokens"]] = (12.0, 1200.0, 120.0)
    for col in ("ttft_ms_avg", "latency_ms_avg", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
                "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"):  # fmt: skip
        f[col] = np.nan
    s = summarize_usage(f, UsageMeta("m", "r"))
    assert s.peak_to_average == pytest.approx(200.0)
    assert any("busiest minute" in n for n in s.notes)


@pytest.mark.parametrize(("growth", "seed"), [(0.03, 0), (0.03, 1), (0.08, 2), (0.0, 3)])
def test_forecast_recovers_known_growth_within_its_interval(growth: float, seed: int) -> None:
    """Synthetic traffic grows by a known rate; the fitted growth interval must contain it, and
    the day the p99 minute really crosses 80 % of the quota — found by generating the future
    days — must lie in the forecast's date interval."""
    quota = 300_000.0 if growth < 0.05 else 900_000.0
    truth = SyntheticTraffic(growth_per_day=growth, seed=seed, quota_tpm=quota * 2)
    s = summarize_usage(synthetic_usage(truth, END), dataclasses.replace(META, quota_tpm=quota))
    fc = s.forecast
    assert fc is not None
    assert fc.growth_ci[0] <= growth <= fc.growth_ci[1]
    assert fc.growth_ci[1] - fc.growth_ci[0] < 0.01  # and the interval is informative
    future = dataclasses.replace(truth, days=120, throttle_day=None, seed=seed + 100)
    rows = daily_rows(synthetic_usage(future, END + timedelta(days=106)), META)
    actual = next((r.day for r in rows if r.p99_tpm >= 0.8 * quota), None)
    lo, hi = fc.crossing_interval
    if growth == 0.0:
        assert actual is None and fc.crossing is None and hi is None
        assert "does not reach" in fc.statement() or "no earlier than" in fc.statement()
        return
    assert actual is not None and lo is not None and hi is not None
    assert lo <= actual <= hi
    assert fc.crossing is not None and lo <= fc.crossing <= hi
    assert f"on {fc.crossing.isoformat()}" in fc.statement()


def test_the_throttle_episode_is_counted_but_does_not_bend_the_trend() -> None:
    with_episode = summarize_usage(_frame(seed=5), META)
    without = summarize_usage(_frame(seed=5, throttle_day=None), META)
    assert with_episode.throttled_minutes > 30 and without.throttled_minutes == 0
    a, b = with_episode.forecast, without.forecast
    assert a is not None and b is not None
    assert abs(a.growth_per_day - b.growth_per_day) < 0.003
    assert with_episode.tpm.max <= 300_000  # the ledger never admits more than the quota


def test_workload_and_markdown(tmp_path: Path) -> None:
    s = summarize_usage(_frame(seed=6), META)
    w = s.workload(max_tokens=1000)
    assert w.input_tokens == pytest.approx(1200, rel=0.02)
    assert w.output_tokens == pytest.approx(300, rel=0.02)
    assert w.cache_write_tokens == pytest.approx(50, rel=0.05)
    assert w.peak_to_average == pytest.approx(s.rpm.p99 / s.rpm.mean) and w.peak_to_average > 1.5
    md = s.markdown()
    assert md.startswith("## Historical usage") and "Forecast: p99 minute reaches 80%" in md
    assert s.to_dict()["forecast"]["crossing"] is not None


def test_parquet_round_trip_and_figures(tmp_path: Path) -> None:
    f = _frame(seed=7, days=4)
    path = write_usage(tmp_path / "u" / "usage.parquet", f, META)
    back, meta = read_usage(path)
    pd.testing.assert_frame_equal(back, f, check_dtype=False)
    assert meta == META
    (tmp_path / "bad.parquet").write_text("no")
    with pytest.raises(UsageFileError, match="llmcap usage"):
        read_usage(tmp_path / "bad.parquet")
    s = summarize_usage(f, META)
    paths = usage_figures(f, s, tmp_path / "fig")
    assert [p.name for p in paths] == ["usage_vs_quota.png", "daily_profile.png", "forecast.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_planning_and_the_package_root_do_not_load_pandas_or_statsmodels() -> None:
    code = (
        "import sys, capacity.usage, capacity.planning;"
        "bad = [m for m in ('pandas', 'statsmodels') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_forecast_figure_says_the_summarys_rates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forecast's legend names the rate of the line it draws, and that is the rate the
    summary's statement gives for the p99 minute; the traffic's growth (another fit, on daily
    totals) is named as such in both, not passed off as the p99 trend."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    save = Figure.savefig

    def keep(fig: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(fig)
        save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    f = _frame(seed=4, days=14, growth_per_day=0.03)
    s = summarize_usage(f, META)
    fc = s.forecast
    assert fc is not None
    usage_figures(f, s, tmp_path)
    (ax,) = saved[-1].axes
    (trend,) = [line for line in ax.get_lines() if str(line.get_label()).startswith("p99 trend")]
    x, y = np.asarray(trend.get_xdata(), float), np.asarray(trend.get_ydata(), float)
    slope = np.log(y[-1] / y[0]) / (x[-1] - x[0])  # per day: the line as drawn
    label = str(trend.get_label())
    rate = re.match(r"p99 trend ([+-]\d+\.\d)%/day; traffic ", label)
    assert rate is not None, label
    assert float(rate.group(1)) / 100 == pytest.approx(np.expm1(slope), abs=0.0005)
    md = s.markdown()
    assert f"on its trend of {rate.group(1)}%/day" in md
    assert f"traffic grows {fc.traffic_growth()}" in md and fc.traffic_growth() in label
    assert f"{fc.growth_per_day:+.1%}/day" in fc.traffic_growth()
