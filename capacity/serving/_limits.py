"""What a quota ledger enforces: the endpoint, its quotas, the rule, Reserved capacity.

``QuotaLimits`` is the one description of a model's quotas that the live ledger, the batch
replay, the emulator and the planner's verification share (docs/architecture.md, "Quota rules"):

- **bedrock-runtime** (``endpoint="runtime"``, the default): ``tpm`` (input and output combined,
  with the output burndown), ``rpm`` (where still enforced) and ``tpd``;
- **bedrock-mantle** (``endpoint="mantle"``): ``input_tpm`` and ``output_tpm``, tracked apart
  from bedrock-runtime's quotas; it has no RPM and no TPD quota;
- **Reserved capacity** (either endpoint): ``reserved_input_tpm`` and ``reserved_output_tpm``,
  at least 100,000 and 10,000 (AWS's minimums), used by Reserved-tier requests first; what it
  cannot take overflows to the on-demand quota (the Standard tier).

Priority, Standard (``"default"``) and Flex requests share the on-demand quota; the tier is a
property of each request (``QuotaLedger.admit``), not of the limits. None means unlimited.
`quota_buckets` turns limits into the bucket data (``_buckets.py``) both the ledger and the
replay run (what each bucket takes and keeps: ``_ledger.py``'s table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from capacity.errors import CapacityError
from capacity.serving._buckets import BucketColumns

__all__ = [
    "ENDPOINTS",
    "QUOTA_RULES",
    "REJECTION_KINDS",
    "RESERVED_MIN_INPUT_TPM",
    "RESERVED_MIN_OUTPUT_TPM",
    "SERVICE_TIERS",
    "THROTTLE_MESSAGES",
    "Endpoint",
    "QuotaBuckets",
    "QuotaError",
    "QuotaLimits",
    "QuotaRule",
    "RejectionKind",
    "ServiceTier",
    "quota_buckets",
]

QuotaRule = Literal["bucket", "window"]
"""How per-minute quotas are enforced: a refilling token bucket with refunds at settlement
(default), or a per-minute window that keeps whole reservations (the conservative alternative)."""

QUOTA_RULES: Final[tuple[QuotaRule, ...]] = ("bucket", "window")

Endpoint = Literal["runtime", "mantle"]
"""Bedrock's two inference endpoints: bedrock-runtime (InvokeModel, Converse; a combined TPM)
and bedrock-mantle (OpenAI-compatible Responses and Chat Completions; input and output TPM)."""

ENDPOINTS: Final[tuple[Endpoint, ...]] = ("runtime", "mantle")

ServiceTier = Literal["reserved", "priority", "default", "flex"]
"""A request's ``service_tier``: ``"default"`` is the Standard tier."""

SERVICE_TIERS: Final[tuple[ServiceTier, ...]] = ("reserved", "priority", "default", "flex")

RESERVED_MIN_INPUT_TPM: Final = 100_000
"""The smallest Reserved input tokens-per-minute capacity AWS sells."""
RESERVED_MIN_OUTPUT_TPM: Final = 10_000
"""The smallest Reserved output tokens-per-minute capacity AWS sells."""

RejectionKind = Literal["tokens", "requests", "tokens_per_day", "input_tokens", "output_tokens"]
"""Which quota refused a request: TPM, RPM, TPD (bedrock-runtime), input or output TPM
(bedrock-mantle)."""

REJECTION_KINDS: Final[tuple[RejectionKind, ...]] = (
    "tokens", "requests", "tokens_per_day", "input_tokens", "output_tokens"
)  # fmt: skip

THROTTLE_MESSAGES: Final[dict[RejectionKind, str]] = {
    "tokens": "Too many tokens, please wait before trying again.",
    "requests": "Too many requests, please wait before trying again.",
    "tokens_per_day": "Too many tokens per day, please wait before trying again.",
    # bedrock-mantle's wording is not published: these name the quota the same way.
    "input_tokens": "Too many input tokens, please wait before trying again.",
    "output_tokens": "Too many output tokens, please wait before trying again.",
}
"""The ThrottlingException message for each kind of rejection (Bedrock's exact text for the
bedrock-runtime ones)."""


class QuotaError(CapacityError, ValueError):
    """Quota limits or a service tier that cannot be enforced; the message names the fix."""


_RUNTIME = ("tpm", "rpm", "tpd")
_MANTLE = ("input_tpm", "output_tpm")
_RESERVED = ("reserved_input_tpm", "reserved_output_tpm")


