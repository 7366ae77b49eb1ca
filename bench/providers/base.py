"""The provider contract: build a request, stream it, stamp each chunk, map failures. No metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bench.prompts import Prompt
from bench.records import RawResult

PROVIDERS = ("bedrock-converse", "bedrock-invoke", "openai")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach the endpoint. Credentials are never stored here: boto3 reads
    them from the usual AWS chain, the OpenAI provider from the environment variable named by
    ``api_key_env``."""

    provider: str = "bedrock-converse"
    model_id: str = "us.meta.llama3-3-70b-instruct-v1:0"
    endpoint_url: str | None = None
    region: str | None = None
    aws_profile: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    client: str = "async"  # Bedrock only: "async" (http1, one event loop) or "boto3" (threads)


@dataclass
class Call:
    """One request in flight: what to send, and the hooks the runner uses to watch and stop it."""

    prompt: Prompt
    max_tokens: int
    temperature: float
    cancel: threading.Event = field(default_factory=threading.Event)
    on_start: Callable[[], int] | None = None  # returns the in-flight count including this one
    on_end: Callable[[], None] | None = None
    closer: Callable[[], None] | None = None  # set by the provider: aborts the stream


class Provider(Protocol):
    """Sends one streamed request and reports what it observed."""

    name: str

    async def send(self, call: Call) -> RawResult:
        """Send ``call``; never raises for request failures (they become the result's status)."""
        ...

    async def aclose(self) -> None:
        """Release clients, pools and threads."""
        ...
