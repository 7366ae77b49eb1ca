"""The reference the comparison's replays are checked against: ``QuotaLedger`` (the emulator's
ledger) driven request by request in virtual time — not the batched replay ``capacity.compare``
runs (``capacity.serving.replay``)."""

from __future__ import annotations

import heapq
import math

import numpy as np

from capacity.serving import Admission, QuotaLedger, QuotaLimits, RequestArrays, ServiceTier


def ledger_run(
    arrays: RequestArrays,
    limits: QuotaLimits,
    *,
    tier: ServiceTier = "default",
    max_tokens_default: int = 4096,
    burndown: float = 1.0,
    model_id: str = "model",
) -> tuple[int, int]:
    """(throttled, admitted on Reserved capacity) of ``arrays`` through ``limits``: each request
    admitted at its arrival and settled after its latency (all latencies must be known)."""
    assert not np.any(np.isnan(arrays.latency_s)), "the reference needs every latency"
    clock = [0.0]
    ledger = QuotaLedger(limits, lambda: clock[0])
    ends: list[tuple[float, int, Admission]] = []
    throttled = on_reserved = 0
    order = np.argsort(arrays.arrival_s, kind="stable")
    inp, out = arrays.input_tokens, arrays.output_tokens
    for i in order.tolist():
        t = float(arrays.arrival_s[i])
        while ends and ends[0][0] <= t:
            t_end, j, adm = heapq.heappop(ends)
            clock[0] = t_end
            ledger.settle(adm, int(inp[j]), int(out[j]), burndown)
        clock[0] = t
        mx = int(arrays.max_tokens[i])
        verdict = ledger.admit(
            model_id, int(inp[i]), max_tokens_default if mx < 0 else mx,
            cache_read_tokens=int(arrays.cache_read_tokens[i]),
            cache_write_tokens=int(arrays.cache_write_tokens[i]), service_tier=tier,
        )  # fmt: skip
        if isinstance(verdict, Admission):
            on_reserved += verdict.on_reserved
            end = t + float(arrays.latency_s[i])
            heapq.heappush(ends, (end if math.isfinite(end) else t, i, verdict))
        else:
            throttled += 1
    return throttled, on_reserved
