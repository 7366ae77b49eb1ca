"""Logged traffic replayed through the quota ledger in virtual time (docs/architecture.md,
"Quota rules", "Replaying traffic").

The replay is the ledger, batched: the same rule functions (``_buckets.py``) that `QuotaLedger`
runs live, compiled with numba and driven by every request of one model in time order.

- **Admission** at ``arrival_s``: the reservation input + cache read + cache write + max_tokens
  (the logged max_tokens; when the log does not know it, the ``max_tokens`` policy: a number, or
  ``"model default"`` = the model table's ``max_output_tokens``, what an unset max_tokens
  reserves on Bedrock) against RPM, TPM and TPD, as the ledger checks them.
- **Settlement** at ``arrival_s + latency_s`` (the logged latency; when unknown, the serving
  model's unloaded latency, ``unloaded_latency_s``): charge input + cache write + burndown ×
  output (rounded half up, burndown from the model table), ``reserved − charged`` back into TPM
  (rule "bucket") and TPD.
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

import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from capacity.errors import CapacityError
from capacity.serving import _buckets
from capacity.serving._ledger import REJECTION_KINDS, QuotaBuckets, QuotaLimits, quota_buckets
from capacity.serving._profile import DEFAULT_PROFILE, ServingModel, load_profile, spec_for

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "FailedPolicy",
    "MaxTokensPolicy",
    "MinuteSeries",
    "ReplayError",
    "ReplayResult",
    "RequestArrays",
    "WorstMinute",
    "replay",
    "unloaded_latency_s",
]

MaxTokensPolicy = int | Literal["model default"]
"""What a request whose log does not say its max_tokens reserves: a number of tokens, or the
model's maximum output from the model table (Bedrock reserves that when max_tokens is unset)."""
FailedPolicy = Literal["demand", "exclude"]
"""How requests that failed in the log are replayed: as demand, or not at all."""


class ReplayError(CapacityError, ValueError):
    """Requests or replay options that cannot be replayed; the message names them and the fix."""


_FLOATS = ("arrival_s", "latency_s")
_INTS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "max_tokens")


@dataclass(frozen=True, eq=False)
class RequestArrays:
    """One model's logged requests as columns of equal length (any order).

    ``arrival_s``: seconds from the log's first request (float, ≥ 0); token counts (int ≥ 0):
    ``input_tokens`` (not cached), ``cache_read_tokens``, ``cache_write_tokens``,
    ``output_tokens``; ``max_tokens`` (int, −1 when the log does not say); ``latency_s`` (float,
    NaN when unknown); ``ok`` (bool: the request succeeded in the log). Columns are converted to
    float64 / int64 / bool numpy arrays; raises `ReplayError` naming a bad column.
    """

    # Any array-like of the right kind goes in; float64 / int64 / bool arrays come out.
    arrival_s: NDArray[Any]
    input_tokens: NDArray[Any]
    cache_read_tokens: NDArray[Any]
    cache_write_tokens: NDArray[Any]
    output_tokens: NDArray[Any]
    max_tokens: NDArray[Any]
    latency_s: NDArray[Any]
    ok: NDArray[Any]

    def __post_init__(self) -> None:
        """Convert and check every column (module docstring)."""
        n = len(np.asarray(self.arrival_s))
        for f in fields(self):
            raw = np.asarray(getattr(self, f.name))
            if raw.ndim != 1 or len(raw) != n:
                raise ReplayError(
                    f"RequestArrays.{f.name} has shape {raw.shape}; every column must be 1-D "
                    f"with {n} values (one per request)"
                )
            if f.name in _INTS and raw.dtype.kind not in "iub":
                raise ReplayError(
                    f"RequestArrays.{f.name} has dtype {raw.dtype}; token counts must be "
                    "integers (drop requests with missing counts before replaying)"
                )
            dtype = np.float64 if f.name in _FLOATS else np.bool_ if f.name == "ok" else np.int64
            object.__setattr__(self, f.name, np.ascontiguousarray(raw, dtype=dtype))
        if not np.all(np.isfinite(self.arrival_s) & (self.arrival_s >= 0)):
            raise ReplayError("RequestArrays.arrival_s must be finite and >= 0 (seconds from "
                              "the log's first request)")  # fmt: skip
        for name in _INTS:
            lowest = -1 if name == "max_tokens" else 0
            col: NDArray[np.int64] = getattr(self, name)
            if n and int(col.min()) < lowest:
                raise ReplayError(f"RequestArrays.{name} has a value below {lowest}; token "
                                  "counts must be >= 0 (max_tokens -1 when unknown)")  # fmt: skip
        lat = self.latency_s
        if np.any(lat[~np.isnan(lat)] < 0) or np.any(np.isinf(lat)):
            raise ReplayError("RequestArrays.latency_s must be >= 0 and finite, or NaN when "
                              "unknown")  # fmt: skip

    def __len__(self) -> int:
        return len(self.arrival_s)

    def take(self, index: NDArray[Any]) -> RequestArrays:
        """The requests selected by ``index`` (a boolean mask or positions), in that order."""
        return RequestArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True, eq=False)
