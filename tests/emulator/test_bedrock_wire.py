"""Bedrock wire formats, decoded by botocore exactly as boto3 decodes a live response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser, RestJSONParser

from emulator import bedrock_parse as bp, bedrock_wire as bw
from emulator.api import ApiError, Completion, GenerationRequest

SERVICE = botocore.session.get_session().get_service_model("bedrock-runtime")
CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"
DONE = Completion(
    request_id="req-1",
    model_id=CLAUDE,
    input_tokens=12,
    output_tokens=3,
    stop_reason="end_turn",
    latency_ms=321,
    first_byte_latency_ms=45,
    created_s=1_700_000_000,
)
PIECES = ["Hello", " wor", 'ld "!"\n']


def _count(text: str) -> int:
    return len(text.split()) or 1


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


class _RawStream:
    """What EventStream reads: an object whose .stream() yields byte chunks (like urllib3)."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self._data = data
        self._piece = piece

    def stream(self) -> Iterator[bytes]:
        for i in range(0, len(self._data), self._piece):
            yield self._data[i : i + self._piece]

    def close(self) -> None:
        pass


def _events(operation: str, member: str, data: bytes) -> list[dict[str, Any]]:
    shape: Any = SERVICE.operation_model(operation).output_shape.members[member]  # type: ignore[union-attr]
    return list(EventStream(_RawStream(data), shape, EventStreamJSONParser(), operation))


def _render(req: GenerationRequest, done: Completion = DONE) -> bytes:
    fmt = bw.stream_formatter(req, _count, request_id="req-1")
    assert fmt.content_type == "application/vnd.amazon.eventstream"
    return fmt.start() + b"".join(fmt.delta(p) for p in PIECES) + fmt.finish(done)


MALFORMED = "Malformed input request, please reformat your input and try again."
USER = {"role": "user", "content": [{"text": "x"}]}


ANTHROPIC_OK = {
    "anthropic_version": "v",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "x"}],
}


