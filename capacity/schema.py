"""The request-record schema (DESIGN §3.2): column names, dtypes, statuses, seed-format mapping.

``RECORD_COLUMNS`` is the contract with ``bench``'s writer (pinned by a contract test): column →
pandas dtype, in file order. Times are seconds from the run start on one monotonic clock; a time
that never happened is NaN (null in JSON/Parquet). Token counts are float64 so that missing usage
is NaN rather than a sentinel.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

RECORD_COLUMNS: Final[dict[str, str]] = {
    "run_id": "string",
    "request_id": "string",
    "provider": "string",
    "model_id": "string",
    "prompt_label": "string",
    "mode": "string",
    "level": "float64",
    "batch": "int64",
    "max_tokens": "int64",
    "temperature": "float64",
    "scheduled_s": "float64",
    "lateness_s": "float64",
    "start_s": "float64",
    "first_token_s": "float64",
    "last_token_s": "float64",
    "end_s": "float64",
    "input_tokens": "float64",
    "output_tokens": "float64",
    "tokens_estimated": "bool",
    "ttft_s": "float64",
    "ttlt_s": "float64",
    "e2e_s": "float64",
    "tpot_s": "float64",
    "tps": "float64",
    "active_at_start": "int64",
    "status": "string",
    "error_code": "string",
    "error_message": "string",
    "server_request_id": "string",
    "server_latency_ms": "float64",
    "retries": "int64",
    "worker": "int64",
}
"""Record column → pandas dtype, in file order (the seam between ``bench`` and ``capacity``)."""

STATUSES: Final = ("ok", "throttled", "error", "timeout", "cancelled")
"""Allowed values of ``status``: failures are data, every sent request has one row."""

RAW_TIMES: Final = ("start_s", "first_token_s", "last_token_s", "end_s")
"""The raw monotonic offsets: send, first content token, last content token, stream closed."""

DERIVED_COLUMNS: Final = ("ttft_s", "ttlt_s", "e2e_s", "tpot_s", "tps")
"""Columns recomputed from the raw offsets on load (DESIGN §4); given values are checked."""

REQUIRED_COLUMNS: Final = (*RAW_TIMES, "output_tokens", "status", "level")
"""Columns a records source must have; every other column has a documented default."""

DEFAULTS: Final = MappingProxyType(
    {
        "batch": 0,
        "max_tokens": 0,
        "tokens_estimated": False,
        "retries": 0,
        "worker": 0,
    }
)
"""Fill values of absent non-nullable columns (a note says so). ``max_tokens`` 0 = unknown.

Absent float columns are NaN and absent text columns null; ``run_id`` defaults to the source's
name, ``request_id`` to the row number, ``prompt_label`` to the input token count and
``active_at_start`` is computed from the offsets by the sweep-line.
"""

DERIVED_TOLERANCE_S: Final = 1e-6
"""Largest accepted difference between a given derived time and the one from the offsets."""

ORDER_TOLERANCE_S: Final = 1e-9
"""Offsets may tie but not run backwards by more than this (float round-off)."""

SEED_COLUMNS: Final = MappingProxyType(
    {
        "time_to_first_token": "ttft_s",
        "time_to_last_token": "ttlt_s",
        "time_per_output_token": "tpot_s",
        "tokens_per_second": "tps",
        "num_concurrent_calls": "level",
        "input_tokens": "input_tokens",
        "output_tokens": "output_tokens",
        "model_id": "model_id",
        "provider": "provider",
        "max_tokens": "max_tokens",
        "temperature": "temperature",
        "prompt_label": "prompt_label",
    }
)
"""The seed framework's per-request columns (Avahi's ``invoke_stream_parsed`` results plus
``num_concurrent_calls``) → ours. ``request_start``/``request_end`` (ISO timestamps) become
``start_s``/``end_s`` relative to the file's first request."""

SEED_REQUIRED: Final = (
    "time_to_first_token",
    "time_to_last_token",
    "output_tokens",
    "num_concurrent_calls",
    "request_start",
)
"""Seed-format columns without which the records cannot be rebuilt."""

SEED_SUMMARY_COLUMNS: Final = MappingProxyType(
    {
        "model_id": "Model",
        "level": "Concurrent Calls",
        "input_tokens_mean": "Input Tokens",
        "output_tokens_mean": "Average output Tokens",
        "temperature": "Temperature",
        "tps_mean": "Average TPS",
        "tps_p50": "Median TPS",
        "tps_min": "Min TPS",
        "tps_max": "Max TPS",
        "ttlt_mean_s": "Avg Response Time (s)",
        "concurrency_mean": "Average Concurrent Requests",
        "concurrency_max": "Max Concurrent Requests",
    }
)
"""Summary column → the seed's summary heading (``capacity.seed_table`` renames with it)."""

PERCENTILES: Final = (50, 90, 95, 99)
"""Percentiles reported for latencies and tps (linear interpolation, numpy's default)."""

TPS_LOW_PERCENTILES: Final = (5, 10)
"""Extra low percentiles of per-request tps: the slow tail users feel."""
