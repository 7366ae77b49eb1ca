"""A minimal asyncio HTTP/1.1 client for streamed POSTs, built for a load generator.

General clients (aiohttp) hand each received chunk to a stream reader and wake the reading task
once per TCP read; at tens of thousands of stream events a second that wake-up and the reader
machinery dominate the client's CPU and delay the time stamps they are meant to take. Here a
response body is delivered synchronously, from the ``data_received`` callback that carried it, to
the caller's ``on_body(data, now)``, with ``now = time.perf_counter()`` read once per TCP read.
The response head and chunked framing are parsed by ``httptools`` (llhttp, in C). The request's
task is woken once, when the response completes or fails.

Connections are kept alive in a pool per (scheme, host, port) (``bench.providers.http1_pool``).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser

from bench.providers.base import EndpointError
from bench.providers.http1_pool import Pool

if TYPE_CHECKING:
    from bench.providers.base import Call
    from bench.records import RawResult

BodyCallback = Callable[[bytes, float], None]
HeadCallback = Callable[["Response"], None]
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class ConnectionLost(ConnectionError):
    """The connection closed before the response head arrived."""


class IncompleteResponse(ConnectionError):
    """The connection closed in the middle of the response body."""


class ProtocolError(ConnectionError):
    """The server sent something that is not a valid HTTP/1.1 response."""


class ReadTimeout(TimeoutError):
    """No bytes arrived for ``read_timeout`` seconds while a response was awaited."""


class ConnectTimeout(TimeoutError):
    """The TCP (and TLS) connection was not established within ``connect_timeout`` seconds."""


@dataclass(slots=True)
class Response:
    """A response head. ``headers`` has lower-cased names; a repeated header is comma-joined."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


