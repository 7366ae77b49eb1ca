"""Workers across machines on Ray (``--ray auto|ADDRESS``; ``pip install 'llmcap[distributed]'``).

One async actor per worker, spread over the cluster's nodes, runs the same engine as a worker
process (``bench.workers.WorkerServer``) with its whole shard of each level handed over up front:
Ray carries a handful of calls per level and a row batch every ``POLL_S`` per actor, never one
call per request.

Clocks: each actor's ``time.perf_counter()`` is another host's monotonic clock. Before the first
level the driver estimates each actor's offset NTP-style — ``PINGS`` ping-pongs, the one with the
smallest round trip wins, offset = remote − midpoint, error bound = half that round trip — and
stores them in run.json. Every actor is given the run origin and the start instant t0 on its own
clock (driver value + offset), so its rows arrive already on the driver's time line: the merged
records have the same schema and meaning as a single-process run's.

An actor has no disk of the run's: it reports each request's journal entry with its rows and the
driver writes it to its own ``records.sent.jsonl``, so a request sent in the last ``POLL_S``
before the driver was killed may have no journal line (and after ``--resume``, no row).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import time
from dataclasses import replace
from typing import Any

from bench.config import SweepError
from bench.engine import RecordContext, RowSink
from bench.providers.base import Endpoint
from bench.workers import ProcessDriver, SentReport, WorkerServer, _Worker

PINGS = 15
CONNECT_S = 5.0
PLACE_S = 120.0  # an actor not running by then: the cluster lacks CPUs for it
POLL_S = 0.1
RAY_START_LEAD_S = 0.5  # t0 this far ahead: a broadcast crosses the cluster's network first
INSTALL_HINT = "--ray needs Ray: pip install 'llmcap[distributed]'"


class LoadActor:
    """The body of a Ray actor: a ``WorkerServer`` whose messages wait in an outbox that the
    driver drains (``drain``) instead of a pipe."""

    def __init__(self, endpoint: Endpoint, pool_size: int, ctx: RecordContext) -> None:
        self.outbox: list[tuple[Any, ...]] = []
        self.server = WorkerServer(None, endpoint, pool_size, ctx, send=self.outbox.append)
        self.started = False

    def clock(self) -> float:
        """This host's ``time.perf_counter()`` (for the offset estimate)."""
        return time.perf_counter()

    def node(self) -> str:
        """Where this actor runs (hostname / Ray node id), for run.json."""
        import ray

        return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"

    async def command(self, msg: tuple[Any, ...]) -> None:
        """Run one driver command (the same as a worker process's); ``context`` first sets
        the record context with this host's clock origin."""
        if msg[0] == "context":
            self.server.ctx = msg[1]
            return
        if not self.started:
            await self.server.start()
            self.started = True
        if msg[0] == "exit":
            await self.server.close()
            return
        await self.server.handle(msg)

    def drain(self) -> list[tuple[Any, ...]]:
        """The messages (rows, ready, done) since the last call."""
        if self.started and (self.server.rows or self.server.sent):
            self.server.flush()
        out, self.outbox[:] = list(self.outbox), []
        return out


def check_cluster(address: str) -> None:
    """Fail fast, before a run directory exists: Ray installed, and (for host:port) the
    cluster's GCS port answering within ``CONNECT_S``."""
    if importlib.util.find_spec("ray") is None:
        raise SweepError(INSTALL_HINT)
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), CONNECT_S).close()
    except (OSError, ValueError):
        raise SweepError(
            f"--ray {address}: no Ray cluster answers there; give the head's host:port "
            "(ray start --head prints it) or auto"
        ) from None


def _ray(address: str) -> Any:
    if _node_ip(address) == "127.0.0.1":
        # A cluster on loopback: Ray would replace 127.0.0.1 by this machine's address
        # (services.resolve_ip_for_localhost) unless it treats the host as stand-alone, which
        # this variable, read when ray is imported, asks for; the driver then stays on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return ray


def connect_cluster(ray: Any, address: str) -> None:
    """``ray.init`` on the cluster at ``address``; a failure to join it is a ``SweepError``
    naming the fix (see ``connect_failure``)."""
    kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
    ip = _node_ip(address)
    if ip is not None:
        kwargs["_node_ip_address"] = ip
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:  # ray.init's "Failed to connect to Ray cluster at …"
        raise SweepError(connect_failure(address, exc)) from exc


def connect_failure(address: str, exc: ConnectionError) -> str:
    """One line for a ``ray.init`` that could not join ``address``, from the error Ray 2.60
    chains to its ConnectionError: "No node info found matching attributes: '<ip>'" when the
    cluster has no node under this driver's address — on loopback, because ``ray start
    --node-ip-address 127.0.0.1`` registered the head under the machine's own address — or
    "InvalidAuthToken" when the head enabled token auth (a token in ~/.ray) and the driver,
    given an explicit address, did not."""
    cause = exc.__cause__
    no_node = isinstance(cause, RuntimeError) and "No node info found" in str(cause)
    port = address.rsplit(":", 1)[-1]
    if no_node and _node_ip(address) == "127.0.0.1":
        return (
            f"--ray {address}: the cluster has no node on 127.0.0.1 (Ray registers a head started "
            "with --node-ip-address 127.0.0.1 under this machine's own address) — start a "
            "loopback head with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head "
            f"--node-ip-address 127.0.0.1 --port {port}` (one node; more loopback nodes: "
            "python tests/e2e/ray_node.py start ...), or pass --ray with the address the head "
            "printed"
        )
    if "InvalidAuthToken" in str(cause):
        return (
            f"--ray {address}: the cluster requires a Ray auth token and this driver sent none "
            "— set RAY_AUTH_MODE=token for llmcap too (it then reads the head's token from "
            "~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN)"
        )
    if no_node:
        return (
            f"--ray {address}: this machine is not a node of that cluster ({cause}) — run llmcap "
            f"on one of its nodes, or join this one first: ray start --address {address}"
        )
    text = str(cause or exc).strip()
    why = text.splitlines()[0] if text else type(exc).__name__
    return (
        f"--ray {address}: could not join the Ray cluster ({why}) — check it is up: "
        f"ray status --address {address}"
    )


