"""The ``openai`` provider: streamed chat completions over httpx against any OpenAI-compatible
server (vLLM, TGI, llama.cpp, LiteLLM, the emulator...), with ``stream_options.include_usage``
so the server's own token counts are recorded.

It runs on the event loop (httpx's async client); each SSE line is stamped as it is read.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx

from bench.providers.base import Call, Endpoint, measured
from bench.records import RawResult


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url.removesuffix("/v1")


class OpenAIProvider:
    """Chat completions (SSE) against ``endpoint.endpoint_url``."""

    name = "openai"

    def __init__(self, endpoint: Endpoint, *, pool_size: int) -> None:
        if not endpoint.endpoint_url:
            raise ValueError("--provider openai needs --endpoint-url (the server's base URL)")
        self.endpoint = endpoint
        headers = {}
        key = os.environ.get(endpoint.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.AsyncClient(
            base_url=_base_url(endpoint.endpoint_url),
            headers=headers,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            timeout=httpx.Timeout(
                endpoint.read_timeout_s, connect=endpoint.connect_timeout_s, pool=None
            ),
        )

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
        body = {
            "model": self.endpoint.model_id,
            "messages": [{"role": "user", "content": call.prompt.text}],
            "max_tokens": call.max_tokens,
            "temperature": call.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
            raw.server_request_id = resp.headers.get("x-request-id")
            if resp.status_code != 200:
                _http_error(raw, resp.status_code, await resp.aread())
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
                if _text(obj):
                    raw.text_at(now)
                usage = obj.get("usage")
                if usage:
                    raw.input_tokens = usage.get("prompt_tokens")
                    raw.output_tokens = usage.get("completion_tokens")
                if call.cancel.is_set():
                    raise asyncio.CancelledError


def _text(obj: dict[str, Any]) -> str:
    choices = obj.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    return str((choice.get("delta") or {}).get("content") or choice.get("text") or "")


def _http_error(raw: RawResult, status: int, body: bytes) -> None:
    try:
        err = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        err = {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    raw.status = "throttled" if status == 429 else "error"
    raw.error_code = str(err.get("code") or err.get("type") or f"HTTP{status}")
    raw.error_message = str(err.get("message") or body[:200].decode("utf-8", "replace"))
