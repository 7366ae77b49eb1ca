"""Worker processes: one level's schedule split across N processes on this host.

One event loop reads ~600 streams before its own scheduling delays show in TTFT
(``docs/performance.md``); beyond that the load is spread over processes. The parent keeps the
run directory: it sends each worker its shard of the level (``LevelPlan.shard``), waits until
every worker has opened its connections, broadcasts a start instant ``t0`` a little ahead, and
writes the rows the workers stream back into the one ``records.jsonl`` (with a ``worker``
column). Every process stamps with ``time.perf_counter()`` — ``CLOCK_MONOTONIC`` on Linux, one
clock for the whole host — relative to the parent's origin, so rows need no clock correction.

Each worker journals every request as it launches it in its own file in the run directory
(``records.sent.wN.jsonl``, on disk before the request leaves) and reports the journal entries to
the parent with its rows, so the parent knows which requests were sent first (the first-batch
stop). After a killed sweep or a dead worker, ``--resume`` gives every journalled request
without a row its ``ClientStopped`` row; a clean end deletes the worker journals.

Ctrl-C reaches the parent (workers ignore SIGINT): the first one tells every worker to launch
nothing more and finish what is in flight (``drain``), a second one to cancel it now (``stop``);
each cancelled request still sends its row. A worker that dies ends the level: the others are
stopped, the level is not marked done and the run is marked incomplete (``WorkerDied``), to be
finished with ``--resume``.

Messages (pickled over a pipe), parent → worker: ``prepare`` (a ``LevelJob``), ``go`` (t0),
``warmup`` (n, prompt), ``stop_level``, ``drain``, ``stop``, ``exit``; worker → parent:
``ready``, ``rows`` (journal entries, rows, launched, active, in flight), ``done``, ``failed``
(message).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.engine import Engine, LevelJob, RecordContext, RowSink, preopen, quiet_gc
from bench.loop import run
from bench.prompts import Prompt
from bench.providers import make_provider
from bench.providers.base import Call, Endpoint
from bench.records import SentBatch, SentJournal, worker_journal

START_LEAD_S = 0.1  # t0 is this far ahead of the broadcast: every worker hears it in time
FLUSH_S = 0.05  # rows are sent to the parent in batches this often
JOIN_S = 10.0  # after this long at exit a worker is terminated


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its shard; the run is incomplete."""


# Receives journal entries reported by a worker, in its launch order; ``journaled`` is False
# when the worker has no disk of the run's own (a Ray actor) and the parent must journal them.
SentReport = Callable[[list[dict[str, Any]], bool], None]


# -- the worker side ----------------------------------------------------------------------------
def worker_main(
    conn: Connection,
    endpoint: Endpoint,
    pool_size: int,
    ctx: RecordContext,
    run_dir: Path | None = None,
) -> None:
    """A worker process's entry point: serve the parent's commands until ``exit``."""
    # Ctrl-C reaches every process of the terminal's group; the parent coordinates the stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with quiet_gc():
        run(WorkerServer(conn, endpoint, pool_size, ctx, run_dir=run_dir).serve())


