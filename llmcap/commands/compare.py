"""``llmcap compare``: what to buy — every Bedrock option for a workload (or real traffic) and a
target, each with what to request, its monthly cost, expected latency and replayed throttle
share, and what is assumed; ``capacity.compare``, shown (docs/architecture.md, "What to buy")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from capacity import load_predictor
from capacity.compare import ON_DEMAND, Comparison
from capacity.planning import DEFAULT_HEADROOM, Quota
from capacity.serving import QUOTA_RULES, SCOPES
from llmcap.commands._args import (
    add_aws_profile,
    add_objective,
    nonneg_float,
    objective_of,
    positive_float,
)
from llmcap.commands._buy import (
    DEFAULT_REGION,
    add_given_args,
    comparison_for_traffic,
    comparison_for_workload,
)
from llmcap.commands._traffic import (
    add_sizing_args,
    add_traffic_source_args,
    load_traffic,
    traffic_given,
)
from llmcap.commands._workload import add_workload_args, apply_usage, workload_of
from llmcap.errors import UserError

WORKLOAD_ONLY = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                 "think_time_s", "requests_per_user_per_min", "peak_to_average", "from_usage",
                 "latency_s", "model")  # fmt: skip
"""Options the traffic measures itself (or cannot use): refused with --from-logs/--from-trace."""


def register(sub: Any) -> None:
    """Add the ``compare`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "compare",
        help="what to buy: every Bedrock option for a load, its cost, latency and throttles",
        description="For a workload (or --from-logs/--from-trace) and --target-users: on-demand "
        "Standard (in-Region, cross-Region, global), Priority, Flex, bedrock-mantle, Reserved "
        "capacity (1 and 3 months), Provisioned Throughput and batch inference, each with the "
        "quota or capacity to request, the monthly cost, the expected latency and the share "
        "throttled when the load is replayed through the quota ledger. Figures AWS does not "
        "publish are yours to give; without them an option says what it needs.",
    )
    quota = p.add_argument_group("today's quota (bedrock-runtime)")
    quota.add_argument("--tpm", type=positive_float, help="tokens per minute (or --from-usage)")
    quota.add_argument("--rpm", type=positive_float, help="requests per minute, where enforced")
    quota.add_argument("--tpd", type=positive_float, help="tokens per day (optional)")
    quota.add_argument("--model-id", help="Bedrock model id or inference profile id")
    quota.add_argument("--scope", choices=SCOPES, help="default: from --model-id")
    quota.add_argument(
        "--quota-rule", choices=QUOTA_RULES, default="bucket",
        help="how TPM is enforced: 'bucket' (default) or 'window' (docs/architecture.md)",
    )  # fmt: skip
    quota.add_argument(
        "--region",
        help="the Region of the quota and the prices (and of an s3:// log bucket); default: the "
        "usage's, else us-east-1",
    )
    work = p.add_argument_group("workload (tokens per request)")
    add_workload_args(work)
    p.add_argument(
        "--model", type=Path, help="model.json (`llmcap fit`) or twin.json (`llmcap twin fit`)"
    )
    add_objective(p)
    p.add_argument(
        "--target-users",
        type=positive_float,
        help="users to serve (with --from-trace and --trace-users: the trace scaled to them)",
    )
    p.add_argument(
        "--headroom",
        type=nonneg_float,
        default=DEFAULT_HEADROOM,
        help=f"margin on the quotas asked ({DEFAULT_HEADROOM:g}; less where it would buy no "
        "users; none from traffic)",
    )
    add_given_args(p)
    add_traffic_source_args(p)
    t = p.add_argument_group("sizing from traffic")
    add_sizing_args(t)
    add_aws_profile(t)
    t.add_argument("--endpoint-url", help="S3 endpoint instead of AWS (a local stand-in)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare, print, return 0; bad input raises a typed error (one line, exit 2)."""
    comparison = _from_traffic(args) if traffic_given(args) else _from_workload(args)
    if args.json:
        print(comparison.to_json())
        return 0
    print_comparison(comparison)
    return 0


def _from_workload(args: argparse.Namespace) -> Comparison:
    if args.max_tokens is None:
        raise UserError(
            "no --max-tokens",
            "give the requests' max_tokens setting (Bedrock reserves it at admission), or "
            "compare from traffic with --from-trace",
        )
    model = None if args.model is None else load_predictor(args.model)
    apply_usage(args, "region")
    if args.tpm is None or args.input_tokens is None or args.output_tokens is None:
        raise UserError(
            "no quota or workload",
            "give --tpm, --input-tokens and --output-tokens, or --from-usage usage.parquet",
        )
    model_id = args.model_id or getattr(model, "model_id", None)
    if not model_id:
        raise UserError("no --model-id", "name the model (its prices and quota codes)")
    if args.target_users is None:
        raise UserError("no --target-users", "give the users to buy capacity for")
    quota = Quota(args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope,
                  rule=args.quota_rule)  # fmt: skip
    workload = workload_of(args)
    goal = objective_of(args, model, workload.prompt_tokens)
    return comparison_for_workload(
        args, quota, workload, args.target_users, args.region or DEFAULT_REGION, model=model,
        goal=goal, headroom=args.headroom,
    )  # fmt: skip


def _from_traffic(args: argparse.Namespace) -> Comparison:
    from capacity.usage import request_arrays

    given = [f"--{f.replace('_', '-')}" for f in WORKLOAD_ONLY if _set(args, f)]
    if given:
        raise UserError(
            f"{', '.join(given)} with real traffic",
            "drop them: the traffic gives the tokens, the rate and the latency",
        )
    table = load_traffic(args)
    models = table.models
    model_id = args.model_id or (models[0] if len(models) == 1 else None)
    if model_id is None:
        raise UserError(
            f"the traffic holds {len(models)} models ({', '.join(models)})",
            "choose one with --model-id",
        )
    scaled = args.target_users is not None and args.trace_users is not None
    words = table.report.source + (
        f", scaled from {args.trace_users:,g} to {args.target_users:,g} users" if scaled else ""
    )
    quota = None
    if args.tpm is not None:
        quota = Quota(args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope,
                      rule=args.quota_rule)  # fmt: skip
    return comparison_for_traffic(
        args, request_arrays(table, model_id), model_id, args.region or DEFAULT_REGION, words,
        quota, args.target_users if scaled else None,
    )  # fmt: skip


def _set(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name, None)
    return value is not None and not (name.startswith("cache_") and value == 0.0)


def _pct(x: float | None) -> str:
    return "not replayed" if x is None else f"{100 * x:.2f} %"


def print_comparison(c: Comparison, console: Console | None = None) -> None:
    """The comparison as a table, then what each option assumes beyond the common lines."""
    out = console or Console(width=150)

    def say(text: str) -> None:
        out.print(text, highlight=False, markup=False, soft_wrap=True)

    base = c.option(c.baseline)
    users = "" if c.target_users is None else f" for {c.target_users:,.0f} users"
    say(f"What to buy: {c.model_id} in {c.region}{users} (quota rule '{c.rule}')")
    say(f"Objective: {c.objective}")
    say(f"Replayed: {c.demand}")
    say(f"Latency: {base.latency_words}")
    say(f"Prices: {c.price}")
    table = Table(show_lines=True)
    for name in ("option", "request", "USD/month", "latency", "throttled (replayed)"):
        table.add_column(name)
    for o in c.options:
        cost = f"${o.monthly_usd:,.0f}" if o.monthly_usd is not None else "n/a"
        if o.monthly_usd is None and o.needs and o.lines:
            cost = f"needs {o.needs}"
        latency = "n/a" if o.latency_s is None else f"{o.latency_s:.2f} s mean"
        if o.ttft_p95_s is not None:
            latency += f", p95 TTFT {o.ttft_p95_s:.2f} s"
        throttled = _pct(o.throttled_share)
        if o.overflow_share is not None:
            throttled += f" (overflow {_pct(o.overflow_share)})"
        name = o.name + (" *" if o.key == c.baseline else "")
        table.add_row(name, o.request_words(), cost, latency, throttled)
    out.print(table)
    say("* on-demand Standard on today's quota's scope (what `llmcap plan` asks)")
    for o in c.options:
        say(f"{o.name}: {o.cost_words}")
        lines = [a for a in o.assumptions if not a.startswith(ON_DEMAND)]
        if o.latency_words != base.latency_words:
            lines.append(o.latency_words.removeprefix(base.latency_words + "; "))
        if o.throttled_share is None or o.overflow_share is not None:
            lines.append(o.replay_words)
        for line in (*lines, *o.notes):
            say(f"  - {line}")
    for note in c.notes:
        say(f"note: {note}")
