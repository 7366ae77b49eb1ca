"""The quota rule as data and plain functions, shared by the ledger and the batch replay.

A model's quotas are a few buckets (``BucketColumns``: one entry per bucket, in check order),
in one or more *groups* tried in order (``groups``): Reserved capacity first, then the
on-demand quota its overflow goes to. Each bucket has a group, a capacity, a refill rate, a
slack, and says

- whether it works in fixed 60-second windows (starts full each window) or refills continuously,
- what settlement does with ``reserved − kept``: gives it back when positive (``refunds``) and
  charges it when negative (``debits``: a settlement that keeps more than was taken at
  admission leaves a debt),
- what a request takes at admission: coefficients on the *admission features*
  ``(1, input, cache read, cache write, max_tokens)``,
- what it keeps at settlement: coefficients on the *settlement features*
  ``(1, input, cache read, cache write, output)`` where output is the charged output
  ``burndown × output`` rounded half up (``charged_output``), or the output tokens as they are
  for a bucket with ``raw_output`` (bedrock-mantle's and Reserved capacity's output TPM).

A request names the first group it may use (``first_group``: Reserved-tier requests start at the
Reserved group, every other request at the on-demand one); ``admit_request`` admits it in the
first group all of whose buckets can take it and returns ``admitted_code(group)``; settlement
adjusts only that group's buckets. A group without buckets (unlimited) admits everything.

``QuotaLedger`` (``_ledger.py``, the emulator's live ledger) builds the buckets of a
``QuotaLimits`` and calls these functions with Python lists; the batch replay (``_replay.py``)
compiles these same functions, ``replay_loop`` included, with numba and calls them with numpy
arrays. So both apply the rule with the same code, operation for operation.

A new quota rule is new bucket columns, not a new loop: bedrock-mantle's separate input and
output quotas are two buckets (one taking input + cache write + max_tokens at admission and
keeping input + cache write, one taking nothing at admission and keeping the output: a debt at
settlement), Reserved capacity is a first group of two buckets (input, and output reserved as
max_tokens at admission).

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
    "admitted_code",
    "admitted_group",
    "bring_forward",
    "charge_generated",
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
"""``replay_loop`` status of a request admitted in group 0 (``admitted_code``); a refused one
gets its refusing bucket's index (≥ 0)."""
NOT_REPLAYED = -128
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
    """A model's quota buckets as columns, in the order admission checks them (by group)."""

    groups: int
    """How many groups there are (numbered 0 … groups − 1, tried in that order)."""
    group: Column[int]
    capacity: Column[float]
    rate_per_s: Column[float]
    slack: Column[float]
    """Float rounding of refills must not turn an exact fit into a throttle: a bucket holding
    ``need − slack`` still fits (slack far below one token, see ``_ledger.bucket_columns``)."""
    windowed: Column[bool]
    refunds: Column[bool]
    """Settlement gives back ``reserved − kept`` when it is positive."""
    debits: Column[bool]
    """Settlement charges ``kept − reserved`` when it is positive (a debt)."""
    raw_output: Column[bool]
    """The settlement's output feature is the output tokens, not ``burndown × output``."""
    admit: Column[float]
    """``FEATURES`` coefficients per bucket on ``(1, input, cache read, cache write,
    max_tokens)``."""
    settle: Column[float]
    """``FEATURES`` coefficients per bucket on ``(1, input, cache read, cache write,
    output)``."""


def window_index(now_s: float, origin_s: float) -> int:
    """The fixed 60-s window holding ``now_s`` (window 0 starts at ``origin_s``)."""
    return math.floor((now_s - origin_s) / WINDOW_S)


def charged_output(output_tokens: int, burndown: float) -> int:
    """Quota tokens charged for ``output_tokens``: ``burndown × output`` rounded half up."""
    return math.floor(burndown * output_tokens + 0.5)


def admitted_code(group: int) -> int:
    """The status of a request admitted in ``group``: ``ADMITTED − group`` (always < 0)."""
    return ADMITTED - group


def admitted_group(status: int) -> int:
    """The group that admitted a request from its status (``admitted_code``'s inverse)."""
    return ADMITTED - status


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
    group: int,
    input_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    max_tokens: int,
) -> int:
    """The first bucket of ``group`` that cannot take the request's admission demand, or
    ``ADMITTED``.

    A demand above a bucket's capacity never fits; otherwise it fits when the level holds at
    least ``demand − slack`` (a level may be negative: a debt left by a settlement, which a
    bucket taking nothing at admission must have paid off).
    """
    for b in range(len(levels)):
        if cols.group[b] != group:
            continue
        need = demand(cols.admit, b, 1, input_tokens, cache_read_tokens, cache_write_tokens,
                      max_tokens)  # fmt: skip
        if need > cols.capacity[b] or levels[b] < need - cols.slack[b]:
            return b
    return ADMITTED


