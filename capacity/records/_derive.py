"""Per-request metrics from raw offsets (docs/architecture.md) and exact in-flight concurrency.

Every function here is pure and vectorised (numpy), so a million records take milliseconds.
Concurrency is an exact sweep-line over each request's interval ``[start_s, end)`` — never
sampled. A request's interval ends at ``end_s``; when a failed request has no ``end_s``, at its
last known time (last token, first token, else its send time: a zero-length interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]


def derive_metrics(
    start_s: Floats,
    first_s: Floats,
    last_s: Floats,
    end_s: Floats,
    output_tokens: Floats,
    scheduled_s: Floats | None = None,
) -> dict[str, Floats]:
    """``ttft_s, ttlt_s, e2e_s, tpot_s, tps`` (and ``lateness_s = start_s − scheduled_s`` when
    ``scheduled_s`` is given) from raw offsets (arrays of one length). The only place these
    metrics are computed (docs/architecture.md, "Records").

    ``tpot_s = (ttlt_s − ttft_s) / (n − 1)`` for ``n ≥ 2`` output tokens, else NaN;
    ``tps = 1 / tpot_s`` where ``tpot_s > 0``, else NaN — never inf (a response delivered in one
    chunk has ``tpot_s`` 0 and no measurable decode speed).
    """
    ttft = first_s - start_s
    ttlt = last_s - start_s
    e2e = end_s - start_s
    n = output_tokens
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(n >= 2, (ttlt - ttft) / (n - 1), np.nan)
        tps = np.where(tpot > 0, 1.0 / tpot, np.nan)
    out = {"ttft_s": ttft, "ttlt_s": ttlt, "e2e_s": e2e, "tpot_s": tpot, "tps": tps}
    if scheduled_s is not None:
        out["lateness_s"] = start_s - scheduled_s
    return out


def interval_end_s(frame: pd.DataFrame) -> Floats:
    """Where each request stops being in flight: ``end_s``, else its last known time."""
    end = frame["end_s"].to_numpy(dtype=np.float64, na_value=np.nan)
    for fallback in ("last_token_s", "first_token_s", "start_s"):
        values = frame[fallback].to_numpy(dtype=np.float64, na_value=np.nan)
        end = np.where(np.isnan(end), values, end)
    return end


def _events(start_s: Floats, end_s: Floats) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Distinct event times and the in-flight count just after each (ends before starts)."""
    times = np.concatenate([start_s, end_s])
    deltas = np.concatenate(
        [np.ones(start_s.size, dtype=np.int64), -np.ones(end_s.size, dtype=np.int64)]
    )
    order = np.lexsort((deltas, times))  # by time, then −1 before +1: intervals are half-open
    times, active = times[order], np.cumsum(deltas[order])
    last_of_time = np.append(times[1:] != times[:-1], True)
    return times[last_of_time], active[last_of_time]


def concurrency_timeline(records: pd.DataFrame) -> pd.DataFrame:
    """Exact in-flight concurrency over time: one row per distinct event time.

    ``active`` is the number of requests in flight from ``time`` until the next row's time
    (intervals are half-open ``[start_s, end)``, so a request ending when another starts does not
    overlap it). Offsets of different runs share no clock: pass one run at a time.
    """
    if records.empty:
        return pd.DataFrame({"time": np.array([], dtype=np.float64), "active": np.array([], "i8")})
    start = records["start_s"].to_numpy(dtype=np.float64, na_value=np.nan)
    times, active = _events(start, interval_end_s(records))
    return pd.DataFrame({"time": times, "active": active})


@dataclass(frozen=True)
class ConcurrencyStats:
    """Time-weighted in-flight concurrency over a window ``[first send, last end]``."""

    mean: float
    max: int
    duration_s: float
    area: float  # ∫ active dt, request-seconds

    @staticmethod
    def combine(parts: list[ConcurrencyStats]) -> ConcurrencyStats:
        """Pool windows measured on different clocks (runs): area and duration add up."""
        area = sum(p.area for p in parts)
        duration = sum(p.duration_s for p in parts)
        mean = area / duration if duration > 0 else float("nan")
        return ConcurrencyStats(mean, max((p.max for p in parts), default=0), duration, area)


def concurrency_stats(start_s: Floats, end_s: Floats) -> ConcurrencyStats:
    """Mean (time-weighted) and max in-flight count of one run's requests."""
    if start_s.size == 0:
        return ConcurrencyStats(float("nan"), 0, 0.0, 0.0)
    times, active = _events(start_s, end_s)
    area = float(np.sum(active[:-1] * np.diff(times)))
    duration = float(times[-1] - times[0])
    mean = area / duration if duration > 0 else float("nan")
    return ConcurrencyStats(mean, int(active.max(initial=0)), duration, area)


def mean_in_flight(start_s: Floats, end_s: Floats, lo_s: float, hi_s: float) -> float:
    """Time-weighted mean in-flight count over the window [lo_s, hi_s] (NaN if it is empty)."""
    if start_s.size == 0 or not hi_s > lo_s:
        return float("nan")
    times, active = _events(start_s, end_s)
    edges = np.clip(np.append(times, np.inf), lo_s, hi_s)
    return float(np.sum(active * np.diff(edges)) / (hi_s - lo_s))


def plateau_window(start_s: Floats, latency_s: float) -> tuple[float, float]:
    """The steady part of a level: sends from one mean latency after the first send until one
    before the last (before it the in-flight count is still ramping up, after it draining)."""
    if start_s.size == 0 or not np.isfinite(latency_s):
        return float("nan"), float("nan")
    return float(start_s.min() + latency_s), float(start_s.max() - latency_s)


def active_at_start(start_s: Floats, end_s: Floats) -> npt.NDArray[np.int64]:
    """Requests of the same run in flight when each request was sent (excluding itself)."""
    begun = np.searchsorted(np.sort(start_s), start_s, side="left")  # sent strictly before
    ended = np.searchsorted(np.sort(end_s), start_s, side="right")  # ended by the send
    # Zero-length intervals exactly at the send time ended "by" it without having begun before.
    instants = np.sort(start_s[start_s == end_s])
    ended -= np.searchsorted(instants, start_s, "right") - np.searchsorted(instants, start_s)
    return (begun - ended).astype(np.int64)
