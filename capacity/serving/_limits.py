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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from capacity.errors import CapacityError

__all__ = [
    "ENDPOINTS",
    "QUOTA_RULES",
    "REJECTION_KINDS",
    "RESERVED_MIN_INPUT_TPM",
    "RESERVED_MIN_OUTPUT_TPM",
    "SERVICE_TIERS",
    "THROTTLE_MESSAGES",
    "Endpoint",
    "QuotaError",
    "QuotaLimits",
    "QuotaRule",
    "RejectionKind",
    "ServiceTier",
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
