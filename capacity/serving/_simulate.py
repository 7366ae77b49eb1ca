"""Virtual-time runs of the serving model: the live server's core, without sockets or sleeping.

Used to calibrate profiles (``benchmarks/emulator_calibration.py``) and for what-if studies:
"what if the prompt were 3,000 tokens?", "what if we had 4 replicas?". A run of the seed blog's
heaviest level (50 large-prompt requests per second for 60 s) takes well under a second.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from capacity.serving._engine import Cluster, Sequence as EngineSeq, queue_rank
from capacity.serving._ledger import Admission, QuotaLedger, QuotaLimits, ServiceTier
from capacity.serving._profile import Profile


@dataclass(frozen=True)
class SimRequest:
    """One request offered to the simulated endpoint: ``input_tokens`` uncached (the whole
    prompt when nothing is cached), cache reads and writes apart (the serving model prefills
    all three; the quota ledger counts them by its rules), and its ``service_tier``."""

    arrival_s: float
    input_tokens: int
    max_tokens: int
    label: str = ""
    batch: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    service_tier: ServiceTier = "default"


@dataclass(frozen=True)
class SimResult:
    """What a client would have measured for one request (times relative to the run start)."""

    label: str
    batch: int
    status: str  # "ok" or "throttled"
    start_s: float
    first_token_s: float
    last_token_s: float
    input_tokens: int
    output_tokens: int
    max_gap_s: float = math.nan  # the longest step its replica took between its first and last
    # token: what a client sees as the largest interval between consecutive tokens

    @property
    def ttft_s(self) -> float:
        """Time to first token."""
        return self.first_token_s - self.start_s

    @property
    def ttlt_s(self) -> float:
        """Time to last token."""
        return self.last_token_s - self.start_s

    @property
    def tpot_s(self) -> float:
        """Time per output token after the first (NaN below 2 tokens)."""
        if self.output_tokens < 2 or self.status != "ok":
            return math.nan
        return (self.ttlt_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def tps(self) -> float:
        """Per-request decode speed, 1 / tpot."""
        tpot = self.tpot_s
        return 1.0 / tpot if tpot > 0 else math.nan


def max_gaps(cluster: Cluster, seqs: Sequence[EngineSeq]) -> list[float]:
    """Each finished sequence's longest inter-token gap (NaN below 2 tokens): the longest step
    its replica took after its first token, up to its last. A decoding sequence's steps follow
    one another without a pause, so step k lasts ``step_ends[k − 1] − step_ends[k − 2]``; the
    maxima over each sequence's step range are taken per replica with one ``reduceat``. The
    cluster must have been built with ``record_steps=True``."""
    import numpy as np

    out = [math.nan] * len(seqs)
    by_replica: dict[int, list[int]] = {}
    for i, seq in enumerate(seqs):
        if seq.output_tokens >= 2 and seq.first_step > 0 and not seq.cancelled:
            by_replica.setdefault(seq.replica, []).append(i)
    for r, idx in by_replica.items():
        ends = cluster.replicas[r].step_ends
        if ends is None:
            raise ValueError("max_gaps needs a Cluster built with record_steps=True")
        # durations[j] is step j + 2's; one pad element keeps every bound a valid index
        durations = np.append(np.diff(np.asarray(ends, dtype=float)), 0.0)
        first = np.fromiter((seqs[i].first_step for i in idx), dtype=np.intp, count=len(idx))
        n_out = np.fromiter((seqs[i].output_tokens for i in idx), dtype=np.intp, count=len(idx))
        bounds = np.empty(2 * len(idx), dtype=np.intp)
        bounds[0::2] = first - 1  # steps first + 1 … first + n_out − 1
        bounds[1::2] = first + n_out - 2
        gaps = np.maximum.reduceat(durations, bounds)[0::2]
        for i, g in zip(idx, gaps.tolist(), strict=True):
            out[i] = g
    return out


# A finished request before its gap is known: (label, batch, start_s, engine sequence).
_Done = tuple[str, int, float, EngineSeq]


def _finished(cluster: Cluster, done: list[_Done]) -> list[SimResult]:
    """The results of finished requests, each with its ``max_gap_s``."""
    gaps = max_gaps(cluster, [seq for *_, seq in done])
    return [
        SimResult(label, batch, "ok", start, seq.first_token_s, seq.last_token_s,
                  seq.input_tokens, seq.output_tokens, gap)
        for (label, batch, start, seq), gap in zip(done, gaps, strict=True)
    ]  # fmt: skip


def interval_schedule(
    level: int, batches: int, interval_s: float = 1.0, *, input_tokens: int, max_tokens: int
) -> list[SimRequest]:
    """The seed blog's interval mode: a batch of ``level`` requests every ``interval_s``."""
    return [
        SimRequest(b * interval_s, input_tokens, max_tokens, batch=b)
        for b in range(batches)
        for _ in range(level)
    ]


