"""``llmcap plan``: how many users a quota supports (and, with --target-users, the quota to
request for that many and what it buys), as rich tables or JSON — ``capacity.answer``, shown."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from capacity import load_predictor
from capacity.planning import (
    DEFAULT_HEADROOM,
    CapacityAnswer,
    CapacityPlan,
    Quota,
    QuotaRequest,
    answer,
    fmt,
)
from capacity.predictors import describe_predictor
from capacity.serving import ENDPOINTS, QUOTA_RULES, SCOPES, SERVICE_TIERS, load_model_table
from llmcap.commands._args import add_objective, nonneg_float, objective_of, positive_float
from llmcap.commands._trace_plan import add_trace_args, plan_from_traffic
from llmcap.commands._workload import add_workload_args, apply_usage, workload_of
from llmcap.errors import UserError

LABELS = {
    "tpm": "tokens per minute (sustained)",
    "tpm_inflight": "tokens held in flight",
    "input_tpm": "input tokens per minute (sustained)",
    "input_tpm_inflight": "input + max_tokens held in flight",
    "output_tpm": "output tokens per minute (sustained)",
    "rpm": "requests per minute",
    "tpd": "tokens per day (active hours)",
    "slo": "latency / SLO",
}


def register(sub: Any) -> None:
    """Add the ``plan`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "plan",
        help="users a quota supports; the quota to request for N users",
        description="Quota → users per constraint (TPM sustained and held in flight, RPM where "
        "enforced, TPD, latency objective with --model), the binding one, and with "
        "--target-users the quota to request and what it buys. The TPM rules are the quota "
        "ledger's (docs/architecture.md).",
    )
    quota = p.add_argument_group("quota")
    quota.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        default="runtime",
        help="bedrock-runtime (combined --tpm, default) or bedrock-mantle (--input-tpm and "
        "--output-tpm, no RPM)",
    )
    quota.add_argument("--tpm", type=positive_float, help="tokens per minute (or --from-usage)")
    quota.add_argument(
        "--input-tpm", type=positive_float, help="bedrock-mantle's input tokens per minute"
    )
    quota.add_argument(
        "--output-tpm", type=positive_float, help="bedrock-mantle's output tokens per minute"
    )
    quota.add_argument(
        "--reserved-input-tpm",
        type=positive_float,
        help="Reserved capacity's input tokens per minute (at least 100,000); used by "
        "--service-tier reserved first, overflow to the on-demand quota",
    )
    quota.add_argument(
        "--reserved-output-tpm",
        type=positive_float,
        help="Reserved capacity's output tokens per minute (at least 10,000)",
    )
    quota.add_argument(
        "--rpm",
        type=positive_float,
        help="requests per minute, only where still enforced (Bedrock no longer enforces RPM on "
        "bedrock-runtime for most models)",
    )
    quota.add_argument("--tpd", type=positive_float, help="tokens per day (optional)")
    quota.add_argument("--model-id", help="Bedrock model id: burndown and quota codes")
    quota.add_argument("--scope", choices=SCOPES, help="default: from --model-id")
    quota.add_argument(
        "--quota-rule",
        choices=QUOTA_RULES,
        default="bucket",
        help="how TPM is enforced: 'bucket' (refill + refunds, default) or 'window' (per-minute, "
        "whole reservations); the emulator takes the same option",
    )
    work = p.add_argument_group("workload (tokens per request)")
    add_workload_args(work)
    work.add_argument(
        "--service-tier",
        choices=SERVICE_TIERS,
        default="default",
        help="the requests' tier: default (Standard, the default), priority and flex share the "
        "on-demand quota; reserved uses Reserved capacity first",
    )
    work.add_argument("--price-region", help="Region for the monthly cost (default: the usage's)")
    work.add_argument("--prices", type=Path, help="price table JSON (default: the shipped one)")
    perf = p.add_argument_group("performance model")
    perf.add_argument(
        "--model", type=Path, help="model.json (`llmcap fit`) or twin.json (`llmcap twin fit`)"
    )
    add_objective(p)
    p.add_argument(
        "--target-users",
        type=positive_float,
        help="also the quota to request for this many users (with --from-trace and "
        "--trace-users: the trace scaled to them)",
    )
    p.add_argument(
        "--headroom",
        type=nonneg_float,
        default=DEFAULT_HEADROOM,
        help=f"margin on the request ({DEFAULT_HEADROOM:g}; less where it would buy no users)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="replay the plan through the quota ledger in virtual time (Poisson arrivals)",
    )
    p.add_argument("--verify-minutes", type=positive_float, default=60.0, help="(60)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_trace_args(p)
    p.set_defaults(func=cmd_plan)


def quota_line(model_id: str | None, scope: str | None, endpoint: str = "runtime") -> str:
    """Which Service Quotas entry the plan is about (name and code), where the table knows it."""
    if endpoint == "mantle":
        known = load_model_table().mantle_quotas_for(model_id) if model_id else ()
        names = " and ".join(f"{q.name} ({q.code or 'code not published'})" for q in known)
        return f"Quota: {names or 'bedrock-mantle input and output TPM'}" + (
            f", model {model_id}" if model_id else " (give --model-id for their names)"
        )
    if model_id is None:
        return "Quota: TPM of an unnamed model (give --model-id for its quota name and code)"
    for q in load_model_table().quotas_for(model_id):
        if q.kind == "tpm" and q.scope == scope:
            return f"Quota: {q.name} ({q.code}), model {model_id}"
    return f"Quota: {scope} tokens per minute for {model_id} (code not in the shipped table)"


def _model_id_of(model: Any) -> str | None:
    """The model id a saved model was measured on (None when it names none)."""
    model_id = getattr(model, "model_id", None)
    return model_id if isinstance(model_id, str) and model_id.strip() else None


def cmd_plan(args: argparse.Namespace) -> int:
    """Answer, print, return 0; bad input raises a typed error (one line, exit 2)."""
    if args.from_logs is not None or args.from_trace is not None:
        return plan_from_traffic(args)
    if args.max_tokens is None:
        raise UserError(
            "no --max-tokens",
            "give the requests' max_tokens setting (Bedrock reserves it at admission), or plan "
            "from traffic with --from-trace",
        )
    model = None if args.model is None else load_predictor(args.model)
    measured = apply_usage(args)
    mantle = args.endpoint == "mantle"
    if mantle and (args.input_tpm is None or args.output_tpm is None):
        raise UserError(
            "no bedrock-mantle quota", "give --input-tpm and --output-tpm (bedrock-mantle has "
            "separate input and output tokens-per-minute quotas)"
        )  # fmt: skip
    if (not mantle and args.tpm is None) or args.input_tokens is None or args.output_tokens is None:
        raise UserError(
            "no quota or workload", "give --tpm, --input-tokens and --output-tokens, or "
            "--from-usage usage.parquet"
        )  # fmt: skip
    model_id = args.model_id or _model_id_of(model)
    quota = Quota(
        None if mantle else args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope,
        rule=args.quota_rule, endpoint=args.endpoint, input_tpm=args.input_tpm,
        output_tpm=args.output_tpm, reserved_input_tpm=args.reserved_input_tpm,
        reserved_output_tpm=args.reserved_output_tpm,
    )  # fmt: skip
    workload = workload_of(args, args.service_tier)
    result = answer(
        quota, workload, model, objective_of(args, model, workload.prompt_tokens),
        args.target_users, headroom=args.headroom, verify=args.verify,
        verify_minutes=args.verify_minutes,
    )  # fmt: skip
    cost, cost_note = plan_cost(args, result.plan.peak_requests_per_min)
    # Where the latency curve came from and what it says at the operating point (the one
    # description plans, reports and the app share).
    at = result.plan.inflight if math.isfinite(result.plan.inflight) else None
    info = describe_predictor(model, at, workload.prompt_tokens)
    if args.json:
        doc = result.to_dict() | {
            "from_usage": measured,
            "monthly_cost": None if cost is None else cost.to_dict(),
            "predictor": None if info is None else info.to_dict(),
        }
        print(json.dumps(doc, indent=2, allow_nan=False))
        return 0
    console = Console()
    if not console.is_terminal:  # piped or captured: don't wrap at rich's default 80 columns
        console = Console(width=120)
    console.print(quota_line(quota.model_id, quota.scope, quota.endpoint), highlight=False)
    if measured is not None:
        console.print(measured, highlight=False, markup=False)
    console.print(f"Objective: {result.objective.describe()}", highlight=False, markup=False)
    _print_plan(console, result.plan)
    if cost is not None or cost_note is not None:
        line = cost_note if cost is None else f"Cost of the planned load: {cost.describe()}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.request is not None:
        _print_request(console, result)
    if info is not None:
        console.print(f"Performance model: {info.source}", highlight=False, markup=False)
        for line in (*info.details, *(f"note: {n}" for n in info.notes)):
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    return 0


def _print_plan(console: Console, plan: CapacityPlan) -> None:
    table = Table(title="Users supported, by constraint")
    for name in ("constraint", "requests/min", "in flight (peak)", "users", "headroom", "binds"):
        table.add_column(name, justify="left" if name in ("constraint", "binds") else "right")
    for c, users in plan.users_by_constraint.items():
        binds = c == plan.binding
        table.add_row(
            LABELS[c],
            fmt(plan.requests_per_min_by_constraint[c]),
            fmt(plan.max_inflight_by_constraint[c]),
            f"{int(users + 1e-9):,}",
            f"{plan.headroom_by_constraint[c]:.0%}",
            "◀" if binds else "",
            style="bold" if binds else None,
        )
    console.print(table)
    console.print(f"[bold]Answer:[/bold] {plan.answer()}", highlight=False)
    console.print(
        f"Sustained {fmt(plan.requests_per_min)} requests/min on average, mean latency "
        f"{fmt(plan.latency_s)} s ({plan.latency_source}); a full bucket admits "
        f"{fmt(plan.reservation_slots)} requests at once (burst limit); quota rule "
        f"'{plan.quota_rule}'",
        highlight=False,
    )
    if plan.verification is not None:
        console.print(f"Verified: {plan.verification.describe()}", highlight=False, markup=False)
    if plan.ttft_p95_s is not None and plan.ttlt_p95_s is not None and plan.tps_p50 is not None:
        console.print(
            f"Predicted at that load: p95 TTFT {fmt(plan.ttft_p95_s)} s, p95 TTLT "
            f"{fmt(plan.ttlt_p95_s)} s, median {fmt(plan.tps_p50)} tokens/s per request"
        )
    console.print("How:")
    keys = ["reservation_tokens", "settlement_tokens", "reservation_slots", "latency_s"]
    keys += [f"requests_per_min_by_constraint.{c}" for c in plan.users_by_constraint]
    keys.append(f"users_by_constraint.{plan.binding}")
    for key in keys:
        console.print(
            f"  {key}: {plan.formulas[key]}", highlight=False, markup=False, soft_wrap=True
        )
    for note in plan.notes:
        console.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)


def _print_request(console: Console, result: CapacityAnswer) -> None:
    request: QuotaRequest | None = result.request
    assert request is not None and result.requested is not None
    title = f"Quota to request for {fmt(request.target_users)} users ({request.scope})"
    table = Table(title=title)
    for name in ("quota", "request", "code", "name", "default"):
        table.add_column(name, justify="right" if name in ("request", "default") else "left")
    for line in result.asks:
        default = "" if line.default is None else fmt(line.default)
        table.add_row(
            line.kind.replace("_tpm", " TPM").upper(), f"{line.value:,}", line.code or "",
            line.name or "", default,
        )  # fmt: skip
    console.print(table)
    inflight = "beyond the endpoint" if request.inflight is None else fmt(request.inflight)
    console.print(
        f"Expected: {fmt(request.peak_requests_per_min)} requests/min and {inflight} in flight "
        "at the busiest minute"
    )
    console.print(
        f"It buys: {result.users_at_request:,} users, limited by {result.limited_by_at_request} "
        f"({result.headroom_words()})",
        highlight=False,
    )
    if request.feasible:
        console.print(
            "Feasible: yes" + ("" if request.inflight_limit is not None else " (quota only)")
        )
    else:
        console.print(f"Feasible: [bold red]no[/bold red] — {request.reason}")
        options = Table(title="Options")
        options.add_column("option")
        options.add_column("effect")
        for option in request.options:
            options.add_row(option.name, option.effect)
        console.print(options)
    for key in ("tpm", "input_tpm", "output_tpm", "rpm", "tpd"):
        if key not in request.formulas or (key == "rpm" and request.rpm is None):
            continue
        console.print(
            f"  {key}: {request.formulas[key]}", highlight=False, markup=False, soft_wrap=True
        )
    for note in request.notes:
        console.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)


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
