"""The provider contract: build a request, stream it, stamp each chunk, map failures. No metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.prompts import Prompt
from bench.records import RawResult


class EndpointError(ValueError):
    """An endpoint setting no client can use (URL, provider, client, model for the body); the
    message names the option and the fix."""


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
    # "async": llmcap's lean HTTP/1.1 client on one event loop (the default for every provider);
    # "boto3" (Bedrock, threads) or "httpx" (openai) for the general-purpose clients.
    client: str = "async"


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


def open_result(call: Call, start_pc: float | None = None) -> RawResult:
    """Stamp the send (call this right before the request is written, or pass the stamp taken
    then) and count it in flight."""
    raw = RawResult(start_pc=time.perf_counter() if start_pc is None else start_pc)
    if call.on_start is not None:
        raw.active_at_start = call.on_start()
    return raw


def begin_each(provider: Provider, calls: Sequence[Call]) -> list[Awaitable[RawResult]]:
    """``Provider.begin_batch`` for a provider whose requests leave from their own task or
    thread: ``begin`` one after another."""
    return [provider.begin(call) for call in calls]


async def settle(
    call: Call,
    raw: RawResult,
    work: Awaitable[None],
    *,
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,),
    cancelled: tuple[type[BaseException], ...] = (asyncio.CancelledError,),
) -> RawResult:
    """Await the rest of a request whose send ``open_result`` stamped: turn every failure into
    a status, stamp the end. Ctrl-C reaches it through ``call.closer`` (which cancels this
    task)."""
    task = asyncio.current_task()
    if task is not None:

        def close() -> None:
            task.cancel()

        call.closer = close
    try:
        await work
    except cancelled:
        raw.fail("cancelled")
    except timeouts as exc:
        raw.fail("timeout", exc)
    except Exception as exc:
        raw.fail("error", exc)
    finally:
        raw.end_pc = time.perf_counter()
        if call.on_end is not None:
            call.on_end()
    raw.settle_usage()
    return raw


async def measured(
    call: Call,
    stream: Callable[[RawResult], Awaitable[None]],
    *,
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,),
    cancelled: tuple[type[BaseException], ...] = (asyncio.CancelledError,),
) -> RawResult:
    """Run one streamed request on the event loop: stamp the send, let ``stream`` fill the
    result, turn every failure into a status, stamp the end."""
    raw = open_result(call)
    return await settle(call, raw, stream(raw), timeouts=timeouts, cancelled=cancelled)


class Provider(Protocol):
    """Sends one streamed request and reports what it observed."""

    name: str

    async def send(self, call: Call) -> RawResult:
        """Send ``call``; never raises for request failures (they become the result's status)."""
        ...

    def begin(self, call: Call) -> Awaitable[RawResult]:
        """Start ``call``: a lean client writes the request before returning (so a batch leaves
        in one pass of the loop); awaiting the result reads the response, like ``send``."""
        ...

    def begin_batch(self, calls: Sequence[Call]) -> list[Awaitable[RawResult]]:
        """``begin`` each of ``calls``; a lean client writes them all back to back first and
        sets up the response reading after the last write (``begin_each`` otherwise)."""
        ...

    async def preconnect(self, n: int) -> int:
        """Open up to ``n`` connections (TCP and TLS) without sending a request, so the first
        requests of a level are not also timing a handshake; returns how many are open (0 for a
        client that opens connections only on demand)."""
        ...

    def prepare(self, call: Call) -> None:
        """Do the per-request work that precedes the send stamp (serialise, sign) ahead of time,
        so a large batch leaves on schedule; a no-op where there is nothing to cache."""
        ...

    async def aclose(self) -> None:
        """Release clients, pools and threads."""
        ...
