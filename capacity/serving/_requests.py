"""Logged requests as the batch replay takes them, and what the log does not say, filled in.

`RequestArrays` is the contract with ``capacity.usage`` (which builds it from invocation logs
and traces): one model's requests as numpy columns. `prepare` sorts them by arrival and fills
what is missing, as ``_replay.py``'s docstring states: max_tokens from a policy, latency from
the serving model (`unloaded_latency_s`), failed requests as demand or left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from capacity.errors import CapacityError
from capacity.serving._limits import SERVICE_TIERS, Endpoint
from capacity.serving._models import load_model_table
from capacity.serving._profile import DEFAULT_PROFILE, ServingModel, load_profile, spec_for

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "FailedPolicy",
    "MaxTokensPolicy",
    "Prepared",
    "ReplayError",
    "RequestArrays",
    "prepare",
    "stable_argsort",
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
    NaN when unknown); ``ok`` (bool: the request succeeded in the log); optionally
    ``service_tier`` (each request's tier, a name of `SERVICE_TIERS` or its index there; None:
    all Standard). Columns are converted to float64 / int64 / bool (tiers: int8 indices) numpy
    arrays; raises `ReplayError` naming a bad column.
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
    service_tier: NDArray[Any] | None = None

    def __post_init__(self) -> None:
        """Convert and check every column (module docstring)."""
        n = len(np.asarray(self.arrival_s))
        if self.service_tier is not None:
            object.__setattr__(self, "service_tier", _tier_codes(self.service_tier, n))
        for f in fields(self):
            if f.name == "service_tier":
                continue
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
        taken = object.__new__(RequestArrays)  # the columns are valid already: no new checks
        for f in fields(self):
            col = getattr(self, f.name)
            object.__setattr__(taken, f.name, None if col is None else col[index])
        return taken

    def reserved_tier(self) -> NDArray[np.bool_]:
        """Which requests asked for the Reserved tier."""
        if self.service_tier is None:
            return np.zeros(len(self), dtype=bool)
        out: NDArray[np.bool_] = self.service_tier == SERVICE_TIERS.index("reserved")
        return out


def _tier_codes(values: Any, n: int) -> NDArray[np.int8]:
    """Tier names or indices as int8 indices into `SERVICE_TIERS` (``ReplayError`` if bad)."""
    raw = np.asarray(values)
    if raw.ndim != 1 or len(raw) != n:
        raise ReplayError(f"RequestArrays.service_tier has shape {raw.shape}; it must be 1-D "
                          f"with {n} values (one per request)")  # fmt: skip
    if raw.dtype.kind in "iu":
        codes = raw.astype(np.int64)
        if n and (codes.min() < 0 or codes.max() >= len(SERVICE_TIERS)):
            raise ReplayError(f"RequestArrays.service_tier indices must be 0 to "
                              f"{len(SERVICE_TIERS) - 1} ({', '.join(SERVICE_TIERS)})")  # fmt: skip
        return codes.astype(np.int8)
    names = raw.astype(str)
    bad = sorted(set(names.tolist()) - set(SERVICE_TIERS))
    if bad:
        raise ReplayError(f"RequestArrays.service_tier has {bad[0]!r}: use one of "
                          f"{', '.join(SERVICE_TIERS)}")  # fmt: skip
    lookup = {t: i for i, t in enumerate(SERVICE_TIERS)}
    return np.fromiter((lookup[t] for t in names.tolist()), dtype=np.int8, count=n)


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
    reserved_tier: NDArray[np.bool_]
    """Which requests asked for the Reserved tier (they use Reserved capacity first)."""
    position: NDArray[np.int64]
    """Each replayed request's position in the `RequestArrays` it came from."""
    given: int
    """How many requests that `RequestArrays` held (failed ones left out included)."""

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def reservation(self) -> NDArray[np.int64]:
        """Each request's TPM/TPD reservation on bedrock-runtime."""
        total: NDArray[np.int64] = (
            self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.max_tokens
        )
        return total

    @property
    def charge(self) -> NDArray[np.int64]:
        """Each request's settled charge on bedrock-runtime (input + cache write + burndown ×
        output)."""
        out = np.floor(self.burndown * self.output_tokens + 0.5).astype(np.int64)
        charged: NDArray[np.int64] = self.input_tokens + self.cache_write_tokens + out
        return charged

    def admission_tokens(self, endpoint: Endpoint) -> NDArray[np.int64]:
        """What each request takes from its (input) token quota at admission: the reservation
        on bedrock-runtime; input + cache write + max_tokens on bedrock-mantle (cache reads
        excluded)."""
        if endpoint == "runtime":
            return self.reservation
        total: NDArray[np.int64] = self.input_tokens + self.cache_write_tokens + self.max_tokens
        return total

    def settled_tokens(self, endpoint: Endpoint) -> NDArray[np.int64]:
        """What each request's settlement counts: `charge` on bedrock-runtime; input + cache
        write + output on bedrock-mantle."""
        if endpoint == "runtime":
            return self.charge
        total: NDArray[np.int64] = self.input_tokens + self.cache_write_tokens + self.output_tokens
        return total


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
    if max_tokens != "model default" and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
    ):
        raise ReplayError(
            f"max_tokens policy must be a token count >= 0 or 'model default'; got {max_tokens!r}"
        )
    notes: list[str] = []
    if load_model_table().model(model_id) is None:
        notes.append(
            f"{model_id} is not in the model table: burndown {spec.burndown:g} and a maximum "
            f"output of {spec.max_output_tokens:,} tokens assumed"
        )
    n_failed = int(np.count_nonzero(~requests.ok))
    kept = np.arange(len(requests), dtype=np.int64)
    if n_failed and failed == "exclude":
        kept = kept[requests.ok]
        notes.append(f"{n_failed:,} requests that failed in the log were left out")
    if len(kept) == 0:
        raise ReplayError(f"no requests to replay for model {model_id!r}")
    position = kept[stable_argsort(requests.arrival_s[kept])]
    in_order = len(position) == len(requests) and bool(np.all(position[1:] > position[:-1]))
    r = requests if in_order else requests.take(position)
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
        # nearly sorted already (latencies are short next to the log's span): timsort is fast
        by_end=np.argsort(end, kind="stable").astype(np.int64, copy=False),
        input_tokens=r.input_tokens, cache_read_tokens=r.cache_read_tokens,
        cache_write_tokens=r.cache_write_tokens, max_tokens=mx,
        output_tokens=np.ascontiguousarray(output, dtype=np.int64), burndown=bd,
        notes=tuple(notes), reserved_tier=r.reserved_tier(), position=position,
        given=len(requests),
    )  # fmt: skip


