"""OpenAI-compatible wire formats: /v1/chat/completions, /v1/completions and /v1/models (the
Responses API is in ``openai_responses.py``).

Parsing is lenient where real servers are (vLLM extensions such as ``ignore_eos`` or
``min_tokens`` and explicit nulls are accepted and ignored) and strict where every server is
(missing ``model``/``messages``/``prompt``, wrong types, out-of-range limits); error messages
follow OpenAI's wording.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from emulator.api import SERVICE_TIERS, ApiError, Completion, GenerationRequest, StreamFormatter

__all__ = [
    "SSE_CONTENT_TYPE",
    "content_texts",
    "error_response",
    "full_response",
    "load_object",
    "max_tokens",
    "model_of",
    "models_response",
    "parse_chat",
    "parse_completions",
    "service_tier",
    "stream_formatter",
    "temperature",
]

SSE_CONTENT_TYPE = "text/event-stream"
"""Content-Type of a streamed response."""

_DONE = b"data: [DONE]\n\n"
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)
# OpenAI's names for JSON types in "expected X, but got Y instead"; bool before int (subclass).
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _wrong_type(name: str, expected: str, value: object) -> ApiError:
    got = next((kind for t, kind in _KINDS if isinstance(value, t)), "null")
    return _invalid(f"Invalid type for '{name}': expected {expected}, but got {got} instead.")


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        raise _invalid(_BAD_JSON) from None
    if not isinstance(obj, dict):
        raise _wrong_type("body", "an object", obj)
    return obj


def _model(obj: Mapping[str, Any]) -> str:
    model = obj.get("model")
    if model is None:
        raise _invalid("you must provide a model parameter")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    return model


def _max_tokens(
    obj: Mapping[str, Any], names: tuple[str, ...] = ("max_completion_tokens", "max_tokens")
) -> int | None:
    # max_completion_tokens supersedes the deprecated max_tokens when both are set.
    for name in names:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, "an integer", value)
        if value < 1:
            raise _invalid(
                f"Invalid '{name}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead."
            )
        return value
    return None


def _temperature(obj: Mapping[str, Any]) -> float | None:
    value = obj.get("temperature")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type("temperature", "a decimal", value)
    # `not <=` so that NaN, which json.loads accepts, fails too.
    if not 0 <= value <= 2:
        side = "below minimum" if value < 0 else "above maximum"
        bound = ">= 0" if value < 0 else "<= 2"
        raise _invalid(
            f"Invalid 'temperature': decimal {side} value. "
            f"Expected a value {bound}, but got {value} instead."
        )
    return float(value)


def service_tier(obj: Mapping[str, Any]) -> str:
    """The ``service_tier`` field: Bedrock's reserved, priority, default or flex (OpenAI's
    "auto" is the Standard tier, "default"); absent or null: "default"."""
    value = obj.get("service_tier")
    if value is None or value == "auto":
        return "default"
    if not isinstance(value, str):
        raise _wrong_type("service_tier", "a string", value)
    if value not in SERVICE_TIERS:
        raise _invalid(
            f"Invalid value for 'service_tier': '{value}'. Supported values are: "
            + ", ".join(f"'{t}'" for t in ("auto", *SERVICE_TIERS))
            + "."
        )
    return value


def _stream_flags(obj: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = obj.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    options = obj.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", include_usage)
    # Usage chunks only exist in streams; OpenAI rejects the combination, we just ignore it.
    return bool(stream), bool(stream) and bool(include_usage)


def _content_texts(content: object, name: str) -> list[str]:
    """Texts of a message's content: a string, null, or parts of which type "text" has text."""
    if content is None:  # e.g. an assistant message that only carries tool calls
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _wrong_type(name, "one of a string or array of objects", content)
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise _wrong_type(f"{name}[{i}]", "an object", part)
        if part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _wrong_type(f"{name}[{i}].text", "a string", text)
            texts.append(text)
    return texts


def parse_chat(body: bytes) -> GenerationRequest:
    """Parse a /v1/chat/completions body; raises ApiError(400, "invalid_request_error")."""
    obj = _load_object(body)
    model = _model(obj)
    messages = obj.get("messages")
    if messages is None:
        raise _invalid("Missing required parameter: 'messages'.")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        raise _invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead."
        )
    texts: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _wrong_type(f"messages[{i}]", "an object", msg)
        role = msg.get("role")
        if role is None:
            raise _invalid(f"Missing required parameter: 'messages[{i}].role'.")
        if not isinstance(role, str):
            raise _wrong_type(f"messages[{i}].role", "a string", role)
        texts.extend(_content_texts(msg.get("content"), f"messages[{i}].content"))
    stream, include_usage = _stream_flags(obj)
    return GenerationRequest(
        operation="chat",
        family="openai-chat",
        model_id=model,
        prompt_text="\n".join(texts),
        n_messages=len(messages),
        max_tokens=_max_tokens(obj),
        temperature=_temperature(obj),
        stream=stream,
        include_usage=include_usage,
        service_tier=service_tier(obj),
    )


