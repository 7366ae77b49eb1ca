"""Bedrock quota enforcement for the emulator: both endpoints, Reserved capacity, service tiers.

The rule
--------
Every model id string has its own quotas (``us.x`` and ``x`` are separate, as cross-Region
profiles are on Bedrock). Each configured quota is a bucket that starts full, refilled at its
capacity per minute (``/ 86,400`` s for TPD). Per request, with ``input`` the uncached input:

===================  =========================================  ===============================
bucket               taken at admission                         kept at settlement
===================  =========================================  ===============================
bedrock-runtime (``endpoint="runtime"``, docs/architecture.md "Quota rules")
-----------------------------------------------------------------------------------------------
RPM                  1                                          1
TPM, TPD             input + cache read + cache write +         input + cache write +
                     max_tokens (the *reservation*)             burndown × output
bedrock-mantle (``endpoint="mantle"``: separate input and output quotas, no RPM, no TPD)
-----------------------------------------------------------------------------------------------
input TPM            input + cache write + max_tokens           input + cache write
                     (cache reads do not count)
output TPM           nothing (it must not be in debt)           output tokens
Reserved capacity (``reserved_input_tpm`` and ``reserved_output_tpm``, either endpoint)
-----------------------------------------------------------------------------------------------
reserved input TPM   input + cache write                        input + cache write
reserved output TPM  max_tokens                                 output tokens
===================  =========================================  ===============================

Reserved capacity counts input + cache write tokens (AWS's sizing note); how it decides that a
request fits is not published. Capacity guaranteed to an admitted request must hold its whole
output, so here Reserved output capacity is reserved like bedrock-runtime's TPM: max_tokens at
admission, the output kept at settlement. (An output quota that only refuses while in debt, as
bedrock-mantle's does, lags by a request's latency: saturated Reserved capacity would admit
bursts whose output lands later and overflow in surges.)

**Admission.** A request is admitted when every bucket of its group can take its demand; a
rejection takes nothing. Requests of the Reserved service tier try the Reserved capacity first
and overflow to the on-demand quota (the Standard tier) when it cannot take them; Priority,
Standard (``"default"``) and Flex requests share the on-demand quota. A demand above a bucket's
capacity never fits and is refused with ``retry_after_s`` infinite (Bedrock throttles a huge
``max_tokens`` the same way); a reservation above a Reserved bucket's capacity overflows.

**Settlement.** When a request ends, each bucket of the group that admitted it gets back
``taken − kept`` (rule "bucket"): unused reservation comes back, and a bucket that keeps more
than it took (output TPM; TPM with a burndown of 5) is left in debt, which must refill before
its next admission. ``burndown`` is 5 for Claude 3.7 Sonnet and the Claude 4 family, 1 for
others; the output TPM of bedrock-mantle and of Reserved capacity counts output tokens as they
are (AWS publishes no burndown for them). A request that fails before producing output settles
with ``output_tokens=0``, which returns its whole ``max_tokens``. Output against an output TPM
may also be charged as it is generated (``charge_output``); the settlement then keeps the rest.

**The alternative rule** (``rule="window"``). How Bedrock adjusts a reservation while a request
runs is not published. If your real throttles come earlier than the bucket predicts, switch to
the per-minute window: per-minute quotas count against fixed 60-second windows (from the
ledger's first reading), each window starts full, nothing taken at admission comes back, and a
settlement that keeps more than was taken charges the difference to the window it ends in — so
every request costs max(taken, kept), never less than under the bucket. TPD keeps the bucket
rule. The planner follows the same option (``Quota.rule``); docs/architecture.md, "Quota rules",
states both.

**One set of rules.** The arithmetic lives in ``_buckets.py`` as data — each quota a bucket with
what it takes at admission and keeps at settlement (`quota_buckets`) — and plain functions that
this ledger calls and that the batch replay of logged traffic (``_replay.py``) runs compiled, so
both decide identically. ``Rejection.retry_after_s`` is the time until the refusing bucket alone
would hold enough, ignoring the other buckets and requests still to settle.

TPD refills at the same rate as TPM when it has Bedrock's default value (``tpm × 1440``), so it
can only bind when set lower, as it is for new accounts. Time comes from the ``clock`` the ledger
is given, so the same ledger serves the live server (``time.monotonic``) and virtual-time
studies. A ledger is not thread-safe: use it from one thread (the server's event loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from capacity.serving._buckets import (
    ADMITTED,
    WINDOW_S,
    admit_request,
    admitted_group,
    bring_forward,
    charge_generated,
    charged_output,
    demand,
    settle_request,
    window_index,
)
from capacity.serving._limits import (
    ENDPOINTS,
    QUOTA_RULES,
    REJECTION_KINDS,
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    SERVICE_TIERS,
    THROTTLE_MESSAGES,
    Endpoint,
    QuotaBuckets,
    QuotaError,
    QuotaLimits,
    QuotaRule,
    RejectionKind,
    ServiceTier,
    quota_buckets,
)

__all__ = [
    "ENDPOINTS",
    "QUOTA_RULES",
    "REJECTION_KINDS",
    "RESERVED_MIN_INPUT_TPM",
    "RESERVED_MIN_OUTPUT_TPM",
    "SERVICE_TIERS",
    "THROTTLE_MESSAGES",
    "Admission",
    "Endpoint",
    "QuotaBuckets",
    "QuotaError",
    "QuotaLedger",
    "QuotaLimits",
    "QuotaRule",
    "Rejection",
    "RejectionKind",
    "ServiceTier",
    "quota_buckets",
]


@dataclass(frozen=True)
class Admission:
    """An admitted request's reservation; pass this same object to `QuotaLedger.settle` once."""

    model_id: str
    reserved_tokens: int
    """``input + cache read + cache write + max_tokens``: bedrock-runtime's reservation."""
    admitted_at_s: float
    """The ledger's clock at admission."""
    service_tier: ServiceTier = "default"
    """The tier the request asked for."""
    on_reserved: bool = False
    """Admitted on Reserved capacity (False: on the on-demand quota, overflow included)."""


