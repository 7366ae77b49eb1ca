"""The lean HTTP/1.1 client: against the emulator, and a scripted local server for edge cases."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench.loop import new_event_loop
from bench.providers.eventstream import EventStreamDecodeError, EventStreamDecoder
from bench.providers.http1 import (
    Client,
    ConnectionLost,
    IncompleteResponse,
    ReadTimeout,
    Response,
)
from emulator import Emulator
from emulator.eventstream import event_frame

T = TypeVar("T")
LLAMA = "us.meta.llama3-3-70b-instruct-v1%3A0"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine on uvloop (llmcap's default) and on the standard loop."""
    factory = new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(main: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(main)

    return runner


class Body:
    """An ``on_body`` that keeps the pieces and their stamps."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.stamps: list[float] = []

    def __call__(self, data: bytes, now: float) -> None:
        self.pieces.append(data)
        self.stamps.append(now)

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def client(**kw: Any) -> Client:
    return Client(**{"limit": 4, "connect_timeout": 2.0, "read_timeout": 2.0, **kw})


# -- the event-stream decoder, fed the way http1 delivers bodies ---------------------------------
@pytest.mark.parametrize("size", [1, 7, 12, 100, 167, 1000, 10**6])
def test_decoder_any_read_boundaries(size: int) -> None:
    frames = [event_frame("contentBlockDelta", {"delta": {"text": f"t{i}" * i}}) for i in range(40)]
    stream = b"".join(frames)
    decoder, got = EventStreamDecoder(), []
    for i in range(0, len(stream), size):
        got += decoder.feed(stream[i : i + size])
    assert [payload for _, payload in got] == [f[int.from_bytes(f[4:8]) + 12 : -4] for f in frames]
    assert {h[":event-type"] for h, _ in got} == {"contentBlockDelta"}


@pytest.mark.parametrize("where", [9, -2])  # the prelude's CRC, the message's CRC
def test_decoder_rejects_bad_crc(where: int) -> None:
    frame = bytearray(event_frame("contentBlockDelta", {"delta": {"text": "x"}}))
    frame[where] ^= 1
    with pytest.raises(EventStreamDecodeError, match="CRC"):
        EventStreamDecoder().feed(bytes(frame))


# -- against the emulator ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emu_url() -> Iterator[str]:
    with Emulator("fast") as emu:
        yield emu.url


def converse(max_tokens: int) -> bytes:
    msg = {"role": "user", "content": [{"text": "Hello there"}]}
    return json.dumps({"messages": [msg], "inferenceConfig": {"maxTokens": max_tokens}}).encode()


def test_emulator_chunked_event_stream(emu_url: str, run: Any) -> None:
    async def main() -> tuple[Response, Body]:
        http, body = client(), Body()
        url = f"{emu_url}/model/{LLAMA}/converse-stream"
        headers = {"Content-Type": "application/json"}
        resp = await http.post(url, headers, converse(20), body)
        await http.aclose()
        return resp, body

    resp, body = run(main())
    assert resp.status == 200 and resp.headers["transfer-encoding"] == "chunked"
    assert len(resp.headers["x-amzn-requestid"]) > 10
    events = EventStreamDecoder().feed(body.data)
    kinds = [h[":event-type"] for h, _ in events]
    assert kinds.count("contentBlockDelta") == 20 and kinds[-1] == "metadata"
    assert len(body.pieces) > 5  # streamed piece by piece, not buffered to the end
    assert body.stamps == sorted(body.stamps)


def test_emulator_content_length_and_errors(emu_url: str, run: Any) -> None:
    async def main() -> list[tuple[Response, bytes]]:
        http, out = client(), []
        for op in ("converse", "no-such-op"):
            body = Body()
            resp = await http.post(f"{emu_url}/model/{LLAMA}/{op}", {}, converse(5), body)
            out.append((resp, body.data))
        await http.aclose()
        return out

    (ok, ok_body), (bad, bad_body) = run(main())
    assert ok.status == 200 and int(ok.headers["content-length"]) == len(ok_body)
    assert json.loads(ok_body)["usage"]["outputTokens"] == 5
    assert bad.status == 404 and json.loads(bad_body)["message"]


# -- a scripted local server -----------------------------------------------------------------------
Script = Callable[[asyncio.StreamWriter, int], Awaitable[None]]


class Server:
    """127.0.0.1 server: reads each request, answers with ``script(writer, n)``; counts
    connections, the most open at once, and keeps the raw requests."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.connections = self.open = self.max_open = self.requests = 0
        self.raw: list[bytes] = []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/p?q=1"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.raw.append(head + await reader.readexactly(length))
                self.requests += 1
                await self.script(writer, self.requests)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the test ended
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()


async def send_parts(writer: asyncio.StreamWriter, *parts: bytes, gap: float = 0.02) -> None:
    """Write ``parts`` as separate TCP reads on the other side."""
    for part in parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(gap)


def test_request_bytes_and_split_chunk_headers(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await send_parts(w, CHUNKED[:20], CHUNKED[20:], b"5", b"\r\nhel", b"lo\r\n", b"0\r\n\r\n")

    async def main() -> tuple[Server, Response, Body]:
        async with (srv := Server(script)) as url:
            http, body = client(), Body()
            resp = await http.post(url, {"X-Test": "1"}, b"payload", body)
            await http.aclose()
        return srv, resp, body

    srv, resp, body = run(main())
    head = srv.raw[0].decode()
    assert head.startswith("POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "Content-Length: 7\r\n" in head and "X-Test: 1\r\n" in head
    assert head.endswith("\r\n\r\npayload")
    assert resp.status == 200 and body.data == b"hello" and len(body.pieces) == 2
    assert body.stamps[1] - body.stamps[0] > 0.01  # each piece stamped by its own read


def test_keep_alive_reuses_one_connection(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + str(n).encode().rjust(3))

    async def main() -> tuple[Server, list[bytes]]:
        async with (srv := Server(script)) as url:
            http, got = client(), []
            for _ in range(3):
                body = Body()
                await http.post(url, {}, b"", body)
                got.append(body.data)
            await http.aclose()
        return srv, got

    srv, got = run(main())
    assert got == [b"  1", b"  2", b"  3"] and srv.connections == 1


def test_idle_and_server_closed_connections_are_not_reused(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if n == 2:  # a keep-alive response, then the server hangs up while it is pooled
            await w.drain()
            w.close()

    async def main() -> Server:
        async with (srv := Server(script)) as url:
            http = client(idle_timeout=0.1)
            for pause in (0.2, 0.05, 0.0, 0.0):  # too idle; closed by the server; reused
                await http.post(url, {}, b"", Body())
                await asyncio.sleep(pause)
            await http.aclose()
        return srv

    assert run(main()).connections == 3


def test_connection_close_and_eof_delimited_body(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        if n == 1:  # Content-Length, but the server will not keep the connection
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        else:  # no length at all: the body ends when the connection does
            await send_parts(w, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto ", b"eof")
        await w.drain()
        w.close()

    async def main() -> tuple[Server, list[bytes]]:
        async with (srv := Server(script)) as url:
            http, got = client(), []
            for _ in range(2):
                body = Body()
                await http.post(url, {}, b"x", body)
                got.append(body.data)
            await http.aclose()
        return srv, got

    srv, got = run(main())
    assert got == [b"ok", b"to eof"] and srv.connections == 2


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ((CHUNKED, b"5\r\nhel"), IncompleteResponse),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",), IncompleteResponse),
        ((b"HTTP/1.1 200 OK\r\nContent-Le",), ConnectionLost),
        ((), ConnectionLost),
    ],
)
def test_server_closing_early_is_an_error(run: Any, parts: tuple[bytes], error: type) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await send_parts(w, *parts)
        w.close()

    async def main() -> None:
        async with Server(script) as url:
            http = client()
            with pytest.raises(error):
                await http.post(url, {}, b"", Body())
            await http.aclose()

    run(main())


def test_pool_limit_queues_requests(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await asyncio.sleep(0.05)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    async def main() -> tuple[Server, list[int]]:
        async with (srv := Server(script)) as url:
            http = client(limit=2)
            resps = await asyncio.gather(*(http.post(url, {}, b"", Body()) for _ in range(6)))
            await http.aclose()
        return srv, [r.status for r in resps]

    srv, statuses = run(main())
    assert statuses == [200] * 6
    assert srv.max_open == 2 and srv.connections == 2


def test_read_timeout_before_and_during_the_body(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        if n == 2:  # a little body, then a stall longer than the timeout
            await send_parts(w, CHUNKED, b"1\r\na\r\n", gap=0.15)
        await asyncio.sleep(2)

    async def main() -> list[float]:
        async with Server(script) as url:
            http, took = client(read_timeout=0.3), []
            for _ in range(2):
                t0 = time.perf_counter()
                with pytest.raises(ReadTimeout):
                    await http.post(url, {}, b"", Body())
                took.append(time.perf_counter() - t0)
            await http.aclose()
        return took

    first, second = run(main())
    assert 0.28 < first < 0.6
    assert 0.45 < second < 0.9  # the data at 0.15 s re-armed the timer


def test_cancel_mid_stream_closes_the_connection(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        if n == 1:  # streams until the client goes away (a write then fails)
            await send_parts(w, CHUNKED, *[b"1\r\na\r\n"] * 250)
        else:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def main() -> tuple[Server, bytes]:
        async with (srv := Server(script)) as url:
            http, first = client(limit=1), Body()
            task = asyncio.ensure_future(http.post(url, {}, b"", first))
            while not first.pieces:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(srv.closed.wait(), 2)  # the server saw it close
            body = Body()  # the only slot was freed: a new connection serves the next request
            await asyncio.wait_for(http.post(url, {}, b"", body), 2)
            await http.aclose()
        return srv, body.data

    srv, data = run(main())
    assert data == b"ok" and srv.connections == 2


def test_a_raising_callback_fails_the_request(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await send_parts(w, CHUNKED, b"1\r\na\r\n", b"0\r\n\r\n")

    def on_body(data: bytes, now: float) -> None:
        raise KeyError("from the callback")

    async def main() -> None:
        async with Server(script) as url:
            http = client()
            with pytest.raises(KeyError, match="from the callback"):
                await http.post(url, {}, b"", on_body)
            await http.aclose()

    run(main())


def test_connection_refused_is_an_os_error(run: Any) -> None:
    async def main() -> None:
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()
        http = client()
        with pytest.raises(OSError):
            await http.post(f"http://127.0.0.1:{port}/", {}, b"", Body())
        await http.aclose()

    run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_server_name_check(run: Any, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await send_parts(w, CHUNKED, b"3\r\ntls\r\n0\r\n\r\n")

    async def main() -> tuple[Server, bytes]:
        async with (srv := Server(script, tls=server_ctx)) as url:
            untrusted = client()  # the system's trust store: a self-signed server is refused
            with pytest.raises(ssl.SSLCertVerificationError):
                await untrusted.post(url, {}, b"", Body())
            await untrusted.aclose()
            http, body = client(ssl_context=ssl.create_default_context(cafile=cert)), Body()
            for _ in range(2):
                await http.post(url, {}, b"", body)
            await http.aclose()
        return srv, body.data

    srv, data = run(main())
    assert data == b"tlstls" and srv.connections == 1  # one TLS connection, reused


def test_preconnect_opens_connections_without_sending_anything(run: Any) -> None:
    async def script(w: asyncio.StreamWriter, n: int) -> None:
        await send_parts(w, CHUNKED, b"2\r\nok\r\n0\r\n\r\n")

    async def main() -> tuple[Server, int, int]:
        async with (srv := Server(script)) as url:
            http = client(limit=4)
            opened = await http.preconnect(url, 3)
            await asyncio.sleep(0.05)
            before = srv.requests
            assert srv.open == 3
            again = await http.preconnect(url, 10)  # capped at the limit
            await asyncio.gather(*(http.post(url, {}, b"", Body()) for _ in range(4)))
            assert srv.connections == 4  # the requests used the pre-opened connections
            await http.aclose()
        return srv, opened + 10 * before, again

    srv, opened, again = run(main())
    assert opened == 3 and again == 4 and srv.requests == 4


def test_write_batch_writes_first_and_reads_after(run: Any) -> None:
    """``write_batch`` writes on idle connections only, stamps each write in order, and leaves
    the rest (None) for ``post``; each written request's response is read once ``expect`` is
    set up after the whole batch left, including one that arrives while the batch is written."""

    async def script(w: asyncio.StreamWriter, n: int) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + str(n).encode().rjust(3))

    async def main() -> tuple[Server, list[Any], list[bytes]]:
        async with (srv := Server(script)) as url:
            http = client(limit=5)
            assert await http.preconnect(url, 3) == 3
            await asyncio.sleep(0.05)
            requests = [({"X-N": str(i)}, b"body") for i in range(5)]
            written = http.write_batch(url, requests)
            time.sleep(0.05)  # the server answers while no response is being read yet
            bodies = [Body() for _ in written]
            futures = [w[0].expect(b, None) for w, b in zip(written, bodies, strict=True) if w]
            await asyncio.gather(*futures)
            rest = [http.post(url, h, b, body) for (h, b), w, body in
                    zip(requests, written, bodies, strict=True) if w is None]  # fmt: skip
            await asyncio.gather(*rest)
            await http.aclose()
        return srv, written, [b.data for b in bodies]

    srv, written, data = run(main())
    stamps = [w[1] for w in written if w is not None]
    assert len(stamps) == 3 and written[3:] == [None, None] and stamps == sorted(stamps)
    assert sorted(data) == [b"  1", b"  2", b"  3", b"  4", b"  5"] and srv.requests == 5


def test_write_batch_skips_a_connection_the_server_closed(run: Any) -> None:
    """A pooled connection the server closed is not written to: the request is left for
    ``post`` (None), which opens a new connection; the others still go at once."""

    async def script(w: asyncio.StreamWriter, n: int) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def main() -> tuple[Server, list[Any], int]:
        async with (srv := Server(script)) as url:
            http = client(limit=3)
            await http.preconnect(url, 2)
            await asyncio.sleep(0.05)
            pool, _ = http._route(url)
            next(iter(pool._idle)).closed = True  # as connection_lost marks it
            written = http.write_batch(url, [({}, b""), ({}, b"")])
            await asyncio.gather(*(w[0].expect(Body(), None) for w in written if w))
            in_batch = srv.requests
            await http.post(url, {}, b"", Body())
            await http.aclose()
        return srv, written, in_batch

    srv, written, in_batch = run(main())
    assert written[0] is not None and written[1] is None and in_batch == 1
    assert srv.requests == 2
