"""``llmcap plan --from-logs PATH|s3://… / --from-trace FILE``: the quota real traffic needs.

Every logged (or template) request is replayed through the quota ledger in virtual time and
the smallest TPM (and TPD) that throttles at most ``--throttle-target`` of them is found by
bisection (``capacity.serving.size_quota``; docs/traffic.md). With ``--target-users`` and
``--trace-users`` the trace is first scaled to the target (``capacity.usage.scale_trace``).
The other quota rule's answer is shown next to the one assumed, and what a max_tokens policy
(the p99 of the observed outputs) would save.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from rich.console import Console

from capacity.planning import fmt
from capacity.serving import QuotaLimits, load_model_table
from llmcap.commands._args import add_aws_profile
from llmcap.commands._traffic import add_sizing_args, add_traffic_source_args, load_traffic
from llmcap.errors import UserError

OBJECTIVE = (
    "none: the traffic's own requests are replayed (each settles at its logged latency, or the "
    "serving model's where the log has none); the quota is sized on throttles, not latency"
)
"""What every trace plan says about the latency objective (it plans no latency)."""


def add_trace_args(p: argparse.ArgumentParser) -> None:
    """The traffic source (``--from-logs``/``--from-trace``, ``--tz``, …), ``--trace-users`` and
    ``--throttle-target`` (``--target-users`` is the plan's own)."""
    add_traffic_source_args(p)
    g = p.add_argument_group("sizing from traffic")
    g.add_argument("--region", help="Region of the S3 bucket of --from-logs s3://… (us-east-1)")
    add_aws_profile(g)
    g.add_argument("--endpoint-url", help="S3 endpoint instead of AWS (a local stand-in)")
    add_sizing_args(g)


def _tpm_line(model_id: str, tpm: int) -> str:
    for q in load_model_table().quotas_for(model_id):
        if q.kind == "tpm":
            return f"{q.name} ({q.code}): {tpm:,}"
    return f"tokens per minute for {model_id} (code not in the shipped table): {tpm:,}"


def plan_from_traffic(args: argparse.Namespace) -> int:
    """Size the quotas of every model in the traffic; tables, or JSON with ``tpm`` the
    recommended TPM (a mapping by model id when the traffic has several models)."""
    from capacity.serving import size_quota
    from capacity.usage import request_arrays

    others = [flag for flag, given in (
        ("--endpoint mantle", args.endpoint == "mantle"),
        ("--reserved-input-tpm", args.reserved_input_tpm is not None),
        ("--reserved-output-tpm", args.reserved_output_tpm is not None),
    ) if given]  # fmt: skip
    if others:
        raise UserError(
            f"plan --from-logs/--from-trace sizes bedrock-runtime's on-demand TPM and TPD; "
            f"{', '.join(others)} is not sized from traffic here",
            "run `llmcap compare` with the same --from-logs/--from-trace: its bedrock-mantle "
            "row sizes the input and output TPM and its Reserved rows the Reserved capacity, "
            "each replayed through the quota ledger",
        )
    table = load_traffic(args)
    current = None
    if args.tpm is not None:
        current = QuotaLimits(
            tpm=int(args.tpm), rpm=None if args.rpm is None else int(args.rpm),
            tpd=None if args.tpd is None else int(args.tpd), rule=args.quota_rule,
        )  # fmt: skip
    policy: Any = "model default" if args.max_tokens is None else int(args.max_tokens)
    sizings = {}
    for model_id in table.models:
        sizings[model_id] = size_quota(
            request_arrays(table, model_id), model_id, rule=args.quota_rule,
            throttle_target=args.throttle_target,
            rpm=None if args.rpm is None else int(args.rpm), current=current,
            max_tokens=policy, burndown=args.burndown,
        )  # fmt: skip
    scaled = None
    if args.target_users is not None and args.trace_users is not None:
        scaled = {"trace_users": args.trace_users, "target_users": args.target_users}
    if args.json:
        one = next(iter(sizings.values())) if len(sizings) == 1 else None
        doc = {
            "tpm": one.tpm if one else {m: s.tpm for m, s in sizings.items()},
            "rule": args.quota_rule,
            "throttle_target": args.throttle_target,
            "objective": OBJECTIVE,
            "source": table.report.source,
            "scaled": scaled,
            "models": {m: s.to_dict() for m, s in sizings.items()},
            "load": table.report.to_dict(),
        }
        print(json.dumps(doc, indent=2, default=str, allow_nan=False))
        return 0
    out = Console(width=120)
    where = table.report.source + (
        f", scaled from {fmt(args.trace_users)} to {fmt(args.target_users)} users" if scaled else ""
    )
    out.print(f"Traffic: {where}", highlight=False, markup=False)
    out.print(f"Objective: {OBJECTIVE}", highlight=False, markup=False)
    for line in table.report.lines_for_humans():
        out.print(f"note: {line}", highlight=False, markup=False)
    for model_id, s in sizings.items():
        _print_sizing(out, model_id, s, table.start(model_id))
    return 0


def _print_sizing(out: Console, model_id: str, s: Any, start: Any) -> None:
    def say(text: str) -> None:
        out.print(text, highlight=False, markup=False, soft_wrap=True)

    at = s.at_recommended
    say(f"\n{model_id}: {s.requests:,} requests replayed through the quota ledger")
    say(
        f"  Request {_tpm_line(model_id, s.tpm)} TPM (rule '{s.rule}'): it throttles "
        f"{at.throttled:,} of them ({100 * at.throttled_share:.3f} %, target at most "
        f"{100 * s.throttle_target:g} %); under rule '{s.other_rule}' it would take "
        f"{s.tpm_other_rule:,} TPM"
    )
    say(f"  Tokens per day for that traffic: {s.tpd:,} (with the TPM above)")
    say(
        f"  Busiest minute of the traffic: {at.peak_reserved_tpm:,} tokens reserved at admission, "
        f"{at.peak_settled_tpm:,} kept at settlement"
    )
    if s.max_tokens is not None:
        m = s.max_tokens
        say(
            f"  A max_tokens of {m.max_tokens:,} (the p99 of the observed outputs) would need "
            f"{m.tpm:,} TPM ({100 * m.saving_share:.0f} % less); {m.cut_requests:,} logged "
            "outputs were longer and would be cut"
        )
    if s.current is not None:
        c = s.current
        line = (
            f"  Today's quota ({c.quota.tpm:,} TPM): {c.throttled:,} throttled "
            f"({100 * c.throttled_share:.2f} %) in {c.throttled_minutes:,} minutes"
        )
        if c.worst_minute is not None:
            w = c.worst_minute
            when = start + timedelta(seconds=w.start_s)
            line += (
                f"; worst minute {when:%Y-%m-%d %H:%M} UTC: {w.throttled:,} of {w.requests:,} "
                f"throttled, {w.reserved_tokens:,} tokens reserved"
            )
        say(line)
    for note in s.notes:
        say(f"  note: {note}")