class MinuteSeries:
    """Per-minute totals of a replay; minute ``m`` covers ``[60·m, 60·m + 60)`` s.

    ``requests``, ``throttled`` and ``reserved_tokens`` (every request's reservation: the
    traffic's demand) by arrival minute; ``admitted_reserved_tokens`` (the admitted requests'
    reservations) by arrival minute; ``settled_tokens`` (the admitted requests' charges) by
    settlement minute.
    """

    requests: NDArray[np.int64]
    throttled: NDArray[np.int64]
    reserved_tokens: NDArray[np.int64]
    admitted_reserved_tokens: NDArray[np.int64]
    settled_tokens: NDArray[np.int64]

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
    busiest minute of settled charges of admitted requests.
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
    ("tokens", "requests", "tokens_per_day") of the quota that refused it; ``-2`` left out
    (``failed="exclude"``). Not in ``to_dict``."""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (the per-minute series as lists)."""
        q = self.quota
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        del out["verdicts"]
        out["quota"] = {"tpm": q.tpm, "rpm": q.rpm, "tpd": q.tpd, "rule": q.rule}
        out["worst_minute"] = None if self.worst_minute is None else vars(self.worst_minute)
        out["minutes"] = self.minutes.to_dict()
        out["notes"] = list(self.notes)
        return out


