"""The client's measure of itself (``bench.monitor``): a stalled loop shows in the lag of the
requests in flight across the stall, and only theirs; busy and idle show in the CPU share."""

from __future__ import annotations

import asyncio
import math
import time

from bench.loop import run
from bench.monitor import LoopMonitor


def busy(seconds: float) -> None:
    """Hold the loop (and a core) for ``seconds``: what a long callback or a starved process
    does to every stamp taken after it."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_stall_is_the_lag_of_the_requests_in_flight_across_it() -> None:
    async def main() -> tuple[tuple[float, float], ...]:
        monitor = LoopMonitor()
        monitor.start()
        t0 = time.perf_counter()
        await asyncio.sleep(0.1)  # quiet: every tick on time
        t1 = time.perf_counter()
        busy(0.15)  # the loop stalls for 150 ms
        await asyncio.sleep(0.05)  # the late tick runs, then the loop is quiet again
        t2 = time.perf_counter()
        await asyncio.sleep(0.1)
        t3 = time.perf_counter()
        monitor.stop()
        return (
            monitor.observe(t0, t1),  # ended before the stall
            monitor.observe(t0, t2),  # in flight across it
            monitor.observe(t2, t3),  # sent after it
        )

    (before, _), (across, _), (after, _) = run(main())
    # the tick due within 10 ms of the stall's start ran at its end: at least 140 ms late
    assert across >= 0.13
    # before and after: the timer's granularity on a quiet machine (a loaded one adds its own
    # stalls, shorter than this one)
    assert max(before, after) < across / 2


def test_cpu_share_is_the_process_cpu_time_over_wall_time() -> None:
    async def main() -> tuple[tuple[float, float], tuple[float, float], float]:
        monitor = LoopMonitor()
        monitor.start()
        await asyncio.sleep(0.03)
        t0 = time.perf_counter()
        await asyncio.sleep(0.2)  # idle
        t1, cpu1 = time.perf_counter(), time.process_time()
        for _ in range(30):  # busy, but the loop runs every 10 ms
            busy(0.01)
            await asyncio.sleep(0)
        t2, cpu2 = time.perf_counter(), time.process_time()
        idle, loaded = monitor.observe(t0, t1), monitor.observe(t1, t2)
        monitor.stop()
        return idle, loaded, (cpu2 - cpu1) / (t2 - t1)

    (_, idle_share), (busy_lag, busy_share), measured = run(main())
    # the share of a core this process got while busy (all of one on a quiet machine, less on a
    # loaded one): the monitor's window starts at most one tick (10 ms of 300) earlier
    assert abs(busy_share - measured) < 0.1
    assert idle_share < 0.2 and busy_share > idle_share + 0.1
    assert busy_lag < 0.05  # the loop kept running its timers: busy, not stalled


def test_nothing_sampled_before_the_send_is_unknown() -> None:
    monitor = LoopMonitor()
    assert all(map(math.isnan, monitor.observe(0.0, 1.0)))

    async def main() -> tuple[float, float]:
        monitor.start()
        await asyncio.sleep(0.02)
        monitor.stop()
        # a request sent before the monitor started; and one whose end is unknown (until now)
        early = monitor.observe(time.perf_counter() - 10.0, time.perf_counter())
        assert all(map(math.isnan, early))
        return monitor.observe(time.perf_counter() - 0.015, math.nan)

    lag, share = run(main())
    assert lag >= 0 and share >= 0