def _no_exchange(data: bytes, now: float) -> None:
    raise ProtocolError("response bytes arrived with no request outstanding")


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one exchange at a time, no pipelining."""

    def __init__(self, pool: Pool[Connection], read_timeout: float) -> None:
        self.pool = pool
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = HttpResponseParser(self)
        self._fut: asyncio.Future[Response] | None = None
        self._sink: BodyCallback = _no_exchange
        self._on_head: HeadCallback | None = None
        self._headers: dict[str, str] = {}
        self._resp: Response | None = None
        self._until_eof = False  # a body with neither Content-Length nor chunked framing
        self._complete = False
        self._keep_alive = False
        self._now = 0.0
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- the exchange ---------------------------------------------------------------------------
    def start(
        self, data: bytes, on_body: BodyCallback, on_head: HeadCallback | None
    ) -> asyncio.Future[Response]:
        """Write a whole request (one ``write``) and return the future of its response."""
        self.send(data)
        return self.expect(on_body, on_head)

    def send(self, data: bytes) -> None:
        """Write a whole request (one ``write``), unless the server hung up since the connection
        was pooled (then ``expect`` fails the exchange). ``expect`` must follow in the same pass
        of the event loop: no response byte is read before the loop runs again."""
        assert self.transport is not None and self._fut is None
        if not self.closed:
            self.transport.write(data)
            self._last = perf_counter()

    def expect(
        self, on_body: BodyCallback, on_head: HeadCallback | None
    ) -> asyncio.Future[Response]:
        """The future of the response to the request ``send`` wrote; its head goes to
        ``on_head`` and its body, as read, to ``on_body``."""
        loop = self.pool.loop
        self._fut = fut = loop.create_future()
        if self.closed:
            self._complete = True
            fut.set_exception(ConnectionLost("the pooled connection was closed by the server"))
            return fut
        self._sink, self._on_head = on_body, on_head
        self._headers, self._resp, self._until_eof, self._complete = {}, None, False, False
        # One timer per exchange, re-armed only when it fires early: data_received just notes
        # the time (rescheduling a timer handle per chunk would cost more than the chunk).
        self._timer = loop.call_later(self.read_timeout, self._check_idle)
        return fut

    def abandon(self, fut: asyncio.Future[Response]) -> None:
        """The caller stopped waiting for ``fut`` (cancelled): close unless it already ended.
        A half-read response leaves the connection unusable, so it is never pooled."""
        if self._fut is fut and not self._complete:
            self._fail(None)

    def _finish(self) -> None:
        fut, resp = self._fut, self._resp
        self._end_exchange()
        self._complete = True
        if fut is not None and not fut.done() and resp is not None:
            fut.set_result(resp)

    def _fail(self, exc: BaseException | None) -> None:
        """End the exchange with ``exc`` (None: the caller left) and close the connection."""
        fut = self._fut
        self._end_exchange()
        self._complete = True
        if fut is not None and not fut.done() and exc is not None:
            fut.set_exception(exc)
        self.close()

    def _end_exchange(self) -> None:
        self._sink, self._on_head = _no_exchange, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_idle(self) -> None:
        idle = perf_counter() - self._last
        if idle >= self.read_timeout * 0.999:
            self._fail(ReadTimeout(f"no data for {self.read_timeout:g} s"))
        else:
            self._timer = self.pool.loop.call_later(self.read_timeout - idle, self._check_idle)

    def close(self) -> None:
        """Close the transport; ``connection_lost`` releases the pool slot."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (a TCP or TLS stream)."""
        self.transport = transport  # type: ignore[assignment]  # uvloop's are duck-typed

    def data_received(self, data: bytes) -> None:
        """The hot path: stamp once, let llhttp call ``on_body`` synchronously."""
        self._now = self._last = perf_counter()
        if self.closed:  # failed or abandoned: the rest of the response is of no use
            return
        if self._fut is None:  # nothing was asked: a server talking out of turn
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except HttpParserCallbackError as exc:  # the caller's on_body (or on_head) raised
            cause = exc.__context__
            self._fail(cause if isinstance(cause, Exception) else ProtocolError(str(exc)))
            return
        except HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response: {exc}"))
            return
        if self._complete and self._fut is not None:
            # Pooled only after the whole read is parsed, so no byte of this read can reach
            # the next exchange.
            self._fut = None
            if self._keep_alive and not self.closed:
                self.idle_since = self._now
                self.pool.release(self)
            else:
                self.close()

    def eof_received(self) -> bool:
        """Let the transport close; ``connection_lost`` settles the exchange."""
        self.closed = True  # not reusable from now on, even before connection_lost runs
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Settle an exchange cut short, then free the pool slot."""
        self.closed = True
        if self._fut is not None and not self._complete:
            if self._resp is not None and self._until_eof:
                self._finish()  # the body was delimited by the close
            elif self._resp is not None:
                self._fail(IncompleteResponse(f"connection closed mid-body ({exc or 'EOF'})"))
            else:
                self._fail(ConnectionLost(f"connection closed before a response ({exc or 'EOF'})"))
        self._end_exchange()
        self.pool.dropped(self)

    # -- httptools callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        """One response header (httptools joins names and values split across reads)."""
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        prev = self._headers.get(key)
        self._headers[key] = text if prev is None else f"{prev}, {text}"

    def on_headers_complete(self) -> None:
        """The head is in: publish it before the first body byte."""
        status = self._parser.get_status_code()
        h = self._headers
        self._until_eof = not (
            "content-length" in h
            or "chunked" in h.get("transfer-encoding", "").lower()
            or status in (204, 304)
            or 100 <= status < 200
        )
        self._resp = resp = Response(status, h)
        if self._on_head is not None:
            self._on_head(resp)

    def on_body(self, body: bytes) -> None:
        """A piece of body (chunk framing already removed), stamped with its read's time."""
        self._sink(body, self._now)

    def on_message_complete(self) -> None:
        """The response is whole; keep-alive is decided once the read is parsed."""
        self._keep_alive = self._parser.should_keep_alive()
        self._finish()


Started = tuple[Connection, "asyncio.Future[Response]"]
# What ``Client.write_batch`` did with one request: the connection it was written on and the
# instant just before the write; None (no idle connection); or the exception it raised.
Written = tuple[Connection, float] | None | Exception


async def finish(started: Started) -> Response:
    """Await a started exchange; if the caller is cancelled meanwhile, close its connection."""
    conn, fut = started
    try:
        return await fut
    except BaseException:
        conn.abandon(fut)
        raise


