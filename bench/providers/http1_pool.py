"""A keep-alive connection pool with a size limit, for ``bench.providers.http1``.

One pool per (scheme, host, port). A connection is lent to one request at a time; it comes back
(``release``) only after a complete response, and anything else closes it, so a pooled connection
never carries a half-read response. The limit counts open and opening connections; requests
beyond it wait, first come first served, for a returned connection or a freed slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Generic, Protocol, TypeVar


class PoolClosed(RuntimeError):
    """The client was closed; no more requests."""


class Pooled(Protocol):
    """What the pool needs of a connection."""

    closed: bool
    idle_since: float  # perf_counter() of its last release

    def close(self) -> None:
        """Close it; the connection calls ``Pool.dropped`` once it is gone."""


C = TypeVar("C", bound=Pooled)


class Pool(Generic[C]):
    """Up to ``limit`` connections made by ``connect``; idle ones are reused newest first
    (warm) and closed after ``idle_timeout`` seconds, before a server would drop them."""

    def __init__(
        self, limit: int, connect: Callable[[], Awaitable[C]], idle_timeout: float = 60.0
    ) -> None:
        if limit < 1:
            raise ValueError("a pool needs a limit of at least 1")
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.size = 0  # open + opening connections
        self._connect = connect
        self._idle: dict[C, None] = {}  # insertion-ordered: popitem() takes the newest
        self._live: set[C] = set()
        # A waiter gets a connection, or None: "a slot is reserved for you, open one".
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        self._closed = False

    def take_idle(self) -> C | None:
        """An idle, fresh connection, or None. Synchronous, so a warm request goes out with
        no await between the caller's start stamp and its write."""
        now = perf_counter()
        while self._idle:
            conn, _ = self._idle.popitem()
            if conn.closed:
                continue
            if now - conn.idle_since > self.idle_timeout:
                conn.close()
                continue
            return conn
        return None

    async def acquire(self) -> C:
        """A connection for one exchange: idle, newly opened, or waited for."""
        if self._closed:
            raise PoolClosed("the HTTP client is closed")
        conn = self.take_idle()
        if conn is not None:
            return conn
        if self.size < self.limit:
            self.size += 1
            return await self._open()
        fut: asyncio.Future[C | None] = self.loop.create_future()
        self._waiters.append(fut)
        try:
            got = await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._give_back(fut.result())  # handed over just as we were cancelled
            raise
        return got if got is not None else await self._open()

    async def preopen(self, n: int) -> int:
        """Open connections, all at once, until ``n`` (at most ``limit``) are open or opening,
        and park them idle; no request is sent. Returns how many are open. A connection that
        fails to open is not retried here: the request that needs it will try again."""
        if self._closed:
            raise PoolClosed("the HTTP client is closed")
        want = min(n, self.limit) - self.size
        if want > 0:
            self.size += want
            results = await asyncio.gather(
                *(self._open() for _ in range(want)), return_exceptions=True
            )
            for conn in results:
                if isinstance(conn, BaseException):
                    continue  # _open has already freed its slot
                conn.idle_since = perf_counter()
                self.release(conn)
        return self.size

    async def _open(self) -> C:
        """Open a connection in a slot already counted in ``size``."""
        try:
            conn = await self._connect()
        except BaseException:
            self.size -= 1
            self._wake()
            raise
        if conn.closed:  # lost before we got to it: connection_lost found it unregistered
            self.size -= 1
            self._wake()
            raise ConnectionResetError("the connection closed as it opened")
        self._live.add(conn)
        return conn

    def _give_back(self, got: C | None) -> None:
        if got is None:
            self.size -= 1
            self._wake()
        else:
            self.release(got)

    def release(self, conn: C) -> None:
        """Return a connection after a complete response: to a waiter, else to the idle set."""
        if self._closed or conn.closed:
            conn.close()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle[conn] = None

    def dropped(self, conn: C) -> None:
        """A connection is gone (closed by either side): free its slot."""
        self._idle.pop(conn, None)
        if conn in self._live:
            self._live.discard(conn)
            self.size -= 1
            self._wake()

    def _wake(self) -> None:
        """Reserve a free slot for the first live waiter, if any."""
        while self._waiters and self.size < self.limit and not self._closed:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.size += 1
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every connection, idle or busy, and fail every waiter."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the HTTP client is closed"))
        for conn in list(self._live):
            conn.close()
        self._idle.clear()