@dataclass(frozen=True)
class Rejection:
    """A throttled request: which quota refused it, Bedrock's message, and when to retry."""

    model_id: str
    kind: RejectionKind
    message: str
    """Bedrock's text for ``kind`` (see `THROTTLE_MESSAGES`)."""
    retry_after_s: float
    """Seconds until the failing bucket alone would hold enough; ``math.inf`` if it never can."""


class _State:
    """One model's bucket levels (in ``QuotaBuckets`` order) as of clock time ``t_s``."""

    __slots__ = ("levels", "t_s", "window")

    def __init__(self, levels: list[float], t_s: float, window: int) -> None:
        self.levels = levels
        self.t_s = t_s
        self.window = window  # the current 60-s window's index (windowed buckets only)


class _Open:
    """An open admission: its tokens as admitted, its group, and output charged so far."""

    __slots__ = ("admission", "cache_read", "cache_write", "charged", "group", "input", "max")

    def __init__(self, admission: Admission, tokens: tuple[int, int, int, int], group: int) -> None:
        self.admission = admission
        self.input, self.cache_read, self.cache_write, self.max = tokens
        self.group = group
        self.charged = 0  # output tokens charged as generated (charge_output)


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
        # Open admissions by identity: settling twice, or settling another ledger's admission,
        # would silently refund tokens never reserved here.
        self._open: dict[int, _Open] = {}

    @property
    def charges_as_generated(self) -> bool:
        """Whether some bucket counts output without reserving it (output TPM): only then does
        `charge_output` change anything."""
        cols = self._buckets.columns
        return any(cols.admit[5 * b + 4] == 0.0 and cols.settle[5 * b + 4] != 0.0
                   for b in range(len(cols.capacity)))  # fmt: skip

    def admit(
        self,
        model_id: str,
        input_tokens: int,
        max_tokens: int,
        *,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: ServiceTier = "default",
    ) -> Admission | Rejection:
        """Admit a request of ``service_tier`` (module docstring), or say which quota refuses.

        ``input_tokens`` is the uncached input (the whole prompt when nothing is cached);
        ``max_tokens`` what the request allows (the model's maximum when it sets none).
        """
        tokens = (input_tokens, cache_read_tokens, cache_write_tokens, max_tokens)
        if min(tokens) < 0:
            raise ValueError(
                "input_tokens, max_tokens and cache tokens must be >= 0; got "
                f"{input_tokens}, {max_tokens}, {cache_read_tokens}, {cache_write_tokens}"
            )
        if service_tier not in SERVICE_TIERS:
            raise QuotaError(
                f"service_tier {service_tier!r} is not a Bedrock tier: use one of "
                f"{', '.join(SERVICE_TIERS)}"
            )
        now = self._clock()
        st = self._brought_forward(model_id, now)
        b = self._buckets
        verdict = admit_request(
            st.levels, b.columns, b.first_group(service_tier), input_tokens, cache_read_tokens,
            cache_write_tokens, max_tokens,
        )  # fmt: skip
        if verdict >= 0:
            return self._rejection(model_id, st, now, verdict, tokens)
        group = admitted_group(verdict)
        admission = Admission(
            model_id, sum(tokens), now, service_tier, on_reserved=group == b.reserved_group
        )
        self._open[id(admission)] = _Open(admission, tokens, group)
        return admission

    def charge_output(
        self, admission: Admission, output_tokens: int, burndown: float = 1.0
    ) -> None:
        """``output_tokens`` generated so far by an open admission: the part not charged yet is
        taken now from the buckets that count output as it is generated (output TPM). Its
        settlement later keeps the whole output, less what was charged here."""
        entry = self._entry(admission)
        delta = output_tokens - entry.charged
        if delta <= 0:
            return
        st = self._brought_forward(admission.model_id, self._clock())
        charge_generated(st.levels, self._buckets.columns, entry.group, burndown, output_tokens)
        charge_generated(st.levels, self._buckets.columns, entry.group, burndown, -entry.charged)
        entry.charged = output_tokens

    def settle(
        self,
        admission: Admission,
        input_tokens: int,
        output_tokens: int,
        burndown: float = 1.0,
        *,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> int:
        """Settle a finished request (module docstring): each bucket of the group that admitted
        it gets back ``taken − kept``. Cache tokens default to those given at admission.

        Returns the tokens counted against the quota: ``input + cache write + burndown ×
        output`` (rounded half up) on bedrock-runtime's on-demand quota, ``input + cache write
        + output`` on bedrock-mantle and on Reserved capacity. Raises ValueError for negative
        token counts, a burndown that is not positive and finite, or an admission that is not
        open on this ledger (already settled, or not from `admit`).
        """
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError(
                f"input_tokens and output_tokens must be >= 0; got {input_tokens}, {output_tokens}"
            )
        if not 0.0 < burndown < math.inf:
            raise ValueError(f"burndown must be positive and finite; got {burndown!r}")
        entry = self._entry(admission)
        read = entry.cache_read if cache_read_tokens is None else cache_read_tokens
        write = entry.cache_write if cache_write_tokens is None else cache_write_tokens
        if read < 0 or write < 0:
            raise ValueError(f"cache tokens must be >= 0; got {read}, {write}")
        del self._open[id(admission)]
        st = self._states[admission.model_id]
        cols = self._buckets.columns
        if entry.charged:  # give back what was charged as generated: settlement keeps it all
            st.t_s, st.window = bring_forward(
                st.levels, cols, st.t_s, st.window, self._clock(), self._origin()
            )
            charge_generated(st.levels, cols, entry.group, burndown, -entry.charged)
        st.t_s, st.window = settle_request(
            st.levels, cols, st.t_s, st.window, self._clock(), self._origin(), entry.group,
            burndown, (entry.input, entry.cache_read, entry.cache_write, entry.max),
            (input_tokens, read, write, output_tokens),
        )  # fmt: skip
        raw = self.limits.endpoint == "mantle" or admission.on_reserved
        out = output_tokens if raw else charged_output(output_tokens, burndown)
        return input_tokens + write + out

    def available(self, model_id: str) -> dict[str, float]:
        """Current levels of ``model_id``'s limited buckets by name ("tpm", "rpm", "tpd",
        "input_tpm", "output_tpm", "reserved_input_tpm", "reserved_output_tpm").

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

    def _entry(self, admission: Admission) -> _Open:
        entry = self._open.get(id(admission))
        if entry is None or entry.admission is not admission:
            raise ValueError(
                f"this Admission for {admission.model_id!r} is not open on this ledger: settle "
                "each Admission returned by this ledger's admit() exactly once"
            )
        return entry

    def _origin(self) -> float:
        assert self._origin_s is not None
        return self._origin_s

    def _rejection(
        self, model_id: str, st: _State, now: float, b: int, tokens: tuple[int, int, int, int]
    ) -> Rejection:
        """Bucket ``b`` refused: seconds until it alone would hold enough (a refill, or the next
        window; never when the demand exceeds its capacity)."""
        cols = self._buckets.columns
        need = demand(cols.admit, b, 1, *tokens)
        if need > cols.capacity[b]:
            wait = math.inf
        elif cols.windowed[b]:
            wait = self._origin() + WINDOW_S * (st.window + 1) - now
        else:
            wait = (need - st.levels[b]) / cols.rate_per_s[b]
        kind = self._buckets.kinds[b]
        return Rejection(model_id, kind, THROTTLE_MESSAGES[kind], wait)

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


assert ADMITTED == -1  # admitted_code(0): a single group admits with the ledger's old status
