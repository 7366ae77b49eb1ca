"""Bedrock quota enforcement for the emulator: tokens and requests per minute, tokens per day.

The rule
--------
Every model id string has its own quotas (``us.x`` and ``x`` are separate, as cross-Region
profiles are on Bedrock). Each configured quota is a continuous token bucket that starts full:

==========  ==========  ===================  ============================================
bucket      capacity    refill (per second)  a request takes
==========  ==========  ===================  ============================================
TPM         ``tpm``     ``tpm / 60``         its reservation, then settles (below)
RPM         ``rpm``     ``rpm / 60``         1, at admission
TPD         ``tpd``     ``tpd / 86400``      the same tokens as TPM
==========  ==========  ===================  ============================================

**Admission.** A request reserves ``input_tokens + max_tokens`` tokens. It is admitted only if
the RPM bucket holds at least 1, the TPM bucket at least the reservation and the TPD bucket at
least the reservation, checked in that order; the first that falls short rejects the request,
and a rejection takes nothing from any bucket. A reservation larger than a bucket's capacity can
never fit and is rejected as "tokens" (TPM) or "tokens_per_day" (TPD) with ``retry_after_s``
infinite — Bedrock throttles a huge ``max_tokens`` the same way.

**Settlement.** When a request ends, it is charged ``input_tokens + burndown × output_tokens``
(rounded half up; ``burndown`` is 5 for Claude 3.7 Sonnet and the Claude 4 family, 1 for others)
and ``reserved − charged`` goes back into the TPM and TPD buckets. A request that fails before
producing output settles with ``output_tokens=0``, which returns its whole ``max_tokens``.

**Limits of a level.** A level never rises above its capacity (refills and refunds beyond it are
lost) but may fall below zero when a settlement charges more than was reserved; that debt must
refill before the next admission. ``Rejection.retry_after_s`` is the time until the failing
bucket alone would hold enough, ignoring the other buckets and requests still to settle.

**The alternative rule** (``rule="window"``). How Bedrock adjusts a reservation while a request
runs is not published. If your real throttles come earlier than the bucket predicts, switch to
the per-minute window: TPM and RPM count against fixed 60-second windows (from the ledger's first
reading), a request's whole reservation stays charged to the window that admitted it (no early
refund), and each window starts empty. TPD keeps the bucket rule. The planner follows the same
option (``Quota.rule``); docs/architecture.md, "Quota rules", states both.

**One set of rules.** The arithmetic above lives in ``_buckets.py`` as data — each quota a
bucket with what it takes at admission and keeps at settlement (`quota_buckets`) — and plain
functions that this ledger calls and that the batch replay of logged traffic (``_replay.py``)
runs compiled, so both decide identically. ``input_tokens`` here is the whole prompt, cached
tokens included; the replay also counts cache reads and writes apart (reserved, but only cache
writes are kept at settlement).

TPD refills at the same rate as TPM when it has Bedrock's default value (``tpm × 1440``), so it
can only bind when set lower, as it is for new accounts. Time comes from the ``clock`` the ledger
is given, so the same ledger serves the live server (``time.monotonic``) and virtual-time
studies. A ledger is not thread-safe: use it from one thread (the server's event loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from capacity.serving._buckets import (
    ADMITTED,
    WINDOW_S,
    BucketColumns,
    admit_request,
    bring_forward,
    charged_output,
    demand,
    settle_request,
    window_index,
)

__all__ = [
    "QUOTA_RULES",
    "REJECTION_KINDS",
    "THROTTLE_MESSAGES",
    "Admission",
    "QuotaBuckets",
    "QuotaLedger",
    "QuotaLimits",
    "QuotaRule",
    "Rejection",
    "RejectionKind",
    "quota_buckets",
]

QuotaRule = Literal["bucket", "window"]
"""How TPM and RPM are enforced: a refilling token bucket with refunds at settlement (default),
or a per-minute window that keeps whole reservations (the conservative alternative)."""

QUOTA_RULES: Final[tuple[QuotaRule, ...]] = ("bucket", "window")

RejectionKind = Literal["tokens", "requests", "tokens_per_day"]
"""Which quota refused a request: TPM, RPM or TPD."""

REJECTION_KINDS: Final[tuple[RejectionKind, ...]] = ("tokens", "requests", "tokens_per_day")

THROTTLE_MESSAGES: Final[dict[RejectionKind, str]] = {
    "tokens": "Too many tokens, please wait before trying again.",
    "requests": "Too many requests, please wait before trying again.",
    "tokens_per_day": "Too many tokens per day, please wait before trying again.",
}
"""Bedrock's exact ThrottlingException message for each kind of rejection."""


