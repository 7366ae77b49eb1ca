"""The quota rule as data and plain functions, shared by the ledger and the batch replay.

A model's quotas are a few buckets (``BucketColumns``: one entry per bucket, in check order).
Each bucket has a capacity, a refill rate, a slack, and says

- whether it works in fixed 60-second windows (starts full each window) or refills continuously,
- whether settlement gives back ``reserved − kept`` (``refunds``),
- what a request takes at admission: coefficients on the *admission features*
  ``(1, input, cache read, cache write, max_tokens)``,
- what it keeps at settlement: coefficients on the *settlement features*
  ``(1, input, cache read, cache write, charged output)`` with charged output =
  ``burndown × output`` rounded half up (``charged_output``).

``QuotaLedger`` (``_ledger.py``, the emulator's live ledger) builds the buckets of a
``QuotaLimits`` and calls these functions with Python lists; the batch replay (``_replay.py``)
compiles these same functions, ``replay_loop`` included, with numba and calls them with numpy
arrays. So both apply the rule with the same code, operation for operation.

A new quota rule is new bucket columns, not a new loop. Separate input and output quotas, for
instance, are two buckets: one taking input + max_tokens at admission (cache reads excluded)
and keeping the input, one taking nothing at admission and keeping the charged output (a
negative refund, i.e. a debt, at settlement). A first bucket whose overflow goes to another
(reserved capacity before on-demand) would add a group per bucket: ``admit_request`` tries the
groups in order, and the status records the group that admitted.

Only what numba compiles is used here: numbers, indexing, ``min``/``max``, ``math.floor``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, TypeVar

__all__ = [
    "ADMITTED",
    "FEATURES",
    "NOT_REPLAYED",
    "WINDOW_S",
    "BucketColumns",
    "admit_request",
    "bring_forward",
    "charged_output",
    "demand",
    "refusing_bucket",
    "replay_loop",
    "settle_request",
    "window_index",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

FEATURES = 5
"""Coefficients per bucket in ``BucketColumns.admit`` and ``.settle`` (flattened, row-major)."""
ADMITTED = -1
"""``replay_loop`` status of an admitted request (a refused one gets its bucket's index)."""
NOT_REPLAYED = -2
"""``replay_loop`` status of a request after an early stop (``max_throttles`` exceeded)."""
WINDOW_S = 60.0
"""The length of a window of the ``window`` rule."""


class Column(Protocol[T_co]):
    """A read-only column: a list (the ledger) or a numpy array (the compiled replay)."""

    def __getitem__(self, index: int, /) -> T_co: ...

    def __len__(self) -> int: ...


class MutableColumn(Protocol[T]):
    """A column updated in place: a model's bucket levels, or the replay's statuses."""

    def __getitem__(self, index: int, /) -> T: ...

    def __setitem__(self, index: int, value: T, /) -> None: ...

    def __len__(self) -> int: ...


Levels = MutableColumn[float]


class BucketColumns(NamedTuple):
    """A model's quota buckets as columns, in the order admission checks them."""

    capacity: Column[float]
    rate_per_s: Column[float]
    slack: Column[float]
    """Float rounding of refills must not turn an exact fit into a throttle: a bucket holding
    ``need − slack`` still fits (slack far below one token, see ``_ledger.bucket_columns``)."""
    windowed: Column[bool]
    refunds: Column[bool]
    admit: Column[float]
    """``FEATURES`` coefficients per bucket on ``(1, input, cache read, cache write,
    max_tokens)``."""
    settle: Column[float]
    """``FEATURES`` coefficients per bucket on ``(1, input, cache read, cache write, charged
    output)``."""


def window_index(now_s: float, origin_s: float) -> int:
    """The fixed 60-s window holding ``now_s`` (window 0 starts at ``origin_s``)."""
    return math.floor((now_s - origin_s) / WINDOW_S)


def charged_output(output_tokens: int, burndown: float) -> int:
    """Quota tokens charged for ``output_tokens``: ``burndown × output`` rounded half up."""
    return math.floor(burndown * output_tokens + 0.5)


def demand(
    coef: Column[float], b: int, f0: float, f1: float, f2: float, f3: float, f4: float
) -> float:
    """Bucket ``b``'s coefficients (``coef``: ``admit`` or ``settle``) applied to features."""
    k = b * FEATURES
    return coef[k] * f0 + coef[k + 1] * f1 + coef[k + 2] * f2 + coef[k + 3] * f3 + coef[k + 4] * f4


def bring_forward(
    levels: Levels, cols: BucketColumns, t_s: float, window: int, now_s: float, origin_s: float
) -> tuple[float, int]:
    """Refill ``levels`` from ``t_s`` to ``now_s``; returns the new ``(t_s, window)``.

    Continuous buckets gain ``rate × dt`` up to their capacity; windowed buckets are full again
    once a new window has started. A clock that steps back refills nothing until it passes
    ``t_s`` again.
    """
    dt = now_s - t_s
    if not dt > 0.0:
        return t_s, window
    index = window_index(now_s, origin_s)
    for b in range(len(levels)):
        if cols.windowed[b]:
            if index > window:
                levels[b] = cols.capacity[b]
        else:
            levels[b] = min(cols.capacity[b], levels[b] + dt * cols.rate_per_s[b])
    return now_s, max(window, index)


def refusing_bucket(
    levels: Levels,
    cols: BucketColumns,
    input_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    max_tokens: int,
) -> int:
    """The first bucket that cannot take the request's admission demand, or ``ADMITTED``.

    A demand above a bucket's capacity never fits; otherwise it fits when the level holds at
    least ``demand − slack`` (a level may be negative: a debt left by a settlement).
    """
    for b in range(len(levels)):
        need = demand(cols.admit, b, 1, input_tokens, cache_read_tokens, cache_write_tokens,
                      max_tokens)  # fmt: skip
        if need > cols.capacity[b] or levels[b] < need - cols.slack[b]:
            return b
    return ADMITTED


def admit_request(
    levels: Levels,
    cols: BucketColumns,
    input_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    max_tokens: int,
) -> int:
    """Take the request's demand from every bucket if all can take it; else take nothing.

    Returns ``ADMITTED`` or the index of the first bucket that refused (``refusing_bucket``).
    Call ``bring_forward`` to the admission time first.
    """
    refused = refusing_bucket(levels, cols, input_tokens, cache_read_tokens, cache_write_tokens,
                              max_tokens)  # fmt: skip
    if refused == ADMITTED:
        for b in range(len(levels)):
            levels[b] -= demand(cols.admit, b, 1, input_tokens, cache_read_tokens,
                                cache_write_tokens, max_tokens)  # fmt: skip
    return refused


def settle_request(
    levels: Levels,
    cols: BucketColumns,
    t_s: float,
    window: int,
    now_s: float,
    origin_s: float,
    admitted: tuple[int, int, int, int],
    settled: tuple[int, int, int, int],
) -> tuple[float, int]:
    """Give back ``reserved − kept`` to the refunding buckets at ``now_s``; returns the new
    ``(t_s, window)``.

    ``admitted`` = (input, cache read, cache write, max_tokens) as at admission; ``settled`` =
    (input, cache read, cache write, charged output). Levels are brought forward to ``now_s``
    first, and only when something is refunded. A refund never lifts a level above capacity; a
    negative one (charged more than reserved) leaves a debt.
    """
    a_in, a_read, a_write, a_max = admitted
    s_in, s_read, s_write, s_out = settled
    refunded = False
    for b in range(len(levels)):
        if cols.refunds[b] and demand(cols.admit, b, 1, a_in, a_read, a_write, a_max) != demand(
            cols.settle, b, 1, s_in, s_read, s_write, s_out
        ):
            refunded = True
    if not refunded:
        return t_s, window
    t_s, window = bring_forward(levels, cols, t_s, window, now_s, origin_s)
    for b in range(len(levels)):
        if cols.refunds[b]:
            back = demand(cols.admit, b, 1, a_in, a_read, a_write, a_max) - demand(
                cols.settle, b, 1, s_in, s_read, s_write, s_out
            )
            levels[b] = min(cols.capacity[b], levels[b] + back)
    return t_s, window


def replay_loop(
    arrival_s: Column[float],
    end_s: Column[float],
    by_end: Column[int],
    input_tokens: Column[int],
    cache_read_tokens: Column[int],
    cache_write_tokens: Column[int],
    max_tokens: Column[int],
    output_tokens: Column[int],
    burndown: float,
    cols: BucketColumns,
    origin_s: float,
    max_throttles: int,
    status: MutableColumn[int],
) -> int:
    """One model's requests through its buckets in virtual time; returns the throttle count.

    Requests are sorted by arrival (``arrival_s`` non-decreasing); request ``i`` settles at
    ``end_s[i]`` if it was admitted; ``by_end`` lists the requests by ``(end_s, index)``. Events
    run in the order of the key (time, request index, arrival before settlement): at equal
    times, requests that arrived earlier settle before later ones are admitted — exactly what a
    ``QuotaLedger`` does when admissions and settlements are fed to it in that order. Writes
    ``ADMITTED`` or the refusing bucket's index into ``status``; stops early (the rest stays
    ``NOT_REPLAYED``) once more than ``max_throttles`` requests were throttled.
    """
    n = len(arrival_s)
    levels = [cols.capacity[b] for b in range(len(cols.capacity))]
    t_s = arrival_s[0] if n > 0 else origin_s
    window = window_index(t_s, origin_s)
    throttled = 0
    j = 0
    for k in range(n):
        now = arrival_s[k]
        while j < n:
            i = by_end[j]
            end = end_s[i]
            if end > now or (end == now and i >= k):
                break
            j += 1
            if status[i] == ADMITTED:
                t_s, window = settle_request(
                    levels, cols, t_s, window, end, origin_s,
                    (input_tokens[i], cache_read_tokens[i], cache_write_tokens[i], max_tokens[i]),
                    (input_tokens[i], cache_read_tokens[i], cache_write_tokens[i],
                     charged_output(output_tokens[i], burndown)),
                )  # fmt: skip
        t_s, window = bring_forward(levels, cols, t_s, window, now, origin_s)
        verdict = admit_request(levels, cols, input_tokens[k], cache_read_tokens[k],
                                cache_write_tokens[k], max_tokens[k])  # fmt: skip
        status[k] = verdict
        if verdict != ADMITTED:
            throttled += 1
            if throttled > max_throttles:
                return throttled
    return throttled