@dataclass(frozen=True)
class QuotaLimits:
    """The quotas of every model id on one endpoint (module docstring). None means unlimited.

    Raises `QuotaError` (a ValueError) naming the field when a limit is not positive, belongs to
    the other endpoint, or Reserved capacity is incomplete or below AWS's minimums.
    """

    tpm: int | None = None
    rpm: int | None = None
    tpd: int | None = None
    rule: QuotaRule = "bucket"
    endpoint: Endpoint = "runtime"
    input_tpm: int | None = None
    output_tpm: int | None = None
    reserved_input_tpm: int | None = None
    reserved_output_tpm: int | None = None

    def __post_init__(self) -> None:
        """Reject bad limits, unknown rules and endpoints, and quotas of the other endpoint."""
        if self.rule not in QUOTA_RULES:
            raise QuotaError(f"QuotaLimits.rule must be one of {QUOTA_RULES}; got {self.rule!r}")
        if self.endpoint not in ENDPOINTS:
            raise QuotaError(
                f"QuotaLimits.endpoint must be one of {ENDPOINTS}; got {self.endpoint!r}"
            )
        for name in _RUNTIME + _MANTLE + _RESERVED:
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise QuotaError(
                    f"QuotaLimits.{name} must be a positive number, or None for unlimited; "
                    f"got {value!r}"
                )
        other = _RUNTIME if self.endpoint == "mantle" else _MANTLE
        given = [name for name in other if getattr(self, name) is not None]
        if given:
            mine = "input_tpm and output_tpm" if self.endpoint == "mantle" else "tpm, rpm, tpd"
            raise QuotaError(
                f"QuotaLimits.{given[0]} is not a bedrock-{self.endpoint} quota: that endpoint "
                f"has {mine}"
            )
        self._check_reserved()

    def _check_reserved(self) -> None:
        r_in, r_out = self.reserved_input_tpm, self.reserved_output_tpm
        if (r_in is None) != (r_out is None):
            raise QuotaError(
                "Reserved capacity needs both reserved_input_tpm and reserved_output_tpm "
                "(AWS reserves input and output tokens per minute separately)"
            )
        if r_in is not None and r_in < RESERVED_MIN_INPUT_TPM:
            raise QuotaError(
                f"reserved_input_tpm {r_in:,} is below AWS's minimum of "
                f"{RESERVED_MIN_INPUT_TPM:,} input tokens per minute: reserve at least that"
            )
        if r_out is not None and r_out < RESERVED_MIN_OUTPUT_TPM:
            raise QuotaError(
                f"reserved_output_tpm {r_out:,} is below AWS's minimum of "
                f"{RESERVED_MIN_OUTPUT_TPM:,} output tokens per minute: reserve at least that"
            )

    @property
    def reserved(self) -> bool:
        """Whether Reserved capacity is configured."""
        return self.reserved_input_tpm is not None

    def describe(self) -> str:
        """The limits in one line, e.g. ``bedrock-mantle: input TPM 100,000, output TPM 20,000
        (rule 'bucket'); Reserved 100,000 input + 10,000 output TPM, overflow to on-demand``."""
        names = _MANTLE if self.endpoint == "mantle" else _RUNTIME
        words = {"tpm": "TPM", "rpm": "RPM", "tpd": "TPD", "input_tpm": "input TPM",
                 "output_tpm": "output TPM"}  # fmt: skip
        parts = [f"{words[n]} {getattr(self, n):,}" for n in names if getattr(self, n)]
        text = f"bedrock-{self.endpoint}: {', '.join(parts) or 'unlimited'} (rule '{self.rule}')"
        if self.reserved:
            text += (
                f"; Reserved {self.reserved_input_tpm:,} input + {self.reserved_output_tpm:,} "
                "output TPM, overflow to on-demand"
            )
        return text


@dataclass(frozen=True)
class QuotaBuckets:
    """The buckets a `QuotaLimits` puts on every model id, as the rule functions read them.

    ``names`` ("reserved_input_tpm", "reserved_output_tpm", "rpm", "tpm", "tpd", "input_tpm",
    "output_tpm") and ``kinds`` (the `RejectionKind` of a refusal) per bucket, in check order;
    ``columns`` the numbers (``capacity/serving/_buckets.py``); ``reserved_group`` the group of
    Reserved capacity (None without it) and ``on_demand_group`` the group of the on-demand
    quota. Unlimited quotas have no bucket.
    """

    names: tuple[str, ...]
    kinds: tuple[RejectionKind, ...]
    periods_s: tuple[float, ...]
    columns: BucketColumns
    reserved_group: int | None = None
    on_demand_group: int = 0

    def first_group(self, service_tier: str) -> int:
        """The first group a request of ``service_tier`` may use: Reserved capacity for the
        Reserved tier (when there is some), else the on-demand quota."""
        if service_tier == "reserved" and self.reserved_group is not None:
            return self.reserved_group
        return self.on_demand_group


