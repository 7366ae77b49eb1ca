"""Run the emulator: in a background thread (``Emulator``) or in the foreground (``serve``)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from capacity.serving import DEFAULT_PROFILE, Profile, QuotaConfig, load_profile
from emulator.loop import new_event_loop
from emulator.server import create_app
from emulator.service import EmulatorService


class EmulatorError(RuntimeError):
    """The emulator could not start (port in use, bad profile, ...)."""


def resolve_profile(
    profile: str | Path | Profile,
    *,
    tpm: int | None = None,
    rpm: int | None = None,
    tpd: int | None = None,
    throttle: str | None = None,
    quota_rule: str | None = None,
    endpoint: str | None = None,
    input_tpm: int | None = None,
    output_tpm: int | None = None,
    reserved_input_tpm: int | None = None,
    reserved_output_tpm: int | None = None,
) -> Profile:
    """A profile by name, path or value, with quota overrides applied (``endpoint="mantle"``
    with ``input_tpm``/``output_tpm``: bedrock-mantle's quotas instead of TPM/RPM/TPD). Raises
    ``QuotaError`` (one line) for quotas that cannot be enforced together."""
    p = profile if isinstance(profile, Profile) else load_profile(profile)
    given = (tpm, rpm, tpd, throttle, quota_rule, endpoint, input_tpm, output_tpm,
             reserved_input_tpm, reserved_output_tpm)  # fmt: skip
    if all(v is None for v in given):
        return p
    q = p.quotas
    mantle = (endpoint or q.endpoint) == "mantle"
    quotas = QuotaConfig(
        tpm=None if mantle else tpm if tpm is not None else q.tpm,
        rpm=None if mantle else rpm if rpm is not None else q.rpm,
        tpd=None if mantle else tpd if tpd is not None else q.tpd,
        throttle=throttle or q.throttle,
        rule=quota_rule or q.rule,
        endpoint=endpoint or q.endpoint,
        input_tpm=input_tpm if input_tpm is not None else q.input_tpm,
        output_tpm=output_tpm if output_tpm is not None else q.output_tpm,
        reserved_input_tpm=(
            reserved_input_tpm if reserved_input_tpm is not None else q.reserved_input_tpm
        ),
        reserved_output_tpm=(
            reserved_output_tpm if reserved_output_tpm is not None else q.reserved_output_tpm
        ),
    )
    quotas.limits()  # validate: a QuotaError names what cannot be enforced
    return p.with_overrides(quotas=quotas)


class Emulator:
    """The emulator on 127.0.0.1 in a background thread: ``with Emulator() as emu: emu.url``.

    The thread owns its own event loop, so the caller's thread is free to run blocking clients
    (boto3) or its own asyncio loop (httpx) against ``url``.
    """

    def __init__(
        self,
        profile: str | Path | Profile = DEFAULT_PROFILE,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        truth_log: Path | None = None,
        tpm: int | None = None,
        rpm: int | None = None,
        tpd: int | None = None,
        throttle: str | None = None,
        quota_rule: str | None = None,
        endpoint: str | None = None,
        input_tpm: int | None = None,
        output_tpm: int | None = None,
        reserved_input_tpm: int | None = None,
        reserved_output_tpm: int | None = None,
    ) -> None:
        self.profile = resolve_profile(
            profile, tpm=tpm, rpm=rpm, tpd=tpd, throttle=throttle, quota_rule=quota_rule,
            endpoint=endpoint, input_tpm=input_tpm, output_tpm=output_tpm,
            reserved_input_tpm=reserved_input_tpm, reserved_output_tpm=reserved_output_tpm,
        )  # fmt: skip
        self.service = EmulatorService(self.profile, seed=seed, truth_log=truth_log)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL to pass as ``endpoint_url`` (boto3) or ``base_url`` (OpenAI clients)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Start serving; returns once the socket is listening."""
        self._thread = threading.Thread(target=self._run, name="llmcap-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise EmulatorError(f"emulator failed to start on {self.url}: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        loop, runner = self._loop, self._runner
        if loop is not None and runner is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(30)
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runner = loop.run_until_complete(_start(self.service, self.host, self.port))
            self.port = _bound_port(self._runner)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()


class _StampingHandler(RequestHandler):
    """aiohttp's connection protocol, noting when request bytes reach the process.

    That moment (not the later start of the handler, which waits behind whatever the event
    loop is doing, e.g. writing hundreds of token events) is the server's ``received_s``: what a
    real service's front end stamps, and what clients are compared against."""

    __slots__ = ("arrival_s",)

    def data_received(self, data: bytes) -> None:
        self.arrival_s = time.monotonic()
        super().data_received(data)


class _StampingServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _StampingHandler(self, loop=asyncio.get_running_loop(), **self._kwargs)


async def _start(service: EmulatorService, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    if type(runner.server) is web.Server:  # same layout: only the protocol factory differs
        runner.server.__class__ = _StampingServer
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=2048)
    await site.start()
    return runner


def _bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    raise EmulatorError("the emulator socket has no TCP address")


async def serve_forever(
    service: EmulatorService,
    host: str,
    port: int,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve in the current event loop until cancelled (the ``llmcap emulate`` command);
    ``on_ready`` gets the port actually bound (``port`` 0 picks a free one)."""
    runner = await _start(service, host, port)
    if on_ready is not None:
        on_ready(_bound_port(runner))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def split_cores() -> tuple[set[int], set[int]] | None:
    """(one core for a server, the rest for the caller) out of the CPUs this thread may use;
    None with fewer than two or where CPU affinity cannot be set (not Linux)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


class EmulatorProcess:
    """The emulator in a child process (``python -m emulator``), so that it does not share
    a GIL with the client being measured. ``with EmulatorProcess() as emu: emu.url``.

    ``own_core``: give the emulator one CPU of its own and keep the calling thread (and the
    processes it starts meanwhile: worker processes) off it, until ``stop``. Otherwise the
    kernel wakes the server on the client's core whenever a request reaches it and the client
    loses the core for a scheduler tick (4 ms) in the middle of a burst of sends or a stream's
    stamps: the co-located server disturbs the measurement (docs/performance.md, "Bursts").
    Ignored with fewer than two CPUs."""

    def __init__(
        self,
        profile: str | Path = DEFAULT_PROFILE,
        *,
        seed: int = 0,
        extra_args: tuple[str, ...] = (),
        truth_log: Path | None = None,
        own_core: bool = False,
    ) -> None:
        self.profile = str(profile)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [
            sys.executable, "-m", "emulator", "--profile", self.profile,
            "--port", str(self.port), "--seed", str(seed), *extra_args,
        ]  # fmt: skip
        if truth_log is not None:
            self._args += ["--truth-log", str(truth_log)]
        self._proc: subprocess.Popen[bytes] | None = None
        self._cores = split_cores() if own_core else None
        self._caller_cpus: set[int] | None = None  # restored by stop()

    def start(self) -> EmulatorProcess:
        """Start the child and wait until it answers ``/health``."""
        # Its own process group: a Ctrl-C in the terminal reaches the sweep (which finishes or
        # cancels its requests, README) but not the endpoint it is measuring; stop() ends it.
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0
        )
        if self._cores is not None:
            server, caller = self._cores
            os.sched_setaffinity(self._proc.pid, server)
            self._caller_cpus = os.sched_getaffinity(0)
            os.sched_setaffinity(0, caller)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                self.stop()
                raise EmulatorError(f"the emulator process exited at start-up: {err.strip()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmulatorError(f"the emulator did not answer on {self.url} within 30 s")

    def stop(self) -> None:
        """Terminate the child (it shuts down cleanly on SIGTERM); give the caller back the
        CPUs ``own_core`` kept it off."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None
        if self._caller_cpus is not None:
            os.sched_setaffinity(0, self._caller_cpus)
            self._caller_cpus = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
