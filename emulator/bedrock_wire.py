"""Bedrock runtime response wire formats: streamed and whole responses, and errors.

Covers Converse/ConverseStream and InvokeModel/InvokeModelWithResponseStream with the Anthropic,
Meta Llama and Amazon Nova native bodies. Request parsing lives in `bedrock_parse`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from emulator.api import ApiError, Completion, GenerationRequest, StreamFormatter
from emulator.eventstream import event_frame, event_frame_raw, exception_frame

__all__ = [
    "EVENTSTREAM_CONTENT_TYPE",
    "error_response",
    "extra_headers",
    "full_response",
    "full_response_headers",
    "stream_formatter",
]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
"""Content-Type of both Bedrock streaming responses."""


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _json_str(text: str) -> bytes:
    return json.dumps(text).encode("utf-8")


def _stop_reason(family: str, canonical: str) -> str:
    # Converse, Nova and Anthropic share the canonical vocabulary; only Llama differs.
    if family == "meta":
        return "length" if canonical == "max_tokens" else "stop"
    return canonical


def _usage(done: Completion, *, total: bool = True) -> dict[str, int]:
    usage = {"inputTokens": done.input_tokens, "outputTokens": done.output_tokens}
    if total:
        usage["totalTokens"] = done.input_tokens + done.output_tokens
    return usage


def _invocation_metrics(done: Completion) -> dict[str, int]:
    return {
        "inputTokenCount": done.input_tokens,
        "outputTokenCount": done.output_tokens,
        "invocationLatency": done.latency_ms,
        "firstByteLatency": done.first_byte_latency_ms,
    }


def _message_id(request_id: str) -> str:
    return "msg_bdrk_" + request_id.replace("-", "")


def _chunk_json(chunk: bytes) -> bytes:
    # InvokeModelWithResponseStream carries each model-native JSON chunk base64'd in `bytes`.
    return event_frame_raw("chunk", b'{"bytes":"' + base64.b64encode(chunk) + b'"}')


def _chunk(obj: object) -> bytes:
    return _chunk_json(_compact(obj))


class _EventStream:
    """What every Bedrock stream shares: the content type and mid-stream exceptions."""

    content_type: str = EVENTSTREAM_CONTENT_TYPE

    def error(self, code: str, message: str) -> bytes:
        """An exception message; `code` is the lowerCamel member, e.g. throttlingException."""
        return exception_frame(code, message)


_MESSAGE_START = event_frame("messageStart", {"role": "assistant"})
_DELTA_FRAMES: dict[str, bytes] = {}
_DELTA_CACHE_SIZE = 65_536
_BLOCK_STOP = event_frame("contentBlockStop", {"contentBlockIndex": 0})


class _ConverseStream(_EventStream):
    """ConverseStream: one event per ConverseStreamOutput union member."""

    def start(self) -> bytes:
        """messageStart; no contentBlockStart, which Bedrock sends only for tool use."""
        return _MESSAGE_START

    def delta(self, text: str) -> bytes:
        """A contentBlockDelta with a text delta. The frame depends on the text alone and
        output text comes from a small vocabulary, so frames are cached: the hot path of
        hundreds of streams is a dict lookup."""
        frame = _DELTA_FRAMES.get(text)
        if frame is None:
            payload = b'{"contentBlockIndex":0,"delta":{"text":' + _json_str(text) + b"}}"
            frame = event_frame_raw("contentBlockDelta", payload)
            if len(_DELTA_FRAMES) < _DELTA_CACHE_SIZE:
                _DELTA_FRAMES[text] = frame
        return frame

    def finish(self, done: Completion) -> bytes:
        """contentBlockStop, messageStop and metadata (usage and latency)."""
        stop = {"stopReason": _stop_reason("converse", done.stop_reason)}
        metadata = {"usage": _usage(done), "metrics": {"latencyMs": done.latency_ms}}
        return _BLOCK_STOP + event_frame("messageStop", stop) + event_frame("metadata", metadata)


class _AnthropicStream(_EventStream):
    """Anthropic Messages streaming events, as InvokeModelWithResponseStream chunks."""

    def __init__(self, model_id: str, input_tokens: int, message_id: str) -> None:
        self._start = {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model_id,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        }

    def start(self) -> bytes:
        """message_start, then content_block_start for the text block."""
        block = {"type": "content_block_start", "index": 0}
        return _chunk(self._start) + _chunk(
            {**block, "content_block": {"type": "text", "text": ""}}
        )

    def delta(self, text: str) -> bytes:
        """A content_block_delta carrying a text_delta."""
        head = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
        return _chunk_json(head + _json_str(text) + b"}}")

    def finish(self, done: Completion) -> bytes:
        """content_block_stop, message_delta (stop reason, usage), message_stop + metrics."""
        delta = {"stop_reason": _stop_reason("anthropic", done.stop_reason), "stop_sequence": None}
        return (
            _chunk({"type": "content_block_stop", "index": 0})
            + _chunk(
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": {"output_tokens": done.output_tokens},
                }
            )
            + _chunk(
                {
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": _invocation_metrics(done),
                }
            )
        )


class _MetaStream(_EventStream):
    """Llama streaming: flat chunks with a running generation token count."""

    def __init__(self, input_tokens: int, count: Callable[[str], int]) -> None:
        self._input_tokens = input_tokens
        self._count = count
        self._generated = 0
        self._first = True

    def start(self) -> bytes:
        """Nothing: Llama has no opening event."""
        return b""

    def delta(self, text: str) -> bytes:
        """A generation chunk; the running count grows by `count(text)`."""
        self._generated += self._count(text)
        # Llama reports the prompt size on the first chunk only. Serialized by hand: hot path.
        prompt = str(self._input_tokens).encode() if self._first else b"null"
        self._first = False
        return _chunk_json(
            b'{"generation":%s,"prompt_token_count":%s,"generation_token_count":%d,'
            b'"stop_reason":null}' % (_json_str(text), prompt, self._generated)
        )

    def finish(self, done: Completion) -> bytes:
        """The final empty generation with the stop reason and invocation metrics."""
        chunk = {
            "generation": "",
            # With no delta sent this is the first chunk: report the settled input count.
            "prompt_token_count": done.input_tokens if self._first else None,
            "generation_token_count": done.output_tokens,
            "stop_reason": _stop_reason("meta", done.stop_reason),
            "amazon-bedrock-invocationMetrics": _invocation_metrics(done),
        }
        return _chunk(chunk)


class _NovaStream(_EventStream):
    """Nova streaming: Converse-shaped events, each as a model-native chunk."""

    def start(self) -> bytes:
        """messageStart."""
        return _chunk({"messageStart": {"role": "assistant"}})

    def delta(self, text: str) -> bytes:
        """A contentBlockDelta with a text delta."""
        head = b'{"contentBlockDelta":{"delta":{"text":'
        return _chunk_json(head + _json_str(text) + b'},"contentBlockIndex":0}}')

    def finish(self, done: Completion) -> bytes:
        """contentBlockStop, messageStop, then metadata with invocation metrics."""
        metadata = {"usage": _usage(done, total=False), "metrics": {}, "trace": {}}
        return (
            _chunk({"contentBlockStop": {"contentBlockIndex": 0}})
            + _chunk({"messageStop": {"stopReason": _stop_reason("nova", done.stop_reason)}})
            + _chunk(
                {
                    "metadata": metadata,
                    "amazon-bedrock-invocationMetrics": _invocation_metrics(done),
                }
            )
        )


def stream_formatter(
    req: GenerationRequest,
    count_tokens: Callable[[str], int],
    *,
    request_id: str | None = None,
    input_tokens: int | None = None,
) -> StreamFormatter:
    """The formatter of a converse-stream or invoke-stream request.

    `count_tokens` sizes Llama's running generation count and, unless `input_tokens` gives it,
    the prompt (Anthropic's message_start usage, Llama's first-chunk prompt_token_count).
    `request_id` makes the Anthropic message id (random when None).
    """

    def prompt_tokens() -> int:
        return input_tokens if input_tokens is not None else count_tokens(req.prompt_text)

    if req.operation == "converse-stream":
        return _ConverseStream()
    if req.operation == "invoke-stream" and req.family == "anthropic":
        message_id = _message_id(request_id if request_id is not None else uuid.uuid4().hex)
        return _AnthropicStream(req.model_id, prompt_tokens(), message_id)
    if req.operation == "invoke-stream" and req.family == "meta":
        return _MetaStream(prompt_tokens(), count_tokens)
    if req.operation == "invoke-stream" and req.family == "nova":
        return _NovaStream()
    raise ValueError(f"no Bedrock stream format for {req.operation!r} / {req.family!r}")


def extra_headers(req: GenerationRequest) -> dict[str, str]:
    """Stream response headers beyond Content-Type.

    boto3 takes InvokeModelWithResponseStream's `contentType` from X-Amzn-Bedrock-Content-Type.
    """
    if req.operation == "invoke-stream":
        return {"X-Amzn-Bedrock-Content-Type": "application/json"}
    return {}


def full_response(req: GenerationRequest, text: str, done: Completion) -> bytes:
    """The JSON body of a non-streamed Converse or InvokeModel response."""
    stop = _stop_reason(req.family, done.stop_reason)
    output = {"message": {"role": "assistant", "content": [{"text": text}]}}
    body: dict[str, Any]
    if req.family == "converse":
        metrics = {"latencyMs": done.latency_ms}
        body = {"output": output, "stopReason": stop, "usage": _usage(done), "metrics": metrics}
    elif req.family == "nova":
        body = {"output": output, "stopReason": stop, "usage": _usage(done)}
    elif req.family == "anthropic":
        body = {
            "id": _message_id(done.request_id),
            "type": "message",
            "role": "assistant",
            "model": done.model_id,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens},
        }
    elif req.family == "meta":
        body = {
            "generation": text,
            "prompt_token_count": done.input_tokens,
            "generation_token_count": done.output_tokens,
            "stop_reason": stop,
        }
    else:
        raise ValueError(f"no Bedrock response format for family {req.family!r}")
    return _compact(body)


def full_response_headers(req: GenerationRequest, done: Completion) -> dict[str, str]:
    """Headers of a non-streamed response: InvokeModel reports usage in X-Amzn-Bedrock-*."""
    if req.operation != "invoke":
        return {}
    return {
        "X-Amzn-Bedrock-Input-Token-Count": str(done.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(done.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(done.latency_ms),
    }


def error_response(err: ApiError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error sent before any stream starts.

    botocore reads the error code from x-amzn-ErrorType (the part before ':').
    """
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": f"{err.error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": request_id,
    }
    return err.status, headers, _compact({"message": err.message})
