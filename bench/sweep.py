"""Sweeps: one load mode over a list of levels, per prompt set, recorded request by request.

``run_sweep(config)`` returns the run directory (``run.json``, ``records.jsonl``,
``records.parquet``). The level runner is ``bench.engine``: one ``Engine`` on this loop
(``LocalDriver``), or shards of each level in worker processes (``--workers``,
``bench.workers``) or Ray actors (``--ray``, ``bench.distributed``) whose rows this process
writes. Every request is journalled (``records.sent*.jsonl``) before it is sent. The first
Ctrl-C stops sending and finishes the requests in flight (it says how many, counting down); a
second one cancels them now (``cancelled`` rows). Either way every sent request has one row, and
``SweepInterrupted`` names the directory to ``--resume``. When every request of the run's first
batch fails, the sweep stops and raises ``SweepFailed``; a dead worker raises
``SweepIncomplete``. A ``level_check`` given by the caller sees each finished level's rows and
may return a warning, printed at the end of the level (``llmcap`` passes the client-overload
check of ``capacity``, which bench does not import).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.config import SweepConfig, SweepError
from bench.engine import Driver, LevelJob, LocalDriver, RecordContext, quiet_gc
from bench.loop import run
from bench.progress import LevelState, SweepProgress
from bench.prompts import Prompt, PromptSet, load_prompt_sets, size_synthetic
from bench.providers import make_provider
from bench.providers.base import Call, Endpoint, Provider
from bench.records import SENT_JOURNAL, SENT_JOURNALS, RecordWriter, SentBatch
from bench.rundir import RunDir, read_config
from bench.workers import ProcessDriver, WorkerDied

FIRST_BATCH_MAX = 10  # the first-batch check looks at most at this many requests
LevelCheck = Callable[[list[dict[str, Any]]], str | None]
"""Given a finished level's rows, a warning to print (or None)."""
LEVEL_CHECK_ROWS = 2_000  # a level_check sees a uniform sample of at most this many rows


class SweepInterrupted(Exception):
    """The sweep was stopped by Ctrl-C; finished requests are on disk in ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"sweep interrupted; resume with: llmcap bench --resume {run_dir}")
        self.run_dir = run_dir


class SweepFailed(Exception):
    """Every request of the first batch failed; the sweep stopped. ``reason`` says how."""

    def __init__(self, run_dir: Path, reason: str) -> None:
        super().__init__(f"{reason}; the rows are in {run_dir}/records.jsonl")
        self.run_dir = run_dir
        self.reason = reason


class SweepIncomplete(Exception):
    """A worker died (or a Ray actor was lost): finished requests are on disk in ``run_dir``,
    the level it was running is not marked done."""

    def __init__(self, run_dir: Path, reason: str) -> None:
        super().__init__(
            f"the run is incomplete: {reason}; finish it with: llmcap bench --resume {run_dir}"
        )
        self.run_dir = run_dir
        self.reason = reason


def provider_name(endpoint: Endpoint) -> str:
    """The ``provider`` column of a run's rows (the same whichever client sends them)."""
    return endpoint.provider


def run_sweep(
    config: SweepConfig | None = None,
    *,
    resume: Path | None = None,
    live_endpoint_url: str | None = None,
    level_check: LevelCheck | None = None,
) -> Path:
    """Run a sweep, or resume the one in ``resume`` (its stored configuration is used); returns
    the run directory.

    ``live_endpoint_url`` points the sweep at an endpoint that is not part of its stored
    configuration — the embedded emulator, which the ``llmcap`` command starts when neither
    ``endpoint.endpoint_url`` nor ``endpoint.region`` is set (bench reaches endpoints by URL
    only and never starts one itself). ``level_check`` sees each finished level's rows; a
    warning it returns is printed at the end of that level.
    """
    if resume is not None:
        config = read_config(resume)
    if config is None:
        raise SweepError("run_sweep needs a SweepConfig or resume=RUN_DIR")
    config.validate()
    load_prompt_sets(config.prompt)  # a bad --prompt fails before anything starts
    if config.ray is not None:
        from bench.distributed import check_cluster

        check_cluster(config.ray)
    endpoint = config.endpoint
    if live_endpoint_url is not None:
        endpoint = replace(endpoint, endpoint_url=live_endpoint_url)
    elif endpoint.endpoint_url is None and endpoint.region is None:
        raise SweepError(
            "no endpoint: set Endpoint(endpoint_url=...) or Endpoint(region=...), or run "
            "`llmcap bench` without either to measure the built-in emulator"
        )
    if resume is None and config.workers is None and config.ray is None:
        here = _on_this_host(endpoint.endpoint_url)
        n = config.default_workers(endpoint_on_this_host=here, cores=os.cpu_count())
        config = replace(config, workers=n)
    sweep = _Sweep(config, resume, endpoint, level_check)
    try:
        return run(sweep.run())
    except (SweepInterrupted, SweepFailed, SweepIncomplete):
        raise
    except BaseException as exc:  # never leave an empty run directory behind
        sweep.rundir.fail(f"{type(exc).__name__}: {exc}", discard_if_empty=resume is None)
        raise


