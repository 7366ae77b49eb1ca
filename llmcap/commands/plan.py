"""``llmcap plan``: how many users a quota supports (and, with --target-users, the quota to
request for that many), as rich tables or JSON."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from capacity.errors import CapacityError
from capacity.planning import Quota, Slo, Workload
from capacity.planning._loadcurve import fmt
from capacity.planning._plan import CapacityPlan, plan_capacity
from capacity.planning._request import QuotaRequest, required_quota
from capacity.prediction import Predictor
from capacity.predictors import describe_predictor, load_predictor
from capacity.serving import QUOTA_RULES, SCOPES, load_model_table
from llmcap.commands import usage

LABELS = {
    "tpm": "tokens per minute (sustained)",
    "tpm_inflight": "tokens held in flight",
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
        "enforced, TPD, latency/SLO with --model), the binding one, and with --target-users the "
        "quota to request. The TPM rules are the quota ledger's (docs/architecture.md).",
    )
    p.error = _one_line_error(p)
    quota = p.add_argument_group("quota")
    quota.add_argument("--tpm", type=float, help="tokens per minute (or from --from-usage)")
    quota.add_argument(
        "--rpm",
        type=float,
        help="requests per minute, only where still enforced (Bedrock no longer enforces RPM on "
        "bedrock-runtime for most models)",
    )
    quota.add_argument("--tpd", type=float, help="tokens per day (optional)")
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
    work.add_argument("--input-tokens", type=float)
    work.add_argument("--output-tokens", type=float, help="expected output")
    work.add_argument("--max-tokens", type=float, required=True, help="the request setting")
    work.add_argument("--cache-read-tokens", type=float, default=0.0)
    work.add_argument("--cache-write-tokens", type=float, default=0.0)
    work.add_argument("--burndown", type=float, help="override the output burndown")
    users = work.add_mutually_exclusive_group()
    users.add_argument("--think-time-s", type=float, help="seconds between answer and next ask")
    users.add_argument("--requests-per-user-per-min", type=float)
    work.add_argument("--peak-to-average", type=float, help="busiest minute / mean (1)")
    usage.add_plan_args(work)
    work.add_argument("--active-hours", type=float, default=24.0, help="per day (for TPD)")
    work.add_argument("--latency-s", type=float, help="mean response time without --model")
    perf = p.add_argument_group("performance model and SLO")
    perf.add_argument(
        "--model", type=Path, help="model.json (`llmcap fit`) or twin.json (`llmcap twin fit`)"
    )
    perf.add_argument("--slo-ttft-p95", type=float, help="seconds (needs --model)")
    perf.add_argument("--slo-ttlt-p95", type=float, help="seconds (needs --model)")
    perf.add_argument("--slo-min-tps-p5", type=float, help="tokens/s (needs --model)")
    p.add_argument("--target-users", type=float, help="also compute the quota to request")
    p.add_argument("--headroom", type=float, default=0.2, help="margin on the request (0.2)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="replay the plan through the quota ledger in virtual time (Poisson arrivals)",
    )
    p.add_argument("--verify-minutes", type=float, default=60.0, help="simulated minutes (60)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_plan)


def _one_line_error(parser: argparse.ArgumentParser) -> Any:
    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    return error


def _quota_line(model_id: str | None, scope: str | None) -> str:
    """Which Service Quotas entry the plan is about (name and code), where the table knows it."""
    if model_id is None:
        return "Quota: TPM of an unnamed model (give --model-id for its quota name and code)"
    for q in load_model_table().quotas_for(model_id):
        if q.kind == "tpm" and q.scope == scope:
            return f"Quota: {q.name} ({q.code}), model {model_id}"
    return f"Quota: {scope} tokens per minute for {model_id} (code not in the shipped table)"


def _model_id_of(model: Predictor | None) -> str | None:
    """The model id a saved model was measured on (None when it names none)."""
    model_id = getattr(model, "model_id", None)
    return model_id if isinstance(model_id, str) and model_id.strip() else None


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan, print, return 0; on bad input print one line naming the problem and return 2.

    A bad ``--model`` file raises ``ModelFileError`` (the file and the fix), which
    ``llmcap.cli.main`` prints as one line."""
    model: Predictor | None = None if args.model is None else load_predictor(args.model)
    try:
        measured = usage.apply_usage(args)
        if args.tpm is None or args.input_tokens is None or args.output_tokens is None:
            raise CapacityError(
                "give --tpm, --input-tokens and --output-tokens, or --from-usage usage.parquet"
            )
        model_id = args.model_id or _model_id_of(model)
        quota = Quota(
            args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope, rule=args.quota_rule
        )
        workload = Workload(
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
        )
        targets = (args.slo_ttft_p95, args.slo_ttlt_p95, args.slo_min_tps_p5)
        slo = None if all(t is None for t in targets) else Slo(*targets)
        if slo is not None and args.model is None:
            raise CapacityError("--slo-* needs --model: latency is predicted by a fitted model")
        plan = plan_capacity(
            quota, workload, model, slo, verify=args.verify, verify_minutes=args.verify_minutes
        )
        request = None
        if args.target_users is not None:
            request = required_quota(
                workload, args.target_users, model, slo, args.headroom,
                model_id=model_id, scope=quota.scope, rule=quota.rule,
                rpm_enforced=True if args.rpm is not None else None,
            )  # fmt: skip
    except (CapacityError, ValueError, OSError, ImportError) as exc:
        print(f"llmcap plan: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    cost, cost_note = usage.plan_cost(args, plan.peak_requests_per_min)
    # Where the latency curve came from and what it says at the operating point (the one
    # description plans, reports and the app share).
    at = plan.inflight if math.isfinite(plan.inflight) else None
    info = describe_predictor(model, at, args.input_tokens)
    if args.json:
        doc: dict[str, Any] = {
            "plan": plan.to_dict(), "request": None if request is None else request.to_dict(),
            "from_usage": measured, "monthly_cost": None if cost is None else cost.to_dict(),
            "predictor": None if info is None else info.to_dict(),
        }  # fmt: skip
        print(json.dumps(doc, indent=2, allow_nan=False))
        return 0
    console = Console()
    if not console.is_terminal:  # piped or captured: don't wrap at rich's default 80 columns
        console = Console(width=120)
    console.print(_quota_line(quota.model_id, quota.scope), highlight=False)
    if measured is not None:
        console.print(measured, highlight=False, markup=False)
    _print_plan(console, plan)
    if cost is not None or cost_note is not None:
        line = cost_note if cost is None else f"Cost of the planned load: {cost.describe()}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if request is not None:
        _print_request(console, request)
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


def _print_request(console: Console, request: QuotaRequest) -> None:
    title = (
        f"Quota to request for {fmt(request.target_users)} users "
        f"(headroom {request.headroom:.0%}, {request.scope})"
    )
    table = Table(title=title)
    for name in ("quota", "request", "code", "name", "default"):
        table.add_column(name, justify="right" if name in ("request", "default") else "left")
    for line in request.lines:
        default = "" if line.default is None else fmt(line.default)
        table.add_row(
            line.kind.upper(), f"{line.value:,}", line.code or "", line.name or "", default
        )
    console.print(table)
    inflight = "beyond the endpoint" if request.inflight is None else fmt(request.inflight)
    console.print(
        f"Expected: {fmt(request.peak_requests_per_min)} requests/min and {inflight} in flight "
        "at the busiest minute"
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
    for key in ("tpm", "rpm", "tpd"):
        if key == "rpm" and request.rpm is None:
            continue
        console.print(
            f"  {key}: {request.formulas[key]}", highlight=False, markup=False, soft_wrap=True
        )
    for note in request.notes:
        console.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)
