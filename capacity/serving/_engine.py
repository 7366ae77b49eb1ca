"""The serving model: a pure discrete-event core of continuous batching with chunked prefill.

One core, two clocks. The core never reads a clock: callers hand it times. The live server
(``server.py``) drives it in real time; ``simulate.py`` drives it in virtual time.

Per replica, a step serves every decoding sequence one token and spends what is left of the
chunk budget on prefill, in the order of the waiting queue: by service tier (Priority and
Reserved first, then Standard, then Flex: ``Sequence.priority``), first come, first served within
a tier. Its duration is docs/architecture.md's formula::

    step = c_b·B + max(t_w + max(c_a·ctx_max, c_kv·K), c_f·(B + prefill_tokens))

A request whose prefill completes in a step gets its first token at the end of that step; a
decoding request gets one token at the end of every later step until it has its output length.
Work per step is O(1) amortised (token counts follow from step numbers), so virtual-time runs
are fast; only the live server, which must write every token, pays O(batch) per step.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from capacity.serving._profile import ServingModel

PRIORITY_OF_TIER: dict[str, int] = {"priority": 0, "reserved": 0, "default": 1, "flex": 2}
"""Waiting-queue rank of each service tier (lower first). AWS: "Priority tier requests are
prioritized over Standard and Flex tier requests"; Flex gets "lower priority relative to the
Standard tier" under high demand; Reserved capacity is "prioritized compute capacity" (its
overflow is served at the Standard tier: the caller ranks it 1)."""


def queue_rank(service_tier: str, on_reserved: bool = False) -> int:
    """A request's waiting-queue rank: its tier's, except that a Reserved-tier request the
    Reserved capacity did not take (overflow) is served at the Standard tier."""
    if service_tier == "reserved" and not on_reserved:
        return PRIORITY_OF_TIER["default"]
    return PRIORITY_OF_TIER.get(service_tier, PRIORITY_OF_TIER["default"])


@dataclass(eq=False)
class Sequence:
    """One request inside the engine. Times are on the caller's clock (seconds); ``priority``
    is its waiting-queue rank (``PRIORITY_OF_TIER``: 0 first, 1 Standard, 2 Flex)."""

    key: int
    input_tokens: int
    output_tokens: int
    arrival_s: float
    priority: int = 1
    prefilled: int = 0
    first_step: int = -1
    first_token_s: float = math.nan
    last_token_s: float = math.nan
    replica: int = -1
    cancelled: bool = False
    emitted: int = 0  # tokens already handed to the listener (live server only)
    payload: object = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        """True once the last token was produced (or the request was cancelled)."""
        return self.cancelled or not math.isnan(self.last_token_s)


# Listener: (time_s, sequences that produced a token at time_s, with their token count so far).
TokenListener = Callable[[float, list[tuple[Sequence, int]]], None]


class Replica:
    """One model server with continuous batching."""

    def __init__(
        self, index: int, model: ServingModel, rng: random.Random, *, record_steps: bool = False
    ) -> None:
        self.index = index
        self._m = model
        self._rng = rng
        self.waiting: deque[Sequence] = deque()
        self.decoding: dict[int, Sequence] = {}
        self._finish_heap: list[tuple[int, int]] = []  # (finish step, key)
        self._ctx_heap: list[tuple[int, int]] = []  # (-(input + 1 − first_step), key)
        self._kv_base = 0  # Σ (input + 1 − first_step) over decoding; K = base + B·step
        self.step_no = 0
        self.step_end_s: float | None = None
        self._plan: list[tuple[Sequence, int]] = []
        # End time of every step (``step_ends[k - 1]`` ends step k) when recording: virtual-time
        # runs read each request's longest inter-token gap from it afterwards (``max_gaps``);
        # the live server keeps none.
        self.step_ends: list[float] | None = [] if record_steps else None

    @property
    def load(self) -> int:
        """Requests held (decoding + waiting), the router's measure."""
        return len(self.decoding) + len(self.waiting)

    def admit(self, seq: Sequence) -> None:
        """Queue a sequence for prefill: behind every waiting sequence of its rank or a lower
        one, ahead of those of a higher rank (FIFO within a tier)."""
        seq.replica = self.index
        waiting = self.waiting
        if not waiting or waiting[-1].priority <= seq.priority:
            waiting.append(seq)  # the common case: one tier, or the lowest rank waiting
            return
        i = len(waiting)
        while i > 0 and waiting[i - 1].priority > seq.priority:
            i -= 1
        waiting.insert(i, seq)

    def start_step(self, now_s: float) -> None:
        """Plan the next step at ``now_s`` if there is work; sets ``step_end_s``."""
        b = len(self.decoding)
        budget = max(self._m.chunk_budget_tokens - b, 0)
        running = b
        plan: list[tuple[Sequence, int]] = []
        prefill_tokens = 0
        for seq in self.waiting:
            if budget <= 0 or running >= self._m.max_running:
                break
            take = min(budget, seq.input_tokens - seq.prefilled)
            plan.append((seq, take))
            budget -= take
            prefill_tokens += take
            running += 1
        if b == 0 and not plan:
            self.step_end_s = None
            return
        m = self._m
        kv = self._kv_base + b * self.step_no
        ctx_max = self.step_no - self._ctx_heap[0][0] if self._ctx_heap else 0
        step = m.c_b_s * b + max(
            m.t_w_s + max(m.c_a_s * ctx_max, m.c_kv_s * kv), m.c_f_s * (b + prefill_tokens)
        )
        if m.step_jitter_cv > 0:
            step *= max(0.05, self._rng.gauss(1.0, m.step_jitter_cv))
        self._plan = plan
        self.step_end_s = now_s + step

    def end_step(self, listener: TokenListener | None) -> list[Sequence]:
        """Finish the planned step at ``step_end_s``; returns sequences that completed."""
        t = self.step_end_s
        assert t is not None
        self.step_no += 1
        step = self.step_no
        if self.step_ends is not None:
            self.step_ends.append(t)
        emitted: list[tuple[Sequence, int]] | None = [] if listener is not None else None
        if emitted is not None:
            emitted.extend((s, step - s.first_step + 1) for s in self.decoding.values())
        done: list[Sequence] = []
        heap = self._finish_heap
        while heap and heap[0][0] <= step:
            _, key = heapq.heappop(heap)
            seq = self.decoding.pop(key, None)
            if seq is None:  # cancelled earlier
                continue
            seq.last_token_s = t
            self._kv_base -= seq.input_tokens + 1 - seq.first_step
            done.append(seq)
        for seq, take in self._plan:
            seq.prefilled += take
            if seq.prefilled < seq.input_tokens or seq.cancelled:
                continue
            self.waiting.remove(seq)
            seq.first_step = step
            seq.first_token_s = t
            if emitted is not None:
                emitted.append((seq, 1))
            if seq.output_tokens <= 1:
                seq.last_token_s = t
                done.append(seq)
                continue
            self.decoding[seq.key] = seq
            base = seq.input_tokens + 1 - step
            self._kv_base += base
            heapq.heappush(heap, (step + seq.output_tokens - 1, seq.key))
            heapq.heappush(self._ctx_heap, (-base, seq.key))
        self._plan = []
        self.step_end_s = None
        self._trim_ctx_heap()
        if listener is not None and emitted:
            listener(t, emitted)
        return done

    def cancel(self, seq: Sequence) -> None:
        """Remove a sequence (client went away); its resources are freed at once."""
        seq.cancelled = True
        if seq in self.waiting:
            self.waiting.remove(seq)
            self._plan = [(s, n) for s, n in self._plan if s is not seq]
        elif self.decoding.pop(seq.key, None) is not None:
            self._kv_base -= seq.input_tokens + 1 - seq.first_step
            self._trim_ctx_heap()

    def _trim_ctx_heap(self) -> None:
        heap = self._ctx_heap
        while heap and heap[0][1] not in self.decoding:
            heapq.heappop(heap)


