"""Logged traffic replayed through the quota ledger in virtual time (docs/architecture.md,
"Quota rules", "Replaying traffic").

The replay is the ledger, batched: the same rule functions (``_buckets.py``) that `QuotaLedger`
runs live, compiled with numba and driven by every request of one model in time order.

- **Admission** at ``arrival_s``: the reservation input + cache read + cache write + max_tokens
  (the logged max_tokens; when the log does not know it, the ``max_tokens`` policy: a number, or
  ``"model default"`` = the model table's ``max_output_tokens``, what an unset max_tokens
  reserves on Bedrock) against RPM, TPM and TPD, as the ledger checks them; on bedrock-mantle
  input + cache write + max_tokens against input TPM (and output TPM not in debt). Reserved-tier
  requests try Reserved capacity first and overflow to the on-demand quota.
- **Settlement** at ``arrival_s + latency_s`` (the logged latency; when unknown, the serving
  model's unloaded latency, `unloaded_latency_s`): charge input + cache write + burndown ×
  output (rounded half up, burndown from the model table), ``reserved − charged`` back into
  TPM (rule "bucket") and TPD; on bedrock-mantle and Reserved capacity input + cache write
  against input TPM, the output tokens against output TPM (``_ledger.py``'s table).
- **Order**: events run by (time, request index in arrival order, arrival before settlement).
  At equal times, requests that arrived earlier settle before later ones are admitted; a request
  with zero latency settles right after its own admission.
- **Windows** (rule "window") start at ``arrival_s = 0``, the log's first request.
- **Failed requests** (``ok`` False: throttled or errored in the original) are replayed as
  demand (``failed="demand"``, the default): with their logged input and max_tokens, the median
  output of the model's successful requests, and the serving model's latency (their logged
  latency is that of the failure). ``failed="exclude"`` leaves them out. The notes count them.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from capacity.serving import _buckets
from capacity.serving._ledger import REJECTION_KINDS, QuotaBuckets, QuotaLimits, quota_buckets
from capacity.serving._requests import (
    FailedPolicy,
    MaxTokensPolicy,
    Prepared,
    ReplayError,
    RequestArrays,
    prepare,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from capacity.serving._profile import ServingModel

RUNTIME_KINDS = ("tokens", "requests", "tokens_per_day")
"""The rejection kinds a bedrock-runtime replay counts (``throttled_by_kind``'s keys)."""
MANTLE_KINDS = ("input_tokens", "output_tokens")
"""The rejection kinds a bedrock-mantle replay counts."""

__all__ = [
    "MANTLE_KINDS",
    "RUNTIME_KINDS",
    "MinuteSeries",
    "ReplayResult",
    "WorstMinute",
    "replay",
    "run",
    "summarise",
]


@dataclass(frozen=True, eq=False)
class MinuteSeries:
    """Per-minute totals of a replay; minute ``m`` covers ``[60·m, 60·m + 60)`` s.

    ``requests``, ``throttled`` and ``reserved_tokens`` (every request's reservation: the
    traffic's demand) by arrival minute; ``admitted_reserved_tokens`` (the admitted requests'
    reservations) by arrival minute; ``settled_tokens`` (the admitted requests' charges) by
    settlement minute. On bedrock-mantle the reservations are input + cache write + max_tokens
    and the charges input + cache write + output.
    """

    requests: NDArray[np.int64]
    throttled: NDArray[np.int64]
    reserved_tokens: NDArray[np.int64]
    admitted_reserved_tokens: NDArray[np.int64]
    settled_tokens: NDArray[np.int64]
    settled_output_tokens: NDArray[np.int64]
    """The admitted requests' output tokens (no burndown) by settlement minute: what an output
    TPM counts."""
    overflowed: NDArray[np.int64]
    """Reserved-tier requests served by the on-demand quota, by arrival minute."""

    def to_dict(self) -> dict[str, list[int]]:
        """Plain lists, for JSON."""
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}


@dataclass(frozen=True)
class WorstMinute:
    """The minute with the most throttles (the earliest of ties)."""

    minute: int
    start_s: float
    throttled: int
    requests: int
    reserved_tokens: int


