"""Bedrock runtime wire formats: request parsing, streamed and whole responses, errors.

Covers Converse/ConverseStream and InvokeModel/InvokeModelWithResponseStream with the Anthropic,
Meta Llama and Amazon Nova native bodies. Validation errors imitate Bedrock's two front ends:
Coral for Converse ("1 validation error detected: Value ... at 'messages.1.member.role' ...")
and a JSON schema for native bodies ("Malformed input request: #/max_tokens: ...").
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bench.emulator.api import ApiError, Completion, GenerationRequest, StreamFormatter
from bench.emulator.eventstream import event_frame, event_frame_raw, exception_frame

__all__ = [
    "EVENTSTREAM_CONTENT_TYPE",
    "error_response",
    "extra_headers",
    "full_response",
    "full_response_headers",
    "parse_converse",
    "parse_invoke",
    "stream_formatter",
]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
"""Content-Type of both Bedrock streaming responses."""

_MALFORMED = "Malformed input request, please reformat your input and try again."
_ROLES = ("user", "assistant")
# Schema type names, for "expected type: X, found: Y"; bool first because it is an int subclass.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "Boolean"),
    (int, "Integer"),
    (float, "Number"),
    (str, "String"),
    (list, "JSONArray"),
    (dict, "JSONObject"),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ValidationException", message)


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _Validator(Protocol):
    """How one Bedrock front end names paths and words its validation errors."""

    root: str

    def key(self, path: str, key: str) -> str: ...
    def item(self, path: str, index: int) -> str: ...
    def fail(self, path: str, value: object, constraint: str) -> ApiError: ...
    def missing(self, path: str, key: str) -> ApiError: ...
    def wrong_type(self, path: str, value: object, kind: str) -> ApiError: ...
    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError: ...
    def bad_role(self, path: str, value: object) -> ApiError: ...
    def empty(self, path: str) -> ApiError: ...


class _Coral:
    """Converse's validator: dotted member paths with 1-based list indexes."""

    root = ""

    def key(self, path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def item(self, path: str, index: int) -> str:
        return f"{path}.{index + 1}.member"

    def fail(self, path: str, value: object, constraint: str) -> ApiError:
        shown = "null" if value is None else f"'{_shown(value)}'"
        return _invalid(
            f"1 validation error detected: Value {shown} at '{path}' "
            f"failed to satisfy constraint: {constraint}"
        )

    def missing(self, path: str, key: str) -> ApiError:
        return self.fail(self.key(path, key), None, "Member must not be null")

    def wrong_type(self, path: str, value: object, kind: str) -> ApiError:
        return self.fail(path, value, f"Member must be of type {kind}")

    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError:
        relation = "less than or equal to" if upper else "greater than or equal to"
        return self.fail(path, value, f"Member must have value {relation} {bound}")

    def bad_role(self, path: str, value: object) -> ApiError:
        return self.fail(path, value, "Member must satisfy enum value set: [user, assistant]")

    def empty(self, path: str) -> ApiError:
        return _invalid(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )


class _Schema:
    """The native-body validator: JSON-pointer paths, everit-style JSON-schema messages."""

    root = "#"

    def key(self, path: str, key: str) -> str:
        return f"{path}/{key}"

    def item(self, path: str, index: int) -> str:
        return f"{path}/{index}"

    def fail(self, path: str, value: object, constraint: str) -> ApiError:
        return _invalid(
            f"Malformed input request: {path}: {constraint}, please reformat your input "
            "and try again."
        )

    def missing(self, path: str, key: str) -> ApiError:
        return self.fail(path, None, f"required key [{key}] not found")

    def wrong_type(self, path: str, value: object, kind: str) -> ApiError:
        found = next((name for t, name in _KINDS if isinstance(value, t)), "Null")
        return self.fail(path, value, f"expected type: {kind}, found: {found}")

    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError:
        relation = "less or equal to" if upper else "greater or equal to"
        return self.fail(path, value, f"{_shown(value)} is not {relation} {bound}")

    def bad_role(self, path: str, value: object) -> ApiError:
        return self.fail(path, value, f"{_shown(value)} is not a valid enum value")

    def empty(self, path: str) -> ApiError:
        return self.fail(path, [], "expected minimum item count: 1, found: 0")


_CORAL: _Validator = _Coral()
_SCHEMA: _Validator = _Schema()


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        raise _invalid(_MALFORMED) from None
    if not isinstance(obj, dict):
        raise _invalid(_MALFORMED)
    return obj


def _max_tokens(v: _Validator, obj: Mapping[str, Any], path: str, key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise v.wrong_type(v.key(path, key), value, "Integer")
    if value < 1:
        raise v.out_of_range(v.key(path, key), value, 1, upper=False)
    return value


def _unit(v: _Validator, obj: Mapping[str, Any], path: str, key: str) -> float | None:
    """A sampling parameter (temperature, top-p) in [0, 1], or None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise v.wrong_type(v.key(path, key), value, "Number")
    # `not >=` rather than `<` so that NaN, which json.loads accepts, fails too.
    if not value >= 0:
        raise v.out_of_range(v.key(path, key), value, 0, upper=False)
    if not value <= 1:
        raise v.out_of_range(v.key(path, key), value, 1, upper=True)
    return float(value)


def _config(v: _Validator, obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise v.wrong_type(v.key(v.root, key), value, "JSONObject")
    return value


def _blocks(v: _Validator, value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise v.wrong_type(path, value, "JSONArray")
    for i, block in enumerate(value):
        if not isinstance(block, dict):
            raise v.wrong_type(v.item(path, i), block, "JSONObject")
    return value


def _block_texts(v: _Validator, value: object, path: str) -> list[str]:
    """Texts of a Converse/Nova block list; image, tool and other blocks carry no text."""
    return [b["text"] for b in _blocks(v, value, path) if isinstance(b.get("text"), str)]


def _anthropic_texts(v: _Validator, value: object, path: str) -> list[str]:
    """Texts of Anthropic content: a string, or blocks of which only type "text" has text."""
    if isinstance(value, str):
        return [value]
    texts = []
    for i, block in enumerate(_blocks(v, value, path)):
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise v.wrong_type(v.key(v.item(path, i), "text"), text, "String")
            texts.append(text)
    return texts


_TextsOf = Callable[[_Validator, object, str], list[str]]


def _system(v: _Validator, obj: Mapping[str, Any], texts_of: _TextsOf) -> list[str]:
    system = obj.get("system")
    return [] if system is None else texts_of(v, system, v.key(v.root, "system"))


def _messages(v: _Validator, obj: Mapping[str, Any], texts_of: _TextsOf) -> tuple[list[str], int]:
    """Texts of every message and the message count."""
    path = v.key(v.root, "messages")
    messages = obj.get("messages")
    if messages is None:
        raise v.missing(v.root, "messages")
    if not isinstance(messages, list):
        raise v.wrong_type(path, messages, "JSONArray")
    if not messages:
        raise v.empty(path)
    texts: list[str] = []
    for i, msg in enumerate(messages):
        item = v.item(path, i)
        if not isinstance(msg, dict):
            raise v.wrong_type(item, msg, "JSONObject")
        for key in ("role", "content"):
            if msg.get(key) is None:
                raise v.missing(item, key)
        if msg["role"] not in _ROLES:
            raise v.bad_role(v.key(item, "role"), msg["role"])
        texts.extend(texts_of(v, msg["content"], v.key(item, "content")))
    return texts, len(messages)


@dataclass(frozen=True)
class _Fields:
    """What every body shape boils down to."""

    texts: list[str]
    n_messages: int
    max_tokens: int | None
    temperature: float | None


def _converse_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _CORAL
    texts, n = _messages(v, obj, _block_texts)
    config = _config(v, obj, "inferenceConfig")
    _unit(v, config, "inferenceConfig", "topP")
    return _Fields(
        _system(v, obj, _block_texts) + texts,
        n,
        _max_tokens(v, config, "inferenceConfig", "maxTokens"),
        _unit(v, config, "inferenceConfig", "temperature"),
    )


def _anthropic_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _SCHEMA
    for key in ("anthropic_version", "max_tokens"):
        if obj.get(key) is None:
            raise v.missing(v.root, key)
    texts, n = _messages(v, obj, _anthropic_texts)
    _unit(v, obj, v.root, "top_p")
    return _Fields(
        _system(v, obj, _anthropic_texts) + texts,
        n,
        _max_tokens(v, obj, v.root, "max_tokens"),
        _unit(v, obj, v.root, "temperature"),
    )


def _meta_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _SCHEMA
    prompt = obj.get("prompt")
    if prompt is None:
        raise v.missing(v.root, "prompt")
    if not isinstance(prompt, str):
        raise v.wrong_type("#/prompt", prompt, "String")
    _unit(v, obj, v.root, "top_p")
    return _Fields(
        [prompt],
        1,
        _max_tokens(v, obj, v.root, "max_gen_len"),
        _unit(v, obj, v.root, "temperature"),
    )


def _nova_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _SCHEMA
    texts, n = _messages(v, obj, _block_texts)
    config = _config(v, obj, "inferenceConfig")
    path = "#/inferenceConfig"
    # Nova takes its camelCase name and the older snake_case one.
    max_key = "maxTokens" if "maxTokens" in config else "max_new_tokens"
    _unit(v, config, path, "topP")
    return _Fields(
        _system(v, obj, _block_texts) + texts,
        n,
        _max_tokens(v, config, path, max_key),
        _unit(v, config, path, "temperature"),
    )


_INVOKE_FIELDS: dict[str, Callable[[Mapping[str, Any]], _Fields]] = {
    "anthropic": _anthropic_fields,
    "meta": _meta_fields,
    "nova": _nova_fields,
}
# Substrings, so that geo/global inference profiles (us., eu., global.) and ARNs match too.
_ID_MARKERS = (("anthropic.", "anthropic"), ("meta.", "meta"), ("amazon.nova", "nova"))


def _invoke_family(model_id: str, obj: Mapping[str, Any]) -> str:
    for marker, family in _ID_MARKERS:
        if marker in model_id:
            return family
    if "anthropic_version" in obj:
        return "anthropic"
    if "prompt" in obj:
        return "meta"
    if "schemaVersion" in obj or "inferenceConfig" in obj:
        return "nova"
    raise _SCHEMA.fail(
        "#",
        None,
        f"no body format is known for model {model_id!r}; send an Anthropic "
        "(anthropic_version), Meta Llama (prompt) or Amazon Nova (schemaVersion) body",
    )


def _request(
    operation: str, family: str, model_id: str, f: _Fields, *, stream: bool
) -> GenerationRequest:
    return GenerationRequest(
        operation=f"{operation}-stream" if stream else operation,
        family=family,
        model_id=model_id,
        prompt_text="\n".join(f.texts),
        n_messages=f.n_messages,
        max_tokens=f.max_tokens,
        temperature=f.temperature,
        stream=stream,
    )


def parse_converse(model_id: str, body: bytes, *, stream: bool) -> GenerationRequest:
    """Parse a Converse/ConverseStream body; raises ApiError(400, "ValidationException")."""
    fields = _converse_fields(_load_object(body))
    return _request("converse", "converse", model_id, fields, stream=stream)


def parse_invoke(model_id: str, body: bytes, *, stream: bool) -> GenerationRequest:
    """Parse an InvokeModel(WithResponseStream) body: Anthropic, Meta Llama or Amazon Nova.

    The family comes from the model id, else from the body's shape. Raises
    ApiError(400, "ValidationException") for bodies the real service rejects.
    """
    obj = _load_object(body)
    family = _invoke_family(model_id, obj)
    return _request("invoke", family, model_id, _INVOKE_FIELDS[family](obj), stream=stream)


# --- responses ---------------------------------------------------------------------------------


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
_BLOCK_STOP = event_frame("contentBlockStop", {"contentBlockIndex": 0})


class _ConverseStream(_EventStream):
    """ConverseStream: one event per ConverseStreamOutput union member."""

    def start(self) -> bytes:
        """messageStart; no contentBlockStart, which Bedrock sends only for tool use."""
        return _MESSAGE_START

    def delta(self, text: str) -> bytes:
        """A contentBlockDelta with a text delta (serialized by hand: hot path)."""
        payload = b'{"contentBlockIndex":0,"delta":{"text":' + _json_str(text) + b"}}"
        return event_frame_raw("contentBlockDelta", payload)

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
    req: GenerationRequest, count_tokens: Callable[[str], int], *, request_id: str | None = None
) -> StreamFormatter:
    """The formatter of a converse-stream or invoke-stream request.

    `count_tokens` sizes the prompt (Anthropic's message_start, Llama's first chunk) and Llama's
    running generation count. `request_id` makes the Anthropic message id (random when None).
    """
    if req.operation == "converse-stream":
        return _ConverseStream()
    if req.operation == "invoke-stream" and req.family == "anthropic":
        message_id = _message_id(request_id if request_id is not None else uuid.uuid4().hex)
        return _AnthropicStream(req.model_id, count_tokens(req.prompt_text), message_id)
    if req.operation == "invoke-stream" and req.family == "meta":
        return _MetaStream(count_tokens(req.prompt_text), count_tokens)
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