def _node_ip(address: str) -> str | None:
    """The driver's own address for Ray: loopback when the cluster is on loopback."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return "127.0.0.1" if host in ("127.0.0.1", "localhost") else None


class RayDriver(ProcessDriver):
    """``ProcessDriver``'s protocol with Ray actors in place of processes and pipes."""

    start_lead_s = RAY_START_LEAD_S  # t0 crosses the network: a longer lead

    def __init__(
        self,
        endpoint: Endpoint,
        pool_size: int,
        ctx: RecordContext,
        n: int,
        sink: RowSink,
        sent: SentReport,
        address: str,
    ) -> None:
        # No shared disk: each actor reports its journal entries and the driver journals them.
        super().__init__(endpoint, pool_size, ctx, n, sink, sent, None)
        self.address = address
        self.clocks: list[dict[str, Any]] = []
        self._actors: list[Any] = []
        self._poller: asyncio.Task[None] | None = None
        self._connected_here = False

    def describe(self) -> dict[str, Any]:
        """For run.json: the actors, their nodes and clock offsets with error bounds."""
        return {"kind": "ray", "count": self.n, "address": self.address, "clocks": self.clocks}

    async def start(self) -> None:
        """Connect to the cluster, place the actors, estimate their clocks."""
        ray = _ray(self.address)
        self.loop = asyncio.get_running_loop()
        self.ray = ray
        if not ray.is_initialized():
            # blocks this loop for a moment, before anything is measured
            connect_cluster(ray, self.address)
            self._connected_here = True
        if self.n == 0:
            self.n = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
        remote = ray.remote(num_cpus=1, max_concurrency=64)(LoadActor)
        for i in range(self.n):
            actor = remote.options(scheduling_strategy="SPREAD").remote(
                self.endpoint, self.pool_size, self.ctx
            )
            self._actors.append(actor)
            self.workers.append(_Worker(i, None, None))  # type: ignore[arg-type]
        for i, actor in enumerate(self._actors):
            try:
                offset, bound, rtt = await asyncio.wait_for(self._offset(actor), PLACE_S)
            except TimeoutError:
                raise SweepError(
                    f"--ray: actor {i} of {self.n} was not placed within {PLACE_S:g} s; each "
                    "needs 1 CPU of the cluster: lower --workers or add nodes"
                ) from None
            node = await actor.node.remote()
            self.clocks.append(
                {"worker": i, "node": node, "offset_s": offset, "error_bound_s": bound,
                 "rtt_s": rtt}
            )  # fmt: skip
            ctx = replace(self.ctx, worker=i, origin_pc=self.ctx.origin_pc + offset)
            self._actors[i] = actor
            await actor.command.remote(("context", ctx))
        self._poller = self.loop.create_task(self._poll())

    async def _offset(self, actor: Any) -> tuple[float, float, float]:
        """NTP-style: the ping-pong with the smallest round trip gives offset ± rtt/2."""
        best: tuple[float, float, float] | None = None
        for _ in range(PINGS):
            t1 = time.perf_counter()
            remote = await actor.clock.remote()
            t2 = time.perf_counter()
            rtt = t2 - t1
            if best is None or rtt < best[2]:
                best = (remote - (t1 + t2) / 2, rtt / 2, rtt)
        assert best is not None
        return best

    async def _poll(self) -> None:
        while True:
            for worker, actor in zip(self.workers, self._actors, strict=True):
                if not worker.alive:
                    continue
                try:
                    msgs = await actor.drain.remote()
                except Exception as exc:  # the actor (or its node) is gone
                    worker.alive = False
                    self.dead = self.dead or f"worker {worker.index} (Ray actor) lost: {exc}"
                    self._wake_all()
                    continue
                for msg in msgs:
                    self._on_message(worker, msg)
            await asyncio.sleep(POLL_S)

    def _wake_all(self) -> None:
        for worker in self.workers:
            if worker.waiting is not None and not worker.waiting.done():
                worker.waiting.set_result(("dead",))
        self.stop()

    def _send(self, worker: _Worker, msg: tuple[Any, ...]) -> None:
        if not worker.alive:
            return
        if msg[0] == "go":  # t0 on the actor's own clock
            msg = ("go", msg[1] + self.clocks[worker.index]["offset_s"])
        self._actors[worker.index].command.remote(msg)

    async def close(self) -> None:
        """Let every actor cancel and flush, collect the last rows, then kill the actors."""
        self._closing = True
        for worker, actor in zip(self.workers, self._actors, strict=True):
            if worker.alive:
                try:
                    await asyncio.wait_for(actor.command.remote(("exit",)), 15)
                    for msg in await actor.drain.remote():
                        self._on_message(worker, msg)
                except Exception:  # gone: its rows are lost with it, the run says incomplete
                    worker.alive = False
        if self._poller is not None:
            self._poller.cancel()
        for actor in self._actors:
            self.ray.kill(actor)
        if self._connected_here:
            self.ray.shutdown()
