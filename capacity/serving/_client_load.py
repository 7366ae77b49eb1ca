"""Did the client distort its own measurement? Per level, from what it recorded about itself.

A sweep's client records, per request, the latest its event loop ran a 10 ms timer while the
request was in flight (``loop_lag_s``) and its CPU seconds per wall second (``client_cpu_share``;
docs/architecture.md, "Records"). A stalled loop reads every chunk late: the stall lands in the
stream's longest inter-token gap (``max_gap_s``, which pins the prefill cost) and in its TTFT.
The timer sees the stall too, so the level's median lag against the inter-token time and TTFT
it measured says how much of those could be the client's own.

The rule (docs/twin.md, "When the client distorts the probe"): a (run, mode, prompt, level)
group is **distorted** when the median over its requests of ``loop_lag_s`` is above
``LAG_PER_TOKEN_TIME`` × its median TPOT, or above ``LAG_PER_TTFT`` × its median TTFT.
Measured against the emulator on the shared 2-core box (docs/twin.md has the table;
``benchmarks/client_load.py`` reruns it): quiet probes had medians of 0.1–0.9 × TPOT (one level
2.1, a transient, refused) and their twins forecast the held-out levels within 3.3 %; probes
taken beside CPU burners (load average 5–10) had 2.5–71 × TPOT at every level, longest gaps up to
2.5 × the quiet ones' at the large prompt, and twins that forecast tokens/s at level 50 34–46 %
low, outside their bands. A send that leaves late (``lateness_s``) is reported but not judged:
calibration simulates the actual send times.

The share of a core the client used says which fix applies: near one core (``SATURATED_SHARE``),
the client itself was too busy (``--workers`` spreads it); well below, other processes held the
CPU (a quieter machine, or ``--workers``: more processes get more of a contended CPU).

This module reads the validated records frame (``capacity.records``) by column; it imports
numpy and, only for type checking, pandas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from capacity.errors import CapacityError

if TYPE_CHECKING:
    import pandas as pd

LAG_PER_TOKEN_TIME = 2.0
"""A level's median loop lag above this many inter-token times (its median TPOT) distorts it."""

LAG_PER_TTFT = 0.1
"""… or above this share of its median TTFT (the 10 % accuracy target of a forecast)."""

SATURATED_SHARE = 0.8
"""Client CPU share (of one core) from which the client itself, not the machine, was busy."""

MIN_REQUESTS = 5
"""Fewer measured requests than this: the level is not judged (the calibration skips it too)."""

Floats = npt.NDArray[np.float64]
GROUP = ("run_id", "mode", "prompt_label", "level")
NEEDS = (*GROUP, "status", "ttft_s", "tpot_s", "loop_lag_s")


class ClientOverloadError(CapacityError, ValueError):
    """The client was overloaded while it measured; the message names the levels and the fix."""


@dataclass(frozen=True)
class ClientLoad:
    """What the client measured about itself during one level (one run, mode and prompt)."""

    run_id: str
    mode: str
    prompt: str
    level: float
    requests: int  # ok requests with the client's measure
    lag_p50_s: float  # median over requests of each one's loop_lag_s
    lag_p95_s: float
    tpot_p50_s: float
    ttft_p50_s: float
    cpu_share_p50: float  # NaN when not recorded
    lateness_p95_s: float  # NaN without a schedule

    @property
    def lag_per_token_time(self) -> float:
        """The median loop lag in inter-token times."""
        return self.lag_p50_s / self.tpot_p50_s if self.tpot_p50_s > 0 else math.inf

    @property
    def distorted(self) -> bool:
        """True when the client's stalls are a sizeable part of what it measured."""
        return (
            self.lag_p50_s > LAG_PER_TOKEN_TIME * self.tpot_p50_s
            or self.lag_p50_s > LAG_PER_TTFT * self.ttft_p50_s
        )

    @property
    def name(self) -> str:
        """``small level 10``."""
        return f"{self.prompt} level {self.level:g}"

    def describe(self) -> str:
        """The lag against the inter-token time, CPU share, send lateness and, from the CPU
        share, whose the CPU was: ``event-loop lag p50 28.4 ms (p95 35.2), 3.8x the
        inter-token time, client CPU 4% of a core, …; other processes held the CPU``."""
        parts = [
            f"event-loop lag p50 {self.lag_p50_s * 1e3:.1f} ms (p95 {self.lag_p95_s * 1e3:.1f}), "
            f"{self.lag_per_token_time:.1f}x the inter-token time"
        ]
        if not math.isnan(self.cpu_share_p50):
            parts.append(f"client CPU {self.cpu_share_p50:.0%} of a core")
        if not math.isnan(self.lateness_p95_s):
            parts.append(f"sends late by {self.lateness_p95_s * 1e3:.1f} ms p95")
        text = ", ".join(parts)
        if math.isnan(self.cpu_share_p50):
            return text
        if self.cpu_share_p50 >= SATURATED_SHARE:
            return f"{text}; the client itself was saturated"
        return f"{text}; other processes held the CPU"

    @property
    def fix(self) -> str:
        """What to do: workers when the client itself was saturated; else a quiet machine, or
        workers (more processes get more of a contended CPU, each with less to do)."""
        if self.cpu_share_p50 >= SATURATED_SHARE:
            return "rerun with --workers"
        return "rerun on a quiet machine or with --workers"


