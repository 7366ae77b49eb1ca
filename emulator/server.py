"""HTTP/1.1 front of the emulator (aiohttp): Bedrock runtime and OpenAI-compatible routes, and
on ``POST /`` the control plane: Service Quotas (``emulator/servicequotas.py``) and CloudWatch
GetMetricData (``emulator/cloudwatch.py``).

Streams use chunked transfer encoding with one HTTP chunk per write, so a client's time to first
token is real. Every Bedrock response carries ``x-amzn-RequestId``; every OpenAI one
``x-request-id``. The same ids appear in the truth log.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import unquote

from aiohttp import web

from emulator import bedrock_parse, bedrock_wire, openai_responses, openai_wire
from emulator.api import ApiError, Completion, GenerationRequest, StreamFormatter
from emulator.cloudwatch import (
    TARGET_PREFIX as CLOUDWATCH_TARGET,
    CloudWatch,
    CloudWatchError,
    xml_error,
)
from emulator.service import EmulatorService, Job, Throttled
from emulator.servicequotas import ServiceQuotas, ServiceQuotasError, region_of
from emulator.tokens import count_tokens

SERVICE_KEY = web.AppKey("service", EmulatorService)
LAG_TASK_KEY = web.AppKey("lag_task", asyncio.Task[None])
QUOTAS_KEY = web.AppKey("service_quotas", ServiceQuotas)
CLOUDWATCH_KEY = web.AppKey("cloudwatch", CloudWatch)
BEDROCK_OPS = {
    "converse": ("converse", False),
    "converse-stream": ("converse", True),
    "invoke": ("invoke", False),
    "invoke-with-response-stream": ("invoke", True),
}
Parse = Callable[[bytes], GenerationRequest]
Full = Callable[[GenerationRequest, str, Completion], bytes]
Formatter = Callable[[GenerationRequest, str, int], StreamFormatter]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MANTLE_ONLY = (
    "This is a bedrock-mantle endpoint: it serves the OpenAI-compatible APIs (/v1/responses, "
    "/v1/chat/completions); InvokeModel and Converse are bedrock-runtime's."
)


def create_app(service: EmulatorService) -> web.Application:
    """The aiohttp application serving ``service``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SERVICE_KEY] = service
    app[QUOTAS_KEY] = ServiceQuotas(service.profile)
    app[CLOUDWATCH_KEY] = CloudWatch(service.metrics)
    app.router.add_post("/", _control_plane)  # the operation is in X-Amz-Target or the form
    app.router.add_post("/model/{tail:.+}", _bedrock)
    app.router.add_post("/v1/chat/completions", _openai(openai_wire.parse_chat))
    app.router.add_post("/v1/completions", _openai(openai_wire.parse_completions))
    app.router.add_post(
        "/v1/responses",
        _openai(
            openai_responses.parse_responses,
            openai_responses.full_response,
            openai_responses.stream_formatter,
        ),
    )
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/emulator/stats", _stats)
    app.router.add_post("/emulator/stats/reset", _stats_reset)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    service = app[SERVICE_KEY]
    service.attach(asyncio.get_running_loop())
    app[LAG_TASK_KEY] = asyncio.get_running_loop().create_task(service.monitor_loop_lag())


async def _on_cleanup(app: web.Application) -> None:
    app[LAG_TASK_KEY].cancel()
    app[SERVICE_KEY].close()


def arrival_s(request: web.Request) -> float:
    """When the request's bytes reached this process (``time.monotonic()``), stamped by the
    connection protocol; the handler's own start time where that stamp is unavailable."""
    stamp = getattr(request.protocol, "arrival_s", None)
    return float(stamp) if stamp is not None else time.monotonic()