@dataclass(frozen=True)
class ReplayResult:
    """What the quota ledger did with one model's logged traffic (module docstring).

    ``throttled_by_kind``: throttles by the quota that refused ("tokens" = TPM, "requests" =
    RPM, "tokens_per_day" = TPD); ``throttled_minutes``: minutes with at least one throttle;
    ``peak_reserved_tpm``: the busiest minute of reservations offered; ``peak_settled_tpm``: the
    busiest minute of settled charges of admitted requests. ``reserved_requests``: requests of
    the Reserved tier; ``admitted_on_reserved``: those Reserved capacity took (the rest
    overflowed to the on-demand quota, or were throttled there).
    """

    model_id: str
    quota: QuotaLimits
    requests: int
    admitted: int
    throttled: int
    throttled_share: float
    throttled_by_kind: dict[str, int]
    throttled_minutes: int
    worst_minute: WorstMinute | None
    peak_reserved_tpm: int
    peak_settled_tpm: int
    burndown: float
    minutes: MinuteSeries = field(compare=False)
    verdicts: NDArray[np.int8] = field(compare=False, repr=False)
    """Per request, in the order given: ``-1`` admitted, else the index in `REJECTION_KINDS`
    ("tokens", "requests", "tokens_per_day", "input_tokens", "output_tokens") of the quota that
    refused it; ``-2`` left out (``failed="exclude"``). Not in ``to_dict``."""
    notes: tuple[str, ...] = ()
    reserved_requests: int = 0
    admitted_on_reserved: int = 0

    @property
    def overflow_share(self) -> float:
        """The share of Reserved-tier requests that Reserved capacity did not take (0 when
        there are none)."""
        if self.reserved_requests == 0:
            return 0.0
        return 1.0 - self.admitted_on_reserved / self.reserved_requests

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (the per-minute series as lists)."""
        q = self.quota
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        del out["verdicts"]
        out["quota"] = {f.name: getattr(q, f.name) for f in fields(q)}
        out["overflow_share"] = self.overflow_share
        out["worst_minute"] = None if self.worst_minute is None else vars(self.worst_minute)
        out["minutes"] = self.minutes.to_dict()
        out["notes"] = list(self.notes)
        return out


@cache
def _compiled_loop() -> Callable[..., int]:
    """``_buckets.replay_loop`` compiled with numba, calling the compiled rule functions.

    The functions are the module's own code objects, jitted in a copy of its namespace where
    each rule function's name refers to its compiled version. numba caches the machine code in
    ``capacity/serving/__pycache__`` (git-ignored), keyed to ``_buckets.py``'s timestamp, so an
    edit to the rules recompiles them.
    """
    import numba

    namespace = dict(vars(_buckets))
    for name in ("window_index", "charged_output", "admitted_code", "admitted_group", "demand",
                 "bring_forward", "refusing_bucket", "admit_request", "_back", "settle_request",
                 "replay_loop"):  # fmt: skip
        fn = getattr(_buckets, name)
        copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
        copy.__qualname__ = fn.__qualname__
        # The rule functions inlined into the loop at numba's IR level: called, each call
        # passed the bucket columns by value (4.8 s → 3.2 s a replay of 10 M requests,
        # docs/performance.md).
        inline: Literal["never", "always"] = "never" if name == "replay_loop" else "always"
        namespace[name] = numba.njit(cache=True, inline=inline)(copy)
    loop: Callable[..., int] = namespace["replay_loop"]
    return loop


def array_columns(buckets: QuotaBuckets) -> _buckets.BucketColumns:
    """``buckets``' columns as the numpy arrays the compiled loop takes."""
    c = buckets.columns
    f8 = np.float64
    flags = {name: np.asarray(getattr(c, name), dtype=np.bool_).reshape(-1)
             for name in ("windowed", "refunds", "debits", "raw_output")}  # fmt: skip
    return _buckets.BucketColumns(
        groups=int(c.groups),
        group=np.asarray(c.group, dtype=np.int64).reshape(-1),
        capacity=np.asarray(c.capacity, dtype=f8).reshape(-1),
        rate_per_s=np.asarray(c.rate_per_s, dtype=f8).reshape(-1),
        slack=np.asarray(c.slack, dtype=f8).reshape(-1),
        admit=np.asarray(c.admit, dtype=f8).reshape(-1),
        settle=np.asarray(c.settle, dtype=f8).reshape(-1),
        **flags,
    )


def first_groups(prep: Prepared, buckets: QuotaBuckets) -> NDArray[np.int64]:
    """The first group each request may use: Reserved capacity for Reserved-tier requests
    (when there is some), the on-demand quota for the others."""
    od = np.full(len(prep), buckets.on_demand_group, dtype=np.int64)
    if buckets.reserved_group is None:
        return od
    out: NDArray[np.int64] = np.where(prep.reserved_tier, buckets.reserved_group, od)
    return out


def run(prep: Prepared, quota: QuotaLimits, max_throttles: int | None = None) -> NDArray[np.int8]:
    """Statuses in arrival order: ``_buckets.admitted_code(group)`` (< 0) or the refusing
    bucket's index (``NOT_REPLAYED`` after an early stop once more than ``max_throttles`` were
    throttled)."""
    status = np.full(len(prep), _buckets.NOT_REPLAYED, dtype=np.int8)
    buckets = quota_buckets(quota)
    _compiled_loop()(
        prep.arrival_s, prep.end_s, prep.by_end, first_groups(prep, buckets), prep.input_tokens,
        prep.cache_read_tokens, prep.cache_write_tokens, prep.max_tokens, prep.output_tokens,
        prep.burndown, array_columns(buckets), 0.0,
        len(prep) if max_throttles is None else max_throttles, status,
    )  # fmt: skip
    return status