def interval_medians(
    profile: Profile,
    level: int,
    *,
    input_tokens: int,
    max_tokens: int,
    batches: int = 60,
    interval_s: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Median per-request tokens/s and median TTFT (s) of an interval-mode run, as the seed blog
    measured them. ``input_tokens`` is the server-side count (template overhead included)."""
    prompt = input_tokens - profile.prompt_overhead_tokens
    schedule = interval_schedule(
        level, batches, interval_s, input_tokens=prompt, max_tokens=max_tokens
    )
    rows = [r for r in simulate(profile, schedule, seed=seed) if r.status == "ok"]
    return statistics.median(r.tps for r in rows), statistics.median(r.ttft_s for r in rows)


def simulate(
    profile: Profile,
    requests: Iterable[SimRequest],
    *,
    seed: int = 0,
    model_id: str | None = None,
) -> list[SimResult]:
    """Run open-loop arrivals through the profile's serving model and quotas in virtual time."""
    model = profile.model(model_id or profile.default_model_id)
    if model is None:
        raise ValueError(f"model {model_id!r} is not served by profile {profile.name!r}")
    cluster = Cluster(profile.serving, seed=seed, record_steps=True)
    rng = random.Random(seed)
    clock = [0.0]
    ledger = QuotaLedger(profile.quotas.limits(), lambda: clock[0])
    ordered = sorted(requests, key=lambda r: r.arrival_s)
    inflight: dict[int, tuple[SimRequest, EngineSeq, Admission]] = {}
    throttled: list[tuple[int, SimResult]] = []  # (position among all results, result)
    done: list[_Done] = []
    overhead = profile.prompt_overhead_tokens

    def finish(seqs: Sequence[EngineSeq]) -> None:
        for seq in seqs:
            req, _, adm = inflight.pop(seq.key)
            clock[0] = seq.last_token_s
            ledger.settle(adm, req.input_tokens + overhead, seq.output_tokens, model.burndown)
            done.append((req.label, req.batch, req.arrival_s, seq))

    for key, req in enumerate(ordered):
        finish(cluster.advance(req.arrival_s))
        clock[0] = req.arrival_s
        input_tokens = req.input_tokens + overhead
        verdict = ledger.admit(
            model.model_id, input_tokens, req.max_tokens, cache_read_tokens=req.cache_read_tokens,
            cache_write_tokens=req.cache_write_tokens, service_tier=req.service_tier,
        )  # fmt: skip
        if not isinstance(verdict, Admission):
            throttled.append(
                (len(done) + len(throttled),
                 SimResult(req.label, req.batch, "throttled", req.arrival_s, math.nan, math.nan,
                           input_tokens, 0))
            )  # fmt: skip
            continue
        n_out = profile.output.draw(req.max_tokens, rng)
        prompt = input_tokens + req.cache_read_tokens + req.cache_write_tokens
        rank = queue_rank(req.service_tier, verdict.on_reserved)
        seq = EngineSeq(key, prompt, n_out, req.arrival_s, priority=rank)
        inflight[key] = (req, seq, verdict)
        cluster.submit(seq, req.arrival_s)
    finish(cluster.advance(math.inf))
    finished = iter(_finished(cluster, done))
    results: list[SimResult] = []
    for pos, row in throttled:  # in the order the requests ended (or were refused): a merge,
        results.extend(itertools.islice(finished, pos - len(results)))  # not n inserts
        results.append(row)
    results.extend(finished)
    return results


def simulate_closed_loop(
    profile: Profile,
    concurrency: int,
    n_requests: int,
    *,
    input_tokens: int,
    max_tokens: int,
    seed: int = 0,
    lengths: Sequence[tuple[int, int]] = (),
) -> list[SimResult]:
    """Closed loop: ``concurrency`` requests always in flight until ``n_requests`` were sent.

    ``lengths`` gives each request's (input tokens, max_tokens) in sending order (cycled),
    for workloads of random lengths; empty: every request has ``input_tokens`` and
    ``max_tokens``. Quotas are not applied here: a closed loop measures the serving model alone.
    """
    cluster = Cluster(profile.serving, seed=seed, record_steps=True)
    rng = random.Random(seed)
    overhead = profile.prompt_overhead_tokens
    done: list[_Done] = []
    sent = 0

    def send(now_s: float) -> None:
        nonlocal sent
        n_in, n_max = lengths[sent % len(lengths)] if lengths else (input_tokens, max_tokens)
        seq = EngineSeq(sent, n_in + overhead, profile.output.draw(n_max, rng), now_s)
        sent += 1
        cluster.submit(seq, now_s)

    for _ in range(min(concurrency, n_requests)):
        send(0.0)
    while True:
        t_next = cluster.next_event_s()
        if t_next is None:
            return _finished(cluster, done)
        for seq in cluster.advance(t_next):
            done.append(("", 0, seq.arrival_s, seq))
            if sent < n_requests:
                send(seq.last_token_s)


def poisson_arrivals(rate_per_min: float, minutes: float, *, seed: int = 0) -> list[float]:
    """Arrival instants (s) of a Poisson process at ``rate_per_min`` over ``minutes``."""
    if rate_per_min <= 0 or minutes <= 0:
        return []
    rng = random.Random(seed)
    rate_s, horizon, t = rate_per_min / 60.0, minutes * 60.0, 0.0
    out: list[float] = []
    while True:
        t += rng.expovariate(rate_s)
        if t >= horizon:
            return out
        out.append(t)


def simulate_quota(
    arrivals_s: Sequence[float],
    limits: QuotaLimits,
    *,
    input_tokens: int,
    max_tokens: int,
    output_tokens: int,
    burndown: float,
    ttft_s: float,
    ttlt_s: float,
    model_id: str = "model",
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    service_tier: ServiceTier = "default",
) -> list[SimResult]:
    """Requests through the quota ledger alone, each taking fixed times (``ttft_s``, ``ttlt_s``)
    — the same admissions and settlements the emulator makes, without a serving model. Used to
    check a plan's quota arithmetic; ``simulate`` adds the serving model's queueing.
    ``input_tokens`` is the uncached input; cache reads and writes and the tier go to the
    ledger as they are."""
    clock = [0.0]
    ledger = QuotaLedger(limits, lambda: clock[0])
    ends: list[tuple[float, int, Admission]] = []  # heap of (end time, key, admission)
    results: list[SimResult] = []
    for key, t in enumerate(sorted(arrivals_s)):
        while ends and ends[0][0] <= t:
            t_end, _, adm = heapq.heappop(ends)
            clock[0] = t_end
            ledger.settle(adm, input_tokens, output_tokens, burndown)
        clock[0] = t
        verdict = ledger.admit(
            model_id, input_tokens, max_tokens, cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens, service_tier=service_tier,
        )  # fmt: skip
        if isinstance(verdict, Admission):
            heapq.heappush(ends, (t + ttlt_s, key, verdict))
            results.append(
                SimResult("", 0, "ok", t, t + ttft_s, t + ttlt_s, input_tokens, output_tokens)
            )
        else:
            results.append(SimResult("", 0, "throttled", t, math.nan, math.nan, input_tokens, 0))
    return results


def rate_schedule(
    rate_per_s: float,
    duration_s: float,
    *,
    input_tokens: int,
    max_tokens: int,
    poisson: bool = True,
    seed: int = 0,
) -> list[SimRequest]:
    """Rate mode: arrivals at ``rate_per_s`` for ``duration_s`` (Poisson gaps, or constant)."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError("rate_schedule needs a rate and a duration above 0")
    rng = random.Random(seed)
    out: list[SimRequest] = []
    t = 0.0
    while t < duration_s:
        out.append(SimRequest(t, input_tokens, max_tokens))
        t += rng.expovariate(rate_per_s) if poisson else 1.0 / rate_per_s
    return out


def simulate_sequential(
    profile: Profile,
    level: int,
    batches: int,
    *,
    input_tokens: int,
    max_tokens: int,
    seed: int = 0,
) -> list[SimResult]:
    """Sequential mode: a batch of ``level`` requests; the next starts when all have finished.

    Quotas are not applied (as in ``simulate_closed_loop``)."""
    cluster = Cluster(profile.serving, seed=seed, record_steps=True)
    rng = random.Random(seed)
    n_in = input_tokens + profile.prompt_overhead_tokens
    done: list[_Done] = []
    now = 0.0
    key = 0
    for batch in range(batches):
        for _ in range(level):
            cluster.submit(EngineSeq(key, n_in, profile.output.draw(max_tokens, rng), now), now)
            key += 1
        for seq in cluster.advance(math.inf):
            done.append(("", batch, seq.arrival_s, seq))
            now = max(now, seq.last_token_s)
    return _finished(cluster, done)
