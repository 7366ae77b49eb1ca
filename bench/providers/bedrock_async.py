"""Amazon Bedrock providers on llmcap's own async HTTP/1.1 client (``http1``), the default.

Same wire calls as boto3 (ConverseStream and InvokeModelWithResponseStream, SigV4-signed with
botocore's signer and the usual credential chain), but every stream is read by one event loop:
no thread per request and no GIL hand-offs between a chunk arriving and its time stamp. It was
chosen over boto3-in-threads by measurement (``benchmarks/harness_overhead.py``,
``docs/performance.md``); ``--client boto3`` keeps the boto3 path. Events are decoded inside the
socket's ``data_received`` (no task wake-up per read) and stamped with that read's time: with
aiohttp, the per-read reader machinery saturated the client at 500 streams and skewed TTFT.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.providers.base import Call, Endpoint, EndpointError, open_result, settle
from bench.providers.bedrock import _invoke_text, invoke_body
from bench.providers.eventstream import EventStreamDecoder
from bench.providers.http1 import (
    Client,
    ErrorAwareReader,
    PooledEndpoint,
    Started,
    Written,
    finish,
)
from bench.records import RawResult

LOCAL_CREDENTIALS = Credentials("llmcap-local", "llmcap-local")
SIGNATURE_REUSE_S = 60


class _Cancelled(Exception):
    """``call.cancel`` was set while the stream was being read."""


class BedrockAsyncProvider(PooledEndpoint):
    """``bedrock-converse`` or ``bedrock-invoke`` over ``bench.providers.http1``."""

    def __init__(self, endpoint: Endpoint, *, api: str, pool_size: int) -> None:
        if api not in ("converse", "invoke"):
            raise ValueError(f"unknown Bedrock api {api!r}")
        if api == "invoke":
            invoke_body(endpoint.model_id, "", 1, 0.0)  # fail fast on an unsupported model
        self.name = f"bedrock-{api}"
        self.api = api
        self.endpoint = endpoint
        session = boto3.session.Session(profile_name=endpoint.aws_profile)
        self.region = endpoint.region or session.region_name or "us-east-1"
        creds = session.get_credentials()
        if creds is None:
            if not endpoint.endpoint_url:
                raise EndpointError(
                    "no AWS credentials found: set AWS_PROFILE (or pass --aws-profile), or the "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables"
                )
            creds = LOCAL_CREDENTIALS  # a local endpoint (the emulator) ignores signatures
        self._creds = creds
        self.base_url = (
            endpoint.endpoint_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        ).rstrip("/")
        op = "converse-stream" if api == "converse" else "invoke-with-response-stream"
        self.path = f"/model/{quote(endpoint.model_id, safe='')}/{op}"
        self._pool_size = pool_size
        self._url = self.base_url + self.path
        self._http: Client | None = None
        self._sign_cache: dict[bytes, tuple[int, dict[str, str]]] = {}
        self._body_cache: dict[tuple[str, int, float], bytes] = {}

    def prepare(self, call: Call) -> None:
        """Serialise and sign ``call``'s body now (both cached), ahead of its scheduled send."""
        self._signed(self._body(call))

    def _signed(self, body: bytes) -> dict[str, str]:
        """SigV4 headers for ``body``, reused for ``SIGNATURE_REUSE_S``: a batch of N identical
        requests is signed once (a 6,000-token body costs ~0.2 ms to sign: N of them would delay
        the last request of a batch), and ``prepare`` can sign ahead of a batch's instant. AWS
        accepts a request time up to 5 minutes off."""
        now = int(time.time())
        cached = self._sign_cache.get(body)
        if cached is not None and now - cached[0] < SIGNATURE_REUSE_S:
            return cached[1]
        request = AWSRequest(
            method="POST",
            url=self.base_url + self.path,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        SigV4Auth(self._creds.get_frozen_credentials(), "bedrock", self.region).add_auth(request)
        headers = dict(request.headers.items())
        if len(self._sign_cache) > 64:
            self._sign_cache.clear()
        self._sign_cache[body] = (now, headers)
        return headers

    def _body(self, call: Call) -> bytes:
        key = (call.prompt.text, call.max_tokens, call.temperature)
        body = self._body_cache.get(key)
        if body is None:
            if len(self._body_cache) > 256:
                self._body_cache.clear()
            body = self._body_cache[key] = self._make_body(call)
        return body

    def _make_body(self, call: Call) -> bytes:
        if self.api == "converse":
            obj: dict[str, Any] = {
                "messages": [{"role": "user", "content": [{"text": call.prompt.text}]}],
                "inferenceConfig": {"maxTokens": call.max_tokens, "temperature": call.temperature},
            }
        else:
            obj = invoke_body(
                self.endpoint.model_id, call.prompt.text, call.max_tokens, call.temperature
            )
        return json.dumps(obj).encode()

    async def send(self, call: Call) -> RawResult:
        """Stream one request; failures become the result's status."""
        return await self.begin(call)

    def _parts(self, call: Call) -> tuple[dict[str, str], bytes]:
        body = self._body(call)
        return self._signed(body), body  # signed before the send stamp: not the endpoint's time

    def _begun(
        self, call: Call, headers: dict[str, str], body: bytes, written: Written
    ) -> Awaitable[RawResult]:
        raw = open_result(call, written[1] if isinstance(written, tuple) else None)
        reader = _StreamReader(self, raw, call)
        work = self._finish(raw, body, headers, reader, self.started(written, reader))
        return settle(call, raw, work, cancelled=(asyncio.CancelledError, _Cancelled))

    async def _finish(
        self,
        raw: RawResult,
        body: bytes,
        headers: dict[str, str],
        reader: _StreamReader,
        started: Started | Exception | None,
    ) -> None:
        try:
            if isinstance(started, Exception):
                raise started
            if started is None:  # no idle connection: open one (or wait for one)
                resp = await self._client().post(
                    self._url, headers, body, reader.on_body, reader.on_head
                )
            else:
                resp = await finish(started)
        except (ConnectionError, TimeoutError):
            if reader.ended:  # the stream had already failed: that error is the result
                return
            raise
        if resp.status != 200:
            error_type = resp.headers.get("x-amzn-errortype")
            _http_error(raw, resp.status, error_type, bytes(reader.error_body or b""))

    def _on_event(self, raw: RawResult, event_type: str, payload: bytes) -> bool:
        """Read one event; True when it carried output text."""
        if event_type == "contentBlockDelta":
            # Hot path: Bedrock's JSON is compact, so a text delta can be told without parsing.
            if b'"text":"' in payload:
                return b'"text":""' not in payload
            return bool(json.loads(payload).get("delta", {}).get("text"))
        if event_type == "metadata":
            meta = json.loads(payload)
            usage = meta.get("usage", {})
            raw.input_tokens = usage.get("inputTokens")
            raw.output_tokens = usage.get("outputTokens")
            raw.server_latency_ms = meta.get("metrics", {}).get("latencyMs")
            return False
        if event_type == "chunk":
            chunk = json.loads(base64.b64decode(json.loads(payload)["bytes"]))
            metrics = chunk.get("amazon-bedrock-invocationMetrics")
            if metrics:
                raw.input_tokens = metrics.get("inputTokenCount")
                raw.output_tokens = metrics.get("outputTokenCount")
                raw.server_latency_ms = metrics.get("invocationLatency")
            return bool(_invoke_text(chunk))
        return False


def _http_error(raw: RawResult, status: int, error_type: str | None, body: bytes) -> None:
    # botocore's rule: the code is x-amzn-ErrorType up to ':' (after '#'), else the body's.
    try:
        obj = json.loads(body)
    except ValueError:
        obj = {}
    code = (error_type or "").split(":")[0].split("#")[-1]
    if not code and isinstance(obj, dict):
        code = str(obj.get("__type") or obj.get("code") or "").split("#")[-1]
    raw.error_code = code or f"HTTP{status}"
    message = obj.get("message") or obj.get("Message") if isinstance(obj, dict) else None
    raw.error_message = str(message or body[:200].decode("utf-8", "replace"))
    throttled = status == 429 or raw.error_code.lower().startswith("throttling")
    raw.status = "throttled" if throttled else "error"


def _stream_error(raw: RawResult, head: dict[str, str], payload: bytes) -> None:
    """A mid-stream exception or error message (boto3 would raise EventStreamError)."""
    if head.get(":message-type") == "exception":
        code = head.get(":exception-type", "exception")
        try:
            message = str(json.loads(payload).get("message", ""))
        except ValueError:
            message = payload[:200].decode("utf-8", "replace")
    else:
        code = head.get(":error-code", "error")
        message = head.get(":error-message", "")
    raw.error_code, raw.error_message = code, message
    raw.status = "throttled" if code.lower().startswith("throttling") else "error"


class _StreamReader(ErrorAwareReader):
    """One response, read synchronously as its bytes arrive (``http1``'s callbacks): events are
    decoded in the ``data_received`` call that carried them and stamped with its ``now``."""

    request_id_header = "x-amzn-requestid"

    __slots__ = ("call", "decoder", "ended", "error_body", "on_event", "raw")

    def __init__(self, provider: BedrockAsyncProvider, raw: RawResult, call: Call) -> None:
        self.raw = raw
        self.call = call
        self.on_event = provider._on_event
        self.decoder = EventStreamDecoder()
        self.ended = False  # a stream error was read: ignore what follows it
        self.error_body: bytearray | None = None

    def on_body(self, data: bytes, now: float) -> None:
        """Decode what ``data`` completed; stamp the events that carried text with ``now``."""
        if self.error_body is not None:
            self.error_body += data
            return
        if self.ended:
            return
        raw = self.raw
        for head, payload in self.decoder.feed(data):
            if head.get(":message-type") != "event":
                _stream_error(raw, head, payload)
                self.ended = True  # the rest of the response is drained, keeping the connection
                return
            if self.on_event(raw, head.get(":event-type", ""), payload):
                raw.text_at(now)
        if self.call.cancel.is_set():
            raise _Cancelled
