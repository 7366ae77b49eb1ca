"""``llmcap usage``: a model's measured usage from CloudWatch — per-minute quota tokens with
burndown, percentiles of TPM and RPM, throttled minutes, tokens per request, daily totals, the
growth trend and the exhaustion forecast — written as usage.parquet, a summary and figures."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account import AccountError, connect, read_model_quotas
from account.cloudwatch import fetch_usage
from capacity.serving import burndown_for
from llmcap.commands.quotas import add_account_args, console


def register(sub: Any) -> None:
    """Add the ``usage`` subcommand to ``sub``."""
    p = sub.add_parser(
        "usage",
        help="measured usage of a model (CloudWatch) and when it exhausts the quota",
        description="Read AWS/Bedrock metrics of --model-id for --days (1-minute periods up to "
        "15 days, 5-minute to 63, hourly beyond), read the TPM quota (Service Quotas) unless "
        "--tpm is given, and write usage.parquet, summary.md, usage_summary.json and figures.",
    )
    add_account_args(p)
    p.add_argument("--model-id", required=True, help="model or inference profile id")
    p.add_argument("--days", type=float, default=14.0, help="window ending now (default 14)")
    p.add_argument("--end", help="end of the window, ISO UTC (default: now)")
    p.add_argument(
        "--quotas-endpoint-url",
        help="Service Quotas endpoint (default: --endpoint-url); e.g. the emulator",
    )
    p.add_argument("--tpm", type=float, help="TPM quota to compare with (skips reading it)")
    p.add_argument("--burndown", type=float, help="output burndown (default: from the model id)")
    p.add_argument("--threshold", type=float, default=0.8, help="share of the quota (0.8)")
    p.add_argument("--chunk-hours", type=float, default=24.0, help="hours per GetMetricData")
    p.add_argument("--out", type=Path, default=Path("usage"), help="output directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    """Fetch, summarize, write; exit 2 with one line naming the fix on a user error."""
    from capacity.usage import UsageMeta, summarize_usage, usage_figures, write_usage

    try:
        end = None if args.end is None else datetime.fromisoformat(args.end)
        if end is not None and end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        if not 0 < args.threshold <= 1:
            raise ValueError("--threshold must be in (0, 1]")
        conn = connect(args.region, args.profile, args.endpoint_url)
        notes: list[str] = []
        quota_tpm, quota_rpm = args.tpm, None
        if quota_tpm is None:
            qurl = args.quotas_endpoint_url or args.endpoint_url
            try:
                mq = read_model_quotas(connect(args.region, args.profile, qurl), args.model_id)
                quota_tpm, quota_rpm = mq.value("tpm"), mq.value("rpm")
                if quota_tpm is not None:
                    notes.append(f"TPM quota {quota_tpm:,.0f} ({mq.code('tpm')}) read live")
            except (AccountError, ClientError, BotoCoreError) as exc:
                print(f"warning: quota not read ({exc}); pass --tpm", file=sys.stderr)
        frame, period, fetch_notes = fetch_usage(
            conn, args.model_id, args.days, end=end,
            chunk=timedelta(hours=args.chunk_hours),
        )  # fmt: skip
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    burndown = args.burndown if args.burndown is not None else burndown_for(args.model_id).value
    meta = UsageMeta(
        model_id=args.model_id, region=args.region, period_s=period, quota_tpm=quota_tpm,
        quota_rpm=quota_rpm, burndown=burndown, source="cloudwatch",
        notes=tuple(notes + fetch_notes),
    )  # fmt: skip
    summary = summarize_usage(frame, meta, threshold=args.threshold)
    out: Path = args.out
    write_usage(out / "usage.parquet", frame, meta)
    (out / "usage_summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    (out / "summary.md").write_text(summary.markdown())
    figures = usage_figures(frame, summary, out)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    con = console()
    con.print(summary.markdown(), markup=False, highlight=False)
    con.print(f"wrote {out / 'usage.parquet'}, {out / 'summary.md'}, "
              + ", ".join(str(f) for f in figures), markup=False, highlight=False)  # fmt: skip
    return 0


# -- used by `llmcap plan` ---------------------------------------------------------------------
def add_plan_args(p: Any) -> None:
    """``plan``'s --from-usage, --price-region and --prices."""
    p.add_argument(
        "--from-usage",
        type=Path,
        metavar="USAGE_PARQUET",
        help="measured usage (llmcap usage): tokens per request, peak-to-average, latency, "
        "burndown, model id and TPM quota; flags given explicitly win",
    )
    p.add_argument("--price-region", help="Region for the monthly cost (default: the usage's)")
    p.add_argument("--prices", type=Path, help="price table JSON (default: the shipped one)")


def apply_usage(args: argparse.Namespace) -> str | None:
    """Fill ``plan``'s unset inputs from ``args.from_usage``; returns a line saying what was
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
    if args.price_region is None:
        args.price_region = meta.region
    return (
        f"workload from {args.from_usage} ({meta.model_id}, {meta.region}, {s.start[:10]} to "
        f"{s.end[:10]}): {args.input_tokens:,.0f} input, {args.output_tokens:,.0f} output, "
        f"{args.cache_read_tokens:,.0f} cache-read, {args.cache_write_tokens:,.0f} cache-write "
        f"tokens per request, peak-to-average {args.peak_to_average:.2f}, TPM quota "
        f"{'(not recorded)' if meta.quota_tpm is None else f'{meta.quota_tpm:,.0f}'}"
    )


def plan_cost(args: argparse.Namespace, peak_requests_per_min: float) -> tuple[Any, str | None]:
    """The monthly cost of the planned load (``MonthlyCost``) when a model id and a price Region
    are known, else None; with a note when no price applies."""
    from capacity.usage import PriceError, load_prices, monthly_cost

    if args.model_id is None or args.price_region is None:
        return None, None
    try:
        price = load_prices(args.prices).price(args.model_id, args.price_region)
    except PriceError as exc:
        return None, f"no monthly cost: {exc}"
    cost = monthly_cost(
        price, peak_requests_per_min, input_tokens=args.input_tokens,
        output_tokens=args.output_tokens, cache_read_tokens=args.cache_read_tokens,
        cache_write_tokens=args.cache_write_tokens,
        peak_to_average=args.peak_to_average or 1.0, active_hours_per_day=args.active_hours,
    )  # fmt: skip
    return cost, None