# -- Bedrock runtime ---------------------------------------------------------------------------
async def _bedrock(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    request_id = str(uuid.uuid4())
    received = arrival_s(request)
    # The model id is percent-encoded in the path ("...v1%3A0"): split the raw path, then decode.
    parts = request.rel_url.raw_path.split("/")
    req: GenerationRequest | None = None
    try:
        if len(parts) != 4 or parts[3] not in BEDROCK_OPS:
            raise ApiError(404, "UnknownOperationException", "Unknown operation.")
        if service.profile.quotas.endpoint == "mantle":
            raise ApiError(404, "UnknownOperationException", MANTLE_ONLY)
        model_id = unquote(parts[2])
        kind, stream = BEDROCK_OPS[parts[3]]
        body = await request.read()
        if kind == "converse":
            req = bedrock_parse.parse_converse(model_id, body, stream=stream)
        else:
            tier = request.headers.get("X-Amzn-Bedrock-Service-Tier")
            req = bedrock_parse.parse_invoke(model_id, body, stream=stream, service_tier=tier)
        job = service.admit(req, received)
    except ApiError as err:
        service.log_truth(request_id, req, received, f"http_{err.status}")
        return _bedrock_error(err, request_id)
    except Throttled as exc:
        assert req is not None
        service.log_truth(request_id, req, received, "throttled")
        if not exc.mid_stream or not req.stream:
            return _bedrock_error(ApiError(429, "ThrottlingException", exc.message), request_id)
        fmt = bedrock_wire.stream_formatter(req, count_tokens, request_id=request_id)
        return await _refuse_mid_stream(request, fmt, request_id, exc.message)
    if not req.stream:
        return await _bedrock_full(request, service, job)
    job.formatter = bedrock_wire.stream_formatter(
        req, count_tokens, request_id=job.request_id, input_tokens=job.seq.input_tokens
    )
    headers = {"x-amzn-RequestId": job.request_id, **bedrock_wire.extra_headers(req)}
    return await _stream(request, service, job, headers, "modelStreamErrorException")


def _bedrock_error(err: ApiError, request_id: str) -> web.Response:
    status, headers, body = bedrock_wire.error_response(err, request_id)
    return web.Response(status=status, headers=headers, body=body)


async def _bedrock_full(request: web.Request, service: EmulatorService, job: Job) -> web.Response:
    try:
        await _wait_done(job)
        if job.failure == "drop":
            return _drop(request)
        if job.failure == "error":
            err = ApiError(424, "ModelErrorException", "The model failed to complete the request.")
            return _bedrock_error(err, job.request_id)
        done = job.completion()
        text = "".join(job.pieces[: job.sent_tokens])
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": job.request_id,
            **bedrock_wire.full_response_headers(job.req, done),
        }
        return web.Response(headers=headers, body=bedrock_wire.full_response(job.req, text, done))
    finally:
        service.release(job)


# -- control plane: Service Quotas and CloudWatch -----------------------------------------------
async def _control_plane(request: web.Request) -> web.Response:
    """``POST /``: CloudWatch (JSON 1.0 by target, or the query protocol's form) or Service
    Quotas (JSON 1.1, every other target)."""
    if request.headers.get("X-Amz-Target", "").startswith(CLOUDWATCH_TARGET):
        return await _cloudwatch_json(request)
    if request.content_type == "application/x-www-form-urlencoded":
        return await _cloudwatch_query(request)
    return await _service_quotas(request)


async def _cloudwatch_json(request: web.Request) -> web.Response:
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
    try:
        body = json.loads(await request.read() or b"{}")
        if not isinstance(body, dict):
            raise CloudWatchError("SerializationException", "The body must be a JSON object.")
        target = request.headers["X-Amz-Target"]
        result = request.app[CLOUDWATCH_KEY].handle_json(target, body)
    except json.JSONDecodeError:
        err = CloudWatchError("SerializationException", "The body is not valid JSON.")
        return _cw_json_error(err, headers)
    except CloudWatchError as err:
        return _cw_json_error(err, headers)
    return web.Response(headers=headers, body=json.dumps(result).encode())


