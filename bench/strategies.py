"""Load strategies (docs/architecture.md): when each request of a level is sent.

A strategy only decides *when*; it calls ``ctx.launch(batch, scheduled_pc)``, which sends one
request and returns its task. Schedules are computed up front from ``time.perf_counter()`` so a
slow client cannot silently lower the offered load: lateness is recorded per request instead.

With several worker processes each runs the same strategy on its shard of the same schedule
(``LevelPlan.shard`` of ``shards``, from a common start instant ``t0_pc``): entry i of an interval
or rate schedule goes to worker i mod N; a closed loop's slots are split evenly.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

MODES = ("sequential", "interval", "concurrency", "rate")
LEAD_S = 0.02  # the first launch of a schedule is this far in the future, so it can be on time


class LaunchContext(Protocol):
    """What a strategy may do: launch requests, wait, and notice that it should stop."""

    def launch(self, batch: int, scheduled_pc: float) -> asyncio.Task[None]:
        """Send one request now; ``scheduled_pc`` is when it was meant to go (NaN: no schedule)."""
        ...

    def launch_batch(self, batch: int, scheduled_pc: float, n: int) -> list[asyncio.Task[None]]:
        """Send ``n`` requests now, back to back (one journal write, then the sends)."""
        ...

    def stopped(self) -> bool:
        """True once the level (or the run) must stop launching."""
        ...

    async def sleep_until(self, pc: float) -> bool:
        """Sleep until ``time.perf_counter() >= pc``; False if stopped meanwhile."""
        ...

    def prepare(self, n: int) -> None:
        """Build the next ``n`` requests now (prompt, body, signature), ahead of their instant."""
        ...


@dataclass(frozen=True)
class LevelPlan:
    """How one level is driven."""

    mode: str
    level: float
    batches: int = 60
    interval_s: float = 1.0
    duration_s: float | None = None
    n_requests: int | None = None
    arrival: str = "poisson"
    max_inflight: int | None = None
    seed: int = 0
    shard: int = 0  # this worker's index ...
    shards: int = 1  # ... of this many
    t0_pc: float | None = None  # the common start instant (perf_counter); None: now + LEAD_S

    def start_pc(self) -> float:
        """When the schedule starts: the common instant, or just ahead of now."""
        return self.t0_pc if self.t0_pc is not None else time.perf_counter() + LEAD_S

    def mine(self, i: int) -> bool:
        """True when schedule entry ``i`` belongs to this worker (i mod N)."""
        return i % self.shards == self.shard

    def batch_share(self, batch: int) -> int:
        """This worker's requests in interval batch ``batch`` (entries b·L … b·L + L − 1)."""
        level = int(self.level)
        lo, hi = batch * level, (batch + 1) * level
        return len(range(lo + (self.shard - lo) % self.shards, hi, self.shards))

    def slots(self) -> range:
        """This worker's closed-loop slots (global slot numbers)."""
        return range(self.shard, int(self.level), self.shards)

    def request_budget(self) -> float:
        """This worker's share of ``n_requests`` (inf when the level is bounded by time)."""
        if self.n_requests is None:
            return math.inf
        n, k = divmod(self.n_requests, self.shards)
        return n + (1 if self.shard < k else 0)

    def connections(self) -> int:
        """Connections this worker opens before the level starts: its share of the first wave
        (a batch, or every slot of a closed loop) and, for open-loop modes, of what arrives in
        the first second."""
        if self.mode == "rate":
            first_second = math.ceil(self.level)
            cap = self.max_inflight or first_second
            return math.ceil(min(first_second, cap) / self.shards)
        if self.mode == "concurrency":
            return len(self.slots())
        return math.ceil(self.level / self.shards)

    def expected_requests(self) -> int | None:
        """How many requests the level will send, when that is known in advance."""
        if self.mode in ("sequential", "interval"):
            return int(self.level) * self.batches
        if self.n_requests is not None:
            return self.n_requests
        if self.mode == "rate" and self.duration_s is not None:
            return round(self.level * self.duration_s)
        return None


