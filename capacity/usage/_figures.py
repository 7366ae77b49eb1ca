"""Figures of measured usage: usage vs quota over time, the daily profile, and the forecast."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from capacity.figures import new_figure, save_figure
from capacity.usage._analysis import UsageSummary, per_minute
from capacity.usage._frame import UsageMeta


def _day(d: date) -> float:
    """A date as Matplotlib's date number (days since 1970-01-01, its default epoch)."""
    return float((d - date(1970, 1, 1)).days)


def _quota_lines(ax: object, meta: UsageMeta, threshold: float) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    if meta.quota_tpm:
        ax.axhline(
            meta.quota_tpm, color="#d62728", lw=1.2, label=f"TPM quota {meta.quota_tpm:,.0f}"
        )
        ax.axhline(threshold * meta.quota_tpm, color="#d62728", lw=0.8, ls="--",
                   label=f"{threshold:.0%} of quota")  # fmt: skip


def usage_figures(frame: pd.DataFrame, summary: UsageSummary, out_dir: str | Path) -> list[Path]:
    """Write ``usage_vs_quota.png``, ``daily_profile.png`` and (when there is a forecast)
    ``forecast.png`` to ``out_dir``; returns their paths."""
    out = Path(out_dir)
    meta = summary.meta
    threshold = summary.forecast.threshold if summary.forecast else 0.8
    pm = per_minute(frame.sort_values("timestamp"), meta)
    ts = pm["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    paths = []

    fig = new_figure(10, 4.2)
    ax = fig.add_subplot()
    ax.plot(ts, pm["tpm"], lw=0.4, color="#1f77b4", label="quota tokens per minute")
    hourly = pm.set_index(ts)["tpm"].resample("1h").quantile(0.99)
    ax.plot(hourly.index, hourly.to_numpy(), lw=1.2, color="#ff7f0e", label="p99 of each hour")
    thr = pm["throttles_per_min"] > 0
    if thr.any():
        ax.scatter(
            ts[thr], pm["tpm"][thr], s=6, color="#d62728", zorder=3, label="throttled minutes"
        )
    _quota_lines(ax, meta, threshold)
    ax.set_title(f"{meta.model_id} in {meta.region}: usage vs quota ({meta.period_s} s periods)")
    ax.set_ylabel("quota tokens per minute")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(loc="upper left", fontsize=8)
    paths.append(save_figure(fig, out / "usage_vs_quota.png"))

    fig = new_figure(8, 4)
    ax = fig.add_subplot()
    hour = ts.dt.hour + ts.dt.minute / 60.0
    groups = pm.groupby(np.floor(hour.to_numpy()))["tpm"]
    prof = pd.DataFrame({"p50": groups.median(), "p99": groups.quantile(0.99), "max": groups.max()})
    ax.plot(prof.index, prof["p50"], marker="o", label="median minute")
    ax.plot(prof.index, prof["p99"], marker="o", label="p99 minute")
    ax.plot(prof.index, prof["max"], lw=0.8, ls=":", label="busiest minute")
    _quota_lines(ax, meta, threshold)
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("quota tokens per minute")
    ax.set_title("Daily profile over the window")
    ax.set_xticks(range(0, 24, 3))
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, out / "daily_profile.png"))

    fc = summary.forecast
    if fc is not None:
        fig = new_figure(9, 4.2)
        ax = fig.add_subplot()
        days = [r.day for r in summary.daily]
        ax.scatter(
            [_day(d) for d in days],
            [r.p99_tpm for r in summary.daily],
            s=14,
            label="p99 minute of the day",
        )
        last = max(days)
        end = fc.crossing_interval[1] or fc.crossing or (last + timedelta(days=30))
        end = min(end, last + timedelta(days=fc.horizon_days)) + timedelta(days=3)
        grid = pd.date_range(fc.first_day, end, freq="6h")
        t = np.asarray((grid - pd.Timestamp(fc.first_day)).total_seconds() / 86400.0)
        t_last = float((pd.Timestamp(last) - pd.Timestamp(fc.first_day)).days)
        b = np.log1p(fc.peak_growth_per_day)
        trend = fc.level_today * np.exp(b * (t - t_last))
        ax.plot(
            t + _day(fc.first_day),
            trend,
            color="#2ca02c",
            label=f"p99 trend {fc.peak_trend()}; traffic {fc.traffic_growth()}",
        )
        if fc.crossing is not None:
            ax.axvline(_day(fc.crossing), color="#9467bd", lw=1, label=f"crossing {fc.crossing}")
        lo, hi = fc.crossing_interval
        if lo is not None:
            right = _day(hi) if hi is not None else _day(end)
            ax.axvspan(_day(lo), right, color="#9467bd", alpha=0.15,
                       label=f"{fc.confidence:.0%} interval")  # fmt: skip
        _quota_lines(ax, meta, fc.threshold)
        ax.xaxis_date()
        ax.set_title(f"Exhaustion forecast: p99 minute vs {fc.threshold:.0%} of the TPM quota")
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylabel("quota tokens per minute")
        ax.legend(fontsize=8, loc="upper left")
        paths.append(save_figure(fig, out / "forecast.png"))
    return paths
