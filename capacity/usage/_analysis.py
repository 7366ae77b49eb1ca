"""From a usage frame to what a planner needs: per-minute quota tokens, percentiles of TPM and
RPM, peak-to-average, throttled minutes, tokens per request, daily totals and the forecast.

Quota tokens of a period are Bedrock's ``EstimatedTPMQuotaUsage`` where CloudWatch has it, else
the settlement rule ``input + cache write + burndown × output`` (cache reads are free). Periods
longer than a minute are spread evenly over their minutes, which understates the busiest minute;
the summary says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capacity.usage._forecast import Forecast, forecast_exhaustion
from capacity.usage._frame import UsageMeta

if TYPE_CHECKING:
    from capacity.planning import Workload


def quota_tokens(frame: pd.DataFrame, burndown: float) -> pd.Series:
    """Quota tokens charged per period: EstimatedTPMQuotaUsage where present, else
    input + cache write + burndown × output."""
    computed = (
        frame["input_tokens"] + frame["cache_write_tokens"] + burndown * frame["output_tokens"]
    )
    est = frame["estimated_tpm_quota_usage"]
    return est.where(est.notna(), computed)


def per_minute(frame: pd.DataFrame, meta: UsageMeta) -> pd.DataFrame:
    """``timestamp``, ``tpm`` (quota tokens per minute), ``rpm`` (invocations per minute) and
    ``throttles_per_min`` of each period."""
    minutes = meta.period_s / 60.0
    return pd.DataFrame(
        {
            "timestamp": frame["timestamp"],
            "tpm": quota_tokens(frame, meta.burndown) / minutes,
            "rpm": frame["invocations"] / minutes,
            "throttles_per_min": frame["throttles"] / minutes,
        }
    )


@dataclass(frozen=True)
class Stats:
    """Percentiles over periods of one per-minute rate."""

    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: pd.Series) -> Stats:
        """Percentiles of ``values`` (NaN-free)."""
        v = values.to_numpy(dtype=float)
        if v.size == 0:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p90, p99 = np.percentile(v, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(v.max()), float(v.mean()))


@dataclass(frozen=True)
class DailyRow:
    """One UTC day's totals and its busiest minutes."""

    day: date
    periods: int
    invocations: float
    throttles: float
    input_tokens: float
    output_tokens: float
    quota_tokens: float
    p99_tpm: float
    max_tpm: float
    throttled_minutes: int


