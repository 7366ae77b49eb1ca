"""The live side of the emulator: admits requests, drives the serving core in real time, and
turns engine tokens into stream events. Protocol-neutral; ``server.py`` maps HTTP onto it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from capacity.serving import (
    SERVICE_TIERS,
    Admission,
    Cluster,
    ModelSpec,
    OutputLength,
    Profile,
    QuotaLedger,
    Sequence,
    ServiceTier,
    queue_rank,
)
from emulator.api import ApiError, Completion, GenerationRequest, StreamFormatter
from emulator.cloudwatch import BedrockMetrics
from emulator.faults import BEDROCK_ERROR_TYPES, FaultPlan, draw_faults
from emulator.stats import Stats
from emulator.tokens import TextGenerator, count_tokens

# Without max_tokens a real model stops at its end-of-turn token; we draw a plausible length.
UNSET_MAX_TOKENS_OUTPUT = OutputLength(kind="lognormal", mean_tokens=400.0, sigma=0.5)
EMIT_SLICE = 48  # stream events written per event-loop callback (see EmulatorService._flush)
CHARGE_EVERY_TOKENS = 16
"""Output charged as generated (bedrock-mantle's output TPM) is taken from the ledger every
this many tokens of a stream, and in full at settlement: one ledger call per 16 tokens keeps the
per-token hot path free of quota arithmetic."""


@dataclass(eq=False)
class Job:
    """One admitted request on its way through the engine."""

    request_id: str
    req: GenerationRequest
    model: ModelSpec
    admission: Admission
    seq: Sequence
    pieces: list[str]
    received_s: float
    faults: FaultPlan
    formatter: StreamFormatter | None
    tokens_per_event: int
    buffer: list[bytes] = field(default_factory=list)
    buffered_since_s: float | None = None
    sent_tokens: int = 0
    waiter: asyncio.Future[None] | None = None
    done: bool = False
    failure: str | None = None  # "error" | "drop" (a mid-stream fault), "cancelled" (client left)
    first_token_sent_s: float | None = None
    last_token_sent_s: float | None = None
    sink: Callable[[bytes], None] | None = None  # direct socket writer once headers are out
    stall: str = "none"  # "none" → "stalling" (fault fired, events held) → "over"
    stats: Stats = field(default_factory=Stats)
    charged_tokens: int | None = None  # what the quota ledger charged at settlement
    charge: Callable[[int], None] | None = None  # output charged as generated (output TPM)
    charged_output: int = 0

    def on_tokens(self, count: int, model_time_s: float) -> None:
        """The engine produced tokens up to ``count``; emit an event when one is due.

        Once the response headers are out, events go straight to the socket (``sink``) from
        the driver's callback: no task switch per token, which is what keeps 500 streams on
        time. Before that, or while a stall fault holds the stream, they wait in ``buffer``.
        """
        if self.failure is not None:
            return
        if self.charge is not None and count - self.charged_output >= CHARGE_EVERY_TOKENS:
            self.charge(count)
            self.charged_output = count
        due = count == 1 or count >= self.seq.output_tokens
        due = due or count - self.sent_tokens >= self.tokens_per_event
        if not due:
            return
        f = self.faults
        if f.stall_at_token is not None and count >= f.stall_at_token and self.stall == "none":
            self.stall = "stalling"
            self.sink = None
        if self.formatter is not None:
            frame = self.formatter.delta("".join(self.pieces[self.sent_tokens : count]))
            if self.sink is not None:
                self.sink(frame)
                now = time.monotonic()
                self.stats.events_sent += 1
                self.stats.emission_lateness_s.append(now - model_time_s)
                if self.first_token_sent_s is None:
                    self.first_token_sent_s = now
                self.last_token_sent_s = now
            else:
                self.buffer.append(frame)
                if self.buffered_since_s is None:
                    self.buffered_since_s = model_time_s
                self.wake()
        self.sent_tokens = count
        if f.error_at_token is not None and count >= f.error_at_token:
            self.failure = "error"
            self.wake()
        elif f.drop_at_token is not None and count >= f.drop_at_token:
            self.failure = "drop"
            self.wake()
        elif self.formatter is None and count >= self.seq.output_tokens:
            self.wake()

    def wake(self) -> None:
        """Resume the coroutine writing this job's response."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def completion(self) -> Completion:
        """Usage and timings as reported to the client."""
        first = self.first_token_sent_s or self.seq.first_token_s
        last = self.last_token_sent_s or self.seq.last_token_s
        return Completion(
            request_id=self.request_id,
            model_id=self.req.model_id,
            input_tokens=self.seq.input_tokens,
            output_tokens=self.sent_tokens,
            stop_reason="max_tokens" if self.sent_tokens == self.max_tokens else "end_turn",
            latency_ms=round((last - self.received_s) * 1000),
            first_byte_latency_ms=round((first - self.received_s) * 1000),
            created_s=int(time.time()),
        )

    @property
    def max_tokens(self) -> int:
        """The output limit that applied (the model maximum when the request set none)."""
        return self.req.max_tokens or self.model.max_output_tokens


def _tier(name: str) -> ServiceTier:
    """A parsed tier name as the ledger's type (the wire modules accept only Bedrock's)."""
    for tier in SERVICE_TIERS:
        if tier == name:
            return tier
    raise ApiError(400, "ValidationException", f"Unknown service tier {name!r}.")


class Throttled(Exception):
    """A request was refused by the quota ledger."""

    def __init__(self, message: str, mid_stream: bool) -> None:
        super().__init__(message)
        self.message = message
        self.mid_stream = mid_stream


class EmulatorService:
    """Admission, the real-time driver of the serving core, quotas, faults and ground truth."""

    def __init__(self, profile: Profile, *, seed: int = 0, truth_log: Path | None = None) -> None:
        self.profile = profile
        self.seed = seed
        self.cluster = Cluster(profile.serving, seed=seed)
        q = profile.quotas
        self.ledger = QuotaLedger(q.limits(), time.monotonic)
        self.text = TextGenerator(seed)
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.metrics = BedrockMetrics(seed=seed)  # what CloudWatch would show (emulator/cloudwatch)
        self._truth: IO[str] | None = (
            truth_log.open("a", encoding="utf-8", buffering=1) if truth_log else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # Token events and "done" marks waiting to be written, oldest first (see _flush).
        self._pending: deque[tuple[float, list[tuple[Sequence, int]]]] = deque()
        self._pending_pos = 0
        self._flushing = False
        self._next_key = 0
        self._jobs: dict[int, Job] = {}

    # -- admission ---------------------------------------------------------------------------
    def admit(self, req: GenerationRequest, received_s: float | None = None) -> Job:
        """Validate the model, apply faults and quotas, and start the request in the engine.

        A streaming caller sets ``job.formatter`` before it awaits anything (the gateway delay
        guarantees no token is due earlier). Raises ApiError for an unknown model or an injected
        HTTP failure, Throttled when the
        quota ledger refuses it.
        """
        received = time.monotonic() if received_s is None else received_s
        self.stats.requests += 1
        model = self.profile.model(req.model_id)
        if model is None:
            raise ApiError(400, "ValidationException", "The provided model identifier is invalid.")
        input_tokens = count_tokens(req.prompt_text) + self.profile.prompt_overhead_tokens
        max_tokens = req.max_tokens or model.max_output_tokens
        if req.max_tokens is not None and req.max_tokens > model.max_output_tokens:
            raise ApiError(
                400,
                "ValidationException",
                f"max_tokens {req.max_tokens} exceeds this model's limit of "
                f"{model.max_output_tokens}; lower it.",
            )
        shape = self.profile.output if req.max_tokens else UNSET_MAX_TOKENS_OUTPUT
        n_out = shape.draw(max_tokens, self.rng)
        faults = draw_faults(self.profile.faults, n_out, self.rng)
        if faults.http_status is not None:
            kind, message = BEDROCK_ERROR_TYPES[faults.http_status]
            raise ApiError(faults.http_status, kind, message)
        if faults.throttle:
            self.stats.throttled += 1
            raise Throttled(
                "Too many requests, please wait before trying again (injected).",
                self.profile.quotas.throttle == "mid-stream",
            )
        verdict = self.ledger.admit(
            req.model_id, input_tokens, max_tokens, service_tier=_tier(req.service_tier)
        )
        if not isinstance(verdict, Admission):
            self.stats.throttled += 1
            raise Throttled(verdict.message, self.profile.quotas.throttle == "mid-stream")
        key = self._next_key
        self._next_key += 1
        request_id = str(uuid.uuid4())
        rank = queue_rank(req.service_tier, verdict.on_reserved)
        seq = Sequence(key, input_tokens, n_out, received, priority=rank)
        job = Job(
            request_id=request_id, req=req, model=model, admission=verdict, seq=seq,
            pieces=self.text.excerpt(str(key), n_out), received_s=received, faults=faults,
            formatter=None, tokens_per_event=self.profile.tokens_per_event, stats=self.stats,
        )  # fmt: skip
        seq.payload = job
        if self.ledger.charges_as_generated:
            job.charge = functools.partial(self.ledger.charge_output, verdict)
        self._jobs[key] = job
        self.cluster.submit(seq, received)
        self._reschedule()
        return job

    def release(self, job: Job) -> None:
        """The response is over (finished, failed or the client left): settle and log."""
        if job.seq.key not in self._jobs:
            return
        del self._jobs[job.seq.key]
        job.charge = None  # the admission settles now: nothing more is charged as generated
        if not job.done:
            self.cluster.cancel(job.seq)
        job.charged_tokens = self.ledger.settle(
            job.admission, job.seq.input_tokens, job.sent_tokens, job.model.burndown
        )
        status = "ok" if job.done and job.failure is None else (job.failure or "cancelled")
        self.log_truth(job.request_id, job.req, job.received_s, status, job)

    def log_truth(
        self,
        request_id: str,
        req: GenerationRequest | None,
        received_s: float,
        status: str,
        job: Job | None = None,
    ) -> None:
        """Count the request's outcome in the CloudWatch metrics and append the server's own
        record of it to the truth log (if enabled). Called once per request."""
        self._observe(req, status, job)
        if self._truth is None:
            return
        row = {
            "request_id": request_id,
            "operation": req.operation if req else None,
            "model_id": req.model_id if req else None,
            "status": status,
            "received_s": received_s,
            "first_token_sent_s": job.first_token_sent_s if job else None,
            "last_token_sent_s": job.last_token_sent_s if job else None,
            "input_tokens": job.seq.input_tokens if job else None,
            "output_tokens": job.sent_tokens if job else 0,
            "service_tier": req.service_tier if req else None,
            "on_reserved": job.admission.on_reserved if job else None,
        }
        self._truth.write(json.dumps(row) + "\n")

    def _observe(self, req: GenerationRequest | None, status: str, job: Job | None) -> None:
        """The request's samples of the AWS/Bedrock metrics (Bedrock-runtime requests only)."""
        if req is None or req.family.startswith("openai"):
            return
        served = status in ("ok", "cancelled")
        if status == "throttled" or status == "http_429":
            outcome = "throttled"
        elif served:
            outcome = "served"
        elif status.startswith("http_4"):
            outcome = "client_error"
        else:  # http_5xx, a stream error or a dropped connection
            outcome = "server_error"
        if job is None:
            self.metrics.observe(req.model_id, outcome)
            return
        done = job.completion() if status == "ok" else None
        self.metrics.observe(
            req.model_id, outcome, input_tokens=job.seq.input_tokens,
            output_tokens=job.sent_tokens, quota_tokens=job.charged_tokens,
            latency_ms=None if done is None else done.latency_ms,
            ttft_ms=done.first_byte_latency_ms if done is not None and req.stream else None,
        )  # fmt: skip

    # -- the real-time driver ------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the event loop that serves requests (its clock is ``time.monotonic``)."""
        self._loop = loop

    def _reschedule(self) -> None:
        loop = self._loop
        assert loop is not None, "EmulatorService.attach(loop) was not called"
        t_next = self.cluster.next_event_s()
        if t_next is None:
            return
        if self._timer is not None:
            if self._timer_at <= t_next:
                return
            self._timer.cancel()
        # call_later against our own clock: uvloop's loop.time() has millisecond resolution
        self._timer_at = t_next
        self._timer = loop.call_later(max(0.0, t_next - time.monotonic()), self._drive)

    def _drive(self) -> None:
        self._timer = None
        done = self.cluster.advance(time.monotonic(), self._collect)
        if done:
            self._pending.append((math.nan, [(seq, -1) for seq in done]))
        if not self._flushing:
            self._flush()
        self._reschedule()

    def _collect(self, t: float, emitted: list[tuple[Sequence, int]]) -> None:
        self._pending.append((t, emitted))

    def _flush(self) -> None:
        """Write due token events, at most ``EMIT_SLICE`` per call. The rest waits for the next
        loop iteration, so that the loop polls its sockets between slices: new requests are
        noticed (and stamped) within a slice's time, not after hundreds of stream writes.
        "Done" marks travel in the same queue, so no stream finishes before its last token."""
        budget = EMIT_SLICE
        pending = self._pending
        while pending and budget > 0:
            t, items = pending[0]
            start = self._pending_pos
            stop = min(len(items), start + budget)
            for seq, count in items[start:stop]:
                job = seq.payload
                if not isinstance(job, Job):
                    continue
                if count < 0:
                    job.done = True
                    job.wake()
                else:
                    job.on_tokens(count, t)
            budget -= stop - start
            if stop >= len(items):
                pending.popleft()
                self._pending_pos = 0
            else:
                self._pending_pos = stop
        self._flushing = bool(pending)
        if self._flushing:
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def close(self) -> None:
        """Stop the driver and close the truth log."""
        if self._timer is not None:
            self._timer.cancel()
        if self._truth is not None:
            self._truth.close()
            self._truth = None

    async def monitor_loop_lag(self, period_s: float = 0.01) -> None:
        """Sample event-loop lag forever (how late a 10 ms sleep wakes up)."""
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(period_s)
            self.stats.loop_lag_s.append(time.monotonic() - t0 - period_s)
