"""``llmcap usage``: a model's measured usage from CloudWatch — per-minute quota tokens with
burndown, percentiles of TPM and RPM, throttled minutes, tokens per request, daily totals, the
growth trend and the exhaustion forecast — written as usage.parquet, a summary and figures."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account import AccountError, Connection, read_model_quotas
from account.cloudwatch import fetch_usage
from capacity.serving import burndown_for
from llmcap.commands._account import add_account_args, console, days, iso_utc, open_connection
from llmcap.commands._args import positive_float, share
from llmcap.commands._traffic import add_traffic_source_args, run_usage_from_traffic
from llmcap.errors import UserError


def register(sub: Any) -> None:
    """Add the ``usage`` subcommand to ``sub``."""
    p = sub.add_parser(
        "usage",
        help="measured usage (CloudWatch, invocation logs or a trace) and when it exhausts the "
        "quota",
        description="Read AWS/Bedrock metrics of --model-id for --days (1-minute periods up to "
        "15 days, 5-minute to 63, hourly beyond), read the TPM quota (Service Quotas) unless "
        "--tpm is given, and write usage.parquet, summary.md, usage_summary.json and figures. "
        "Offline, `llmcap emulate` serves both APIs from its own traffic: pass its URL as "
        "--endpoint-url. With --from-logs (Bedrock model invocation logs: a folder, an "
        "s3://bucket/prefix or a CloudWatch Logs export) or --from-trace (a CSV/Parquet/JSONL "
        "request trace, an llmcap run, or a shipped template) the same outputs come from every "
        "request, plus per-second peaks and token distributions (docs/traffic.md).",
    )
    add_account_args(p, region_required=False)
    p.add_argument(
        "--model-id",
        help="model or inference profile id (required for CloudWatch; with --from-logs or "
        "--from-trace: keep only this model, or name the model of a trace that has none)",
    )
    p.add_argument("--days", type=days, default=14.0, help="window ending now (default 14)")
    p.add_argument("--end", type=iso_utc, help="end of the window, ISO UTC (default: now)")
    p.add_argument(
        "--quotas-endpoint-url",
        help="Service Quotas endpoint (default: --endpoint-url); e.g. the emulator",
    )
    p.add_argument(
        "--tpm", type=positive_float, help="TPM quota to compare with (skips reading it)"
    )
    p.add_argument(
        "--burndown", type=positive_float, help="output burndown (default: from the model id)"
    )
    p.add_argument(
        "--threshold", type=share, default=0.8, help="share of the quota to forecast (0.8)"
    )
    p.add_argument(
        "--chunk-hours", type=positive_float, default=24.0, help="hours per GetMetricData (24)"
    )
    p.add_argument("-o", "--out", type=Path, default=Path("usage"), help="output directory (usage)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_traffic_source_args(p)
    p.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    """Fetch, summarize, write (account errors propagate to ``llmcap.cli.main``: one line,
    exit 2)."""
    from capacity.usage import UsageMeta, summarize_usage, usage_figures, write_usage

    if args.from_logs is not None or args.from_trace is not None:
        return run_usage_from_traffic(args)
    if args.region is None or args.model_id is None:
        raise UserError(
            "CloudWatch usage needs --region and --model-id",
            "give both, or read requests with --from-logs PATH|s3://… or --from-trace FILE",
        )
    conn = open_connection(args)
    quotas_conn = open_connection(args, args.quotas_endpoint_url)
    notes: list[str] = []
    quota_tpm, quota_rpm, tpm_code = args.tpm, None, None
    if quota_tpm is None:
        try:
            mq = read_model_quotas(quotas_conn, args.model_id)
        except (AccountError, ClientError, BotoCoreError) as exc:
            print(f"warning: quota not read ({exc}); pass --tpm", file=sys.stderr)
        else:
            quota_tpm, quota_rpm, tpm_code = mq.value("tpm"), mq.value("rpm"), mq.code("tpm")
            if quota_tpm is not None:
                notes.append(f"TPM quota {quota_tpm:,.0f} ({tpm_code}) read live")
    frame, period, fetch_notes = fetch_usage(
        conn, args.model_id, args.days, end=args.end, chunk=timedelta(hours=args.chunk_hours)
    )
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
    for line in next_steps(quotas_conn, out / "usage.parquet", tpm_code):
        con.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0


def next_steps(quotas_conn: Connection, parquet: Path, tpm_code: str | None) -> list[str]:
    """The plan from this usage and, when the TPM quota's code is known, the increase request
    on the Service Quotas connection (its endpoint is --quotas-endpoint-url when given)."""
    plan = shlex.join(["llmcap", "plan", "--from-usage", str(parquet), "--max-tokens", "N"])
    lines = [f"next: plan from it (N = the requests' max_tokens setting): {plan}"]
    if tpm_code is not None:
        ask = quotas_conn.follow_up("request-increase", quota_code=tpm_code, desired_value="N")
        lines.append(f"      ask for N tokens per minute: {ask}")
    return lines