def stable_argsort(keys: NDArray[np.float64]) -> NDArray[np.int64]:
    """``np.argsort(keys, kind="stable")``, faster on shuffled or sorted keys (2x and 10x on
    10 M timestamps): an unstable sort, then each run of equal keys put back in index order
    (one small sort of the tied positions by (run, index))."""
    n = len(keys)
    order = np.argsort(keys, kind="quicksort").astype(np.int64, copy=False)
    ranked = keys[order]
    tie = ranked[1:] == ranked[:-1]  # position i + 1 holds the same key as position i
    if not np.any(tie):
        return order
    tied = np.zeros(n, dtype=bool)
    tied[1:] |= tie
    tied[:-1] |= tie
    at = np.flatnonzero(tied)
    run = np.cumsum(np.concatenate(([True], ~tie)))[at]  # runs are contiguous, in key order
    order[at] = order[at][np.argsort(run * n + order[at], kind="quicksort")]
    return order


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
        fill, why = model_default, f"the model's maximum output ({model_default:,})"
    else:
        fill, why = policy, f"max_tokens {policy:,} (the given policy)"
    notes.append(
        f"{int(np.count_nonzero(unknown)):,} requests of {model_id} have no logged max_tokens: "
        f"they reserve {why}"
    )
    return np.where(unknown, fill, logged)