def admit_request(
    levels: Levels,
    cols: BucketColumns,
    first_group: int,
    input_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    max_tokens: int,
) -> int:
    """Admit the request in the first group from ``first_group`` on whose buckets can all take
    its demand, taking it from that group's buckets; else take nothing.

    Returns ``admitted_code(group)`` or the index of the bucket that refused it in the last
    group tried (``refusing_bucket``). Call ``bring_forward`` to the admission time first.
    """
    refused = ADMITTED
    for g in range(first_group, cols.groups):
        refused = refusing_bucket(levels, cols, g, input_tokens, cache_read_tokens,
                                  cache_write_tokens, max_tokens)  # fmt: skip
        if refused == ADMITTED:
            for b in range(len(levels)):
                if cols.group[b] == g:
                    levels[b] -= demand(cols.admit, b, 1, input_tokens, cache_read_tokens,
                                        cache_write_tokens, max_tokens)  # fmt: skip
            return admitted_code(g)
    return refused


def _back(
    cols: BucketColumns,
    b: int,
    burndown: float,
    admitted: tuple[int, int, int, int],
    settled: tuple[int, int, int, int],
) -> float:
    """What settlement puts back into bucket ``b``: ``reserved − kept`` where the bucket's
    ``refunds`` (positive) or ``debits`` (negative) allow it, else 0."""
    a_in, a_read, a_write, a_max = admitted
    s_in, s_read, s_write, s_out = settled
    out = s_out if cols.raw_output[b] else charged_output(s_out, burndown)
    back = demand(cols.admit, b, 1, a_in, a_read, a_write, a_max) - demand(
        cols.settle, b, 1, s_in, s_read, s_write, out
    )
    if (back > 0 and cols.refunds[b]) or (back < 0 and cols.debits[b]):
        return back
    return 0.0


def settle_request(
    levels: Levels,
    cols: BucketColumns,
    t_s: float,
    window: int,
    now_s: float,
    origin_s: float,
    group: int,
    burndown: float,
    admitted: tuple[int, int, int, int],
    settled: tuple[int, int, int, int],
) -> tuple[float, int]:
    """Settle a request admitted in ``group`` at ``now_s``; returns the new ``(t_s, window)``.

    ``admitted`` = (input, cache read, cache write, max_tokens) as at admission; ``settled`` =
    (input, cache read, cache write, output tokens). Each of the group's buckets gets back
    ``reserved − kept`` (``_back``). Levels are brought forward to ``now_s`` first, and only
    when something changes. A refund never lifts a level above capacity; a debit may leave a
    debt (a negative level).
    """
    changed = False
    for b in range(len(levels)):
        if cols.group[b] == group and _back(cols, b, burndown, admitted, settled) != 0.0:
            changed = True
    if not changed:
        return t_s, window
    t_s, window = bring_forward(levels, cols, t_s, window, now_s, origin_s)
    for b in range(len(levels)):
        if cols.group[b] == group:
            back = _back(cols, b, burndown, admitted, settled)
            if back != 0.0:
                levels[b] = min(cols.capacity[b], levels[b] + back)
    return t_s, window


def charge_generated(
    levels: Levels, cols: BucketColumns, group: int, burndown: float, output_tokens: int
) -> None:
    """Take ``output_tokens`` generated so far (a negative count gives them back) from the
    group's buckets that count output without reserving it at admission (bedrock-mantle's and
    Reserved capacity's output TPM): output charged as it is generated. A settlement later
    keeps the whole output, so the caller gives back what it charged here just before settling
    (``QuotaLedger.settle``). Levels must be brought forward first; no capacity cap applies."""
    for b in range(len(levels)):
        k = b * FEATURES + 4
        if cols.group[b] == group and cols.admit[k] == 0.0 and cols.settle[k] != 0.0:
            out = output_tokens if cols.raw_output[b] else charged_output(output_tokens, burndown)
            levels[b] -= cols.settle[k] * out


def replay_loop(
    arrival_s: Column[float],
    end_s: Column[float],
    by_end: Column[int],
    first_group: Column[int],
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

    Requests are sorted by arrival (``arrival_s`` non-decreasing); request ``i`` may use the
    groups from ``first_group[i]`` on and settles at ``end_s[i]`` if it was admitted;
    ``by_end`` lists the requests by ``(end_s, index)``. Events run in the order of the key
    (time, request index, arrival before settlement): at equal times, requests that arrived
    earlier settle before later ones are admitted — exactly what a ``QuotaLedger`` does when
    admissions and settlements are fed to it in that order. Writes ``admitted_code(group)`` or
    the refusing bucket's index into ``status``; stops early (the rest stays
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
            if NOT_REPLAYED < status[i] < 0:
                t_s, window = settle_request(
                    levels, cols, t_s, window, end, origin_s, admitted_group(status[i]), burndown,
                    (input_tokens[i], cache_read_tokens[i], cache_write_tokens[i], max_tokens[i]),
                    (input_tokens[i], cache_read_tokens[i], cache_write_tokens[i],
                     output_tokens[i]),
                )  # fmt: skip
        t_s, window = bring_forward(levels, cols, t_s, window, now, origin_s)
        verdict = admit_request(levels, cols, first_group[k], input_tokens[k],
                                cache_read_tokens[k], cache_write_tokens[k],
                                max_tokens[k])  # fmt: skip
        status[k] = verdict
        if verdict >= 0:
            throttled += 1
            if throttled > max_throttles:
                return throttled
    return throttled
