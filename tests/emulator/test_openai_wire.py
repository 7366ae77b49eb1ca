"""OpenAI-compatible wire formats: parsing, SSE streams, whole responses and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import openai_wire as ow
from emulator.api import ApiError, Completion, GenerationRequest

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
DONE = Completion(
    request_id="abc",
    model_id=MODEL,
    input_tokens=10,
    output_tokens=4,
    stop_reason="max_tokens",
    latency_ms=500,
    first_byte_latency_ms=80,
    created_s=1_700_000_000,
)
PIECES = ["Hel", "lo", ' "world"', "\n"]


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _chat(**fields: Any) -> GenerationRequest:
    base = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    return ow.parse_chat(_body({**base, **fields}))


def _sse(data: bytes) -> list[Any]:
    """The payloads of an SSE body: each event is exactly one `data: ...` line plus a blank."""
    text = data.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    return [e[len("data: ") :] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def _stream(req: GenerationRequest, done: Completion = DONE) -> list[Any]:
    fmt = ow.stream_formatter(req, "abc", 1_700_000_000)
    assert fmt.content_type == "text/event-stream"
    return _sse(fmt.start() + b"".join(fmt.delta(p) for p in PIECES) + fmt.finish(done))


# -- parsing -----------------------------------------------------------------------------------
def test_parse_chat_with_unknown_fields() -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {}}, {"type": "text", "text": "?"}],
            },
        ],
        "max_tokens": 350,
        "temperature": 1.5,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "min_tokens": 350,
        "stop": None,
    }
    assert ow.parse_chat(_body(body)) == GenerationRequest(
        operation="chat",
        family="openai-chat",
        model_id=MODEL,
        prompt_text="Be brief.\nHi\n?",
        n_messages=4,
        max_tokens=350,
        temperature=1.5,
        stream=True,
        include_usage=True,
    )


def test_parse_chat_defaults_and_max_completion_tokens() -> None:
    req = _chat()
    assert (req.max_tokens, req.temperature, req.stream, req.include_usage) == (
        None,
        None,
        False,
        False,
    )
    assert _chat(max_completion_tokens=7, max_tokens=9).max_tokens == 7
    assert _chat(max_tokens=9, max_completion_tokens=None).max_tokens == 9
    # include_usage only means something in a stream.
    assert not _chat(stream=False, stream_options={"include_usage": True}).include_usage


def test_parse_completions() -> None:
    req = ow.parse_completions(
        _body({"model": MODEL, "prompt": "Once", "max_tokens": 5, "echo": False})
    )
    assert (req.operation, req.family, req.prompt_text, req.n_messages, req.max_tokens) == (
        "completions",
        "openai-completions",
        "Once",
        1,
        5,
    )
    listed = ow.parse_completions(_body({"model": MODEL, "prompt": ["a", "b"], "stream": True}))
    assert (listed.prompt_text, listed.n_messages, listed.stream) == ("a\nb", 2, True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "We could not parse the JSON body of your request."),
        (b"[]", "Invalid type for 'body': expected an object, but got an array instead."),
        (
            _body({"messages": [{"role": "user", "content": "x"}]}),
            "you must provide a model parameter",
        ),
        (_body({"model": MODEL}), "Missing required parameter: 'messages'."),
        (_body({"model": MODEL, "messages": []}), "Invalid 'messages': empty array."),
        (
            _body({"model": MODEL, "messages": [{"content": "x"}]}),
            "Missing required parameter: 'messages[0].role'.",
        ),
        (
            _body({"model": MODEL, "messages": [{"role": "user", "content": 5}]}),
            "Invalid type for 'messages[0].content': expected one of a string or array of objects, "
            "but got an integer instead.",
        ),
        (
            _body(
                {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}
            ),
            "Invalid 'max_tokens': integer below minimum value. "
            "Expected a value >= 1, but got 0 instead.",
        ),
        (
            _body(
                {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}
            ),
            "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
        ),
        (
            _body(
                {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 2.5}
            ),
            "Invalid 'temperature': decimal above maximum value. "
            "Expected a value <= 2, but got 2.5 instead.",
        ),
        (
            _body(
                {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": "yes"}
            ),
            "Invalid type for 'stream': expected a boolean, but got a string instead.",
        ),
    ],
)
def test_chat_errors(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        ow.parse_chat(body)
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    assert message in caught.value.message


@pytest.mark.parametrize("prompt", [None, 5, [1, 2], []])
def test_completions_prompt_errors(prompt: object) -> None:
    body = {"model": MODEL} if prompt is None else {"model": MODEL, "prompt": prompt}
    with pytest.raises(ApiError) as caught:
        ow.parse_completions(_body(body))
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    assert "'prompt'" in caught.value.message


# -- streams -----------------------------------------------------------------------------------
def test_chat_stream_without_usage() -> None:
    events = _stream(_chat(stream=True))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["id"] == "chatcmpl-abc" and c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["created"] == 1_700_000_000 and c["model"] == MODEL for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks[1:-1]) == "".join(PIECES)
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all("usage" not in c for c in chunks)


def test_chat_stream_with_usage() -> None:
    done = Completion(**{**DONE.__dict__, "stop_reason": "end_turn"})
    events = _stream(_chat(stream=True, stream_options={"include_usage": True}), done)
    assert events[-1] == "[DONE]"
    *chunks, usage = events[:-1]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    assert all(c["usage"] is None for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_completions_stream() -> None:
    req = ow.parse_completions(_body({"model": MODEL, "prompt": "x", "stream": True}))
    fmt = ow.stream_formatter(req, "abc", 1)
    assert fmt.start() == b""
    events = _stream(req)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["id"] == "cmpl-abc" and c["object"] == "text_completion" for c in chunks)
    assert [c["choices"][0]["text"] for c in chunks] == [*PIECES, ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_stream_error_event() -> None:
    fmt = ow.stream_formatter(_chat(stream=True), "abc", 1)
    [event] = _sse(fmt.error("server_error", "The model failed."))
    assert event == {"error": {"message": "The model failed.", "type": "server_error"}}


# -- whole responses and errors ----------------------------------------------------------------
def test_chat_full_response() -> None:
    body = json.loads(ow.full_response(_chat(), "Hello", DONE))
    assert body == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
    }


def test_completions_full_response() -> None:
    req = ow.parse_completions(_body({"model": MODEL, "prompt": "x"}))
    body = json.loads(ow.full_response(req, "Hello", DONE))
    assert (body["id"], body["object"]) == ("cmpl-abc", "text_completion")
    assert body["choices"] == [
        {"index": 0, "text": "Hello", "logprobs": None, "finish_reason": "length"}
    ]
    assert body["usage"]["total_tokens"] == 14


@pytest.mark.parametrize(
    ("err", "error_type", "code"),
    [
        (ApiError(400, "invalid_request_error", "bad"), "invalid_request_error", None),
        (ApiError(429, "rate_limit_error", "slow down"), "requests", "rate_limit_exceeded"),
        (
            ApiError(404, "invalid_request_error", "no such model"),
            "invalid_request_error",
            "model_not_found",
        ),
    ],
)
def test_error_response(err: ApiError, error_type: str, code: str | None) -> None:
    status, headers, body = ow.error_response(err)
    assert (status, headers) == (err.status, {"Content-Type": "application/json"})
    assert json.loads(body) == {
        "error": {"message": err.message, "type": error_type, "param": None, "code": code}
    }


def test_models_response() -> None:
    body = json.loads(ow.models_response(["a", "b"], 5))
    assert body == {
        "object": "list",
        "data": [
            {"id": "a", "object": "model", "created": 5, "owned_by": "llmcap-emulator"},
            {"id": "b", "object": "model", "created": 5, "owned_by": "llmcap-emulator"},
        ],
    }
