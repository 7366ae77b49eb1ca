"""Real httpx against the emulator's OpenAI-compatible routes over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from emulator import Emulator
from emulator.tokens import count_tokens
from tests.conftest import LLAMA


def sse_events(lines: list[str]) -> list[Any]:
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": LLAMA,
        "messages": [{"role": "user", "content": "What is the meaning of life?", "name": "ann"}],
        "max_tokens": 30,
        **extra,
    }


def test_streamed_chat_with_usage_and_unknown_fields(fast_emulator: Emulator) -> None:
    body = chat_body(
        stream=True,
        stream_options={"include_usage": True},
        ignore_eos=True,
        min_tokens=30,
        stop=None,
    )
    with (
        httpx.Client(base_url=fast_emulator.url, timeout=10) as c,
        c.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        events = sse_events(list(r.iter_lines()))
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert count_tokens(text) == 30
    finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finish[-1] == "length"
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] == 30


def test_streamed_chat_without_usage_has_no_usage_chunk(fast_emulator: Emulator) -> None:
    with (
        httpx.Client(base_url=fast_emulator.url, timeout=10) as c,
        c.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as r,
    ):
        events = sse_events(list(r.iter_lines()))
    assert all(e["choices"] for e in events)


def test_non_streamed_chat_and_completions(fast_emulator: Emulator) -> None:
    with httpx.Client(base_url=fast_emulator.url, timeout=10) as c:
        chat = c.post("/v1/chat/completions", json=chat_body()).json()
        assert chat["object"] == "chat.completion"
        assert chat["usage"]["completion_tokens"] == 30
        comp = c.post(
            "/v1/completions",
            json={"model": LLAMA, "prompt": "Once upon a time", "max_tokens": 8},
        ).json()
        assert comp["usage"]["completion_tokens"] == 8
        assert count_tokens(comp["choices"][0]["text"]) == 8


def test_streamed_completions(fast_emulator: Emulator) -> None:
    body = {"model": LLAMA, "prompt": "Hi", "max_tokens": 5, "stream": True}
    with (
        httpx.Client(base_url=fast_emulator.url, timeout=10) as c,
        c.stream("POST", "/v1/completions", json=body) as r,
    ):
        events = sse_events(list(r.iter_lines()))
    assert count_tokens("".join(e["choices"][0]["text"] for e in events if e["choices"])) == 5


def test_models_and_health(fast_emulator: Emulator) -> None:
    with httpx.Client(base_url=fast_emulator.url, timeout=10) as c:
        models = c.get("/v1/models").json()
        assert LLAMA in [m["id"] for m in models["data"]]
        assert c.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404),
        ({"model": LLAMA}, 400),
        ({"model": LLAMA, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400),
    ],
)
def test_openai_errors(fast_emulator: Emulator, body: dict[str, Any], status: int) -> None:
    r = httpx.post(f"{fast_emulator.url}/v1/chat/completions", json=body, timeout=10)
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_openai_429_has_an_openai_error_body() -> None:
    with Emulator("fast", tpm=50) as emu:
        r = httpx.post(f"{emu.url}/v1/chat/completions", json=chat_body(), timeout=10)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded"
    assert "Too many tokens" in err["message"]


def test_async_httpx_many_concurrent_streams(fast_emulator: Emulator) -> None:
    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=fast_emulator.url, timeout=30, limits=limits) as c:

            async def one() -> int:
                body = chat_body(stream=True, stream_options={"include_usage": True})
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    lines = [line async for line in r.aiter_lines()]
                return int(sse_events(lines)[-1]["usage"]["completion_tokens"])

            return list(await asyncio.gather(*(one() for _ in range(50))))

    assert asyncio.run(main()) == [30] * 50
