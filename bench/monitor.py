"""The client measuring itself: how late its event loop ran and how much CPU it used while each
request was in flight (the raw columns ``loop_lag_s`` and ``client_cpu_share``,
docs/architecture.md "Records").

A client whose loop is late reads every chunk late: each stamp carries the delay, the longest
inter-token gap of a stream (``max_gap_s``) grows by the worst stall, TTFT by the stall at the
first token. Nothing in a request's own stamps shows that; a timer does. While a level runs,
``LoopMonitor`` schedules a callback every ``PERIOD_S`` and notes when it ran, how late, and the
process's CPU seconds. A stall of the loop — a long callback, the GIL held by another thread,
the process waiting for a core on a busy machine — delays the next tick by its length.

Per request (``observe``, when its row is made, off the send path):

- ``loop_lag_s``: the latest any tick ran while the request was in flight (from its send to its
  end); 0 when every tick ran on time, within the timer's ~1 ms granularity;
- ``client_cpu_share``: the process's CPU seconds over wall seconds, from the last tick before
  the send to the end; 1.0 is one core busy throughout (the loop runs on one). A high lag with a
  low share means other processes held the CPU; a share near 1 means the client itself was
  saturated (spread the load with ``--workers``).

Every worker process and Ray actor runs its own engine, so each measures itself. The cost is one
callback every 10 ms (a clock read, a CPU-time read, three appends, the next timer: 24–37 µs of
CPU on the shared test box, where the loop wakes for it with cold caches) and, per request, two
bisections and the maximum of the lags of its ticks (5–7 µs for a 0.4 s request): about 2 % of
the client's CPU at 200 streams (``benchmarks/harness_overhead.py --sections monitor``,
docs/performance.md). Nothing runs in the send pass: a batch leaves as before.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from bisect import bisect_right

PERIOD_S = 0.01
"""Tick period: finer than any inter-token time worth measuring, cheap at 100 callbacks/s."""


class LoopMonitor:
    """Samples the running loop's lag and the process's CPU time while started."""

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self._times = array("d")  # perf_counter when each tick ran
        self._lags = array("d")  # how late it ran (s, ≥ 0)
        self._cpu = array("d")  # process CPU seconds then
        self._due = math.nan  # perf_counter when the next tick is due
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._handle is not None

    def start(self) -> None:
        """Forget earlier samples and tick on the running loop until ``stop``."""
        self.stop()
        self._loop = asyncio.get_running_loop()
        for samples in (self._times, self._lags, self._cpu):
            del samples[:]
        now = time.perf_counter()
        self._record(now, 0.0)
        self._schedule(now)

    def stop(self) -> None:
        """Stop ticking; the samples stay for ``observe`` until the next ``start``."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        self._due = now + self.period_s
        assert self._loop is not None
        self._handle = self._loop.call_later(self.period_s, self._tick)

    def _record(self, now: float, lag: float) -> None:
        self._times.append(now)
        self._lags.append(lag)
        self._cpu.append(time.process_time())

    def _tick(self) -> None:
        now = time.perf_counter()
        # A timer may fire up to a millisecond early (the loop's cached clock): early is 0 late.
        self._record(now, max(0.0, now - self._due))
        self._schedule(now)

    def observe(self, start_pc: float, end_pc: float) -> tuple[float, float]:
        """``(loop_lag_s, client_cpu_share)`` of a request in flight from ``start_pc`` to
        ``end_pc`` (perf_counter; NaN end: until now), normally called as its row is made, at
        its end; NaN, NaN when nothing was sampled before it was sent."""
        times = self._times
        now = time.perf_counter()
        end = end_pc if end_pc <= now else now  # NaN compares False: now
        before = bisect_right(times, start_pc) - 1
        if before < 0 or not start_pc <= end:
            return math.nan, math.nan
        stop = bisect_right(times, end, lo=before + 1)
        lag = max(self._lags[before + 1 : stop], default=0.0)
        if self._handle is not None and end >= self._due:  # the loop is late right now
            lag = max(lag, end - self._due)
        if now - end <= self.period_s:  # at its end: the CPU time up to now
            until, cpu = now, time.process_time()
        else:  # asked later: up to the last tick before its end
            until, cpu = times[stop - 1], self._cpu[stop - 1]
        wall = until - times[before]
        share = (cpu - self._cpu[before]) / wall if wall > 0 else math.nan
        return lag, share
