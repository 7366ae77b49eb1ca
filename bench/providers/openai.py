"""The ``openai`` provider: streamed chat completions against any OpenAI-compatible server (vLLM,
TGI, llama.cpp, LiteLLM, the emulator...) on llmcap's lean HTTP/1.1 client (``http1``), with
``stream_options.include_usage`` so the server's own token counts are recorded.

Server-sent events are split and read inside the socket's ``data_received`` call that carried
them and stamped with that read's time, as the Bedrock client does (``bedrock_async``): no task
wake-up and no line iterator per event. httpx (``--client httpx``, ``openai_httpx``) spent
~4 CPU-s per 1,000 requests and put >100 ms between a token's arrival and its stamp at 200
streams (``docs/performance.md``). http and https (TLS, the system trust store or
``SSL_CERT_FILE``) are both supported.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from typing import Any

from bench.providers.base import Call, Endpoint, EndpointError, open_result, settle
from bench.providers.http1 import (
    Client,
    ErrorAwareReader,
    PooledEndpoint,
    Started,
    Written,
    finish,
)
from bench.records import RawResult

CHAT_PATH = "/v1/chat/completions"


class _Cancelled(Exception):
    """``call.cancel`` was set while the stream was being read."""


def base_url(url: str) -> str:
    """The server root of ``url`` (a trailing ``/v1`` is the API prefix, not the root)."""
    return url.rstrip("/").removesuffix("/v1")


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    """``Authorization: Bearer`` from the environment variable ``endpoint.api_key_env``."""
    key = os.environ.get(endpoint.api_key_env)
    return {"Authorization": f"Bearer {key}"} if key else {}


def chat_body(model_id: str, call: Call) -> dict[str, Any]:
    """A streamed chat completion request asking for usage in the last chunk."""
    return {
        "model": model_id,
        "messages": [{"role": "user", "content": call.prompt.text}],
        "max_tokens": call.max_tokens,
        "temperature": call.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


class OpenAIProvider(PooledEndpoint):
    """Chat completions (SSE) against ``endpoint.endpoint_url`` over ``bench.providers.http1``."""

    name = "openai"

    def __init__(self, endpoint: Endpoint, *, pool_size: int) -> None:
        if not endpoint.endpoint_url:
            raise EndpointError("--provider openai needs --endpoint-url (the server's base URL)")
        self.endpoint = endpoint
        self._url = base_url(endpoint.endpoint_url) + CHAT_PATH
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **auth_headers(endpoint),
        }
        self._pool_size = pool_size
        self._http: Client | None = None
        self._body_cache: dict[tuple[str, int, float], bytes] = {}

    def prepare(self, call: Call) -> None:
        """Serialise ``call``'s body now (cached), so sending it later costs no JSON work."""
        self._body(call)

    def _body(self, call: Call) -> bytes:
        key = (call.prompt.text, call.max_tokens, call.temperature)
        body = self._body_cache.get(key)
        if body is None:
            if len(self._body_cache) > 256:
                self._body_cache.clear()
            obj = chat_body(self.endpoint.model_id, call)
            body = self._body_cache[key] = json.dumps(obj).encode()
        return body

    async def send(self, call: Call) -> RawResult:
        """Stream one chat completion; failures become the result's status."""
        return await self.begin(call)

    def _parts(self, call: Call) -> tuple[dict[str, str], bytes]:
        return self._headers, self._body(call)

    def _begun(
        self, call: Call, headers: dict[str, str], body: bytes, written: Written
    ) -> Awaitable[RawResult]:
        raw = open_result(call, written[1] if isinstance(written, tuple) else None)
        reader = SseReader(raw, call)
        work = self._finish(raw, body, reader, self.started(written, reader))
        return settle(call, raw, work, cancelled=(asyncio.CancelledError, _Cancelled))

    async def _finish(
        self, raw: RawResult, body: bytes, reader: SseReader, started: Started | Exception | None
    ) -> None:
        try:
            if isinstance(started, Exception):
                raise started
            if started is None:  # no idle connection: open one (or wait for one)
                client = self._client()
                resp = await client.post(
                    self._url, self._headers, body, reader.on_body, reader.on_head
                )
            else:
                resp = await finish(started)
        except (ConnectionError, TimeoutError):
            if reader.ended:  # an in-band error was read first: that error is the result
                return
            raise
        if resp.status != 200:
            http_error(raw, resp.status, bytes(reader.error_body or b""))