def replay(
    requests: RequestArrays,
    model_id: str,
    quota: QuotaLimits,
    *,
    max_tokens: MaxTokensPolicy = "model default",
    max_tokens_cap: int | None = None,
    burndown: float | None = None,
    serving: ServingModel | None = None,
    failed: FailedPolicy = "demand",
) -> ReplayResult:
    """Replay one model's ``requests`` through ``quota`` (module docstring).

    ``model_id`` selects the burndown and default maximum output in the model table;
    ``max_tokens`` is what requests without a logged max_tokens reserve; ``max_tokens_cap``
    lowers every request's max_tokens to at most that (a what-if: longer outputs are cut to it);
    ``burndown`` overrides the table's; ``serving`` gives the latency of requests with none
    logged (default: the default profile's serving model); ``failed`` says what to do with
    requests that failed in the log.
    """
    prep = prepare(requests, model_id, max_tokens=max_tokens,
                   max_tokens_cap=max_tokens_cap, burndown=burndown, serving=serving,
                   failed=failed)  # fmt: skip
    return summarise(prep, quota, run(prep, quota))


def summarise(prep: Prepared, quota: QuotaLimits, status: NDArray[np.int8]) -> ReplayResult:
    """The `ReplayResult` of a complete run's ``status`` (from `run`)."""
    if np.any(status == _buckets.NOT_REPLAYED):
        raise ReplayError("summarise needs a complete run (run without max_throttles)")
    buckets = quota_buckets(quota)
    kinds = buckets.kinds
    admitted = status < 0
    on_reserved = np.zeros(len(prep), dtype=bool)
    if buckets.reserved_group is not None:
        on_reserved = status == _buckets.admitted_code(buckets.reserved_group)
    minute = (prep.arrival_s // 60.0).astype(np.int64)
    end_minute = (prep.end_s // 60.0).astype(np.int64)
    length = int(max(minute.max(), end_minute[admitted].max(initial=0))) + 1
    reservation = prep.admission_tokens(quota.endpoint)
    charge = prep.settled_tokens(quota.endpoint)
    overflow = prep.reserved_tier & admitted & ~on_reserved

    def per_minute(idx: NDArray[np.int64], weights: NDArray[np.int64] | None = None) -> Any:
        return np.bincount(idx, weights=weights, minlength=length).astype(np.int64)

    series = MinuteSeries(
        requests=per_minute(minute),
        throttled=per_minute(minute[~admitted]),
        reserved_tokens=per_minute(minute, reservation),
        admitted_reserved_tokens=per_minute(minute[admitted], reservation[admitted]),
        settled_tokens=per_minute(end_minute[admitted], charge[admitted]),
        settled_output_tokens=per_minute(end_minute[admitted], prep.output_tokens[admitted]),
        overflowed=per_minute(minute[overflow]),
    )
    n, n_ok = len(prep), int(np.count_nonzero(admitted))
    by_kind: dict[str, int] = dict.fromkeys(RUNTIME_KINDS if quota.endpoint == "runtime"
                                            else MANTLE_KINDS, 0)  # fmt: skip
    for b, kind in enumerate(kinds):
        refused = int(np.count_nonzero(status == b))
        if refused:  # a Reserved bucket never refuses: what it cannot take overflows
            by_kind[kind] = by_kind.get(kind, 0) + refused
    verdicts = np.full(prep.given, -2, dtype=np.int8)
    refused_by = np.full(len(kinds) + 1, -1, dtype=np.int8)  # bucket index → KINDS index
    refused_by[: len(kinds)] = [REJECTION_KINDS.index(k) for k in kinds]
    verdicts[prep.position] = refused_by[np.where(admitted, len(kinds), status)]
    worst = None
    if n_ok < n:
        m = int(np.argmax(series.throttled))
        worst = WorstMinute(m, 60.0 * m, int(series.throttled[m]), int(series.requests[m]),
                            int(series.reserved_tokens[m]))  # fmt: skip
    return ReplayResult(
        model_id=prep.model_id, quota=quota, requests=n, admitted=n_ok, throttled=n - n_ok,
        throttled_share=(n - n_ok) / n, throttled_by_kind=by_kind,
        throttled_minutes=int(np.count_nonzero(series.throttled)), worst_minute=worst,
        peak_reserved_tpm=int(series.reserved_tokens.max()),
        peak_settled_tpm=int(series.settled_tokens.max()), burndown=prep.burndown,
        minutes=series, verdicts=verdicts, notes=(f"quota rule {quota.rule!r}", *prep.notes),
        reserved_requests=int(np.count_nonzero(prep.reserved_tier)),
        admitted_on_reserved=int(np.count_nonzero(on_reserved)),
    )  # fmt: skip