def parse_completions(body: bytes) -> GenerationRequest:
    """Parse a /v1/completions body (prompt: a string or a list of strings)."""
    obj = _load_object(body)
    model = _model(obj)
    prompt = obj.get("prompt")
    if prompt is None:
        raise _invalid("Missing required parameter: 'prompt'.")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise _wrong_type("prompt", "a string or an array of strings", prompt)
    if not prompts:
        raise _invalid("Invalid 'prompt': empty array. Expected an array with minimum length 1.")
    stream, include_usage = _stream_flags(obj)
    return GenerationRequest(
        operation="completions",
        family="openai-completions",
        model_id=model,
        prompt_text="\n".join(prompts),
        n_messages=len(prompts),
        max_tokens=_max_tokens(obj),
        temperature=_temperature(obj),
        stream=stream,
        include_usage=include_usage,
        service_tier=service_tier(obj),
    )


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _finish_reason(canonical: str) -> str:
    return "length" if canonical == "max_tokens" else "stop"


def _usage(done: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": done.input_tokens,
        "completion_tokens": done.output_tokens,
        "total_tokens": done.input_tokens + done.output_tokens,
    }


load_object = _load_object
model_of = _model
max_tokens = _max_tokens
temperature = _temperature
content_texts = _content_texts


def _is_chat(req: GenerationRequest) -> bool:
    if req.operation not in ("chat", "completions"):
        raise ValueError(f"no OpenAI format for operation {req.operation!r}")
    return req.operation == "chat"


class _SseStream:
    """Server-sent events: ``chat.completion.chunk`` or ``text_completion`` objects."""

    content_type: str = SSE_CONTENT_TYPE

    def __init__(self, req: GenerationRequest, request_id: str, created_s: int) -> None:
        self._chat = _is_chat(req)
        self._include_usage = req.include_usage
        self._header = {
            "id": ("chatcmpl-" if self._chat else "cmpl-") + request_id,
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": created_s,
            "model": req.model_id,
        }
        # Deltas are the hot path: pre-render everything around the text once.
        head = _dumps(self._header)[:-1]
        if self._chat:
            self._prefix = f'data: {head},"choices":[{{"index":0,"delta":{{"content":'
            self._suffix = '},"logprobs":null,"finish_reason":null}]'
        else:
            self._prefix = f'data: {head},"choices":[{{"index":0,"text":'
            self._suffix = ',"logprobs":null,"finish_reason":null}]'
        # With include_usage OpenAI puts "usage": null on every chunk but the last.
        self._suffix += ',"usage":null}\n\n' if self._include_usage else "}\n\n"

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        if self._include_usage and "usage" not in extra:
            extra["usage"] = None
        return f"data: {_dumps({**self._header, 'choices': choices, **extra})}\n\n".encode()

    def start(self) -> bytes:
        """Chat: the first chunk, announcing the assistant role; completions: nothing."""
        if not self._chat:
            return b""
        delta = {"role": "assistant", "content": ""}
        return self._event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def delta(self, text: str) -> bytes:
        """One chunk carrying `text`."""
        return (self._prefix + json.dumps(text) + self._suffix).encode()

    def finish(self, done: Completion) -> bytes:
        """The finish_reason chunk, the usage chunk when requested, then ``[DONE]``."""
        choice: dict[str, Any] = (
            {"index": 0, "delta": {}} if self._chat else {"index": 0, "text": ""}
        )
        choice.update(logprobs=None, finish_reason=_finish_reason(done.stop_reason))
        out = self._event([choice])
        if self._include_usage:
            out += self._event([], usage=_usage(done))
        return out + _DONE

    def error(self, code: str, message: str) -> bytes:
        """An in-band error event (the HTTP status is already 200 once a stream started)."""
        return f"data: {_dumps({'error': {'message': message, 'type': code}})}\n\n".encode()


def stream_formatter(req: GenerationRequest, request_id: str, created_s: int) -> StreamFormatter:
    """The SSE formatter of a streamed chat or completions request."""
    return _SseStream(req, request_id, created_s)


def full_response(req: GenerationRequest, text: str, done: Completion) -> bytes:
    """The JSON body of a non-streamed ``chat.completion`` or ``text_completion``."""
    finish = _finish_reason(done.stop_reason)
    choice: dict[str, Any]
    if _is_chat(req):
        kind, prefix = "chat.completion", "chatcmpl-"
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        kind, prefix = "text_completion", "cmpl-"
        choice = {"index": 0, "text": text}
    choice.update(logprobs=None, finish_reason=finish)
    body = {
        "id": prefix + done.request_id,
        "object": kind,
        "created": done.created_s,
        "model": done.model_id,
        "choices": [choice],
        "usage": _usage(done),
    }
    return _dumps(body).encode()


def error_response(err: ApiError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error sent before any stream starts.

    429s and unknown models get the type/code pairs OpenAI sends, which clients key on.
    """
    error_type, code = err.error_type, None
    if err.status == 429:
        error_type, code = "requests", "rate_limit_exceeded"
    elif err.status == 404:
        error_type, code = "invalid_request_error", "model_not_found"
    error = {"message": err.message, "type": error_type, "param": None, "code": code}
    return err.status, {"Content-Type": "application/json"}, _dumps({"error": error}).encode()


def models_response(model_ids: Sequence[str], created_s: int) -> bytes:
    """The body of ``GET /v1/models``."""
    data = [
        {"id": m, "object": "model", "created": created_s, "owned_by": "llmcap-emulator"}
        for m in model_ids
    ]
    return _dumps({"object": "list", "data": data}).encode()
