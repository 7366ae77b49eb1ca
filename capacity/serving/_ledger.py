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

__all__ = [
    "QUOTA_RULES",
    "THROTTLE_MESSAGES",
    "Admission",
    "QuotaLedger",
    "QuotaLimits",
    "QuotaRule",
    "Rejection",
    "RejectionKind",
]

QuotaRule = Literal["bucket", "window"]
"""How TPM and RPM are enforced: a refilling token bucket with refunds at settlement (default),
or a per-minute window that keeps whole reservations (the conservative alternative)."""

QUOTA_RULES: Final[tuple[QuotaRule, ...]] = ("bucket", "window")

RejectionKind = Literal["tokens", "requests", "tokens_per_day"]
"""Which quota refused a request: TPM, RPM or TPD."""

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


@dataclass(frozen=True, slots=True)
class _Bucket:
    capacity: float
    rate_per_s: float
    # Float rounding of refills (worse with large clock readings) must not turn an exact fit
    # into a throttle. The slack is far below one token, so integer arithmetic stays exact.
    slack: float

    @classmethod
    def of(cls, limit: int | None, period_s: float) -> _Bucket | None:
        if limit is None:
            return None
        rate = limit / period_s
        return cls(float(limit), rate, min(0.5, 1e-6 + 1e-12 * limit + 1e-8 * rate))


class _Levels:
    """One model's bucket levels (unused for unlimited buckets) as of clock time ``t_s``."""

    __slots__ = ("day", "requests", "t_s", "tokens", "window")

    def __init__(self, tokens: float, requests: float, day: float, t_s: float) -> None:
        self.tokens = tokens
        self.requests = requests
        self.day = day
        self.t_s = t_s
        self.window = 0  # the current 60-s window's index (rule "window" only)


