"""``--provider openai --client httpx``: streamed chat completions over httpx's async client,
each SSE line stamped as httpx's line iterator yields it. Kept as the general-purpose client (and
the reference the lean default, ``bench.providers.openai``, is measured against); it costs several
times the CPU per request and delays stamps under load (``docs/performance.md``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Sequence

import httpx

from bench.providers.base import Call, Endpoint, EndpointError, begin_each, measured
from bench.providers.openai import (
    CHAT_PATH,
    auth_headers,
    base_url,
    chat_body,
    chunk_text,
    http_error,
)
from bench.records import RawResult


class OpenAIHttpxProvider:
    """Chat completions (SSE) against ``endpoint.endpoint_url`` over httpx."""

    name = "openai"

    def __init__(self, endpoint: Endpoint, *, pool_size: int) -> None:
        if not endpoint.endpoint_url:
            raise EndpointError("--provider openai needs --endpoint-url (the server's base URL)")
        self.endpoint = endpoint
        self.client = httpx.AsyncClient(
            base_url=base_url(endpoint.endpoint_url),
            headers=auth_headers(endpoint),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            timeout=httpx.Timeout(
                endpoint.read_timeout_s, connect=endpoint.connect_timeout_s, pool=None
            ),
        )

    async def preconnect(self, n: int) -> int:
        """Nothing is pre-opened: httpx opens connections on demand (``--warmup`` opens them)."""
        return 0

    def prepare(self, call: Call) -> None:
        """Nothing to do ahead of the send."""

    def begin(self, call: Call) -> Awaitable[RawResult]:
        """The request is sent when the returned coroutine first runs (in its task)."""
        return self.send(call)

    def begin_batch(self, calls: Sequence[Call]) -> list[Awaitable[RawResult]]:
        """``begin`` each (its request leaves from its own task)."""
        return begin_each(self, calls)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def send(self, call: Call) -> RawResult:
        """Stream one chat completion; failures become the result's status."""
        return await measured(
            call,
            lambda raw: self._stream(call, raw),
            timeouts=(httpx.TimeoutException, TimeoutError),
        )

    async def _stream(self, call: Call, raw: RawResult) -> None:
        body = chat_body(self.endpoint.model_id, call)
        async with self.client.stream("POST", CHAT_PATH, json=body) as resp:
            raw.server_request_id = resp.headers.get("x-request-id")
            if resp.status_code != 200:
                http_error(raw, resp.status_code, await resp.aread())
                return
            async for line in resp.aiter_lines():
                now = time.perf_counter()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                obj = json.loads(data)
                if "error" in obj:
                    err = obj["error"] if isinstance(obj["error"], dict) else {}
                    raw.status = "error"
                    raw.error_code = str(err.get("type") or err.get("code") or "stream_error")
                    raw.error_message = str(err.get("message") or obj["error"])
                    break
                if chunk_text(obj):
                    raw.text_at(now)
                usage = obj.get("usage")
                if usage:
                    raw.input_tokens = usage.get("prompt_tokens")
                    raw.output_tokens = usage.get("completion_tokens")
                if call.cancel.is_set():
                    raise asyncio.CancelledError
