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