# -- streams -----------------------------------------------------------------------------------
def test_converse_stream_decodes_like_boto3() -> None:
    req = bp.parse_converse(CLAUDE, _body({"messages": [USER]}), stream=True)
    events = _events("ConverseStream", "stream", _render(req, DONE))
    assert events == [
        {"messageStart": {"role": "assistant"}},
        *({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": p}}} for p in PIECES),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {
            "metadata": {
                "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
                "metrics": {"latencyMs": 321},
            }
        },
    ]
    assert bw.extra_headers(req) == {}


def test_converse_stream_error_raises_event_stream_error() -> None:
    req = bp.parse_converse(CLAUDE, _body({"messages": [USER]}), stream=True)
    fmt = bw.stream_formatter(req, _count)
    data = fmt.start() + fmt.delta("Hi") + fmt.error("throttlingException", "Too many tokens")
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in _events_iter("ConverseStream", "stream", data):
            received.append(event)
    assert caught.value.response["Error"] == {
        "Code": "throttlingException",
        "Message": "Too many tokens",
    }
    # Events before the exception reach the client first.
    assert [next(iter(e)) for e in received] == ["messageStart", "contentBlockDelta"]


def _events_iter(operation: str, member: str, data: bytes) -> EventStream[Any]:
    shape: Any = SERVICE.operation_model(operation).output_shape.members[member]  # type: ignore[union-attr]
    return EventStream(_RawStream(data), shape, EventStreamJSONParser(), operation)


def _chunks(req: GenerationRequest, done: Completion = DONE) -> list[dict[str, Any]]:
    events = _events("InvokeModelWithResponseStream", "body", _render(req, done))
    assert all(list(e) == ["chunk"] for e in events)
    return [json.loads(e["chunk"]["bytes"]) for e in events]


METRICS = {
    "inputTokenCount": 12,
    "outputTokenCount": 3,
    "invocationLatency": 321,
    "firstByteLatency": 45,
}


def test_invoke_stream_anthropic() -> None:
    req = bp.parse_invoke(CLAUDE, _body(ANTHROPIC_OK), stream=True)
    chunks = _chunks(req)
    assert [c["type"] for c in chunks] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert chunks[0]["message"]["id"] == "msg_bdrk_req1"
    assert chunks[0]["message"]["usage"]["input_tokens"] == 1  # _count("x")
    assert chunks[1]["content_block"] == {"type": "text", "text": ""}
    assert "".join(c["delta"]["text"] for c in chunks[2:5]) == "".join(PIECES)
    assert chunks[2]["delta"]["type"] == "text_delta"
    assert chunks[6]["delta"]["stop_reason"] == "end_turn"
    assert chunks[6]["usage"] == {"output_tokens": 3}
    assert chunks[7]["amazon-bedrock-invocationMetrics"] == METRICS
    assert bw.extra_headers(req) == {"X-Amzn-Bedrock-Content-Type": "application/json"}


def test_invoke_stream_meta() -> None:
    req = bp.parse_invoke(LLAMA, _body({"prompt": "one two three"}), stream=True)
    chunks = _chunks(req, Completion(**{**DONE.__dict__, "stop_reason": "max_tokens"}))
    assert [c["generation"] for c in chunks] == [*PIECES, ""]
    assert [c["prompt_token_count"] for c in chunks] == [3, None, None, None]
    assert [c["generation_token_count"] for c in chunks] == [1, 2, 4, 3]
    assert [c["stop_reason"] for c in chunks] == [None, None, None, "length"]
    assert chunks[-1]["amazon-bedrock-invocationMetrics"] == METRICS


def test_invoke_stream_meta_without_deltas_reports_prompt_on_final_chunk() -> None:
    req = bp.parse_invoke(LLAMA, _body({"prompt": "x"}), stream=True)
    fmt = bw.stream_formatter(req, _count)
    assert fmt.start() == b""
    [final] = _events("InvokeModelWithResponseStream", "body", fmt.finish(DONE))
    assert json.loads(final["chunk"]["bytes"])["prompt_token_count"] == 12


def test_stream_formatter_input_tokens_overrides_prompt_count() -> None:
    def count(text: str) -> int:
        assert text in PIECES, "the prompt must not be counted when input_tokens is given"
        return _count(text)

    claude = bp.parse_invoke(CLAUDE, _body(ANTHROPIC_OK), stream=True)
    fmt = bw.stream_formatter(claude, count, request_id="req-1", input_tokens=42)
    [start, _] = _events("InvokeModelWithResponseStream", "body", fmt.start())
    assert json.loads(start["chunk"]["bytes"])["message"]["usage"]["input_tokens"] == 42

    llama = bp.parse_invoke(LLAMA, _body({"prompt": "one two three"}), stream=True)
    fmt = bw.stream_formatter(llama, count, input_tokens=42)
    data = fmt.start() + b"".join(fmt.delta(p) for p in PIECES) + fmt.finish(DONE)
    chunks = [
        json.loads(e["chunk"]["bytes"])
        for e in _events("InvokeModelWithResponseStream", "body", data)
    ]
    assert [c["prompt_token_count"] for c in chunks] == [42, None, None, None]
    assert [c["generation_token_count"] for c in chunks] == [1, 2, 4, 3]


def test_invoke_stream_nova() -> None:
    req = bp.parse_invoke(NOVA, _body({"messages": [USER]}), stream=True)
    chunks = _chunks(req)
    assert chunks[0] == {"messageStart": {"role": "assistant"}}
    assert [c["contentBlockDelta"]["delta"]["text"] for c in chunks[1:4]] == PIECES
    assert chunks[4] == {"contentBlockStop": {"contentBlockIndex": 0}}
    assert chunks[5] == {"messageStop": {"stopReason": "end_turn"}}
    assert chunks[6]["metadata"]["usage"] == {"inputTokens": 12, "outputTokens": 3}
    assert chunks[6]["amazon-bedrock-invocationMetrics"] == METRICS


def test_invoke_stream_error_is_an_exception_event() -> None:
    req = bp.parse_invoke(NOVA, _body({"messages": [USER]}), stream=True)
    fmt = bw.stream_formatter(req, _count)
    data = fmt.start() + fmt.error("modelStreamErrorException", "Model stream error")
    with pytest.raises(EventStreamError) as caught:
        _events("InvokeModelWithResponseStream", "body", data)
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"


def test_stream_formatter_rejects_non_stream_requests() -> None:
    req = bp.parse_converse(CLAUDE, _body({"messages": [USER]}), stream=False)
    with pytest.raises(ValueError):
        bw.stream_formatter(req, _count)


# -- whole responses and errors ----------------------------------------------------------------
def _parse_rest(operation: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    # botocore hands parsers case-insensitive headers, as here.
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    shape: Any = SERVICE.operation_model(operation).output_shape
    return RestJSONParser().parse(response, shape)


def test_converse_full_response_parses_with_botocore() -> None:
    req = bp.parse_converse(CLAUDE, _body({"messages": [USER]}), stream=False)
    body = bw.full_response(req, "Hello world!", DONE)
    parsed = _parse_rest("Converse", 200, bw.full_response_headers(req, DONE), body)
    assert parsed["output"] == {
        "message": {"role": "assistant", "content": [{"text": "Hello world!"}]}
    }
    assert parsed["stopReason"] == "end_turn"
    assert parsed["usage"] == {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15}
    assert parsed["metrics"] == {"latencyMs": 321}


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (
            CLAUDE,
            ANTHROPIC_OK,
            {
                "id": "msg_bdrk_req1",
                "type": "message",
                "role": "assistant",
                "model": CLAUDE,
                "content": [{"type": "text", "text": "Hi!"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 3},
            },
        ),
        (
            LLAMA,
            {"prompt": "x"},
            {
                "generation": "Hi!",
                "prompt_token_count": 12,
                "generation_token_count": 3,
                "stop_reason": "stop",
            },
        ),
        (
            NOVA,
            {"messages": [USER]},
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Hi!"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
            },
        ),
    ],
)
def test_invoke_full_response(
    model_id: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    req = bp.parse_invoke(model_id, _body(body), stream=False)
    headers = {"Content-Type": "application/json", **bw.full_response_headers(req, DONE)}
    assert headers["X-Amzn-Bedrock-Input-Token-Count"] == "12"
    assert headers["X-Amzn-Bedrock-Output-Token-Count"] == "3"
    assert headers["X-Amzn-Bedrock-Invocation-Latency"] == "321"
    parsed = _parse_rest("InvokeModel", 200, headers, bw.full_response(req, "Hi!", DONE))
    assert parsed["contentType"] == "application/json"
    assert json.loads(parsed["body"]) == expected


def test_throttle_error_response_matches_real_bedrock() -> None:
    message = "Too many tokens, please wait before trying again."
    status, headers, body = bw.error_response(ApiError(429, "ThrottlingException", message), "rid")
    assert status == 429
    assert body == b'{"message":"Too many tokens, please wait before trying again."}'
    assert len(body) == 63
    assert headers == {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": "rid",
    }
    parsed = _parse_rest("Converse", status, headers, body)
    assert parsed["Error"]["Code"] == "ThrottlingException"
    assert parsed["Error"]["Message"] == message


def test_validation_error_response_round_trips() -> None:
    with pytest.raises(ApiError) as caught:
        bp.parse_converse(CLAUDE, b"{", stream=False)
    status, headers, body = bw.error_response(caught.value, "rid")
    parsed = _parse_rest("ConverseStream", status, headers, body)
    assert (status, parsed["Error"]["Code"], parsed["Error"]["Message"]) == (
        400,
        "ValidationException",
        MALFORMED,
    )