def _on_this_host(url: str | None) -> bool:
    """True when ``url`` points at this machine (then the server shares its cores)."""
    host = (urlsplit(url or "").hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


class _Sweep:
    def __init__(
        self,
        config: SweepConfig,
        resume: Path | None,
        endpoint: Endpoint,
        level_check: LevelCheck | None = None,
    ) -> None:
        self.endpoint = endpoint  # the live endpoint (the embedded emulator's URL is not stored)
        self.level_check = level_check
        # the current level's rows for level_check: a uniform sample (reservoir) of at most
        # LEVEL_CHECK_ROWS, so memory stays bounded however long the level
        self.level_rows: list[dict[str, Any]] = []
        self.level_seen = 0
        self._sample = random.Random(0)
        self.rundir = RunDir.resume(resume) if resume else RunDir.create(config)
        self.stop_all = asyncio.Event()
        self.state: LevelState | None = None
        self.level_stopped = False
        self.interrupts = 0  # Ctrl-Cs so far: 1 finishes what is in flight, 2 cancels it
        self._probe_provider: Provider | None = None
        # The run's first batch (its first requests sent, up to FIRST_BATCH_MAX), to stop the
        # run when all of them fail; judged by what was sent first, not what finished first.
        # With workers, "first" is the order their journal entries reach this process.
        self.first_batch_size = 0
        self.first_batch: set[str] = set()
        self.first_batch_failed: set[str] = set()
        self.first_batch_judged = False
        self.failed_reason: str | None = None

    @property
    def config(self) -> SweepConfig:
        """The run's configuration, as stored in run.json (the same on a resume)."""
        return self.rundir.config

    # -- what the driver reports ----------------------------------------------------------------
    def _sent_here(self, sent: SentBatch) -> None:
        """Requests of this process are about to leave: their journal lines go to the OS first
        (``bench.records.RecordWriter.note_sent_batch``), so ``--resume`` can write their rows
        if this process is killed before it does."""
        self.writer.note_sent_batch(sent)
        self.writer.flush_sent()
        for rid, _ in sent.requests:
            self._note_first(rid)

    def _sent_by_workers(self, entries: list[dict[str, Any]], journaled: bool) -> None:
        """Journal entries a worker reported (already on disk there when ``journaled``)."""
        for entry in entries:
            if not journaled:
                self.writer.note_sent(entry)
            self._note_first(entry["request_id"])
        self.writer.flush_sent()

    def _note_first(self, rid: str) -> None:
        if len(self.first_batch) < self.first_batch_size:
            self.first_batch.add(rid)

    def _row(self, row: dict[str, Any]) -> None:
        """A finished request's row, from this process or a worker: write, count, check."""
        state = self.state
        assert state is not None
        self.writer.write(row)
        if self.level_check is not None:
            self._keep_for_check(row)
        status = row["status"]
        waited_s = _num(row["first_token_s"]) - _num(row["start_s"])
        state.add(status, waited_s, row["output_tokens"], row["error_code"], row["error_message"])
        self._check_first_batch(state, status, row["request_id"])
        self._check_error_rate(state)

    def _keep_for_check(self, row: dict[str, Any]) -> None:
        self.level_seen += 1
        if len(self.level_rows) < LEVEL_CHECK_ROWS:
            self.level_rows.append(row)
            return
        slot = self._sample.randrange(self.level_seen)
        if slot < LEVEL_CHECK_ROWS:
            self.level_rows[slot] = row

    def _check_first_batch(self, state: LevelState, status: str, rid: str) -> None:
        """Stop the run when every request of its first batch failed (a wrong endpoint, key
        or model id), instead of recording a whole sweep of errors. Throttles do not count:
        a quota that binds is what a sweep measures."""
        if self.first_batch_judged or rid not in self.first_batch:
            return
        if status in ("ok", "cancelled", "throttled"):
            self.first_batch_judged = True
            return
        self.first_batch_failed.add(rid)
        if len(self.first_batch_failed) < self.first_batch_size:
            return
        self.first_batch_judged = True
        if self.config.stop_on_first_batch_failure:
            self.failed_reason = (
                f"all {self.first_batch_size} requests of the first batch failed "
                f"({state.failures_by_code()})"
            )
            self.level_stopped = True
            self.stop_all.set()
            self.driver.drain()

    def _check_error_rate(self, state: LevelState) -> None:
        limit = self.config.stop_on_error_rate
        if limit is None or self.level_stopped or state.finished < 10:
            return
        rate = state.failure_rate()
        if rate > limit:
            self.level_stopped = True
            self.driver.stop_level()
            counts = ", ".join(f"{k} {v}" for k, v in sorted(state.by_status.items()))
            state.stop_reason = (
                f"failure rate {rate:.0%} > --stop-on-error-rate {limit:.0%} after "
                f"{state.finished} requests ({counts})"
            )

    def _on_interrupt(self) -> None:
        """Ctrl-C: the first stops sending and lets the requests in flight finish; the
        second cancels them now."""
        self.interrupts += 1
        self.stop_all.set()
        n = self.driver.inflight
        if self.interrupts == 1:
            self.driver.drain()
        if self.interrupts == 1 and n == 0:
            print("\nCtrl-C: sending stopped.", file=sys.stderr, flush=True)
        elif self.interrupts == 1:
            print(
                f"\nCtrl-C: sending stopped; finishing the {n} requests in flight "
                "(Ctrl-C again cancels them now).",
                file=sys.stderr,
                flush=True,
            )
        elif self.interrupts == 2:
            print(f"\nCtrl-C again: cancelling the {n} requests in flight.", file=sys.stderr)
            self.driver.stop()

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> Path:
        with quiet_gc():
            return await self._run()

    def _make_driver(self) -> Driver:
        config = self.rundir.config
        ctx = RecordContext(
            run_id=self.rundir.run_id,
            provider=provider_name(self.endpoint),
            model_id=config.endpoint.model_id,
            mode=config.mode,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            origin_pc=self.rundir.start_pc,
        )
        workers = config.workers or 1
        if config.ray is not None:
            from bench.distributed import RayDriver

            # Without --workers: one actor per live node of the cluster (counted on connect).
            pool = -(-config.pool_size() // workers) + 8
            n = config.workers or 0
            return RayDriver(
                self.endpoint, pool, ctx, n, self._row, self._sent_by_workers, config.ray
            )
        if workers > 1:
            pool = -(-config.pool_size() // workers) + 8
            return ProcessDriver(
                self.endpoint, pool, ctx, workers, self._row, self._sent_by_workers,
                self.rundir.path,
            )  # fmt: skip
        provider = make_provider(self.endpoint, config.pool_size())
        self._probe_provider = provider
        return LocalDriver(provider, ctx, self._row, self.stop_all, self._sent_here)

    async def _run(self) -> Path:
        config = self.rundir.config
        loop = self.main_loop = asyncio.get_running_loop()
        self.writer = RecordWriter(self.rundir.path)
        self.driver = self._make_driver()
        loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        progress = SweepProgress(config.progress)
        incomplete: str | None = None
        try:
            await self.driver.start()
            self.rundir.meta["workers"] = self.driver.describe()
            self.rundir.save()
            sets = await self._prepare_prompts(load_prompt_sets(config.prompt))
            with progress:
                await self._warmup(sets)
                for pset in sets:
                    for level in config.levels:
                        if self.stop_all.is_set():
                            break
                        if self.rundir.is_done(pset.label, level):
                            continue
                        await self._run_level(pset, level, progress)
        except WorkerDied as exc:
            incomplete = str(exc)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            await self.driver.close()
            if self._probe_provider is not None and not isinstance(self.driver, LocalDriver):
                await self._probe_provider.aclose()
            self.writer.compact()
            self.writer.close()
            if incomplete is None:  # every worker's journalled request has its row
                for journal in self.rundir.path.glob(SENT_JOURNALS):
                    if journal.name != SENT_JOURNAL:
                        journal.unlink(missing_ok=True)
            self.rundir.finish(
                interrupted=self.interrupts > 0 or incomplete is not None,
                failed=self.failed_reason,
            )
            if incomplete is not None:
                self.rundir.meta["status"] = "incomplete"
                self.rundir.meta["incomplete_reason"] = incomplete
                self.rundir.save()
        if incomplete is not None:
            raise SweepIncomplete(self.rundir.path, incomplete)
        if self.failed_reason is not None:
            raise SweepFailed(self.rundir.path, self.failed_reason)
        if self.stop_all.is_set():
            raise SweepInterrupted(self.rundir.path)
        return self.rundir.path

    async def _run_level(self, pset: PromptSet, level: float, progress: SweepProgress) -> None:
        plan = self.rundir.config.plan(level)
        self.level_stopped = False
        self.state = LevelState(pset.label, level, plan.expected_requests())
        self.level_rows, self.level_seen = [], 0
        if self.first_batch_size == 0:
            self.first_batch_size = max(1, min(FIRST_BATCH_MAX, int(level)))
        progress.start_level(self.state)
        ticker = asyncio.get_running_loop().create_task(self._tick(progress))
        try:
            # The driver opens the level's connections first, outside the measurement, so
            # the first wave is timed like the rest (no handshake in its TTFT), no token spent.
            await self.driver.run_level(LevelJob(pset.label, level, plan, pset.prompts))
        finally:
            ticker.cancel()
            self.state.launched = self.driver.launched
        progress.end_level(self.state)
        if self.level_check is not None and self.level_rows:
            warning = self.level_check(self.level_rows)
            if warning is not None:
                progress.warn(f"{pset.label} level {level:g}: {warning}")
        if self.failed_reason is None and not self.stop_all.is_set():
            self.rundir.mark_done(pset.label, level, self.state.stop_reason)
            self.writer.compact()
            if self.rundir.config.drain_s > 0:
                await self._sleep(self.rundir.config.drain_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_all.wait(), seconds)

    async def _tick(self, progress: SweepProgress) -> None:
        last = -1.0
        while True:
            if self.state is not None:
                self.state.launched = self.driver.launched
            progress.inflight = self.driver.active
            progress.refresh()
            now = time.monotonic()
            inflight = self.driver.inflight
            if self.interrupts == 1 and inflight and now - last >= 1.0:
                last = now  # the countdown of the first Ctrl-C, once a second
                progress.finishing(inflight)
            await asyncio.sleep(0.25)

    async def _prepare_prompts(self, sets: list[PromptSet]) -> list[PromptSet]:
        out = []
        for pset in sets:
            if pset.synthetic_tokens is None:
                out.append(pset)
                continue
            prompt = await asyncio.to_thread(size_synthetic, pset.synthetic_tokens, self._probe)
            out.append(replace(pset, prompts=(prompt,)))
        return out

    def _probe(self, text: str) -> int:
        """The endpoint's input-token count of ``text`` (a 1-token request's usage)."""
        call = Call(prompt=Prompt(text), max_tokens=1, temperature=0.0)
        if self._probe_provider is None:  # the load runs in workers: probe from here
            self._probe_provider = asyncio.run_coroutine_threadsafe(
                self._new_provider(), self.main_loop
            ).result()
        provider = self._probe_provider
        future = asyncio.run_coroutine_threadsafe(provider.send(call), self.main_loop)
        raw = future.result()
        if raw.input_tokens is None:
            raise SweepError(
                f"could not size a synthetic prompt: the probe request failed "
                f"({raw.status} {raw.error_code}: {raw.error_message})"
            )
        return int(raw.input_tokens)

    async def _new_provider(self) -> Provider:
        return make_provider(self.endpoint, 1)

    async def _warmup(self, sets: list[PromptSet]) -> None:
        """``warmup`` unrecorded requests per prompt set, sent together: they open that many
        connections (TCP, and TLS on AWS) and warm whatever the endpoint caches."""
        n = self.rundir.config.warmup
        for pset in sets if n > 0 else []:
            await self.driver.warmup(n, pset.prompts[0], self.rundir.config.temperature)


def _num(value: Any) -> float:
    """A row's time (NaN when it never happened: None after a JSON round trip)."""
    return float("nan") if value is None else float(value)