# What a request takes at admission, per admission feature (1, input, cache read, cache write,
# max_tokens), and keeps at settlement, per settlement feature (1, input, cache read, cache
# write, output): the module docstring's table.
_ONE_REQUEST = (1.0, 0.0, 0.0, 0.0, 0.0)
_RESERVATION = (0.0, 1.0, 1.0, 1.0, 1.0)  # input + cache read + cache write + max_tokens
_SETTLEMENT = (0.0, 1.0, 0.0, 1.0, 1.0)  # input + cache write + burndown × output
_INPUT_CHECK = (0.0, 1.0, 0.0, 1.0, 1.0)  # input + cache write + max_tokens (no cache reads)
_INPUT_KEPT = (0.0, 1.0, 0.0, 1.0, 0.0)  # input + cache write
_NOTHING = (0.0, 0.0, 0.0, 0.0, 0.0)
_MAX_TOKENS = (0.0, 0.0, 0.0, 0.0, 1.0)  # max_tokens: output capacity reserved at admission
_OUTPUT = (0.0, 0.0, 0.0, 0.0, 1.0)  # output tokens (raw_output: no burndown)

# name, kind, period (s), group, continuous-refill rule?, raw output?, admit, settle
_Spec = tuple[str, RejectionKind, float, int, bool, bool, tuple[float, ...], tuple[float, ...]]


def _specs(limits: QuotaLimits) -> tuple[list[tuple[_Spec, float]], int | None, int]:
    """The configured buckets with their capacities, and the Reserved and on-demand groups."""
    specs: list[tuple[_Spec, float | None]] = []
    reserved = limits.reserved_input_tpm is not None
    od = 1 if reserved else 0
    if reserved:
        specs += [
            (("reserved_input_tpm", "input_tokens", 60.0, 0, False, False, _INPUT_KEPT,
              _INPUT_KEPT), limits.reserved_input_tpm),
            (("reserved_output_tpm", "output_tokens", 60.0, 0, False, True, _MAX_TOKENS,
              _OUTPUT), limits.reserved_output_tpm),
        ]  # fmt: skip
    if limits.endpoint == "mantle":
        specs += [
            (("input_tpm", "input_tokens", 60.0, od, False, False, _INPUT_CHECK, _INPUT_KEPT),
             limits.input_tpm),
            (("output_tpm", "output_tokens", 60.0, od, False, True, _NOTHING, _OUTPUT),
             limits.output_tpm),
        ]  # fmt: skip
    else:
        specs += [
            (("rpm", "requests", 60.0, od, False, False, _ONE_REQUEST, _ONE_REQUEST),
             limits.rpm),
            (("tpm", "tokens", 60.0, od, False, False, _RESERVATION, _SETTLEMENT), limits.tpm),
            (("tpd", "tokens_per_day", 86400.0, od, True, False, _RESERVATION, _SETTLEMENT),
             limits.tpd),
        ]  # fmt: skip
    kept = [(s, float(c)) for s, c in specs if c is not None]
    return kept, (0 if reserved else None), od


def quota_buckets(limits: QuotaLimits) -> QuotaBuckets:
    """The buckets of ``limits`` in check order (unlimited ones left out): Reserved capacity
    (input, output) first, then the on-demand quota — RPM, TPM, TPD on bedrock-runtime, input
    and output TPM on bedrock-mantle."""
    window = limits.rule == "window"
    kept, reserved_group, od = _specs(limits)
    capacity = [c for _, c in kept]
    rate = [c / s[2] for s, c in kept]
    # Per-minute quotas follow the rule; TPD (continuous=True) always refills and refunds.
    windowed = [window and not s[4] for s, _ in kept]
    columns = BucketColumns(
        groups=od + 1,
        group=[s[3] for s, _ in kept],
        capacity=capacity,
        rate_per_s=rate,
        # Float rounding of refills (worse with large clock readings) must not turn an exact
        # fit into a throttle. The slack is far below one token, so integer arithmetic stays
        # exact.
        slack=[min(0.5, 1e-6 + 1e-12 * c + 1e-8 * r) for c, r in zip(capacity, rate, strict=True)],
        windowed=windowed,
        refunds=[not w for w in windowed],
        debits=[True for _ in kept],
        raw_output=[s[5] for s, _ in kept],
        admit=[x for s, _ in kept for x in s[6]],
        settle=[x for s, _ in kept for x in s[7]],
    )
    return QuotaBuckets(
        tuple(s[0] for s, _ in kept), tuple(s[1] for s, _ in kept), tuple(s[2] for s, _ in kept),
        columns, reserved_group, od,
    )  # fmt: skip
