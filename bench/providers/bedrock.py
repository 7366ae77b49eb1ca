"""Amazon Bedrock providers over boto3: ``bedrock-converse`` (ConverseStream, the default) and
``bedrock-invoke`` (InvokeModelWithResponseStream with Anthropic, Meta Llama or Amazon Nova
bodies).

boto3 is blocking, so each request runs in a thread of a pool sized to the sweep. The thread
stamps ``time.perf_counter()`` itself the moment each event is parsed — no hop through the
event loop sits between the bytes arriving and the stamp. Retries are off while measuring.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EventStreamError,
    ReadTimeoutError,
)
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeout

from bench.providers.base import Call, Endpoint, EndpointError, begin_each
from bench.records import RawResult

LLAMA_TEMPLATE = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError, Urllib3ReadTimeout, socket.timeout, TimeoutError)


def bedrock_client(endpoint: Endpoint, pool_size: int) -> Any:
    """A bedrock-runtime client configured for measurement.

    Retries off (``total_max_attempts=1``: botocore's ``max_attempts`` counts retries), a pool
    at least as large as the concurrency, explicit timeouts. Region and credentials come from
    the arguments or the usual AWS chain; against a local endpoint without credentials, dummy
    ones are used (the emulator ignores signatures).
    """
    session = boto3.session.Session(profile_name=endpoint.aws_profile)
    region = endpoint.region or session.region_name or "us-east-1"
    config = Config(
        retries={"total_max_attempts": 1},
        max_pool_connections=pool_size,
        connect_timeout=endpoint.connect_timeout_s,
        read_timeout=endpoint.read_timeout_s,
        tcp_keepalive=True,
    )
    kwargs: dict[str, Any] = {}
    if endpoint.endpoint_url and session.get_credentials() is None:
        kwargs = {"aws_access_key_id": "llmcap-local", "aws_secret_access_key": "llmcap-local"}
    return session.client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url=endpoint.endpoint_url,
        config=config,
        **kwargs,
    )


def invoke_body(model_id: str, prompt: str, max_tokens: int, temperature: float) -> dict[str, Any]:
    """The model-native InvokeModel body for Anthropic, Meta Llama or Amazon Nova models."""
    if "anthropic." in model_id:
        return {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
    if "meta." in model_id:
        return {
            "prompt": LLAMA_TEMPLATE.format(prompt=prompt),
            "max_gen_len": max_tokens,
            "temperature": temperature,
        }
    if "amazon.nova" in model_id:
        return {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
        }
    raise EndpointError(
        f"bedrock-invoke has no request body for model {model_id!r}; "
        "use an Anthropic, Meta Llama or Amazon Nova model, or --provider bedrock-converse"
    )


def _invoke_text(chunk: dict[str, Any]) -> str:
    if chunk.get("type") == "content_block_delta":  # Anthropic
        return str(chunk.get("delta", {}).get("text") or "")
    if "generation" in chunk:  # Meta Llama
        return str(chunk.get("generation") or "")
    if "contentBlockDelta" in chunk:  # Amazon Nova
        return str(chunk["contentBlockDelta"].get("delta", {}).get("text") or "")
    return ""


def classify(exc: BaseException, cancelled: bool) -> tuple[str, str, str]:
    """Map an exception to (status, error_code, message)."""
    if cancelled:
        return "cancelled", "Cancelled", "cancelled by the user"
    if isinstance(exc, ClientError):  # includes EventStreamError (mid-stream exceptions)
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or type(exc).__name__)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        throttled = code.lower().startswith("throttling") or (
            status == 429 and not isinstance(exc, EventStreamError)
        )
        return ("throttled" if throttled else "error"), code, str(err.get("Message") or exc)
    if isinstance(exc, TIMEOUTS):
        return "timeout", type(exc).__name__, str(exc)
    return "error", type(exc).__name__, str(exc)


class BedrockProvider:
    """``bedrock-converse`` or ``bedrock-invoke`` against a Bedrock runtime endpoint."""

    def __init__(self, endpoint: Endpoint, *, api: str, pool_size: int) -> None:
        if api not in ("converse", "invoke"):
            raise ValueError(f"unknown Bedrock api {api!r}")
        self.name = f"bedrock-{api}"
        self.endpoint = endpoint
        self.api = api
        if api == "invoke":
            invoke_body(endpoint.model_id, "", 1, 0.0)  # fail fast on an unsupported model
        self.client = bedrock_client(endpoint, pool_size)
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="llmcap-bedrock")

    async def send(self, call: Call) -> RawResult:
        """Run the blocking stream in the pool; the thread does all the stamping."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, call)

    async def preconnect(self, n: int) -> int:
        """Nothing is pre-opened: boto3 opens connections on demand (``--warmup`` does it)."""
        return 0

    def prepare(self, call: Call) -> None:
        """Nothing to do ahead of the send."""

    def begin(self, call: Call) -> Awaitable[RawResult]:
        """The request is sent when the returned coroutine first runs (in its task)."""
        return self.send(call)

    def begin_batch(self, calls: Sequence[Call]) -> list[Awaitable[RawResult]]:
        """``begin`` each (its request leaves from its own task)."""
        return begin_each(self, calls)

    async def aclose(self) -> None:
        """Stop the threads (in-flight calls were cancelled by the runner)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, call: Call) -> RawResult:
        raw = RawResult(start_pc=time.perf_counter())
        if call.on_start is not None:
            raw.active_at_start = call.on_start()
        try:
            if call.cancel.is_set():
                raise InterruptedError("cancelled before sending")
            if self.api == "converse":
                self._converse(call, raw)
            else:
                self._invoke(call, raw)
            if call.cancel.is_set():
                raw.status, raw.error_code, raw.error_message = classify(InterruptedError(), True)
        except Exception as exc:
            raw.status, raw.error_code, raw.error_message = classify(exc, call.cancel.is_set())
        finally:
            raw.end_pc = time.perf_counter()
            if call.on_end is not None:
                call.on_end()
        raw.settle_usage()
        return raw

    def _converse(self, call: Call, raw: RawResult) -> None:
        resp = self.client.converse_stream(
            modelId=self.endpoint.model_id,
            messages=[{"role": "user", "content": [{"text": call.prompt.text}]}],
            inferenceConfig={"maxTokens": call.max_tokens, "temperature": call.temperature},
        )
        raw.server_request_id = resp["ResponseMetadata"].get("RequestId")
        stream = resp["stream"]
        call.closer = stream.close
        for event in stream:
            now = time.perf_counter()
            delta = event.get("contentBlockDelta")
            if delta is not None and delta.get("delta", {}).get("text"):
                raw.text_at(now)
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
                raw.input_tokens = usage.get("inputTokens")
                raw.output_tokens = usage.get("outputTokens")
                raw.server_latency_ms = event["metadata"].get("metrics", {}).get("latencyMs")
            if call.cancel.is_set():
                stream.close()
                break

    def _invoke(self, call: Call, raw: RawResult) -> None:
        body = invoke_body(
            self.endpoint.model_id, call.prompt.text, call.max_tokens, call.temperature
        )
        resp = self.client.invoke_model_with_response_stream(
            modelId=self.endpoint.model_id, body=json.dumps(body)
        )
        raw.server_request_id = resp["ResponseMetadata"].get("RequestId")
        stream = resp["body"]
        call.closer = stream.close
        for event in stream:
            now = time.perf_counter()
            if "chunk" not in event:
                continue
            chunk = json.loads(event["chunk"]["bytes"])
            if _invoke_text(chunk):
                raw.text_at(now)
            metrics = chunk.get("amazon-bedrock-invocationMetrics")
            if metrics:
                raw.input_tokens = metrics.get("inputTokenCount")
                raw.output_tokens = metrics.get("outputTokenCount")
                raw.server_latency_ms = metrics.get("invocationLatency")
            if call.cancel.is_set():
                stream.close()
                break