async def run_level(plan: LevelPlan, ctx: LaunchContext) -> None:
    """Drive one level to completion (every launched request finished)."""
    strategy: Callable[[LevelPlan, LaunchContext], Awaitable[None]] = {
        "sequential": sequential,
        "interval": interval,
        "concurrency": concurrency,
        "rate": rate,
    }[plan.mode]
    await strategy(plan, ctx)


async def sequential(plan: LevelPlan, ctx: LaunchContext) -> None:
    """Batches of ``level`` requests; the next starts when the previous has finished."""
    for batch in range(plan.batches):
        if ctx.stopped():
            return
        await asyncio.gather(*ctx.launch_batch(batch, math.nan, int(plan.level)))


async def interval(plan: LevelPlan, ctx: LaunchContext) -> None:
    """A batch of ``level`` requests every ``interval_s``, regardless of completions. Each
    batch is built (serialised, signed) before its instant, so it leaves at once."""
    t0 = plan.start_pc()
    tasks: list[asyncio.Task[None]] = []
    for batch in range(plan.batches):
        at = t0 + batch * plan.interval_s
        share = plan.batch_share(batch)
        if share == 0:
            continue
        ctx.prepare(share)
        if not await ctx.sleep_until(at):
            break
        tasks.extend(ctx.launch_batch(batch, at, share))
    await asyncio.gather(*tasks)


async def concurrency(plan: LevelPlan, ctx: LaunchContext) -> None:
    """Closed loop: ``level`` requests always in flight, for ``n_requests`` or ``duration_s``."""
    t0 = plan.start_pc() if plan.t0_pc is not None else time.perf_counter()
    if not await ctx.sleep_until(t0):
        return
    deadline = t0 + plan.duration_s if plan.duration_s else math.inf
    budget = plan.request_budget()
    sent = 0

    async def worker(slot: int) -> None:
        nonlocal sent
        while not ctx.stopped() and sent < budget and time.perf_counter() < deadline:
            sent += 1
            await ctx.launch(slot, math.nan)

    await asyncio.gather(*(worker(slot) for slot in plan.slots()))


def arrival_offsets(plan: LevelPlan) -> list[float]:
    """Pre-computed send offsets (s) for rate mode: Poisson (exponential gaps) or constant."""
    if plan.level <= 0:
        raise ValueError("rate mode needs a level (requests per second) above 0")
    if plan.n_requests is not None:
        n = plan.n_requests
    elif plan.duration_s is not None:
        n = max(1, round(plan.level * plan.duration_s))
    else:
        n = max(1, round(plan.level * 60))
    if plan.arrival == "constant":
        return [i / plan.level for i in range(n)]
    rng = random.Random(plan.seed)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(plan.level)
    return out


def _releaser(cap: asyncio.Semaphore) -> Callable[[asyncio.Task[None]], None]:
    def release(_task: asyncio.Task[None]) -> None:
        cap.release()

    return release


async def rate(plan: LevelPlan, ctx: LaunchContext) -> None:
    """Open loop at ``level`` requests/s; an optional in-flight cap delays (never drops)
    arrivals, and the delay shows up as lateness."""
    t0 = plan.start_pc()
    cap = None
    if plan.max_inflight:  # the cap is split like the load
        cap = asyncio.Semaphore(max(1, math.ceil(plan.max_inflight / plan.shards)))
    tasks: list[asyncio.Task[None]] = []
    for i, offset in enumerate(arrival_offsets(plan)):
        if not plan.mine(i):
            continue
        at = t0 + offset
        if not await ctx.sleep_until(at):
            break
        if cap is not None:
            await cap.acquire()
            if ctx.stopped():
                cap.release()
                break
        task = ctx.launch(i, at)
        if cap is not None:
            task.add_done_callback(_releaser(cap))
        tasks.append(task)
    await asyncio.gather(*tasks)
