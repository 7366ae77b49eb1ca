"""The emulator's measurements of itself: event-loop lag and token emission lateness."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

STATS_WINDOW = 200_000


@dataclass
class Stats:
    """Live measurements of the emulator itself (what ``benchmarks/emulator_load.py`` reports)."""

    emission_lateness_s: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    loop_lag_s: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    requests: int = 0
    events_sent: int = 0
    throttled: int = 0
    cpu_start_s: float = field(default_factory=time.process_time)
    wall_start_s: float = field(default_factory=time.monotonic)

    def reset(self) -> None:
        """Start a new measurement window."""
        self.emission_lateness_s.clear()
        self.loop_lag_s.clear()
        self.requests = self.events_sent = self.throttled = 0
        self.cpu_start_s = time.process_time()
        self.wall_start_s = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """Percentiles (nearest-rank) of the windows, counts and CPU share since the last reset."""
        wall = max(time.monotonic() - self.wall_start_s, 1e-9)
        return {
            "requests": self.requests,
            "events_sent": self.events_sent,
            "throttled": self.throttled,
            "cpu_fraction": (time.process_time() - self.cpu_start_s) / wall,
            "emission_lateness_s": _quantiles(self.emission_lateness_s),
            "loop_lag_s": _quantiles(self.loop_lag_s),
        }


def _quantiles(values: deque[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    n = len(ordered)

    def q(p: float) -> float:
        return ordered[min(n - 1, int(p * n))]

    return {"n": n, "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": ordered[-1]}