@dataclass(frozen=True)
class UsageSummary:
    """Measured usage of one model id over a window, and the forecast when a quota is known."""

    meta: UsageMeta
    start: str
    end: str
    periods: int
    tpm: Stats
    rpm: Stats
    peak_to_average: float
    invocations: float
    throttles: float
    throttled_minutes: int
    minutes_above_threshold: int | None
    mean_input_tokens: float
    mean_output_tokens: float
    mean_cache_read_tokens: float
    mean_cache_write_tokens: float
    latency_ms: dict[str, float]
    daily: tuple[DailyRow, ...]
    forecast: Forecast | None
    notes: tuple[str, ...] = field(default=())

    @property
    def p99_share_of_quota(self) -> float | None:
        """The p99 minute's quota tokens over the TPM quota (None without a quota)."""
        q = self.meta.quota_tpm
        return None if not q else self.tpm.p99 / q

    def workload(
        self,
        max_tokens: float,
        *,
        think_time_s: float | None = None,
        requests_per_user_per_min: float | None = None,
        latency_s: float | None = None,
    ) -> Workload:
        """The measured request class as a planning ``Workload``: mean input, output and cache
        tokens per request, the output burndown used here, the measured peak-to-average and the
        measured mean latency (unless given). ``max_tokens`` is the request setting, which
        CloudWatch does not record."""
        from capacity.planning import Workload

        if latency_s is None and self.latency_ms.get("latency_ms_avg"):
            latency_s = self.latency_ms["latency_ms_avg"] / 1000.0
        return Workload(
            input_tokens=self.mean_input_tokens,
            output_tokens=min(self.mean_output_tokens, max_tokens),
            max_tokens=max_tokens,
            cache_read_tokens=self.mean_cache_read_tokens,
            cache_write_tokens=self.mean_cache_write_tokens,
            burndown=self.meta.burndown,
            think_time_s=think_time_s,
            requests_per_user_per_min=requests_per_user_per_min,
            peak_to_average=max(1.0, self.peak_to_average),
            latency_s=latency_s,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the report's "historical usage" section reads these)."""
        return {
            "meta": self.meta.to_dict(), "start": self.start, "end": self.end,
            "periods": self.periods, "tpm": self.tpm.__dict__, "rpm": self.rpm.__dict__,
            "peak_to_average": self.peak_to_average, "invocations": self.invocations,
            "throttles": self.throttles, "throttled_minutes": self.throttled_minutes,
            "minutes_above_threshold": self.minutes_above_threshold,
            "p99_share_of_quota": self.p99_share_of_quota,
            "mean_input_tokens": self.mean_input_tokens,
            "mean_output_tokens": self.mean_output_tokens,
            "mean_cache_read_tokens": self.mean_cache_read_tokens,
            "mean_cache_write_tokens": self.mean_cache_write_tokens,
            "latency_ms": self.latency_ms,
            "daily": [{**r.__dict__, "day": r.day.isoformat()} for r in self.daily],
            "forecast": None if self.forecast is None else self.forecast.to_dict(),
            "notes": list(self.notes),
        }  # fmt: skip

    def markdown(self) -> str:
        """A "Historical usage" section in Markdown."""
        m = self.meta
        quota = "unknown" if m.quota_tpm is None else f"{m.quota_tpm:,.0f}"
        lines = [
            "## Historical usage",
            "",
            f"`{m.model_id}` in {m.region}, {self.start} to {self.end} "
            f"({self.periods:,} periods of {m.period_s} s, source: {m.source}); "
            f"TPM quota {quota}, output burndown {m.burndown:g}.",
            "",
            "| per minute | p50 | p90 | p99 | max | mean |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, s in (("quota tokens (TPM)", self.tpm), ("requests (RPM)", self.rpm)):
            lines.append(
                f"| {name} | {s.p50:,.0f} | {s.p90:,.0f} | {s.p99:,.0f} | {s.max:,.0f} "
                f"| {s.mean:,.0f} |"
            )
        share = self.p99_share_of_quota
        lines += [
            "",
            f"- Peak-to-average (p99 minute RPM / mean RPM): {self.peak_to_average:.2f}",
            f"- Requests: {self.invocations:,.0f} served, {self.throttles:,.0f} throttled in "
            f"{self.throttled_minutes:,} minutes",
            f"- Mean tokens per request: input {self.mean_input_tokens:,.0f}, output "
            f"{self.mean_output_tokens:,.0f}, cache read {self.mean_cache_read_tokens:,.0f}, "
            f"cache write {self.mean_cache_write_tokens:,.0f}",
        ]
        if share is not None:
            lines.append(f"- The p99 minute uses {share:.0%} of the TPM quota")
        if self.forecast is not None:
            lines.append(f"- Forecast: {self.forecast.statement()}")
        lines += ["", "| day | requests | throttled | quota tokens | p99 TPM | max TPM |"]
        lines.append("|---|---:|---:|---:|---:|---:|")
        for r in self.daily:
            lines.append(
                f"| {r.day.isoformat()} | {r.invocations:,.0f} | {r.throttles:,.0f} "
                f"| {r.quota_tokens:,.0f} | {r.p99_tpm:,.0f} | {r.max_tpm:,.0f} |"
            )
        lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def daily_rows(frame: pd.DataFrame, meta: UsageMeta) -> list[DailyRow]:
    """Per UTC day: totals, p99 and max minute TPM, throttled minutes."""
    pm = per_minute(frame, meta)
    day = frame["timestamp"].dt.tz_convert("UTC").dt.date
    rows = []
    for d, idx in frame.groupby(day).groups.items():
        f, p = frame.loc[idx], pm.loc[idx]
        rows.append(
            DailyRow(
                day=d,  # type: ignore[arg-type]
                periods=len(f),
                invocations=float(f["invocations"].sum()),
                throttles=float(f["throttles"].sum()),
                input_tokens=float(f["input_tokens"].sum()),
                output_tokens=float(f["output_tokens"].sum()),
                quota_tokens=float(quota_tokens(f, meta.burndown).sum()),
                p99_tpm=float(np.percentile(p["tpm"].to_numpy(float), 99)),
                max_tpm=float(p["tpm"].max()),
                throttled_minutes=int((f["throttles"] > 0).sum()),
            )
        )
    return sorted(rows, key=lambda r: r.day)


def summarize_usage(
    frame: pd.DataFrame,
    meta: UsageMeta,
    *,
    threshold: float = 0.8,
    confidence: float = 0.95,
    horizon_days: int = 365,
) -> UsageSummary:
    """Summarize ``frame``; the forecast needs ≥ 3 whole days with traffic."""
    frame = frame.sort_values("timestamp").reset_index(drop=True)
    pm = per_minute(frame, meta)
    notes = list(meta.notes)
    if meta.period_s > 60:
        notes.append(
            f"periods of {meta.period_s} s: each is spread evenly over its minutes, so the "
            "busiest minute is understated (CloudWatch keeps 1-minute data for 15 days)"
        )
    inv = float(frame["invocations"].sum())

    def mean_per_request(col: str) -> float:
        return float(frame[col].sum()) / inv if inv > 0 else 0.0

    rpm = Stats.of(pm["rpm"])
    latency: dict[str, float] = {}
    served = frame["invocations"] > 0
    for col in ("ttft_ms_avg", "latency_ms_avg"):
        w = frame.loc[served & frame[col].notna()]
        if len(w) and w["invocations"].sum() > 0:
            latency[col] = float(np.average(w[col], weights=w["invocations"]))
    for col in ("ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
                "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"):  # fmt: skip
        v = frame[col].dropna()
        if len(v):
            latency[f"{col}_median_minute"] = float(v.median())
    if not any(k.endswith("_median_minute") for k in latency):
        notes.append("latency percentiles unavailable from this source; averages only")
    daily = daily_rows(frame, meta)
    per_day = 86400 // meta.period_s
    whole = [r for r in daily if r.periods >= 0.9 * per_day]
    forecast = None
    if len(whole) >= 3 and sum(r.quota_tokens > 0 for r in whole) >= 3:
        forecast = forecast_exhaustion(
            [r.day for r in whole], np.array([r.quota_tokens for r in whole]),
            np.array([r.p99_tpm for r in whole]), meta.quota_tpm,
            threshold=threshold, confidence=confidence, horizon_days=horizon_days,
        )  # fmt: skip
    else:
        notes.append("fewer than 3 whole days with traffic: no growth trend or forecast")
    par = rpm.p99 / rpm.mean if rpm.mean > 0 else 1.0
    if par < 1.0 and rpm.mean > 0:  # traffic in under 1 % of the minutes: p99 is an empty one
        par = rpm.max / rpm.mean
        notes.append(
            "requests fall in under 1 % of the minutes: peak-to-average uses the busiest minute"
        )
    above = None
    if meta.quota_tpm:
        above = int((pm["tpm"] >= threshold * meta.quota_tpm).sum())
    return UsageSummary(
        meta=meta,
        start=str(frame["timestamp"].iloc[0]) if len(frame) else "",
        end=str(frame["timestamp"].iloc[-1]) if len(frame) else "",
        periods=len(frame),
        tpm=Stats.of(pm["tpm"]),
        rpm=rpm,
        peak_to_average=par,
        invocations=inv,
        throttles=float(frame["throttles"].sum()),
        throttled_minutes=int((frame["throttles"] > 0).sum()),
        minutes_above_threshold=above,
        mean_input_tokens=mean_per_request("input_tokens"),
        mean_output_tokens=mean_per_request("output_tokens"),
        mean_cache_read_tokens=mean_per_request("cache_read_tokens"),
        mean_cache_write_tokens=mean_per_request("cache_write_tokens"),
        latency_ms=latency,
        daily=tuple(daily),
        forecast=forecast,
        notes=tuple(notes),
    )