@dataclass(frozen=True)
class QuotaLimits:
    """The quotas of every model id: tokens per minute, requests per minute, tokens per day.

    None means unlimited. Raises ValueError naming the field if a limit is not positive.
    """

    tpm: int | None = None
    rpm: int | None = None
    tpd: int | None = None
    rule: QuotaRule = "bucket"

    def __post_init__(self) -> None:
        """Reject zero, negative and non-finite limits, and unknown rules."""
        if self.rule not in QUOTA_RULES:
            raise ValueError(f"QuotaLimits.rule must be one of {QUOTA_RULES}; got {self.rule!r}")
        for name in ("tpm", "rpm", "tpd"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ValueError(
                    f"QuotaLimits.{name} must be a positive number, or None for unlimited; "
                    f"got {value!r}"
                )


@dataclass(frozen=True)
class Admission:
    """An admitted request's reservation; pass this same object to `QuotaLedger.settle` once."""

    model_id: str
    reserved_tokens: int
    """``input_tokens + max_tokens``, taken from the TPM and TPD buckets."""
    admitted_at_s: float
    """The ledger's clock at admission."""


@dataclass(frozen=True)
class Rejection:
    """A throttled request: which quota refused it, Bedrock's message, and when to retry."""

    model_id: str
    kind: RejectionKind
    message: str
    """Bedrock's exact text for ``kind`` (see `THROTTLE_MESSAGES`)."""
    retry_after_s: float
    """Seconds until the failing bucket alone would hold enough; ``math.inf`` if it never can."""


@dataclass(frozen=True)
class QuotaBuckets:
    """The buckets a `QuotaLimits` puts on every model id, as the rule functions read them.

    ``names`` ("rpm", "tpm", "tpd") and ``kinds`` (the `RejectionKind` of a refusal) per bucket,
    in check order; ``columns`` the numbers (``capacity/serving/_buckets.py``). Unlimited
    quotas have no bucket.
    """

    names: tuple[str, ...]
    kinds: tuple[RejectionKind, ...]
    periods_s: tuple[float, ...]
    columns: BucketColumns


# What a request takes at admission, per admission feature (1, input, cache read, cache write,
# max_tokens), and keeps at settlement, per settlement feature (1, input, cache read, cache
# write, charged output): the module docstring's rule.
_ONE_REQUEST = (1.0, 0.0, 0.0, 0.0, 0.0)
_RESERVATION = (0.0, 1.0, 1.0, 1.0, 1.0)  # input + cache read + cache write + max_tokens
_SETTLEMENT = (0.0, 1.0, 0.0, 1.0, 1.0)  # input + cache write + burndown × output


def quota_buckets(limits: QuotaLimits) -> QuotaBuckets:
    """The buckets of ``limits`` in check order: RPM, TPM, TPD (unlimited ones left out)."""
    window = limits.rule == "window"
    specs: list[tuple[str, RejectionKind, float | None, float, bool, bool, tuple[float, ...],
                      tuple[float, ...]]] = [
        ("rpm", "requests", limits.rpm, 60.0, window, False, _ONE_REQUEST, _ONE_REQUEST),
        ("tpm", "tokens", limits.tpm, 60.0, window, not window, _RESERVATION, _SETTLEMENT),
        ("tpd", "tokens_per_day", limits.tpd, 86400.0, False, True, _RESERVATION, _SETTLEMENT),
    ]  # fmt: skip
    kept = [s for s in specs if s[2] is not None]
    capacity = [float(s[2]) for s in kept if s[2] is not None]
    rate = [c / s[3] for c, s in zip(capacity, kept, strict=True)]
    columns = BucketColumns(
        capacity=capacity,
        rate_per_s=rate,
        # Float rounding of refills (worse with large clock readings) must not turn an exact
        # fit into a throttle. The slack is far below one token, so integer arithmetic stays
        # exact.
        slack=[min(0.5, 1e-6 + 1e-12 * c + 1e-8 * r) for c, r in zip(capacity, rate, strict=True)],
        windowed=[s[4] for s in kept],
        refunds=[s[5] for s in kept],
        admit=[x for s in kept for x in s[6]],
        settle=[x for s in kept for x in s[7]],
    )
    return QuotaBuckets(
        tuple(s[0] for s in kept), tuple(s[1] for s in kept), tuple(s[3] for s in kept), columns
    )


class _State:
    """One model's bucket levels (in ``QuotaBuckets`` order) as of clock time ``t_s``."""

    __slots__ = ("levels", "t_s", "window")

    def __init__(self, levels: list[float], t_s: float, window: int) -> None:
        self.levels = levels
        self.t_s = t_s
        self.window = window  # the current 60-s window's index (windowed buckets only)


class QuotaLedger:
    """Admits and settles requests against per-model quota buckets (rule: module docstring).

    ``limits`` is the `QuotaLimits` it enforces, the same for every model id. The arithmetic is
    ``capacity/serving/_buckets.py``'s, which the batch replay (``replay``) runs compiled.
    """

    def __init__(self, limits: QuotaLimits, clock: Callable[[], float]) -> None:
        """Enforce ``limits`` for every model id, reading time in seconds from ``clock``."""
        self.limits = limits
        self._clock = clock
        self._buckets = quota_buckets(limits)
        cap = self._buckets.columns.capacity
        self._full = [cap[b] for b in range(len(cap))]  # a model's levels when first seen
        self._states: dict[str, _State] = {}
        self._origin_s: float | None = None  # the window rule's t = 0: the first clock reading
        # Open admissions by identity, with their (input, max_tokens): settling twice, or
        # settling another ledger's admission, would silently refund tokens never reserved here.
        self._open: dict[int, tuple[Admission, int, int]] = {}

    def admit(self, model_id: str, input_tokens: int, max_tokens: int) -> Admission | Rejection:
        """Reserve ``input_tokens + max_tokens`` and one request, or say which quota refuses."""
        if input_tokens < 0 or max_tokens < 0:
            raise ValueError(
                f"input_tokens and max_tokens must be >= 0; got {input_tokens}, {max_tokens}"
            )
        now = self._clock()
        st = self._brought_forward(model_id, now)
        refused = admit_request(st.levels, self._buckets.columns, input_tokens, 0, 0, max_tokens)
        if refused != ADMITTED:
            return self._rejection(model_id, st, now, refused, input_tokens, max_tokens)
        admission = Admission(model_id, input_tokens + max_tokens, now)
        self._open[id(admission)] = (admission, input_tokens, max_tokens)
        return admission

    def settle(
        self, admission: Admission, input_tokens: int, output_tokens: int, burndown: float = 1.0
    ) -> int:
        """Charge a finished request and return ``reserved − charged`` to its buckets.

        Returns the tokens charged, ``input_tokens + burndown × output_tokens`` rounded half up.
        Raises ValueError for negative token counts, a burndown that is not positive and finite,
        or an admission that is not open on this ledger (already settled, or not from `admit`).
        """
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError(
                f"input_tokens and output_tokens must be >= 0; got {input_tokens}, {output_tokens}"
            )
        if not 0.0 < burndown < math.inf:
            raise ValueError(f"burndown must be positive and finite; got {burndown!r}")
        entry = self._open.get(id(admission))
        if entry is None or entry[0] is not admission:
            raise ValueError(
                f"this Admission for {admission.model_id!r} is not open on this ledger: settle "
                "each Admission returned by this ledger's admit() exactly once"
            )
        del self._open[id(admission)]
        out = charged_output(output_tokens, burndown)
        st = self._states[admission.model_id]
        st.t_s, st.window = settle_request(
            st.levels, self._buckets.columns, st.t_s, st.window, self._clock(), self._origin(),
            (entry[1], 0, 0, entry[2]), (input_tokens, 0, 0, out),
        )  # fmt: skip
        return input_tokens + out

    def available(self, model_id: str) -> dict[str, float]:
        """Current levels of ``model_id``'s limited buckets, keyed "tpm", "rpm" and "tpd".

        Unlimited buckets are left out. A model id not seen yet reports full buckets.
        """
        buckets = self._buckets
        if model_id in self._states:
            levels = self._brought_forward(model_id, self._clock()).levels
        else:
            levels = self._full
        return dict(zip(buckets.names, levels, strict=True))

    def open_admissions(self) -> int:
        """How many admissions are waiting to be settled (requests in flight, or leaked)."""
        return len(self._open)

    def _origin(self) -> float:
        assert self._origin_s is not None
        return self._origin_s

    def _rejection(
        self, model_id: str, st: _State, now: float, b: int, input_tokens: int, max_tokens: int
    ) -> Rejection:
        """Bucket ``b`` refused: seconds until it alone would hold enough (a refill, or the next
        window; never when the demand exceeds its capacity)."""
        cols = self._buckets.columns
        need = demand(cols.admit, b, 1, input_tokens, 0, 0, max_tokens)
        if need > cols.capacity[b]:
            wait = math.inf
        elif cols.windowed[b]:
            wait = self._origin() + WINDOW_S * (st.window + 1) - now
        else:
            wait = (need - st.levels[b]) / cols.rate_per_s[b]
        return _reject(model_id, self._buckets.kinds[b], wait)

    def _brought_forward(self, model_id: str, now: float) -> _State:
        """``model_id``'s levels brought forward to ``now`` (created full on first use)."""
        if self._origin_s is None:
            self._origin_s = now
        st = self._states.get(model_id)
        if st is None:
            levels = list(self._full)
            st = self._states[model_id] = _State(levels, now, window_index(now, self._origin_s))
            return st
        st.t_s, st.window = bring_forward(
            st.levels, self._buckets.columns, st.t_s, st.window, now, self._origin_s
        )
        return st


def _reject(model_id: str, kind: RejectionKind, retry_after_s: float) -> Rejection:
    return Rejection(model_id, kind, THROTTLE_MESSAGES[kind], retry_after_s)