class WorkerServer:
    """Runs shards of levels with one ``Engine``, as the parent commands. Shared by worker
    processes (a pipe) and Ray actors (``bench.distributed``, with their own transport)."""

    def __init__(
        self,
        conn: Connection | None,
        endpoint: Endpoint,
        pool_size: int,
        ctx: RecordContext,
        send: Callable[[tuple[Any, ...]], None] | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.conn = conn
        self._send = send or self._pipe_send
        self.endpoint = endpoint
        self.pool_size = pool_size
        self.ctx = ctx
        self.run_dir = run_dir  # None: no shared disk (a Ray actor), the parent journals
        self.rows: list[dict[str, Any]] = []
        self.sent: list[SentBatch] = []
        self.journal: SentJournal | None = None
        self.job: LevelJob | None = None

    def _pipe_send(self, msg: tuple[Any, ...]) -> None:
        assert self.conn is not None
        self.conn.send(msg)

    async def serve(self) -> None:
        """Read commands from the pipe (a thread) and run them on this loop."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        conn = self.conn
        assert conn is not None

        def reader() -> None:
            while True:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the parent is gone: stop
                    msg = ("exit",)
                loop.call_soon_threadsafe(inbox.put_nowait, msg)
                if msg[0] == "exit":
                    return

        threading.Thread(target=reader, name="llmcap-worker-inbox", daemon=True).start()
        await self.start()
        try:
            while True:
                msg = await inbox.get()
                if msg[0] == "exit":
                    break
                await self.handle(msg)
        finally:
            await self.close()

    async def start(self) -> None:
        """Create the provider and the engine (on the running loop)."""
        self.stop_all = asyncio.Event()
        self.provider = make_provider(self.endpoint, self.pool_size)
        if self.run_dir is not None:
            self.journal = SentJournal(self.run_dir / worker_journal(self.ctx.worker))
        self.engine = Engine(self.provider, self.ctx, self.rows.append, self.stop_all, self._sent)
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every())
        self._level: asyncio.Task[None] | None = None

    async def handle(self, msg: tuple[Any, ...]) -> None:
        """One command from the parent."""
        kind = msg[0]
        if kind == "prepare":
            self.job = job = msg[1]
            opened = await preopen(self.provider, job.plan.connections())
            self._send(("ready", opened))
        elif kind == "go":
            assert self.job is not None
            job = replace(self.job, plan=replace(self.job.plan, t0_pc=msg[1]))
            self._level = asyncio.get_running_loop().create_task(self._run_level(job))
        elif kind == "warmup":
            n, prompt, temperature = msg[1], msg[2], msg[3]
            await warm(self.provider.send, n, prompt, temperature)
            self._send(("ready", n))
        elif kind == "stop_level":
            self.engine.level_stopped = True
        elif kind == "drain":
            self.stop_all.set()
        elif kind == "stop":
            self.stop_all.set()
            await self.engine.cancel_inflight()

    async def _run_level(self, job: LevelJob) -> None:
        try:
            await self.engine.run_level(job)
        except Exception as exc:  # a bug, not a request failure: the parent must not hang
            self.flush()
            self._send(("failed", f"{type(exc).__name__}: {exc}"))
            return
        self.flush()
        self._send(("done",))

    def _sent(self, sent: SentBatch) -> None:
        """Requests are about to leave: journal them on disk here, and report them (expanded
        to entries at the next flush, after they have left)."""
        if self.journal is not None:
            self.journal.note_batch(sent)
            self.journal.flush()
        self.sent.append(sent)

    def flush(self) -> None:
        """Send the journal entries and rows since the last flush, with the live counters."""
        sent = [entry for batch in self.sent for entry in batch.entries()]
        self.sent.clear()
        rows, self.rows[:] = list(self.rows), []
        engine = self.engine
        self._send(("rows", sent, rows, engine.launched, engine.active, len(engine.inflight)))

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if self.rows or self.sent or self.engine.active or self.engine.inflight:
                self.flush()

    async def close(self) -> None:
        """Cancel what is in flight (rows are sent), then release the provider."""
        self.stop_all.set()
        await self.engine.cancel_inflight()
        if self._level is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._level, 10.0)
        self._flusher.cancel()
        with contextlib.suppress(Exception):
            self.flush()
        if self.journal is not None:  # the parent deletes it once every row is written
            self.journal.close(delete=False)
        await self.provider.aclose()


async def warm(send: Callable[[Call], Any], n: int, prompt: Prompt, temperature: float) -> None:
    """``n`` unrecorded 1-token requests at once (``--warmup``)."""
    calls = [Call(prompt, 1, temperature) for _ in range(n)]
    await asyncio.gather(*(send(call) for call in calls))


# -- the parent side ----------------------------------------------------------------------------
class _Worker:
    def __init__(self, index: int, proc: Any, conn: Connection) -> None:
        self.index = index
        self.proc = proc
        self.conn = conn
        self.launched = 0
        self.active = 0
        self.inflight = 0
        self.alive = True
        self.waiting: asyncio.Future[tuple[Any, ...]] | None = None


class ProcessDriver:
    """N worker processes driven level by level; rows go to ``sink`` on the parent's loop."""

    start_lead_s = START_LEAD_S

    def __init__(
        self,
        endpoint: Endpoint,
        pool_size: int,
        ctx: RecordContext,
        n: int,
        sink: RowSink,
        sent: SentReport,
        run_dir: Path | None,
    ) -> None:
        self.endpoint = endpoint
        self.pool_size = pool_size
        self.ctx = ctx
        self.n = n
        self.sink = sink
        self.sent = sent
        self.run_dir = run_dir
        self.workers: list[_Worker] = []
        self.dead: str | None = None
        self._closing = False

    @property
    def launched(self) -> int:
        """Requests launched in the current level, all workers."""
        return sum(w.launched for w in self.workers)

    @property
    def active(self) -> int:
        """Requests in flight, all workers (as of their last report)."""
        return sum(w.active for w in self.workers)

    @property
    def inflight(self) -> int:
        """Launched requests without a row yet, all workers (as of their last report)."""
        return sum(w.inflight for w in self.workers)

    def describe(self) -> dict[str, Any]:
        """For run.json: how the load was spread."""
        return {"kind": "processes", "count": self.n, "pids": [w.proc.pid for w in self.workers]}

    async def start(self) -> None:
        """Spawn the workers (a clean interpreter each: no state forked from this loop)."""
        self.loop = asyncio.get_running_loop()
        mp = multiprocessing.get_context("spawn")
        for i in range(self.n):
            parent, child = mp.Pipe()
            ctx = replace(self.ctx, worker=i)
            proc = mp.Process(
                target=worker_main,
                args=(child, self.endpoint, self.pool_size, ctx, self.run_dir),
                name=f"llmcap-worker-{i}",
                daemon=True,
            )
            proc.start()
            child.close()  # the parent keeps one end: a dead worker shows as EOF
            worker = _Worker(i, proc, parent)
            self.workers.append(worker)
            threading.Thread(
                target=self._read, args=(worker,), name=f"llmcap-worker-{i}-rx", daemon=True
            ).start()

    def _read(self, worker: _Worker) -> None:
        while True:
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError):
                worker.proc.join(1.0)
                self.loop.call_soon_threadsafe(self._on_dead, worker)
                return
            self.loop.call_soon_threadsafe(self._on_message, worker, msg)

    def _on_message(self, worker: _Worker, msg: tuple[Any, ...]) -> None:
        if msg[0] == "rows":
            _, sent, rows, worker.launched, worker.active, worker.inflight = msg
            if sent:  # before the rows: a request's journal entry comes no later than its row
                self.sent(sent, self.run_dir is not None)
            for row in rows:
                self.sink(row)
            return
        if msg[0] == "failed":
            self.dead = self.dead or f"worker {worker.index} failed: {msg[1]}"
        if worker.waiting is not None and not worker.waiting.done():
            worker.waiting.set_result(msg)

    def _on_dead(self, worker: _Worker) -> None:
        worker.alive = False
        if self._closing:
            return
        code = worker.proc.exitcode
        self.dead = self.dead or (
            f"worker {worker.index} (pid {worker.proc.pid}) exited with code {code}"
        )
        if worker.waiting is not None and not worker.waiting.done():
            worker.waiting.set_result(("dead",))
        for other in self.workers:  # stop the rest: the level cannot be completed
            self._send(other, ("stop",))

    def _send(self, worker: _Worker, msg: tuple[Any, ...]) -> None:
        if worker.alive:
            try:
                worker.conn.send(msg)
            except OSError:  # died meanwhile: its reader reports it
                worker.alive = False

    async def _all(self, msgs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Send one message to each live worker and wait for each one's answer."""
        waits = []
        for worker, msg in zip(self.workers, msgs, strict=True):
            if not worker.alive:
                continue
            worker.waiting = self.loop.create_future()
            waits.append(worker.waiting)
            self._send(worker, msg)
        return list(await asyncio.gather(*waits))

    def _check(self) -> None:
        if self.dead:
            raise WorkerDied(self.dead)

    async def warmup(self, n: int, prompt: Prompt, temperature: float) -> None:
        """``n`` warm-up requests spread over the workers."""
        shares = [len(range(i, n, self.n)) for i in range(self.n)]
        await self._all([("warmup", k, prompt, temperature) for k in shares])
        self._check()

    async def run_level(self, job: LevelJob) -> None:
        """Each worker opens its connections; then all start at one instant t0."""
        for worker in self.workers:
            worker.launched = 0
        jobs = [replace(job, plan=replace(job.plan, shard=i, shards=self.n)) for i in range(self.n)]
        await self._all([("prepare", j) for j in jobs])
        self._check()
        t0 = time.perf_counter() + self.start_lead_s
        await self._all([("go", t0)] * self.n)
        self._check()

    def stop_level(self) -> None:
        """Stop launching in this level (the early-stop rule fired)."""
        for worker in self.workers:
            self._send(worker, ("stop_level",))

    def drain(self) -> None:
        """The first Ctrl-C (or a failed first batch): every worker launches nothing more and
        finishes what it has in flight."""
        for worker in self.workers:
            self._send(worker, ("drain",))

    def stop(self) -> None:
        """The second Ctrl-C: every worker cancels what it has in flight (each still sends its
        row)."""
        for worker in self.workers:
            self._send(worker, ("stop",))

    async def close(self) -> None:
        """Ask every worker to exit; terminate one that does not within ``JOIN_S``."""
        self._closing = True
        for worker in self.workers:
            self._send(worker, ("exit",))
        deadline = time.monotonic() + JOIN_S
        for worker in self.workers:
            await asyncio.to_thread(worker.proc.join, max(0.0, deadline - time.monotonic()))
            if worker.proc.is_alive():
                worker.proc.terminate()
                await asyncio.to_thread(worker.proc.join, 2.0)
        await asyncio.sleep(0.05)  # let the readers deliver the last rows
