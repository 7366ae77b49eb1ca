"""The lean OpenAI-compatible client: SSE read inside ``data_received``, TLS, and the same
records as the httpx client, against the emulator over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from bench.prompts import Prompt
from bench.providers.base import Call
from bench.providers.http1 import Response
from bench.providers.openai import SseReader
from bench.records import RawResult, make_record
from emulator import Emulator

HEAD = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m"'


def event(obj: str) -> bytes:
    return f"data: {obj}\n\n".encode()


def delta(text: str) -> bytes:
    content = json.dumps(text)
    return event(f'{HEAD},"choices":[{{"index":0,"delta":{{"content":{content}}}}}]}}')


STREAM = b"".join(
    [
        event(f'{HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}}}}]}}'),
        b": keep-alive comment\n\n",
        delta("Hel"),
        delta('lo "content":"x" \\n'),  # the pattern inside the text is escaped by JSON
        event(f'{HEAD}, "choices": [{{"index": 0, "delta": {{"content": "spaced"}}}}]}}'),
        event(f'{HEAD},"choices":[{{"index":0,"delta":{{}},"finish_reason":"length"}}]}}'),
        event(f'{HEAD},"choices":[],"usage":{{"prompt_tokens":7,"completion_tokens":3}}}}'),
        b"data: [DONE]\n\n",
        delta("after done: ignored"),
    ]
)


def read(pieces: list[bytes]) -> RawResult:
    raw = RawResult(start_pc=0.0)
    reader = SseReader(raw, Call(Prompt("hi"), 10, 0.0))
    reader.on_head(Response(200, {"x-request-id": "r1"}))
    for i, piece in enumerate(pieces):
        reader.on_body(piece, float(i + 1))
    return raw


@pytest.mark.parametrize("size", [1, 2, 5, 17, 64, 10_000])
def test_sse_any_read_boundaries(size: int) -> None:
    for stream in (STREAM, STREAM.replace(b"\n", b"\r\n")):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        raw = read(pieces)
        assert raw.text_chunks == 3
        assert (raw.input_tokens, raw.output_tokens) == (7, 3)
        assert raw.server_request_id == "r1" and raw.status == "ok"
        assert raw.first_token_pc <= raw.last_token_pc


def test_sse_each_event_stamped_with_its_read() -> None:
    events = [delta("a"), delta("b"), delta("c")]
    raw = read(events)
    assert (raw.first_token_pc, raw.last_token_pc, raw.text_chunks) == (1.0, 3.0, 3)


def test_sse_longest_gap_between_text_chunks() -> None:
    raw = RawResult(start_pc=0.0)
    reader = SseReader(raw, Call(Prompt("hi"), 10, 0.0))
    reader.on_head(Response(200, {"x-request-id": "r1"}))
    for now in (1.0, 1.5, 4.0, 4.25):  # the hot path: one whole event per body piece
        reader.on_body(delta("a"), now)
    assert raw.max_gap_s == 2.5
    reader.on_body(delta("b") + delta("c"), 9.0)  # the line-splitting path
    assert raw.max_gap_s == 4.75 and raw.text_chunks == 6
    one = read([delta("a")])
    assert make_record(one, 0.0)["max_gap_s"] != make_record(one, 0.0)["max_gap_s"]  # NaN


def test_sse_in_band_error_ends_the_stream() -> None:
    err = event('{"error":{"message":"slow down","type":"overloaded"}}')
    raw = read([delta("a"), err, delta("b")])
    assert raw.status == "error" and raw.error_code == "overloaded"
    assert raw.error_message == "slow down" and raw.text_chunks == 1


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with Emulator("fast") as emu:
        yield emu.url


def sweep(endpoint: Endpoint, tmp_path: Path, **kw: object) -> Path:
    config = SweepConfig(
        endpoint=endpoint, prompt="small", mode="concurrency", levels=(3,), n_requests=9,
        max_tokens=25, out=tmp_path, progress=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return run_sweep(config)


def test_lean_and_httpx_clients_record_the_same(url: str, tmp_path: Path) -> None:
    frames = []
    for client in ("async", "httpx"):
        endpoint = Endpoint(provider="openai", client=client, endpoint_url=url + "/v1")
        frames.append(read_jsonl(sweep(endpoint, tmp_path / client) / "records.jsonl"))
    for df in frames:
        assert len(df) == 9 and (df.status == "ok").all(), df.error_message.tolist()
        assert (df.output_tokens == 25).all() and not df.tokens_estimated.any()
        assert (df.start_s < df.first_token_s).all() and (df.first_token_s < df.last_token_s).all()
    lean, httpx_ = frames
    assert (lean.input_tokens == httpx_.input_tokens.iloc[0]).all()


def test_lean_client_throttles_are_rows(tmp_path: Path) -> None:
    with Emulator("fast", tpm=100) as emu:
        df = read_jsonl(
            sweep(Endpoint(provider="openai", endpoint_url=emu.url), tmp_path) / "records.jsonl"
        )
    assert set(df.status) == {"ok", "throttled"}
    assert (df[df.status == "throttled"].error_code.str.len() > 0).all()


class TlsProxy:
    """A TLS-terminating proxy on 127.0.0.1 in front of ``target`` (its own thread and loop)."""

    def __init__(self, target: str, ctx: ssl.SSLContext) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.ctx = ctx
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))

    async def _start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        return int(self.server.sockets[0].getsockname()[1])

    def __enter__(self) -> str:
        self.thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return f"https://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openai_over_tls_trusts_ssl_cert_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    with TlsProxy(url, server_ctx) as https_url:
        endpoint = Endpoint(provider="openai", endpoint_url=https_url)
        untrusted = read_jsonl(sweep(endpoint, tmp_path / "untrusted") / "records.jsonl")
        assert (untrusted.error_code == "SSLCertVerificationError").all()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how a user trusts a private CA
        df = read_jsonl(sweep(endpoint, tmp_path / "trusted") / "records.jsonl")
    assert (df.status == "ok").all(), df.error_message.tolist()
    assert (df.output_tokens == 25).all()