class Client:
    """Streamed POSTs over pooled keep-alive connections (``limit`` per scheme, host, port)."""

    def __init__(
        self,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = 60.0,
    ) -> None:
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._pools: dict[tuple[str, str, int], Pool[Connection]] = {}
        self._routes: dict[str, tuple[Pool[Connection], bytes]] = {}
        self._ssl = ssl_context  # https only; the system's trust store unless given
        self._bytes_cache: dict[tuple[bytes, int, int], tuple[dict[str, str], bytes, bytes]] = {}

    def _route(self, url: str) -> tuple[Pool[Connection], bytes]:
        """The pool and request-line prefix of ``url`` (parsed once per URL)."""
        route = self._routes.get(url)
        if route is not None:
            return route
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in ("http", "https") or not host:
            raise EndpointError(
                f"--endpoint-url {url!r}: not an http(s) URL; write http://host:port"
            )
        default = 443 if scheme == "https" else 80
        port = parts.port or default
        key = (scheme, host, port)
        if key not in self._pools:
            connect = functools.partial(self._connect, key)
            self._pools[key] = Pool(self.limit, connect, self.idle_timeout)
        host_header = host if port == default else f"{host}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1")
        self._routes[url] = route = (self._pools[key], head)
        return route

    async def _connect(self, key: tuple[str, str, int]) -> Connection:
        scheme, host, port = key
        ctx = None
        if scheme == "https":
            ctx = self._ssl = self._ssl or ssl.create_default_context()
        pool, read_timeout = self._pools[key], self.read_timeout
        coro = pool.loop.create_connection(
            lambda: Connection(pool, read_timeout),
            host, port, ssl=ctx, server_hostname=host if ctx else None,
        )  # fmt: skip
        try:
            _, conn = await asyncio.wait_for(coro, self.connect_timeout)
        except TimeoutError:
            msg = f"no connection to {host}:{port} within {self.connect_timeout:g} s"
            raise ConnectTimeout(msg) from None
        return conn

    async def preconnect(self, url: str, n: int) -> int:
        """Open connections to ``url``'s host (TCP, and TLS for https) until ``n`` (at most
        ``limit``) are open, without sending anything; they wait idle in the pool for the
        requests that follow. Returns the number open."""
        pool, _ = self._route(url)
        return await pool.preopen(n)

    def _request_bytes(self, head: bytes, headers: dict[str, str], body: bytes) -> bytes:
        """The whole request. The same headers and body objects (a provider's cached body and
        signed headers) give the same bytes, built once."""
        key = (head, id(headers), id(body))
        hit = self._bytes_cache.get(key)
        if hit is not None and hit[0] is headers and hit[1] is body:
            return hit[2]
        lines = [f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
        data = b"%bContent-Length: %d\r\n%b\r\n%b" % (
            head,
            len(body),
            "".join(lines).encode("latin-1"),
            body,
        )
        if len(self._bytes_cache) > 64:
            self._bytes_cache.clear()
        self._bytes_cache[key] = (headers, body, data)  # keeps both alive: ids stay valid
        return data

    def start(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        on_body: BodyCallback,
        on_head: HeadCallback | None = None,
    ) -> Started | None:
        """Write the request now, synchronously, on an idle pooled connection, and return it
        with the future of its response (``finish`` awaits it); None when no connection is
        idle (then ``post``, which may open one or wait)."""
        written = self.write_batch(url, [(headers, body)])[0]
        if written is None:
            return None
        conn, _ = written
        return conn, conn.expect(on_body, on_head)

    def write_batch(
        self, url: str, requests: Iterable[tuple[dict[str, str], bytes]]
    ) -> list[tuple[Connection, float] | None]:
        """Write each (headers, body) request now, back to back, on idle pooled connections,
        stamping each ``perf_counter()`` just before its write; None for the requests no idle
        connection was left for (``post`` them). Nothing but the writes happens in between:
        the caller then gives each written connection its response (``Connection.expect``)
        in the same pass of the event loop, so a batch of N leaves in N socket writes."""
        pool, head = self._route(url)
        out: list[tuple[Connection, float] | None] = []
        for headers, body in requests:
            conn = pool.take_idle()
            if conn is None:
                out.append(None)
                continue
            data = self._request_bytes(head, headers, body)
            now = perf_counter()
            conn.send(data)
            out.append((conn, now))
        return out

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        on_body: BodyCallback,
        on_head: HeadCallback | None = None,
    ) -> Response:
        """POST ``body``; ``on_head`` gets the response head, ``on_body`` every body piece as
        it is read. Returns the head once the body is complete; raises ``ConnectionLost``,
        ``IncompleteResponse``, ``ProtocolError``, ``ReadTimeout``, ``ConnectTimeout``, an
        ``OSError``, or whatever a callback raised. Cancelling the caller closes the
        connection."""
        pool, head = self._route(url)
        data = self._request_bytes(head, headers, body)
        conn = pool.take_idle() or await pool.acquire()
        return await finish((conn, conn.start(data, on_body, on_head)))

    async def aclose(self) -> None:
        """Close every connection and refuse further requests."""
        for pool in self._pools.values():
            pool.close()
        await asyncio.sleep(0)  # let the transports run connection_lost


