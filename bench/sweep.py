"""Sweeps: one load mode over a list of levels, per prompt set, recorded request by request.

``run_sweep(config)`` returns the run directory (``run.json``, ``records.jsonl``,
``records.parquet``). The first Ctrl-C stops sending and finishes the requests in flight (it
says how many, counting down); a second one cancels them now (``cancelled`` rows). Either way
every sent request has one row, and ``SweepInterrupted`` names the directory to ``--resume``.
When every request of the run's first batch fails, the sweep stops and raises ``SweepFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from bench.config import SweepConfig, SweepError
from bench.loop import run
from bench.progress import LevelState, SweepProgress
from bench.prompts import Prompt, PromptSet, load_prompt_sets, size_synthetic
from bench.providers import make_provider
from bench.providers.base import Call, Endpoint, Provider
from bench.records import RawResult, RecordWriter, make_record
from bench.rundir import RunDir, read_config
from bench.strategies import run_level

CANCEL_GRACE_S = 5.0
FIRST_BATCH_MAX = 10  # the first-batch check looks at most at this many requests


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


def run_sweep(
    config: SweepConfig | None = None,
    *,
    resume: Path | None = None,
    live_endpoint_url: str | None = None,
) -> Path:
    """Run a sweep, or resume the one in ``resume`` (its stored configuration is used); returns
    the run directory.

    ``live_endpoint_url`` points the sweep at an endpoint that is not part of its stored
    configuration — the embedded emulator, which the ``llmcap`` command starts when neither
    ``endpoint.endpoint_url`` nor ``endpoint.region`` is set (bench reaches endpoints by URL
    only and never starts one itself).
    """
    if resume is not None:
        config = read_config(resume)
    if config is None:
        raise SweepError("run_sweep needs a SweepConfig or resume=RUN_DIR")
    config.validate()
    load_prompt_sets(config.prompt)  # a bad --prompt fails before anything starts
    endpoint = config.endpoint
    if live_endpoint_url is not None:
        endpoint = replace(endpoint, endpoint_url=live_endpoint_url)
    elif endpoint.endpoint_url is None and endpoint.region is None:
        raise SweepError(
            "no endpoint: set Endpoint(endpoint_url=...) or Endpoint(region=...), or run "
            "`llmcap bench` without either to measure the built-in emulator"
        )
    sweep = _Sweep(config, resume, endpoint)
    try:
        return run(sweep.run())
    except (SweepInterrupted, SweepFailed):
        raise
    except BaseException as exc:  # never leave an empty run directory behind
        sweep.rundir.fail(f"{type(exc).__name__}: {exc}", discard_if_empty=resume is None)
        raise


class _Sweep:
    def __init__(self, config: SweepConfig, resume: Path | None, endpoint: Endpoint) -> None:
        self.endpoint = endpoint  # the live endpoint (the embedded emulator's URL is not stored)
        self.rundir = RunDir.resume(resume) if resume else RunDir.create(config)
        self.stop_all = asyncio.Event()
        self.inflight: dict[int, tuple[Call, float, int, float, str]] = {}
        self._abandoned: set[int] = set()
        self._lock = threading.Lock()
        self._active = 0
        self.state: LevelState | None = None
        self.level_stopped = False
        self.interrupts = 0  # Ctrl-Cs so far: 1 finishes what is in flight, 2 cancels it
        # The run's first batch (its first requests sent, up to FIRST_BATCH_MAX), to stop the
        # run when all of them fail; judged by what was sent first, not what finished first.
        self.first_batch_size = 0
        self.first_batch: list[str] = []
        self.first_batch_failed: set[str] = set()
        self.first_batch_judged = False
        self.failed_reason: str | None = None
        self._journal_flush_due = False

    @property
    def config(self) -> SweepConfig:
        """The run's configuration, as stored in run.json (the same on a resume)."""
        return self.rundir.config

    # -- the LaunchContext the strategies use -------------------------------------------------
    def launch(self, batch: int, scheduled_pc: float) -> asyncio.Task[None]:
        assert self.state is not None
        prompt = self._prompts[self._next_prompt % len(self._prompts)]
        self._next_prompt += 1
        call = Call(
            prompt=prompt,
            max_tokens=prompt.max_tokens or self.config.max_tokens,
            temperature=self.config.temperature,
            on_start=self._on_start,
            on_end=self._on_end,
        )
        self.state.launched += 1
        loop, rid = asyncio.get_running_loop(), uuid.uuid4().hex
        # Journal the send (bench.records.RecordWriter.note_sent): if this process is killed
        # before the row is written, `--resume` writes it. One flush per batch, scheduled ahead
        # of the batch's tasks, so every journal line is on disk before its request is sent.
        start = self.rundir.start_pc
        self.writer.note_sent({
            "request_id": rid, "prompt_label": self.state.label, "level": self.state.level,
            "batch": batch, "max_tokens": call.max_tokens,
            "scheduled_s": scheduled_pc - start, "start_s": time.perf_counter() - start,
        })  # fmt: skip
        if not self._journal_flush_due:
            self._journal_flush_due = True
            loop.call_soon(self._flush_journal)
        if len(self.first_batch) < self.first_batch_size:
            self.first_batch.append(rid)
        return loop.create_task(self._request(call, batch, scheduled_pc, rid))

    def _flush_journal(self) -> None:
        self._journal_flush_due = False
        self.writer.flush_sent()

    def stopped(self) -> bool:
        return self.level_stopped or self.stop_all.is_set()

    async def sleep_until(self, pc: float) -> bool:
        delay = pc - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_all.wait(), delay)
        return not self.stopped()

    # -- request bookkeeping -------------------------------------------------------------------
    def _on_start(self) -> int:
        with self._lock:
            self._active += 1
            return self._active

    def _on_end(self) -> None:
        with self._lock:
            self._active -= 1

    async def _request(self, call: Call, batch: int, scheduled_pc: float, rid: str) -> None:
        key = id(call)
        self.inflight[key] = (call, time.perf_counter(), batch, scheduled_pc, rid)
        try:
            raw = await self.provider.send(call)
        finally:
            self.inflight.pop(key, None)
        if key not in self._abandoned:  # else a cancelled row was already written for it
            self._record(raw, call.max_tokens, batch, scheduled_pc, rid)

    def _record(
        self, raw: RawResult, max_tokens: int, batch: int, scheduled_pc: float, rid: str
    ) -> None:
        state = self.state
        assert state is not None
        row = make_record(
            raw,
            self.rundir.start_pc,
            run_id=self.rundir.run_id,
            request_id=rid,
            provider=self.provider.name,
            model_id=self.config.endpoint.model_id,
            prompt_label=state.label,
            mode=self.config.mode,
            level=state.level,
            batch=batch,
            max_tokens=max_tokens,
            temperature=self.config.temperature,
            scheduled_s=scheduled_pc - self.rundir.start_pc,
        )
        self.writer.write(row)
        waited_s = row["first_token_s"] - row["start_s"]
        state.add(raw.status, waited_s, row["output_tokens"], raw.error_code, raw.error_message)
        self._check_first_batch(state, raw.status, rid)
        self._check_error_rate(state)

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

    def _check_error_rate(self, state: LevelState) -> None:
        limit = self.config.stop_on_error_rate
        if limit is None or self.level_stopped or state.finished < 10:
            return
        rate = state.failure_rate()
        if rate > limit:
            self.level_stopped = True
            counts = ", ".join(f"{k} {v}" for k, v in sorted(state.by_status.items()))
            state.stop_reason = (
                f"failure rate {rate:.0%} > --stop-on-error-rate {limit:.0%} after "
                f"{state.finished} requests ({counts})"
            )

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> Path:
        # A full garbage collection of a large heap stalls the loop for tens of milliseconds,
        # which would show up as launch lateness. Freeze what exists now and collect young
        # objects less often; the sweep's own garbage is short-lived and acyclic.
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1_000)
        try:
            return await self._run()
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    async def _run(self) -> Path:
        config = self.rundir.config
        loop = self.main_loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        self.provider: Provider = make_provider(self.endpoint, config.pool_size())
        self.writer = RecordWriter(self.rundir.path)
        progress = SweepProgress(config.progress)
        try:
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
        finally:
            await self._cancel_inflight()
            loop.remove_signal_handler(signal.SIGINT)
            await self.provider.aclose()
            self.writer.compact()
            self.writer.close()
            self.rundir.finish(interrupted=self.interrupts > 0, failed=self.failed_reason)
        if self.failed_reason is not None:
            raise SweepFailed(self.rundir.path, self.failed_reason)
        if self.stop_all.is_set():
            raise SweepInterrupted(self.rundir.path)
        return self.rundir.path

    def _on_interrupt(self) -> None:
        """Ctrl-C: the first stops sending and lets the requests in flight finish; the
        second cancels them now."""
        self.interrupts += 1
        self.stop_all.set()
        n = len(self.inflight)
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
            self._cancelling = self.main_loop.create_task(self._cancel_inflight())

    async def _run_level(self, pset: PromptSet, level: float, progress: SweepProgress) -> None:
        plan = self.rundir.config.plan(level)
        self._prompts, self._next_prompt = list(pset.prompts), 0
        self.level_stopped = False
        self.state = LevelState(pset.label, level, plan.expected_requests())
        if self.first_batch_size == 0:
            self.first_batch_size = max(1, min(FIRST_BATCH_MAX, int(level)))
        progress.start_level(self.state)
        ticker = asyncio.get_running_loop().create_task(self._tick(progress))
        try:
            await run_level(plan, self)
        finally:
            ticker.cancel()
        progress.end_level(self.state)
        if self.failed_reason is None and not self.stop_all.is_set():
            self.rundir.mark_done(pset.label, level, self.state.stop_reason)
            self.writer.compact()
            if self.rundir.config.drain_s > 0:
                await self.sleep_until(time.perf_counter() + self.rundir.config.drain_s)

    async def _tick(self, progress: SweepProgress) -> None:
        last = -1.0
        while True:
            progress.inflight = self._active
            progress.refresh()
            now = time.monotonic()
            if self.interrupts == 1 and self.inflight and now - last >= 1.0:
                last = now  # the countdown of the first Ctrl-C, once a second
                progress.finishing(len(self.inflight))
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
        future = asyncio.run_coroutine_threadsafe(self.provider.send(call), self.main_loop)
        raw = future.result()
        if raw.input_tokens is None:
            raise SweepError(
                f"could not size a synthetic prompt: the probe request failed "
                f"({raw.status} {raw.error_code}: {raw.error_message})"
            )
        return int(raw.input_tokens)

    async def _warmup(self, sets: list[PromptSet]) -> None:
        """``warmup`` unrecorded requests per prompt set, sent together: they open that many
        connections (TCP, and TLS on AWS) so the first recorded requests do not pay for it."""
        n = self.rundir.config.warmup
        for pset in sets if n > 0 else []:
            calls = [Call(pset.prompts[0], 1, self.rundir.config.temperature) for _ in range(n)]
            await asyncio.gather(*(self.provider.send(call) for call in calls))

    async def _cancel_inflight(self) -> None:
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
            self._record(raw, call.max_tokens, batch, scheduled, rid)
