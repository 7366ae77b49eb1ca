"""The workload options ``plan`` and ``compare`` share (tokens per request, users, the busiest
minute, measured usage), and the ``Workload`` they describe."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from capacity.planning import Workload
from capacity.serving import ServiceTier
from llmcap.commands._args import positive_float


def add_workload_args(work: Any) -> None:
    """Tokens per request, cache tokens, burndown, think time or requests per user, the
    peak-to-average ratio, ``--from-usage``, active hours and the latency without a model."""
    work.add_argument("--input-tokens", type=positive_float)
    work.add_argument("--output-tokens", type=positive_float, help="expected output")
    work.add_argument(
        "--max-tokens",
        type=positive_float,
        help="the request setting (required without --from-logs/--from-trace; with them, the "
        "policy where the logs do not say: default, each model's maximum)",
    )
    work.add_argument("--cache-read-tokens", type=float, default=0.0)
    work.add_argument("--cache-write-tokens", type=float, default=0.0)
    work.add_argument("--burndown", type=positive_float, help="override the output burndown")
    users = work.add_mutually_exclusive_group()
    users.add_argument("--think-time-s", type=float, help="seconds between answer and next ask")
    users.add_argument("--requests-per-user-per-min", type=positive_float)
    work.add_argument(
        "--peak-to-average", type=float, help="busiest minute / mean: 1 unless --from-usage says"
    )
    work.add_argument(
        "--from-usage",
        type=Path,
        metavar="USAGE_PARQUET",
        help="measured usage (llmcap usage): tokens per request, peak-to-average, latency, "
        "burndown, model id and TPM quota; flags given explicitly win",
    )
    work.add_argument("--active-hours", type=float, default=24.0, help="per day, for TPD (24)")
    work.add_argument("--latency-s", type=positive_float, help="mean response time, no --model")


def workload_of(args: argparse.Namespace, service_tier: ServiceTier = "default") -> Workload:
    """The ``Workload`` of ``add_workload_args``' options (after ``--from-usage`` filled them)."""
    return Workload(
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        max_tokens=args.max_tokens,
        cache_read_tokens=args.cache_read_tokens,
        cache_write_tokens=args.cache_write_tokens,
        burndown=args.burndown,
        think_time_s=args.think_time_s,
        requests_per_user_per_min=args.requests_per_user_per_min,
        peak_to_average=1.0 if args.peak_to_average is None else args.peak_to_average,
        active_hours_per_day=args.active_hours,
        latency_s=args.latency_s,
        service_tier=service_tier,
    )


def apply_usage(args: argparse.Namespace, region: str = "price_region") -> str | None:
    """Fill the unset inputs of ``add_workload_args`` (and ``--tpm``, ``--model-id`` and the
    Region option named ``region``) from ``args.from_usage``; returns a line saying what was
    taken (None without --from-usage). Raises CapacityError for an unreadable file."""
    from capacity.usage import read_usage, summarize_usage

    if args.from_usage is None:
        return None
    frame, meta = read_usage(args.from_usage)
    s = summarize_usage(frame, meta)
    if args.tpm is None:
        args.tpm = meta.quota_tpm
    if args.model_id is None:
        args.model_id = meta.model_id
    if args.input_tokens is None:
        args.input_tokens = s.mean_input_tokens
    if args.output_tokens is None:
        args.output_tokens = min(s.mean_output_tokens, args.max_tokens)
    if not args.cache_read_tokens:
        args.cache_read_tokens = s.mean_cache_read_tokens
    if not args.cache_write_tokens:
        args.cache_write_tokens = s.mean_cache_write_tokens
    if args.burndown is None:
        args.burndown = meta.burndown
    if args.peak_to_average is None:
        args.peak_to_average = max(1.0, s.peak_to_average)
    if args.latency_s is None and args.model is None and s.latency_ms.get("latency_ms_avg"):
        args.latency_s = s.latency_ms["latency_ms_avg"] / 1000.0
    if getattr(args, region) is None:
        setattr(args, region, meta.region)
    return (
        f"workload from {args.from_usage} ({meta.model_id}, {meta.region}, {s.start[:10]} to "
        f"{s.end[:10]}): {args.input_tokens:,.0f} input, {args.output_tokens:,.0f} output, "
        f"{args.cache_read_tokens:,.0f} cache-read, {args.cache_write_tokens:,.0f} cache-write "
        f"tokens per request, peak-to-average {args.peak_to_average:.2f}, TPM quota "
        f"{'(not recorded)' if meta.quota_tpm is None else f'{meta.quota_tpm:,.0f}'}"
    )