def _cw_json_error(err: CloudWatchError, headers: dict[str, str]) -> web.Response:
    # awsQueryCompatible: botocore takes the error code from x-amzn-query-error.
    kind = "Sender" if err.status < 500 else "Receiver"
    headers = {**headers, "x-amzn-query-error": f"{err.code};{kind}"}
    body = json.dumps({"__type": err.code, "message": err.message}).encode()
    return web.Response(status=err.status, headers=headers, body=body)


async def _cloudwatch_query(request: web.Request) -> web.Response:
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        body = request.app[CLOUDWATCH_KEY].handle_query(form, request_id)
    except CloudWatchError as err:
        return web.Response(status=err.status, headers=headers, body=xml_error(err, request_id))
    return web.Response(headers=headers, body=body)


async def _service_quotas(request: web.Request) -> web.Response:
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}
    try:
        body = json.loads(await request.read() or b"{}")
        if not isinstance(body, dict):
            raise ServiceQuotasError("SerializationException", "The body must be a JSON object.")
        region = region_of(request.headers.get("Authorization"))
        target = request.headers.get("X-Amz-Target", "")
        result = request.app[QUOTAS_KEY].handle(target, body, region)
    except json.JSONDecodeError:
        err = ServiceQuotasError("SerializationException", "The body is not valid JSON.")
        return web.Response(status=400, headers=headers, body=_sq_error(err))
    except ServiceQuotasError as err:
        return web.Response(status=err.status, headers=headers, body=_sq_error(err))
    return web.Response(headers=headers, body=json.dumps(result).encode())


def _sq_error(err: ServiceQuotasError) -> bytes:
    return json.dumps({"__type": err.error_type, "message": err.message}).encode()


# -- OpenAI-compatible -------------------------------------------------------------------------
def _openai(
    parse: Parse,
    full: Full = openai_wire.full_response,
    formatter: Formatter = openai_wire.stream_formatter,
) -> Handler:
    """A handler of one OpenAI-compatible API: its body parser, its full response and its
    stream formatter."""

    async def handler(request: web.Request) -> web.StreamResponse:
        service = request.app[SERVICE_KEY]
        request_id = str(uuid.uuid4())
        received = arrival_s(request)
        req: GenerationRequest | None = None
        try:
            req = parse(await request.read())
            job = service.admit(req, received)
        except ApiError as err:
            if err.error_type == "ValidationException" and "model identifier" in err.message:
                err = ApiError(404, "invalid_request_error", _no_model(req))
            service.log_truth(request_id, req, received, f"http_{err.status}")
            return _openai_error(err, request_id)
        except Throttled as exc:
            service.log_truth(request_id, req, received, "throttled")
            return _openai_error(ApiError(429, "rate_limit_error", exc.message), request_id)
        headers = {"x-request-id": job.request_id}
        if not req.stream:
            try:
                await _wait_done(job)
                if job.failure == "drop":
                    return _drop(request)
                done = job.completion()
                text = "".join(job.pieces[: job.sent_tokens])
                body = full(req, text, done)
                return web.Response(body=body, headers=headers, content_type="application/json")
            finally:
                service.release(job)
        job.formatter = formatter(req, job.request_id, int(time.time()))
        return await _stream(request, service, job, headers, "server_error")

    return handler


def _no_model(req: GenerationRequest | None) -> str:
    name = req.model_id if req else "?"
    return f"The model `{name}` does not exist or you do not have access to it."


def _openai_error(err: ApiError, request_id: str) -> web.Response:
    status, headers, body = openai_wire.error_response(err)
    return web.Response(status=status, headers={**headers, "x-request-id": request_id}, body=body)


async def _models(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    ids = [m.model_id for m in service.profile.models]
    body = openai_wire.models_response(ids, int(time.time()))
    return web.Response(body=body, content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    return web.json_response({"status": "ok", "profile": service.profile.name})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE_KEY].stats.snapshot())


async def _stats_reset(request: web.Request) -> web.Response:
    request.app[SERVICE_KEY].stats.reset()
    return web.json_response({"reset": True})


