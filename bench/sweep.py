"""Sweeps: one load mode over a list of levels, per prompt set, recorded request by request.

``run_sweep(config)`` returns the run directory (``run.json``, ``records.jsonl``,
``records.parquet``). Ctrl-C cancels what is in flight (``cancelled`` rows), flushes, and raises
``SweepInterrupted`` naming the directory to ``--resume``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.config import SweepConfig, SweepError
from bench.emulator.profile import DEFAULT_PROFILE
from bench.emulator.runner import EmulatorProcess
from bench.engine import Driver, LevelJob, LocalDriver, RecordContext, quiet_gc
from bench.loop import run
from bench.progress import LevelState, SweepProgress
from bench.prompts import Prompt, PromptSet, load_prompt_sets, size_synthetic
from bench.providers import make_provider
from bench.providers.base import Call, Endpoint, Provider
from bench.records import RecordWriter
from bench.rundir import RunDir, read_config
from bench.workers import ProcessDriver, WorkerDied


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
    if config.ray is not None:
        from bench.distributed import check_cluster

        check_cluster(config.ray)
    endpoint = config.endpoint
    embedded = endpoint.endpoint_url is None and endpoint.region is None
    if resume is None and config.workers is None and config.ray is None:
        here = embedded or _on_this_host(endpoint.endpoint_url)
        n = config.default_workers(endpoint_on_this_host=here, cores=os.cpu_count())
        config = replace(config, workers=n)
    if embedded:
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


def _on_this_host(url: str | None) -> bool:
    """True when ``url`` points at this machine (then the server shares its cores)."""
    host = (urlsplit(url or "").hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


class _Sweep:
    def __init__(self, config: SweepConfig, resume: Path | None, endpoint: Endpoint) -> None:
        self.endpoint = endpoint  # the live endpoint (the embedded emulator's URL is not stored)
        self.rundir = RunDir.resume(resume) if resume else RunDir.create(config)
        self.stop_all = asyncio.Event()
        self.state: LevelState | None = None
        self.level_stopped = False
        self._probe_provider: Provider | None = None

    @property
    def config(self) -> SweepConfig:
        """The run's configuration, as stored in run.json (the same on a resume)."""
        return self.rundir.config

    def _row(self, row: dict[str, Any]) -> None:
        """A finished request's row, from this process or a worker: write, count, check."""
        state = self.state
        assert state is not None
        self.writer.write(row)
        state.add(row["status"], row["ttft_s"], row["tps"])
        self._check_error_rate(state)

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

    def _interrupt(self) -> None:
        """Ctrl-C: launch nothing more and cancel what is in flight."""
        if not self.stop_all.is_set():
            self.stop_all.set()
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
            return RayDriver(self.endpoint, pool, ctx, n, self._row, config.ray)
        if workers > 1:
            pool = -(-config.pool_size() // workers) + 8
            return ProcessDriver(self.endpoint, pool, ctx, workers, self._row)
        provider = make_provider(self.endpoint, config.pool_size())
        self._probe_provider = provider
        return LocalDriver(provider, ctx, self._row, self.stop_all)

    async def _run(self) -> Path:
        config = self.rundir.config
        loop = self.main_loop = asyncio.get_running_loop()
        self.driver = self._make_driver()
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        self.writer = RecordWriter(self.rundir.path)
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
            self.rundir.finish(interrupted=self.stop_all.is_set() or incomplete is not None)
            if incomplete is not None:
                self.rundir.meta["status"] = "incomplete"
                self.rundir.meta["incomplete_reason"] = incomplete
                self.rundir.save()
        if incomplete is not None:
            raise SweepIncomplete(self.rundir.path, incomplete)
        if self.stop_all.is_set():
            raise SweepInterrupted(self.rundir.path)
        return self.rundir.path

    async def _run_level(self, pset: PromptSet, level: float, progress: SweepProgress) -> None:
        plan = self.rundir.config.plan(level)
        self.level_stopped = False
        self.state = LevelState(pset.label, level, plan.expected_requests())
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
        if not self.stop_all.is_set():
            self.rundir.mark_done(pset.label, level, self.state.stop_reason)
            self.writer.compact()
            if self.rundir.config.drain_s > 0:
                await self._sleep(self.rundir.config.drain_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_all.wait(), seconds)

    async def _tick(self, progress: SweepProgress) -> None:
        while True:
            if self.state is not None:
                self.state.launched = self.driver.launched
            progress.inflight = self.driver.active
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
