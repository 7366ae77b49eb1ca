"""Sweeps: one load mode over a list of levels, per prompt set, recorded request by request.

``run_sweep(config)`` returns the run directory (``run.json``, ``records.jsonl``,
``records.parquet``). Ctrl-C cancels what is in flight (``cancelled`` rows), flushes, and raises
``SweepInterrupted`` naming the directory to ``--resume``.
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
from bench.emulator.profile import DEFAULT_PROFILE
from bench.emulator.runner import EmulatorProcess
from bench.loop import run
from bench.progress import LevelState, SweepProgress
from bench.prompts import Prompt, PromptSet, load_prompt_sets, size_synthetic
from bench.providers import make_provider
from bench.providers.base import Call, Endpoint, Provider
from bench.records import RawResult, RecordWriter, make_record
from bench.rundir import RunDir, read_config
from bench.strategies import run_level

CANCEL_GRACE_S = 5.0


class SweepInterrupted(Exception):
    """The sweep was stopped by Ctrl-C; finished requests are on disk in ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"sweep interrupted; resume with: llmcap bench --resume {run_dir}")
        self.run_dir = run_dir


def run_sweep(config: SweepConfig | None = None, *, resume: Path | None = None) -> Path:
    """Run a sweep, or resume the one in ``resume`` (its stored configuration is used); returns
    the run directory.

    With neither ``endpoint.endpoint_url`` nor ``endpoint.region`` set, the built-in emulator
    (``emulator_profile``, default ``llama3.3-70b-bedrock``) is started in a child process and
    measured instead: the embedded default.
    """
    if resume is not None:
        config = read_config(resume)
    if config is None:
        raise SweepError("run_sweep needs a SweepConfig or resume=RUN_DIR")
    config.validate()
    endpoint = config.endpoint
    if endpoint.endpoint_url is None and endpoint.region is None:
        profile = config.emulator_profile or DEFAULT_PROFILE
        config = replace(config, emulator_profile=profile)
        with EmulatorProcess(profile, seed=config.seed) as emu:
            print(
                f"No --endpoint-url or --region given: measuring the built-in emulator "
                f"(profile {profile}) at {emu.url}. Pass --region to measure Amazon Bedrock.",
                file=sys.stderr,
            )
            live = replace(endpoint, endpoint_url=emu.url)
            return run(_Sweep(config, resume, live).run())
    return run(_Sweep(config, resume, endpoint).run())


class _Sweep:
    def __init__(self, config: SweepConfig, resume: Path | None, endpoint: Endpoint) -> None:
        self.endpoint = endpoint  # the live endpoint (the embedded emulator's URL is not stored)
        self.rundir = RunDir.resume(resume) if resume else RunDir.create(config)
        self.stop_all = asyncio.Event()
        self.inflight: dict[int, tuple[Call, float, int, float]] = {}
        self._abandoned: set[int] = set()
        self._lock = threading.Lock()
        self._active = 0
        self.state: LevelState | None = None
        self.level_stopped = False

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
        return asyncio.get_running_loop().create_task(self._request(call, batch, scheduled_pc))

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

    async def _request(self, call: Call, batch: int, scheduled_pc: float) -> None:
        key = id(call)
        self.inflight[key] = (call, time.perf_counter(), batch, scheduled_pc)
        try:
            raw = await self.provider.send(call)
        finally:
            self.inflight.pop(key, None)
        if key not in self._abandoned:  # else a cancelled row was already written for it
            self._record(raw, call.max_tokens, batch, scheduled_pc)

    def _record(self, raw: RawResult, max_tokens: int, batch: int, scheduled_pc: float) -> None:
        state = self.state
        assert state is not None
        row = make_record(
            raw,
            self.rundir.start_pc,
            run_id=self.rundir.run_id,
            request_id=uuid.uuid4().hex,
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
        state.add(raw.status, row["ttft_s"], row["tps"])
        self._check_error_rate(state)

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
        loop.add_signal_handler(signal.SIGINT, self.stop_all.set)
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
            self.rundir.finish(interrupted=self.stop_all.is_set())
        if self.stop_all.is_set():
            raise SweepInterrupted(self.rundir.path)
        return self.rundir.path

    async def _run_level(self, pset: PromptSet, level: float, progress: SweepProgress) -> None:
        plan = self.rundir.config.plan(level)
        self._prompts, self._next_prompt = list(pset.prompts), 0
        self.level_stopped = False
        self.state = LevelState(pset.label, level, plan.expected_requests())
        if not self.stop_all.is_set():
            # Connections are opened here, outside the measurement, so the level's first wave
            # is timed like the rest (no handshake inside its TTFT) and no token is spent.
            await self.provider.preconnect(plan.connections())
        progress.start_level(self.state)
        ticker = asyncio.get_running_loop().create_task(self._tick(progress))
        try:
            await run_level(plan, self)
        finally:
            ticker.cancel()
        progress.end_level(self.state)
        if not self.stop_all.is_set():
            self.rundir.mark_done(pset.label, level, self.state.stop_reason)
            self.writer.compact()
            if self.rundir.config.drain_s > 0:
                await self.sleep_until(time.perf_counter() + self.rundir.config.drain_s)

    async def _tick(self, progress: SweepProgress) -> None:
        while True:
            progress.inflight = self._active
            progress.refresh()
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
        for key, (call, started, batch, scheduled) in list(self.inflight.items()):
            # A thread still blocked in the SDK: write its row now; its late result is dropped.
            self._abandoned.add(key)
            raw = RawResult(
                start_pc=started, end_pc=time.perf_counter(), status="cancelled",
                error_code="Cancelled", error_message="cancelled by the user",
            )  # fmt: skip
            self._record(raw, call.max_tokens, batch, scheduled)