class PooledEndpoint(ABC):
    """What both lean streaming providers share: one lazily created ``Client`` pool for a URL,
    connections opened ahead of a level, and closing. Subclasses set ``endpoint``, ``_url`` and
    ``_pool_size`` and call ``_client()``."""

    endpoint: Any
    _url: str
    _pool_size: int
    _http: Client | None = None

    def _client(self) -> Client:
        if self._http is None:
            self._http = Client(
                limit=self._pool_size,
                connect_timeout=self.endpoint.connect_timeout_s,
                read_timeout=self.endpoint.read_timeout_s,
            )
        return self._http

    async def preconnect(self, n: int) -> int:
        """Open connections (TCP, and TLS for https) until ``n`` are open; no request is sent."""
        return await self._client().preconnect(self._url, n)

    def begin(self, call: Call) -> Awaitable[RawResult]:
        """Write the request now if a pooled connection is idle; the returned awaitable reads
        the stream to its end."""
        return self.begin_batch([call])[0]

    def begin_batch(self, calls: Sequence[Call]) -> list[Awaitable[RawResult]]:
        """Write every request that finds an idle connection now, back to back (each stamped
        just before its write), and only then set up each one's response reading: a batch of
        N leaves in N socket writes (docs/performance.md, Bursts)."""
        parts: list[tuple[dict[str, str], bytes]] = []

        def each() -> Iterator[tuple[dict[str, str], bytes]]:
            for call in calls:  # made as the writes go: the first leaves at once
                parts.append(self._parts(call))
                yield parts[-1]

        written: Sequence[Written]
        try:
            written = self._client().write_batch(self._url, each())
        except Exception as exc:  # e.g. a closed client: every row says so
            parts[len(parts) :] = [self._parts(call) for call in calls[len(parts) :]]
            written = [exc] * len(calls)
        return [
            self._begun(call, headers, body, w)
            for call, (headers, body), w in zip(calls, parts, written, strict=True)
        ]

    @abstractmethod
    def _parts(self, call: Call) -> tuple[dict[str, str], bytes]:
        """The request's headers and body (serialised and signed: cached, or built ahead by
        ``prepare``)."""

    @abstractmethod
    def _begun(
        self, call: Call, headers: dict[str, str], body: bytes, written: Written
    ) -> Awaitable[RawResult]:
        """The awaitable result of a request ``write_batch`` wrote (or could not: None, no idle
        connection, post it; or the exception it raised)."""

    @staticmethod
    def started(written: Written, reader: ErrorAwareReader) -> Started | Exception | None:
        """A written request's exchange, its response going to ``reader``."""
        if written is None or isinstance(written, Exception):
            return written
        conn, _ = written
        return conn, conn.expect(reader.on_body, reader.on_head)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()


class ErrorAwareReader(ABC):
    """What both streaming readers share at the head of a response: the server's request id
    (header ``request_id_header``, kept even if the stream then fails) and, for a status other
    than 200, a buffer for the error's body. Subclasses set ``raw`` and ``error_body``."""

    request_id_header: str
    raw: Any
    error_body: bytearray | None

    @abstractmethod
    def on_body(self, data: bytes, now: float) -> None:
        """Read a piece of the body that arrived at ``now`` (``perf_counter``)."""

    def on_head(self, resp: Response) -> None:
        """Note the request id; buffer an error's body."""
        self.raw.server_request_id = resp.headers.get(self.request_id_header)
        if resp.status != 200:
            self.error_body = bytearray()