def client_load(records: pd.DataFrame) -> list[ClientLoad]:
    """One ``ClientLoad`` per (run, mode, prompt, level) of validated records with the client's
    measure; empty when the records have none (runs written before it, simulated probes)."""
    if any(c not in records.columns for c in NEEDS):
        return []
    lag_all = records["loop_lag_s"].to_numpy(float)
    ok = (records["status"] == "ok").to_numpy(bool) & np.isfinite(lag_all)
    frame = records[ok]
    if frame.empty:
        return []
    out = []
    for key, g in frame.groupby(list(GROUP), sort=False, observed=True):
        run_id, mode, prompt, level = (str(k) for k in key)
        tpot = g["tpot_s"].to_numpy(float)
        tpot = tpot[np.isfinite(tpot) & (tpot > 0)]
        if len(g) < MIN_REQUESTS or tpot.size == 0:
            continue
        lag = g["loop_lag_s"].to_numpy(float)
        out.append(
            ClientLoad(
                run_id=run_id, mode=mode, prompt=prompt, level=float(level),
                requests=len(g),
                lag_p50_s=float(np.median(lag)),
                lag_p95_s=float(np.percentile(lag, 95)),
                tpot_p50_s=float(np.median(tpot)),
                ttft_p50_s=_median(g["ttft_s"].to_numpy(float)),
                cpu_share_p50=_median(_column(g, "client_cpu_share")),
                lateness_p95_s=_percentile(_column(g, "lateness_s"), 95),
            )
        )  # fmt: skip
    return out


def _column(g: pd.DataFrame, name: str) -> Floats:
    return g[name].to_numpy(float) if name in g.columns else np.full(len(g), np.nan)


def _median(x: Floats) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _percentile(x: Floats, p: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, p)) if x.size else math.nan


def _message(distorted: Sequence[ClientLoad]) -> str:
    """The one line naming the distorted levels, the worst one's figures and the fix."""
    worst = max(distorted, key=lambda load: load.lag_per_token_time)
    return (
        f"the client was overloaded during {_levels(distorted)} (worst, {worst.name}: "
        f"{worst.describe()}), so its timings carry its own stalls; {worst.fix}"
    )


def _levels(loads: Sequence[ClientLoad]) -> str:
    """``small levels 5 and 10, large level 10``."""
    by_prompt: dict[str, list[float]] = {}
    for load in loads:
        levels = by_prompt.setdefault(load.prompt, [])
        if load.level not in levels:
            levels.append(load.level)
    parts = []
    for prompt, levels in by_prompt.items():
        text = [f"{x:g}" for x in sorted(levels)]
        joined = text[0] if len(text) == 1 else f"{', '.join(text[:-1])} and {text[-1]}"
        parts.append(f"{prompt} level{'s' if len(text) > 1 else ''} {joined}")
    return ", ".join(parts)


def client_overload(records: pd.DataFrame) -> str | None:
    """One line naming the levels the client distorted (``ClientLoad.distorted``), the worst
    one's figures and the fix; None when none was (or the records lack the client's measure)."""
    distorted = [load for load in client_load(records) if load.distorted]
    return _message(distorted) if distorted else None


def check_client_load(records: pd.DataFrame) -> None:
    """Raise ``ClientOverloadError`` (``client_overload``'s line) when the client distorted any
    level of ``records``; records without the client's measure pass."""
    message = client_overload(records)
    if message is not None:
        raise ClientOverloadError(message)


__all__ = [
    "LAG_PER_TOKEN_TIME",
    "LAG_PER_TTFT",
    "SATURATED_SHARE",
    "ClientLoad",
    "ClientOverloadError",
    "check_client_load",
    "client_load",
    "client_overload",
]