class QuotaLedger:
    """Admits and settles requests against per-model quota buckets (rule: module docstring).

    ``limits`` is the `QuotaLimits` it enforces, the same for every model id.
    """

    def __init__(self, limits: QuotaLimits, clock: Callable[[], float]) -> None:
        """Enforce ``limits`` for every model id, reading time in seconds from ``clock``."""
        self.limits = limits
        self._clock = clock
        self._tpm = _Bucket.of(limits.tpm, 60.0)
        self._rpm = _Bucket.of(limits.rpm, 60.0)
        self._tpd = _Bucket.of(limits.tpd, 86400.0)
        self._levels: dict[str, _Levels] = {}
        self._window = limits.rule == "window"
        self._origin_s: float | None = None  # the window rule's t = 0: the first clock reading
        # Open admissions by identity: settling twice, or settling another ledger's admission,
        # would silently refund tokens that were never reserved here.
        self._open: dict[int, Admission] = {}

    def admit(self, model_id: str, input_tokens: int, max_tokens: int) -> Admission | Rejection:
        """Reserve ``input_tokens + max_tokens`` and one request, or say which quota refuses."""
        if input_tokens < 0 or max_tokens < 0:
            raise ValueError(
                f"input_tokens and max_tokens must be >= 0; got {input_tokens}, {max_tokens}"
            )
        reserved = input_tokens + max_tokens
        now = self._clock()
        lv = self._refilled(model_id, now)
        rpm, tpm, tpd = self._rpm, self._tpm, self._tpd
        if rpm is not None and lv.requests < 1.0 - rpm.slack:
            return _reject(model_id, "requests", self._wait_s(lv, now, 1.0 - lv.requests, rpm))
        if tpm is not None:
            if reserved > tpm.capacity:
                return _reject(model_id, "tokens", math.inf)
            if lv.tokens < reserved - tpm.slack:
                return _reject(model_id, "tokens", self._wait_s(lv, now, reserved - lv.tokens, tpm))
        if tpd is not None:
            if reserved > tpd.capacity:
                return _reject(model_id, "tokens_per_day", math.inf)
            if lv.day < reserved - tpd.slack:
                return _reject(model_id, "tokens_per_day", (reserved - lv.day) / tpd.rate_per_s)
        lv.requests -= 1.0
        lv.tokens -= reserved
        lv.day -= reserved
        admission = Admission(model_id, reserved, now)
        self._open[id(admission)] = admission
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
        if self._open.pop(id(admission), None) is not admission:
            raise ValueError(
                f"this Admission for {admission.model_id!r} is not open on this ledger: settle "
                "each Admission returned by this ledger's admit() exactly once"
            )
        charged = input_tokens + math.floor(burndown * output_tokens + 0.5)
        refund = admission.reserved_tokens - charged
        if refund:
            lv = self._refilled(admission.model_id, self._clock())
            if (tpm := self._tpm) is not None and not self._window:
                lv.tokens = min(tpm.capacity, lv.tokens + refund)
            if (tpd := self._tpd) is not None:
                lv.day = min(tpd.capacity, lv.day + refund)
        return charged

    def available(self, model_id: str) -> dict[str, float]:
        """Current levels of ``model_id``'s limited buckets, keyed "tpm", "rpm" and "tpd".

        Unlimited buckets are left out. A model id not seen yet reports full buckets.
        """
        lv = self._levels.get(model_id)
        if lv is not None:
            lv = self._refilled(model_id, self._clock())
        levels: dict[str, float] = {}
        for name, bucket, attr in (
            ("tpm", self._tpm, "tokens"),
            ("rpm", self._rpm, "requests"),
            ("tpd", self._tpd, "day"),
        ):
            if bucket is not None:
                levels[name] = bucket.capacity if lv is None else getattr(lv, attr)
        return levels

    def open_admissions(self) -> int:
        """How many admissions are waiting to be settled (requests in flight, or leaked)."""
        return len(self._open)

    def _wait_s(self, lv: _Levels, now: float, short: float, bucket: _Bucket) -> float:
        """Seconds until ``short`` more units are available: a refill, or the next window."""
        if not self._window:
            return short / bucket.rate_per_s
        assert self._origin_s is not None
        return self._origin_s + 60.0 * (lv.window + 1) - now

    def _window_index(self, now: float) -> int:
        assert self._origin_s is not None
        return math.floor((now - self._origin_s) / 60.0)

    def _next_window(self, lv: _Levels, now: float) -> None:
        """Rule "window": a new 60-s window starts with full TPM and RPM allowances."""
        index = self._window_index(now)
        if index > lv.window:
            lv.window = index
            if (tpm := self._tpm) is not None:
                lv.tokens = tpm.capacity
            if (rpm := self._rpm) is not None:
                lv.requests = rpm.capacity

    def _refilled(self, model_id: str, now: float) -> _Levels:
        """``model_id``'s levels brought forward to ``now`` (created full on first use)."""
        if self._origin_s is None:
            self._origin_s = now
        lv = self._levels.get(model_id)
        if lv is None:
            tpm, rpm, tpd = self._tpm, self._rpm, self._tpd
            lv = _Levels(
                tpm.capacity if tpm else 0.0,
                rpm.capacity if rpm else 0.0,
                tpd.capacity if tpd else 0.0,
                now,
            )
            lv.window = self._window_index(now)
            self._levels[model_id] = lv
            return lv
        dt = now - lv.t_s
        if dt > 0.0:  # a clock that steps back refills nothing until it passes t_s again
            if self._window:
                self._next_window(lv, now)
            else:
                if (tpm := self._tpm) is not None:
                    lv.tokens = min(tpm.capacity, lv.tokens + dt * tpm.rate_per_s)
                if (rpm := self._rpm) is not None:
                    lv.requests = min(rpm.capacity, lv.requests + dt * rpm.rate_per_s)
            if (tpd := self._tpd) is not None:
                lv.day = min(tpd.capacity, lv.day + dt * tpd.rate_per_s)
            lv.t_s = now
        return lv


def _reject(model_id: str, kind: RejectionKind, retry_after_s: float) -> Rejection:
    return Rejection(model_id, kind, THROTTLE_MESSAGES[kind], retry_after_s)