def unloaded_latency_s(
    model: ServingModel, prompt_tokens: NDArray[np.int64], output_tokens: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Seconds from arrival to last token of each request alone on an idle replica of ``model``
    — what ``Cluster`` computes for one request, in closed form, without jitter.

    Gateway ``α0 + α_in·P``; prefill in ``⌈P / chunk⌉`` steps of ``max(t_w, c_f·chunk)`` (one
    step of ``t_w`` when P = 0); then ``O − 1`` decode steps ``c_b + max(t_w + c·ctx, c_f)``
    with ``c = max(c_a, c_kv)`` and ``ctx = P + 1, …, P + O − 1`` (P prompt tokens, O output
    tokens).
    """
    p = np.asarray(prompt_tokens, dtype=np.float64)
    m = np.maximum(np.asarray(output_tokens, dtype=np.float64) - 1.0, 0.0)  # decode steps
    chunk = float(model.chunk_budget_tokens)
    full = np.floor(np.maximum(p - 1.0, 0.0) / chunk)  # chunks before the last one
    prefill = full * max(model.t_w_s, model.c_f_s * chunk) + np.maximum(
        model.t_w_s, model.c_f_s * (p - full * chunk)
    )
    c = max(model.c_a_s, model.c_kv_s)
    a = model.t_w_s + c * (p + 1.0)  # the first decode step's memory time
    if c > 0:  # decode steps where compute (c_f) exceeds memory time: the first s of them
        s = np.clip(np.ceil((model.c_f_s - a) / c), 0.0, m)
    else:
        s = np.where(a < model.c_f_s, m, 0.0)
    decode = m * model.c_b_s + s * model.c_f_s + (m - s) * a + c * (s + m - 1.0) * (m - s) / 2.0
    out: NDArray[np.float64] = model.alpha0_s + model.alpha_in_s * p + prefill + decode
    return out


@dataclass(frozen=True, eq=False)
class Prepared:
    """One model's requests ready for the kernel: sorted by arrival, with settlement times."""

    model_id: str
    arrival_s: NDArray[np.float64]
    end_s: NDArray[np.float64]
    by_end: NDArray[np.int64]
    input_tokens: NDArray[np.int64]
    cache_read_tokens: NDArray[np.int64]
    cache_write_tokens: NDArray[np.int64]
    max_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    burndown: float
    notes: tuple[str, ...]
    position: NDArray[np.int64]
    """Each replayed request's position in the `RequestArrays` it came from."""
    given: int
    """How many requests that `RequestArrays` held (failed ones left out included)."""

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def reservation(self) -> NDArray[np.int64]:
        """Each request's TPM/TPD reservation."""
        total: NDArray[np.int64] = (
            self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.max_tokens
        )
        return total

    @property
    def charge(self) -> NDArray[np.int64]:
        """Each request's settled charge (input + cache write + burndown × output)."""
        out = np.floor(self.burndown * self.output_tokens + 0.5).astype(np.int64)
        charged: NDArray[np.int64] = self.input_tokens + self.cache_write_tokens + out
        return charged


def prepare(
    requests: RequestArrays,
    model_id: str,
    *,
    max_tokens: MaxTokensPolicy = "model default",
    max_tokens_cap: int | None = None,
    burndown: float | None = None,
    serving: ServingModel | None = None,
    failed: FailedPolicy = "demand",
) -> Prepared:
    """Sort ``requests`` by arrival and fill what the log lacks (module docstring); see
    `replay` for the options."""
    spec = spec_for(model_id)
    bd = spec.burndown if burndown is None else float(burndown)
    if not 0.0 < bd < math.inf:
        raise ReplayError(f"burndown must be positive and finite; got {burndown!r}")
    if failed not in ("demand", "exclude"):
        raise ReplayError(f"failed must be 'demand' or 'exclude'; got {failed!r}")
    notes: list[str] = []
    n_failed = int(np.count_nonzero(~requests.ok))
    kept = np.arange(len(requests), dtype=np.int64)
    if n_failed and failed == "exclude":
        kept = kept[requests.ok]
        notes.append(f"{n_failed:,} requests that failed in the log were left out")
    if len(kept) == 0:
        raise ReplayError(f"no requests to replay for model {model_id!r}")
    position = kept[np.argsort(requests.arrival_s[kept], kind="stable")]
    r = requests.take(position)
    output, latency = r.output_tokens, r.latency_s
    if n_failed and failed == "demand":
        ok_out = r.output_tokens[r.ok]
        median = int(np.floor(np.median(ok_out) + 0.5)) if len(ok_out) else 0
        output = np.where(r.ok, output, median)
        latency = np.where(r.ok, latency, np.nan)
        notes.append(
            f"{n_failed:,} requests that failed in the log are replayed as demand: their logged "
            f"input and max_tokens, {median:,} output tokens (the median of the successful "
            "ones) and the serving model's latency"
        )
    mx = _max_tokens(r.max_tokens, max_tokens, spec.max_output_tokens, model_id, notes)
    if max_tokens_cap is not None:
        if max_tokens_cap < 0:
            raise ReplayError(f"max_tokens_cap must be >= 0; got {max_tokens_cap}")
        cut = int(np.count_nonzero(output > max_tokens_cap))
        mx = np.minimum(mx, max_tokens_cap)
        output = np.minimum(output, max_tokens_cap)
        notes.append(
            f"max_tokens capped at {max_tokens_cap:,}: {cut:,} outputs ({100 * cut / len(r):.2f} "
            "%) are cut to it (their logged latency is kept)"
        )
    unknown = np.isnan(latency)
    if np.any(unknown):
        model = serving or load_profile(DEFAULT_PROFILE).serving
        prompt = r.input_tokens + r.cache_read_tokens + r.cache_write_tokens
        est = unloaded_latency_s(model, prompt[unknown], output[unknown])
        latency = latency.copy()
        latency[unknown] = est
        source = "the given serving model" if serving else f"profile {DEFAULT_PROFILE!r}"
        notes.append(
            f"{int(np.count_nonzero(unknown)):,} requests have no logged latency: they settle "
            f"after the unloaded latency of {source} (cached prompt tokens counted as prefill)"
        )
    end = r.arrival_s + latency
    return Prepared(
        model_id=model_id, arrival_s=r.arrival_s, end_s=end,
        by_end=np.argsort(end, kind="stable").astype(np.int64),
        input_tokens=r.input_tokens, cache_read_tokens=r.cache_read_tokens,
        cache_write_tokens=r.cache_write_tokens, max_tokens=mx,
        output_tokens=np.ascontiguousarray(output, dtype=np.int64), burndown=bd,
        notes=tuple(notes), position=position, given=len(requests),
    )  # fmt: skip


def _max_tokens(
    logged: NDArray[np.int64],
    policy: MaxTokensPolicy,
    model_default: int,
    model_id: str,
    notes: list[str],
) -> NDArray[np.int64]:
    unknown = logged < 0
    if not np.any(unknown):
        return logged
    if policy == "model default":
        fill, why = model_default, f"the model's maximum output ({model_default:,}, model table)"
    elif isinstance(policy, int) and not isinstance(policy, bool) and policy >= 0:
        fill, why = policy, f"max_tokens {policy:,} (the given policy)"
    else:
        raise ReplayError(
            f"max_tokens policy must be a token count >= 0 or 'model default'; got {policy!r}"
        )
    notes.append(
        f"{int(np.count_nonzero(unknown)):,} requests of {model_id} have no logged max_tokens: "
        f"they reserve {why}"
    )
    return np.where(unknown, fill, logged)


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
    for name in ("window_index", "charged_output", "demand", "bring_forward",
                 "refusing_bucket", "admit_request", "settle_request", "replay_loop"):  # fmt: skip
        fn = getattr(_buckets, name)
        copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
        copy.__qualname__ = fn.__qualname__
        namespace[name] = numba.njit(cache=True)(copy)
    loop: Callable[..., int] = namespace["replay_loop"]
    return loop


def array_columns(buckets: QuotaBuckets) -> _buckets.BucketColumns:
    """``buckets``' columns as the numpy arrays the compiled loop takes."""
    c = buckets.columns
    f8 = np.float64
    return _buckets.BucketColumns(
        capacity=np.asarray(c.capacity, dtype=f8).reshape(-1),
        rate_per_s=np.asarray(c.rate_per_s, dtype=f8).reshape(-1),
        slack=np.asarray(c.slack, dtype=f8).reshape(-1),
        windowed=np.asarray(c.windowed, dtype=np.bool_).reshape(-1),
        refunds=np.asarray(c.refunds, dtype=np.bool_).reshape(-1),
        admit=np.asarray(c.admit, dtype=f8).reshape(-1),
        settle=np.asarray(c.settle, dtype=f8).reshape(-1),
    )


def run(prep: Prepared, quota: QuotaLimits, max_throttles: int | None = None) -> NDArray[np.int8]:
    """Statuses in arrival order: ``_buckets.ADMITTED`` or the refusing bucket's index
    (``NOT_REPLAYED`` after an early stop once more than ``max_throttles`` were throttled)."""
    status = np.full(len(prep), _buckets.NOT_REPLAYED, dtype=np.int8)
    _compiled_loop()(
        prep.arrival_s, prep.end_s, prep.by_end, prep.input_tokens, prep.cache_read_tokens,
        prep.cache_write_tokens, prep.max_tokens, prep.output_tokens, prep.burndown,
        array_columns(quota_buckets(quota)), 0.0,
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
    kinds = quota_buckets(quota).kinds
    admitted = status == _buckets.ADMITTED
    minute = (prep.arrival_s // 60.0).astype(np.int64)
    end_minute = (prep.end_s // 60.0).astype(np.int64)
    length = int(max(minute.max(), end_minute[admitted].max(initial=0))) + 1
    reservation, charge = prep.reservation, prep.charge

    def per_minute(idx: NDArray[np.int64], weights: NDArray[np.int64] | None = None) -> Any:
        return np.bincount(idx, weights=weights, minlength=length).astype(np.int64)

    series = MinuteSeries(
        requests=per_minute(minute),
        throttled=per_minute(minute[~admitted]),
        reserved_tokens=per_minute(minute, reservation),
        admitted_reserved_tokens=per_minute(minute[admitted], reservation[admitted]),
        settled_tokens=per_minute(end_minute[admitted], charge[admitted]),
    )
    n, n_ok = len(prep), int(np.count_nonzero(admitted))
    by_kind: dict[str, int] = dict.fromkeys(REJECTION_KINDS, 0)
    for b, kind in enumerate(kinds):
        by_kind[kind] += int(np.count_nonzero(status == b))
    verdicts = np.full(prep.given, -2, dtype=np.int8)
    refused_by = np.full(len(kinds) + 1, -1, dtype=np.int8)  # bucket index → KINDS index
    refused_by[: len(kinds)] = [REJECTION_KINDS.index(k) for k in kinds]
    verdicts[prep.position] = refused_by[status]  # status -1 (admitted) picks the last: -1
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
    )  # fmt: skip