class Cluster:
    """Replicas behind a router, with a gateway delay in front: the whole serving model."""

    def __init__(self, model: ServingModel, seed: int = 0, *, record_steps: bool = False) -> None:
        self.model = model
        self._rng = random.Random(seed)
        self.replicas = [
            Replica(i, model, random.Random(seed * 1_000_003 + i), record_steps=record_steps)
            for i in range(model.replicas)
        ]
        self._arrivals: list[tuple[float, int, Sequence]] = []  # (engine entry time, key, seq)
        # (step end, replica index) of every replica with a step planned: the next event is
        # found in O(log replicas), not by scanning every replica at every step.
        self._steps: list[tuple[float, int]] = []
        self._rr = 0
        self._now = -math.inf

    def gateway_delay_s(self, input_tokens: int) -> float:
        """Client-visible time outside the engine: α0 + α_in·input_tokens (optionally jittered)."""
        m = self.model
        delay = m.alpha0_s + m.alpha_in_s * input_tokens
        if m.alpha_jitter_cv > 0:
            delay *= max(0.05, self._rng.gauss(1.0, m.alpha_jitter_cv))
        return delay

    def submit(self, seq: Sequence, now_s: float) -> None:
        """A request reached the front door at ``now_s``; it enters an engine after the gateway."""
        entry = now_s + self.gateway_delay_s(seq.input_tokens)
        heapq.heappush(self._arrivals, (entry, seq.key, seq))

    def cancel(self, seq: Sequence) -> None:
        """The client went away: free the request wherever it is."""
        if seq.replica >= 0:
            self.replicas[seq.replica].cancel(seq)
        else:
            seq.cancelled = True

    def next_event_s(self) -> float | None:
        """Time of the next thing the core must do, or None when idle."""
        t = self._steps[0][0] if self._steps else None
        if self._arrivals:
            entry = self._arrivals[0][0]
            if t is None or entry < t:
                t = entry
        return t

    def advance(self, until_s: float, listener: TokenListener | None = None) -> list[Sequence]:
        """Process every event at or before ``until_s``; returns requests that finished."""
        done: list[Sequence] = []
        while True:
            t_next = self.next_event_s()
            if t_next is None or t_next > until_s:
                return done
            self._process_at(t_next, listener, done)

    def _process_at(self, t: float, listener: TokenListener | None, done: list[Sequence]) -> None:
        # Time never runs backwards inside the core, even when a live caller submits a request
        # stamped a little in the past (its arrival at the socket).
        t = self._now = max(t, self._now)
        steps = self._steps
        ended: list[int] = []
        while steps and steps[0][0] <= t:
            ended.append(heapq.heappop(steps)[1])
        if len(ended) == 1 and not (self._arrivals and self._arrivals[0][0] <= t):
            # The common event: one replica's step ends and it starts its next.
            r = self.replicas[ended[0]]
            done.extend(r.end_step(listener))
            r.start_step(t)
            if r.step_end_s is not None:
                heapq.heappush(steps, (r.step_end_s, r.index))
            return
        touched: set[int] = set()
        for i in sorted(ended):  # in replica order, as a scan would
            done.extend(self.replicas[i].end_step(listener))
            touched.add(i)
        while self._arrivals and self._arrivals[0][0] <= t:
            _, _, seq = heapq.heappop(self._arrivals)
            if seq.cancelled:
                continue
            r = self._route()
            r.admit(seq)
            touched.add(r.index)
        for i in touched:
            r = self.replicas[i]
            if r.step_end_s is None:
                r.start_step(t)
                if r.step_end_s is not None:
                    heapq.heappush(self._steps, (r.step_end_s, i))

    def _route(self) -> Replica:
        policy = self.model.router
        if policy == "round_robin":
            self._rr = (self._rr + 1) % len(self.replicas)
            return self.replicas[self._rr]
        if policy == "random":
            return self._rng.choice(self.replicas)
        return min(self.replicas, key=lambda r: r.load)
