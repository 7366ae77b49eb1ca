"""The usage frame: one row per CloudWatch period (normally one minute) of one model id.

Columns (``USAGE_COLUMNS``): ``timestamp`` (UTC, start of the period), the period's sums
``invocations``, ``throttles``, ``input_tokens``, ``output_tokens``, ``cache_read_tokens``,
``cache_write_tokens`` and ``estimated_tpm_quota_usage`` (Bedrock's own quota-token figure; NaN
where the metric is absent), and latency in milliseconds: ``ttft_ms_avg``, ``latency_ms_avg`` and
the percentiles ``ttft_ms_p50/p90/p99``, ``latency_ms_p50/p90/p99`` (NaN where unavailable).
``UsageMeta`` says where the frame came from and how to read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SUM_COLUMNS = (
    "invocations",
    "throttles",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "estimated_tpm_quota_usage",
)
LATENCY_COLUMNS = (
    "ttft_ms_avg",
    "latency_ms_avg",
    "ttft_ms_p50",
    "ttft_ms_p90",
    "ttft_ms_p99",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
)
USAGE_COLUMNS = ("timestamp", *SUM_COLUMNS, *LATENCY_COLUMNS)


@dataclass(frozen=True)
class UsageMeta:
    """Provenance of a usage frame: ``model_id``, ``region``, ``period_s`` (60, 300 or 3600),
    the TPM/RPM quotas in force when it was read (None when unknown), the output ``burndown``
    used for quota tokens, ``source`` (``cloudwatch``, ``synthetic``, …) and ``notes``."""

    model_id: str
    region: str
    period_s: int = 60
    quota_tpm: float | None = None
    quota_rpm: float | None = None
    burndown: float = 1.0
    source: str = "cloudwatch"
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageMeta:
        """The inverse of ``to_dict``."""
        return cls(**{**d, "notes": tuple(d.get("notes", ()))})
