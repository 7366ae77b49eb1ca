"""The load engine: runs one level's schedule (or a worker's shard of it) on one event loop and
turns every sent request into exactly one record row.

The single-process sweep (``bench.sweep``), each worker process (``bench.workers``) and each
Ray actor (``bench.distributed``) run this same engine; they differ only in where the rows go
(``sink``) and who decides when to start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from bench.monitor import LoopMonitor
from bench.prompts import Prompt
from bench.providers.base import Call, Provider
from bench.records import RawResult, SentBatch, make_record
from bench.strategies import LevelPlan, run_level

CANCEL_GRACE_S = 5.0
# After opening connections, this long for the server to accept them: the kernel completes a
# TCP handshake before the server's accept loop has seen the connection, and a request sent at
# once would wait for that inside its TTFT.
SETTLE_S = 0.2
RowSink = Callable[[dict[str, Any]], None]
# Receives the journal entries of requests about to be launched together (a ``SentBatch``, see
# ``bench.records.SentJournal``), before any of them is sent; they must be on disk (or with the
# process that writes them) when it returns.
SentSink = Callable[[SentBatch], None]


@dataclass(frozen=True)
class RecordContext:
    """What every row of a run shares: ids, settings, the clock origin, the worker number."""

    run_id: str
    provider: str
    model_id: str
    mode: str
    max_tokens: int
    temperature: float
    origin_pc: float  # time.perf_counter() of offset 0 (one clock for every worker on a host)
    worker: int = 0


@dataclass(frozen=True)
class LevelJob:
    """One level, as a worker runs it: its plan (with the shard and start instant) and prompts."""

    label: str
    level: float
    plan: LevelPlan
    prompts: tuple[Prompt, ...]


class Engine:
    """A ``LaunchContext`` over one provider; ``sink`` receives each finished request's row."""

    def __init__(
        self,
        provider: Provider,
        context: RecordContext,
        sink: RowSink,
        stop_all: asyncio.Event,
        journal: SentSink | None = None,
    ) -> None:
        self.provider = provider
        self.context = context
        self.sink = sink
        self.journal = journal
        self.stop_all = stop_all
        self.level_stopped = False
        self.launched = 0
        self.label = ""
        self.level = 0.0
        # id(call) → call, launch instant, batch, scheduled instant, request id
        self.inflight: dict[int, tuple[Call, float, int, float, str]] = {}
        self._abandoned: set[int] = set()
        self._lock = threading.Lock()  # on_start/on_end may run in a provider's threads
        self._active = 0
        self._prompts: list[Prompt] = []
        self._next_prompt = 0
        self._prepared: deque[tuple[Call, str]] = deque()  # built ahead, with its request id
        self._background: set[asyncio.Task[None]] = set()
        self.monitor = LoopMonitor()  # this loop's own lag and CPU, per request (bench.monitor)

    @property
    def active(self) -> int:
        """Requests in flight now."""
        return self._active

    async def run_level(self, job: LevelJob) -> None:
        """Drive ``job`` until every request it launched has finished (or the level stopped)."""
        self.label, self.level, self.launched = job.label, job.level, 0
        self._prompts, self._next_prompt = list(job.prompts), 0
        self._prepared.clear()
        self.level_stopped = False
        self.monitor.start()
        try:
            await run_level(job.plan, self)
        finally:
            self.monitor.stop()

    # -- the LaunchContext the strategies use -------------------------------------------------
    def _new_call(self) -> Call:
        prompt = self._prompts[self._next_prompt % len(self._prompts)]
        self._next_prompt += 1
        return Call(
            prompt=prompt,
            max_tokens=prompt.max_tokens or self.context.max_tokens,
            temperature=self.context.temperature,
            on_start=self._on_start,
            on_end=self._on_end,
        )

    def prepare(self, n: int) -> None:
        """Build the next ``n`` calls and let the provider serialise and sign them now; and,
        in the background, top the pool up to what is in flight plus ``n``, so a batch sent
        while earlier ones still stream finds its connections open (no handshake inside its
        TTFT)."""
        for _ in range(n - len(self._prepared)):
            call = self._new_call()
            self.provider.prepare(call)
            self._prepared.append((call, uuid.uuid4().hex))
        task = asyncio.get_running_loop().create_task(self._top_up(self._active + n))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _top_up(self, n: int) -> None:
        with contextlib.suppress(Exception):  # a failed open is retried by the request itself
            await self.provider.preconnect(n)

    def launch(self, batch: int, scheduled_pc: float) -> asyncio.Task[None]:
        """Send the next request now; a task reads its response (``launch_batch`` of one)."""
        return self.launch_batch(batch, scheduled_pc, 1)[0]

    def launch_batch(self, batch: int, scheduled_pc: float, n: int) -> list[asyncio.Task[None]]:
        """Send the next ``n`` requests (prepared ones first) now, back to back; a task per
        request reads its response. The batch is journalled first, in one write (if the process
        is killed before a row is written, ``--resume`` writes it from there); then every
        request is written in one pass, with nothing else between two writes (the lean clients
        write in ``begin_batch``, stamping each send, and only then set up the reading); the
        response tasks are created after the last write."""
        calls = [self._prepared.popleft() if self._prepared else self._fresh() for _ in range(n)]
        self.launched += n
        now = time.perf_counter()
        ctx = self.context
        if self.journal is not None:
            self.journal(SentBatch(
                self.label, self.level, batch, scheduled_pc - ctx.origin_pc, now - ctx.origin_pc,
                ctx.worker, tuple((rid, call.max_tokens) for call, rid in calls),
            ))  # fmt: skip
        results = self.provider.begin_batch([call for call, _ in calls])
        # In flight from here on; nothing (a cancel included) runs before this pass returns.
        inflight = self.inflight
        for call, rid in calls:
            inflight[id(call)] = (call, now, batch, scheduled_pc, rid)
        create_task = asyncio.get_running_loop().create_task
        return [
            create_task(self._request(call, result, batch, scheduled_pc, rid))
            for (call, rid), result in zip(calls, results, strict=True)
        ]

    def _fresh(self) -> tuple[Call, str]:
        return self._new_call(), uuid.uuid4().hex

    def stopped(self) -> bool:
        """True once the level or the run must stop launching."""
        return self.level_stopped or self.stop_all.is_set()

    async def sleep_until(self, pc: float) -> bool:
        """Sleep until ``pc`` (perf_counter); False if stopped meanwhile."""
        delay = pc - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_all.wait(), delay)
        # Loop timers have millisecond granularity and may fire up to 1 ms early: yield
        # (other tasks run) until the instant, so nothing is sent before its schedule.
        while time.perf_counter() < pc and not self.stopped():
            await asyncio.sleep(0)
        return not self.stopped()

    # -- request bookkeeping -------------------------------------------------------------------
    def _on_start(self) -> int:
        with self._lock:
            self._active += 1
            return self._active

    def _on_end(self) -> None:
        with self._lock:
            self._active -= 1

    async def _request(
        self, call: Call, result: Awaitable[RawResult], batch: int, scheduled_pc: float, rid: str
    ) -> None:
        key = id(call)
        try:
            raw = await result
        finally:
            self.inflight.pop(key, None)
        if key not in self._abandoned:  # else a cancelled row was already written for it
            self.record(raw, call.max_tokens, batch, scheduled_pc, rid)

    def record(
        self, raw: RawResult, max_tokens: int, batch: int, scheduled_pc: float, rid: str
    ) -> None:
        """Make the row of one finished request (``rid``, made at launch) for the sink."""
        ctx = self.context
        loop_lag_s, cpu_share = self.monitor.observe(raw.start_pc, raw.end_pc)
        row = make_record(
            raw,
            ctx.origin_pc,
            run_id=ctx.run_id,
            request_id=rid,
            provider=ctx.provider,
            model_id=ctx.model_id,
            prompt_label=self.label,
            mode=ctx.mode,
            level=self.level,
            batch=batch,
            max_tokens=max_tokens,
            temperature=ctx.temperature,
            scheduled_s=scheduled_pc - ctx.origin_pc if math.isfinite(scheduled_pc) else math.nan,
            worker=ctx.worker,
            loop_lag_s=loop_lag_s,
            client_cpu_share=cpu_share,
        )
        self.sink(row)

    async def cancel_inflight(self) -> None:
        """Stop every request in flight; each still gets exactly one (``cancelled``) row."""
        if not self.inflight:
            return
        for call, *_ in list(self.inflight.values()):
            call.cancel.set()
            if call.closer is not None:
                # closing a half-open stream may race with its reader thread: ignore that
                with contextlib.suppress(Exception):
                    call.closer()
        deadline = time.perf_counter() + CANCEL_GRACE_S
        while self.inflight and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        for key, (call, started, batch, scheduled, rid) in list(self.inflight.items()):
            if key in self._abandoned:  # a concurrent call (the second Ctrl-C) wrote its row
                continue
            # A thread still blocked in the SDK: write its row now; its late result is dropped.
            self._abandoned.add(key)
            raw = RawResult(
                start_pc=started, end_pc=time.perf_counter(), status="cancelled",
                error_code="Cancelled", error_message="cancelled by the user",
            )  # fmt: skip
            self.record(raw, call.max_tokens, batch, scheduled, rid)


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """A full garbage collection of a large heap stalls the loop for tens of milliseconds, which
    would show up as launch lateness and stamp delay. Freeze what exists now and collect young
    objects less often; a sweep's own garbage is short-lived and acyclic."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class Driver(Protocol):
    """Runs levels on one or more engines: in this process, worker processes or Ray actors."""

    @property
    def launched(self) -> int:
        """Requests launched in the current level."""
        ...

    @property
    def active(self) -> int:
        """Requests in flight."""
        ...

    @property
    def inflight(self) -> int:
        """Launched requests without a row yet (what a drain waits for)."""
        ...

    def describe(self) -> dict[str, Any]:
        """For run.json: how the load was spread (and, across hosts, the clock offsets)."""
        ...

    async def start(self) -> None:
        """Start the workers (if any)."""
        ...

    async def warmup(self, n: int, prompt: Prompt, temperature: float) -> None:
        """``n`` unrecorded 1-token requests, spread over the workers."""
        ...

    async def run_level(self, job: LevelJob) -> None:
        """Pre-open connections, then run the level to its end."""
        ...

    def stop_level(self) -> None:
        """Stop launching in the current level."""
        ...

    def drain(self) -> None:
        """Launch nothing more in this run; what is in flight finishes (the first Ctrl-C, a
        failed first batch)."""
        ...

    def stop(self) -> None:
        """Cancel what is in flight (the second Ctrl-C)."""
        ...

    async def close(self) -> None:
        """Stop the workers and release the providers."""
        ...


class LocalDriver:
    """The single-process driver: one ``Engine`` on the sweep's own loop."""

    def __init__(
        self,
        provider: Provider,
        ctx: RecordContext,
        sink: RowSink,
        stop_all: asyncio.Event,
        journal: SentSink | None = None,
    ) -> None:
        self.provider = provider
        self.stop_all = stop_all
        self.engine = Engine(provider, ctx, sink, stop_all, journal)
        self._cancelling: asyncio.Task[None] | None = None

    @property
    def launched(self) -> int:
        """Requests launched in the current level."""
        return self.engine.launched

    @property
    def active(self) -> int:
        """Requests in flight."""
        return self.engine.active

    @property
    def inflight(self) -> int:
        """Launched requests without a row yet."""
        return len(self.engine.inflight)

    def describe(self) -> dict[str, Any]:
        """For run.json: how the load was spread."""
        return {"kind": "single", "count": 1}

    async def start(self) -> None:
        """Nothing to start: the provider lives on this loop."""

    async def warmup(self, n: int, prompt: Prompt, temperature: float) -> None:
        """``n`` unrecorded 1-token requests at once (they also open connections)."""
        calls = [Call(prompt, 1, temperature) for _ in range(n)]
        await asyncio.gather(*(self.provider.send(call) for call in calls))

    async def run_level(self, job: LevelJob) -> None:
        """Open the level's connections (outside the measurement), then run it."""
        await preopen(self.provider, job.plan.connections())
        await self.engine.run_level(job)

    def stop_level(self) -> None:
        """Stop launching in this level."""
        self.engine.level_stopped = True

    def drain(self) -> None:
        """Launch nothing more; the level ends when what is in flight has finished."""
        self.stop_all.set()

    def stop(self) -> None:
        """The second Ctrl-C: cancel what is in flight now (each request still gets its row)."""
        self.stop_all.set()
        self._cancelling = asyncio.get_running_loop().create_task(self.engine.cancel_inflight())

    async def close(self) -> None:
        """Cancel anything left in flight and close the provider."""
        await self.engine.cancel_inflight()
        await self.provider.aclose()


async def preopen(provider: Provider, n: int) -> int:
    """Open up to ``n`` connections before a level (no request sent); when new ones were
    opened, give the server ``SETTLE_S`` to accept them. Returns the number open."""
    before = await provider.preconnect(0)
    after = await provider.preconnect(n)
    if after > before:
        await asyncio.sleep(SETTLE_S)
    return after