# -- streaming ---------------------------------------------------------------------------------
async def _wait_done(job: Job) -> None:
    loop = asyncio.get_running_loop()
    while not job.done and job.failure is None:
        job.waiter = loop.create_future()
        await job.waiter
        job.waiter = None


def _drop(request: web.Request) -> web.Response:
    """Cut the connection (fault injection); what was written so far is flushed first."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)  # never reaches the client: the socket is closed


async def _start_stream(
    request: web.Request, fmt: StreamFormatter, headers: dict[str, str]
) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": fmt.content_type, **headers})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(fmt.start() or b"")
    return resp


async def _refuse_mid_stream(
    request: web.Request, fmt: StreamFormatter, request_id: str, message: str
) -> web.StreamResponse:
    resp = await _start_stream(request, fmt, {"x-amzn-RequestId": request_id})
    await resp.write(fmt.error("throttlingException", message))
    await resp.write_eof()
    return resp


def _chunked_sink(
    transport: asyncio.BaseTransport | None, job: Job
) -> Callable[[bytes], None] | None:
    """A synchronous writer of one HTTP/1.1 chunk per call, straight to the socket. When the
    client has gone, the job fails as ``cancelled`` (the truth log says so at once, instead of
    generating the rest of the response into a closed socket)."""
    if transport is None:
        return None
    # Duck-typed: uvloop's transports do not subclass asyncio.WriteTransport.
    tr = cast(asyncio.WriteTransport, transport)
    write = tr.write

    def sink(data: bytes) -> None:
        if not tr.is_closing():
            write(b"%x\r\n%b\r\n" % (len(data), data))
        elif job.failure is None:
            job.failure = "cancelled"
            job.wake()

    return sink


async def _stream(
    request: web.Request,
    service: EmulatorService,
    job: Job,
    headers: dict[str, str],
    error_code: str,
) -> web.StreamResponse:
    """Write one streamed response. The driver writes token events itself through
    ``job.sink``; this coroutine opens the stream, flushes what was buffered (before the
    headers were out, or during a stall), and closes the stream."""
    fmt = job.formatter
    assert fmt is not None
    stats = service.stats
    loop = asyncio.get_running_loop()
    try:
        if job.faults.headers_delay_s > 0:  # slow headers: tokens wait in job.buffer meanwhile
            await asyncio.sleep(job.faults.headers_delay_s)
        resp = await _start_stream(request, fmt, headers)
        headers_out = bool(fmt.start())
        while True:
            if job.sink is None and headers_out and job.stall != "stalling":
                job.sink = _chunked_sink(request.transport, job)
            if not job.buffer and not job.done and job.failure is None:
                job.waiter = loop.create_future()
                await job.waiter
                job.waiter = None
            if job.stall == "stalling":
                await asyncio.sleep(job.faults.stall_s)
                job.stall = "over"
            if job.buffer:
                data = b"".join(job.buffer)
                stats.events_sent += len(job.buffer)
                job.buffer.clear()
                await resp.write(data)
                headers_out = True
                now = time.monotonic()
                if job.buffered_since_s is not None:
                    stats.emission_lateness_s.append(now - job.buffered_since_s)
                    job.buffered_since_s = None
                if job.first_token_sent_s is None:
                    job.first_token_sent_s = now
                job.last_token_sent_s = now
            if job.failure == "drop":
                _drop(request)
                return resp
            if job.failure == "cancelled":  # the client closed the connection
                return resp
            if job.failure == "error":
                await resp.write(fmt.error(error_code, "The model stream failed (injected)."))
                break
            if job.done and not job.buffer:
                await resp.write(fmt.finish(job.completion()))
                break
        job.sink = None
        await resp.write_eof()
        return resp
    except ConnectionResetError:  # the client went away: release() settles and logs it
        return web.Response(status=499)
    finally:
        job.sink = None
        service.release(job)
