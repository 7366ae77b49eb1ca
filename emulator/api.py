"""Shared types between the emulator's HTTP server and its wire-format modules.

The wire modules (`bedrock_parse`, `openai_wire`) turn request bodies into a protocol-neutral
`GenerationRequest` and turn a finished `Completion` (or a stream of text deltas) back into the
bytes a real client expects. The server never looks inside a body itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["SERVICE_TIERS", "ApiError", "Completion", "GenerationRequest", "StreamFormatter"]

SERVICE_TIERS = ("priority", "default", "flex", "reserved")
"""The ``service_tier`` values Bedrock takes (Converse ``serviceTier.type``, InvokeModel's
``X-Amzn-Bedrock-Service-Tier`` header, the OpenAI-compatible ``service_tier`` field)."""


class ApiError(Exception):
    """An error returned before any stream starts.

    `error_type` is the protocol's own name for the error (e.g. Bedrock's
    ``ValidationException`` or OpenAI's ``invalid_request_error``); the wire modules render it.
    """

    def __init__(self, status: int, error_type: str, message: str) -> None:
        """Record the HTTP status, the protocol error type and the client-facing message."""
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class GenerationRequest:
    """A parsed generation request, independent of the protocol it arrived in."""

    operation: str
    """One of "converse", "converse-stream", "invoke", "invoke-stream", "chat", "completions",
    "responses"."""
    family: str
    """One of "converse", "anthropic", "meta", "nova", "openai-chat", "openai-completions",
    "openai-responses"."""
    model_id: str
    prompt_text: str
    """All input text (system + every message text) joined with "\\n", for token counting."""
    n_messages: int
    max_tokens: int | None
    """None when the request did not set it (quota admission then reserves the model maximum)."""
    temperature: float | None
    stream: bool
    include_usage: bool = False
    """OpenAI ``stream_options.include_usage``: send a final usage chunk."""
    service_tier: str = "default"
    """The tier the request asked for: reserved, priority, default (Standard) or flex."""


@dataclass(frozen=True)
class Completion:
    """The outcome of a finished generation, as reported to the client."""

    request_id: str
    model_id: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    """Canonical: "max_tokens" or "end_turn"; each wire module maps it to its own vocabulary."""
    latency_ms: int
    first_byte_latency_ms: int
    created_s: int
    """Unix seconds, for OpenAI's "created" field."""


class StreamFormatter(Protocol):
    """Renders one streamed response in a protocol's wire format."""

    content_type: str
    """The HTTP Content-Type of the streamed body."""

    def start(self) -> bytes:
        """Bytes to send when the stream opens (may be b"")."""
        ...

    def delta(self, text: str) -> bytes:
        """One streamed event carrying `text`."""
        ...

    def finish(self, done: Completion) -> bytes:
        """The closing events (stop reason plus usage/metrics)."""
        ...

    def error(self, code: str, message: str) -> bytes:
        """A mid-stream error event."""
        ...
