"""The one request-record schema: the raw columns a sweep writes, one row per sent request.

Times are seconds from the run start on one monotonic clock: ``scheduled_s`` (when the schedule
said to send), ``start_s`` (sent), ``first_token_s`` / ``last_token_s`` (first and last chunk
carrying output text) and ``end_s`` (stream closed); a time that never happened is null.
``max_gap_s`` is the longest interval between two consecutive text-carrying chunks as the client
stamped them (null with fewer than two; the client keeps no per-token stamps, so this is raw). Token
counts are the server's usage (``tokens_estimated`` marks a chunk-count fallback). ``worker``
is the worker process or Ray actor that sent the request (0 in a single-process run).
``loop_lag_s`` and ``client_cpu_share`` are the client's measure of itself while the request
was in flight: the latest its event loop ran a 10 ms timer (a stall delays every stamp taken in
it) and its process's CPU seconds per wall second (1.0 = one core busy); null when not measured.
Every metric — TTFT, TTLT, TPOT, tps, lateness, in-flight counts — is derived from these by
``capacity.records`` and nowhere else (docs/architecture.md, "Records").
"""

from __future__ import annotations

from typing import Final

RAW_COLUMNS: Final[dict[str, str]] = {
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
    "start_s": "float64",
    "first_token_s": "float64",
    "last_token_s": "float64",
    "end_s": "float64",
    "max_gap_s": "float64",
    "input_tokens": "float64",
    "output_tokens": "float64",
    "tokens_estimated": "bool",
    "active_at_start": "int64",
    "status": "string",
    "error_code": "string",
    "error_message": "string",
    "server_request_id": "string",
    "server_latency_ms": "float64",
    "retries": "int64",
    "worker": "int64",
    "loop_lag_s": "float64",
    "client_cpu_share": "float64",
}
"""Raw column → pandas dtype, in file order: exactly what ``bench`` writes."""

STATUSES: Final = ("ok", "throttled", "error", "timeout", "cancelled")
"""Allowed values of ``status``: failures are data, every sent request has one row."""
