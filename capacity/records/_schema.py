"""The analysis side of the one record schema: raw columns (``contracts.records``, what bench
writes) plus the metrics derived from them, defaults, and the seed-format mapping.

Times are seconds from the run start on one monotonic clock; a time that never happened is NaN
(null in JSON/Parquet). Token counts are float64 so that missing usage is NaN rather than a
sentinel. docs/architecture.md, "Records", defines every derived metric.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from contracts.records import RAW_COLUMNS, STATUSES as STATUSES

DERIVED_COLUMNS: Final = ("lateness_s", "ttft_s", "ttlt_s", "e2e_s", "tpot_s", "tps")
"""Columns computed from the raw offsets on load (``derive_metrics``); given values are checked."""


def _with_derived() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, dtype in RAW_COLUMNS.items():
        out[name] = dtype
        if name == "scheduled_s":
            out["lateness_s"] = "float64"
        elif name == "tokens_estimated":
            out.update(dict.fromkeys(DERIVED_COLUMNS[1:], "float64"))
    return out


RECORD_COLUMNS: Final[dict[str, str]] = _with_derived()
"""The analysis frame's columns → pandas dtype: the raw columns bench writes
(``contracts.records.RAW_COLUMNS``) with the derived ones beside the offsets they come from."""


RAW_TIMES: Final = ("start_s", "first_token_s", "last_token_s", "end_s")
"""The raw monotonic offsets: send, first content token, last content token, stream closed."""


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
