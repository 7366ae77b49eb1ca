"""The OpenAI Responses API (``POST /v1/responses``), as bedrock-mantle serves it: the request
fields the emulator needs, the ``response`` object, and its server-sent event stream.

A request takes ``model``, ``input`` (a string, or a list of messages whose ``content`` is a
string or parts of type ``input_text``/``text``), ``instructions``, ``max_output_tokens``,
``temperature``, ``stream`` and ``service_tier``; other fields are accepted and ignored. A
streamed response is a sequence of ``event: <type>`` / ``data: <json>`` pairs, each with a
``sequence_number``: ``response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, one
``response.output_text.delta`` per chunk, then ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done`` and ``response.completed``
(``response.incomplete`` when ``max_output_tokens`` cut it); a mid-stream failure is an
``error`` event.
"""

from __future__ import annotations

import json
from typing import Any

from emulator.api import ApiError, Completion, GenerationRequest, StreamFormatter
from emulator.openai_wire import (
    SSE_CONTENT_TYPE,
    content_texts,
    load_object,
    max_tokens,
    model_of,
    service_tier,
    temperature,
)

__all__ = ["full_response", "parse_responses", "stream_formatter"]


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _input_texts(value: object) -> tuple[list[str], int]:
    """The texts of ``input`` and how many messages it holds."""
    if isinstance(value, str):
        return [value], 1
    if not isinstance(value, list):
        raise _invalid("Invalid type for 'input': expected a string or an array of input items.")
    texts: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _invalid(f"Invalid type for 'input[{i}]': expected an object.")
        content = item.get("content")
        if isinstance(content, list):  # Responses parts are "input_text"; Chat's are "text"
            content = [
                {**part, "type": "text"}
                if isinstance(part, dict) and part.get("type") in ("input_text", "output_text")
                else part
                for part in content
            ]
        texts.extend(content_texts(content, f"input[{i}].content"))
    return texts, len(value)


def parse_responses(body: bytes) -> GenerationRequest:
    """Parse a /v1/responses body; raises ApiError(400, "invalid_request_error")."""
    obj = load_object(body)
    model = model_of(obj)
    if obj.get("input") is None:
        raise _invalid("Missing required parameter: 'input'.")
    texts, n = _input_texts(obj["input"])
    instructions = obj.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _invalid("Invalid type for 'instructions': expected a string.")
        texts.insert(0, instructions)
    stream = obj.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("Invalid type for 'stream': expected a boolean.")
    return GenerationRequest(
        operation="responses",
        family="openai-responses",
        model_id=model,
        prompt_text="\n".join(texts),
        n_messages=n,
        max_tokens=max_tokens(obj, ("max_output_tokens",)),
        temperature=temperature(obj),
        stream=bool(stream),
        service_tier=service_tier(obj),
    )


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _response(
    req: GenerationRequest, request_id: str, created_s: int, text: str | None,
    done: Completion | None,
) -> dict[str, Any]:  # fmt: skip
    """The ``response`` object: in progress (``done`` None) or finished."""
    cut = done is not None and done.stop_reason == "max_tokens"
    status = "in_progress" if done is None else "incomplete" if cut else "completed"
    output: list[dict[str, Any]] = []
    if text is not None:
        part = {"type": "output_text", "text": text, "annotations": []}
        output.append({"type": "message", "id": f"msg_{request_id}", "status": "completed",
                       "role": "assistant", "content": [part]})  # fmt: skip
    usage = None
    if done is not None:
        usage = {
            "input_tokens": done.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": done.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": done.input_tokens + done.output_tokens,
        }
    return {
        "id": f"resp_{request_id}", "object": "response", "created_at": created_s,
        "status": status, "model": req.model_id, "output": output, "usage": usage,
        "service_tier": req.service_tier, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "max_output_tokens": req.max_tokens, "temperature": req.temperature,
    }  # fmt: skip


def full_response(req: GenerationRequest, text: str, done: Completion) -> bytes:
    """The JSON body of a non-streamed response."""
    return _dumps(_response(req, done.request_id, done.created_s, text, done)).encode()


class _ResponseStream:
    """Server-sent events of one streamed response (module docstring)."""

    content_type: str = SSE_CONTENT_TYPE

    def __init__(self, req: GenerationRequest, request_id: str, created_s: int) -> None:
        self._req, self._id, self._created = req, request_id, created_s
        self._seq = 0
        self._started: bytes | None = None
        self._texts: list[str] = []
        self._item = f"msg_{request_id}"
        # Deltas are the hot path: everything around the text and the number is rendered once.
        self._delta_head = (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            f'"item_id":"{self._item}","output_index":0,"content_index":0,"delta":'
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return f"event: {kind}\ndata: {_dumps(body)}\n\n".encode()

    def start(self) -> bytes:
        """``response.created``, ``response.in_progress`` and the empty message and part (the
        same bytes on every call: the server asks twice)."""
        if self._started is None:
            self._started = self._opening()
        return self._started

    def _opening(self) -> bytes:
        response = _response(self._req, self._id, self._created, None, None)
        item = {"type": "message", "id": self._item, "status": "in_progress",
                "role": "assistant", "content": []}  # fmt: skip
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": self._item, "output_index": 0, "content_index": 0}
        return (
            self._event("response.created", response=response)
            + self._event("response.in_progress", response=response)
            + self._event("response.output_item.added", output_index=0, item=item)
            + self._event("response.content_part.added", **where, part=part)
        )

    def delta(self, text: str) -> bytes:
        """One ``response.output_text.delta`` event carrying ``text``."""
        self._texts.append(text)
        seq = self._seq
        self._seq += 1
        return f'{self._delta_head}{json.dumps(text)},"sequence_number":{seq}}}\n\n'.encode()

    def finish(self, done: Completion) -> bytes:
        """The ``done`` events and ``response.completed`` (or ``response.incomplete``)."""
        text = "".join(self._texts)
        part = {"type": "output_text", "text": text, "annotations": []}
        where = {"item_id": self._item, "output_index": 0, "content_index": 0}
        item = {"type": "message", "id": self._item, "status": "completed",
                "role": "assistant", "content": [part]}  # fmt: skip
        response = _response(self._req, self._id, self._created, text, done)
        last = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return (
            self._event("response.output_text.done", **where, text=text)
            + self._event("response.content_part.done", **where, part=part)
            + self._event("response.output_item.done", output_index=0, item=item)
            + self._event(last, response=response)
        )

    def error(self, code: str, message: str) -> bytes:
        """An ``error`` event (the HTTP status is already 200 once a stream started)."""
        return self._event("error", code=code, message=message, param=None)


def stream_formatter(req: GenerationRequest, request_id: str, created_s: int) -> StreamFormatter:
    """The SSE formatter of a streamed response."""
    return _ResponseStream(req, request_id, created_s)