class SseReader(ErrorAwareReader):
    """One response, read synchronously as its bytes arrive: ``data:`` lines are split out in
    the ``data_received`` call that carried them and text chunks stamped with its ``now``.

    Each OpenAI stream event is one ``data:`` line of JSON. A text delta is told from the raw
    bytes (``"content":"`` with a non-empty string; JSON escapes every quote inside a string,
    so the pattern cannot come from the text itself); anything else — the role chunk, the
    finish chunk, usage, errors, spaced JSON — is parsed."""

    request_id_header = "x-request-id"

    __slots__ = ("buf", "call", "done", "ended", "error_body", "raw")

    def __init__(self, raw: RawResult, call: Call) -> None:
        self.raw = raw
        self.call = call
        self.buf = b""
        self.done = False  # [DONE] was read
        self.ended = False  # an in-band error was read: ignore what follows it
        self.error_body: bytearray | None = None

    def on_body(self, data: bytes, now: float) -> None:
        """Read every complete line of ``data``; stamp text chunks with ``now``."""
        if self.error_body is not None:
            self.error_body += data
            return
        if self.done or self.ended:
            return
        raw = self.raw
        if (
            not self.buf
            and data.startswith(b"data:")
            and data.endswith(b"\n")
            and b"\ndata:" not in data
            and b'"content":"' in data
            and b'"usage":{' not in data
        ):
            # The hot path: one whole event, a delta (with chunked framing a server's write
            # arrives as one body piece), told from its bytes and stamped with no other work.
            if b'"content":""' not in data:
                if raw.text_chunks == 0:
                    raw.first_token_pc = now
                elif now - raw.last_token_pc > raw.max_gap_s:
                    raw.max_gap_s = now - raw.last_token_pc
                raw.last_token_pc = now
                raw.text_chunks += 1
        else:
            self._lines(data, now)
        if self.call.cancel.is_set():
            raise _Cancelled

    def _lines(self, data: bytes, now: float) -> None:
        lines = (self.buf + data).split(b"\n") if self.buf else data.split(b"\n")
        self.buf = lines.pop()  # an incomplete last line (b"" when data ended with \n)
        raw = self.raw
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments (": ping"), event:/id: fields
            if b'"content":"' in line and b'"usage":{' not in line:
                if b'"content":""' not in line:
                    raw.text_at(now)
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                return
            if not self._event(payload, now):
                self.ended = True
                return

    def _event(self, payload: bytes, now: float) -> bool:
        """Read one parsed event; False when it was an in-band error."""
        try:
            obj = json.loads(payload)
        except ValueError:
            return True  # not JSON (a keep-alive or vendor extra): nothing to read
        if not isinstance(obj, dict):
            return True
        raw = self.raw
        if "error" in obj:
            err = obj["error"] if isinstance(obj["error"], dict) else {}
            raw.status = "error"
            raw.error_code = str(err.get("type") or err.get("code") or "stream_error")
            raw.error_message = str(err.get("message") or obj["error"])
            return False
        if chunk_text(obj):
            raw.text_at(now)
        usage = obj.get("usage")
        if usage:
            raw.input_tokens = usage.get("prompt_tokens")
            raw.output_tokens = usage.get("completion_tokens")
        return True


def chunk_text(obj: dict[str, Any]) -> str:
    """The output text a chat (``delta.content``) or completions (``text``) chunk carries."""
    choices = obj.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    return str((choice.get("delta") or {}).get("content") or choice.get("text") or "")


def http_error(raw: RawResult, status: int, body: bytes) -> None:
    """A non-200 response: 429 is ``throttled``, the rest ``error``, with the body's code."""
    try:
        err = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        err = {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    raw.status = "throttled" if status == 429 else "error"
    raw.error_code = str(err.get("code") or err.get("type") or f"HTTP{status}")
    raw.error_message = str(err.get("message") or body[:200].decode("utf-8", "replace"))
