"""Synthetic per-minute Bedrock usage with a known truth: a daily cycle, compound growth, Poisson
arrivals and an optional throttle episode. For tests, the demo and the CloudWatch stand-in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from capacity.usage._frame import LATENCY_COLUMNS, USAGE_COLUMNS


@dataclass(frozen=True)
class SyntheticTraffic:
    """The truth: ``base_rpm`` mean requests per minute on day 0, growing by ``growth_per_day``
    (compound); a daily cycle of relative ``amplitude`` peaking at ``peak_hour_utc``; tokens per
    request (means); a throttle episode of ``throttle_minutes`` starting at ``throttle_day`` +
    ``throttle_hour`` where demand is ``throttle_surge`` times normal and requests above
    ``quota_tpm`` are throttled."""

    days: int = 14
    base_rpm: float = 40.0
    growth_per_day: float = 0.03
    amplitude: float = 0.6
    peak_hour_utc: float = 15.0
    input_tokens: float = 1200.0
    output_tokens: float = 300.0
    cache_read_tokens: float = 200.0
    cache_write_tokens: float = 50.0
    burndown: float = 1.0
    quota_tpm: float = 600_000.0
    throttle_day: int | None = 9
    throttle_hour: float = 15.0
    throttle_minutes: int = 45
    throttle_surge: float = 6.0
    seed: int = 0

    def rpm(self, t_days: np.ndarray) -> np.ndarray:
        """Mean requests per minute at ``t_days`` after the start (the deterministic truth)."""
        hour = (t_days % 1.0) * 24.0
        cycle = 1.0 + self.amplitude * np.cos(2 * math.pi * (hour - self.peak_hour_utc) / 24.0)
        return self.base_rpm * (1.0 + self.growth_per_day) ** t_days * cycle

    def per_request_quota_tokens(self) -> float:
        """Quota tokens one request settles: input + cache write + burndown × output."""
        return self.input_tokens + self.cache_write_tokens + self.burndown * self.output_tokens


def synthetic_usage(traffic: SyntheticTraffic, end: datetime | None = None) -> pd.DataFrame:
    """A usage frame of ``traffic.days`` whole days of one-minute rows ending at ``end`` (the
    last whole UTC day before now by default)."""
    if end is None:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=traffic.days)
    minutes = traffic.days * 1440
    rng = np.random.default_rng(traffic.seed)
    t = np.arange(minutes) / 1440.0
    demand = traffic.rpm(t)
    if traffic.throttle_day is not None:
        first = int((traffic.throttle_day + traffic.throttle_hour / 24.0) * 1440)
        demand[first : first + traffic.throttle_minutes] *= traffic.throttle_surge
    wanted = rng.poisson(demand).astype(float)
    per_request = traffic.per_request_quota_tokens()
    fit = np.floor(traffic.quota_tpm / per_request)
    served = np.minimum(wanted, fit)
    throttles = wanted - served

    def tokens(mean: float) -> np.ndarray:
        # A sum of `served` gamma(k=4) request sizes is gamma(4·served): mean and spread per minute.
        shape = np.maximum(served * 4.0, 1e-9)
        return np.where(served > 0, rng.gamma(shape, mean / 4.0), 0.0).round()

    inp, out = tokens(traffic.input_tokens), tokens(traffic.output_tokens)
    read, write = tokens(traffic.cache_read_tokens), tokens(traffic.cache_write_tokens)
    # The ledger admits no more than the quota in a minute: trim the sizes of a minute whose
    # random request sizes would settle above it.
    charged = inp + write + traffic.burndown * out
    scale = np.minimum(1.0, traffic.quota_tpm / np.maximum(charged, 1.0))
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=minutes, freq="1min", tz="UTC"),
            "invocations": served,
            "throttles": throttles,
            "input_tokens": np.floor(inp * scale),
            "output_tokens": np.floor(out * scale),
            "cache_read_tokens": np.floor(read * scale),
            "cache_write_tokens": np.floor(write * scale),
            "estimated_tpm_quota_usage": np.nan,
        }
    )
    busy = np.clip(served / max(float(fit), 1.0), 0.0, 1.0)
    ttft = np.where(
        served > 0, 350.0 * (1.0 + 0.8 * busy) * rng.lognormal(0, 0.05, minutes), np.nan
    )
    latency = np.where(served > 0, ttft + traffic.output_tokens * 12.0, np.nan)
    for col in LATENCY_COLUMNS:
        base = ttft if col.startswith("ttft") else latency
        factor = {"avg": 1.0, "p50": 0.9, "p90": 1.5, "p99": 2.2}[col.rsplit("_", 1)[1]]
        frame[col] = base * factor
    return frame[list(USAGE_COLUMNS)]
