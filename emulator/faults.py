"""Fault injection: one seeded draw per request decides what goes wrong with it, if anything."""

from __future__ import annotations

import random
from dataclasses import dataclass

from capacity.serving import FaultConfig

# Bedrock's error types for the injectable HTTP statuses (botocore's service model).
BEDROCK_ERROR_TYPES = {
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is temporarily unavailable."),
    424: ("ModelErrorException", "The model returned an error. Please try again."),
}


@dataclass(frozen=True)
class FaultPlan:
    """What happens to one request. Token indexes are 1-based output-token counts."""

    http_status: int | None = None  # fail before the stream with this status
    error_at_token: int | None = None  # a mid-stream modelStreamErrorException after this token
    drop_at_token: int | None = None  # the connection is cut after this token
    stall_at_token: int | None = None  # the stream goes silent for stall_s after this token
    stall_s: float = 0.0
    throttle: bool = False  # refused with a ThrottlingException (a 429 storm)
    headers_delay_s: float = 0.0  # the response headers (and the stream) wait this long

    @property
    def clean(self) -> bool:
        """True when nothing is injected."""
        return self == FaultPlan()


def draw_faults(config: FaultConfig, output_tokens: int, rng: random.Random) -> FaultPlan:
    """Draw the faults of one request; at most one fault applies (the first that fires)."""
    for status, rate in sorted(config.error_rate.items()):
        if rate > 0 and rng.random() < rate:
            return FaultPlan(http_status=int(status))
    if config.throttle_rate > 0 and rng.random() < config.throttle_rate:
        return FaultPlan(throttle=True)
    at = max(1, output_tokens // 2)  # mid-way, so some tokens arrive before the failure
    if config.midstream_error_rate > 0 and rng.random() < config.midstream_error_rate:
        return FaultPlan(error_at_token=at)
    if config.drop_rate > 0 and rng.random() < config.drop_rate:
        return FaultPlan(drop_at_token=at)
    if config.stall_rate > 0 and rng.random() < config.stall_rate:
        return FaultPlan(stall_at_token=at, stall_s=config.stall_s)
    if config.slow_headers_rate > 0 and rng.random() < config.slow_headers_rate:
        return FaultPlan(headers_delay_s=config.slow_headers_s)
    return FaultPlan()
