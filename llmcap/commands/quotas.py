"""``llmcap quotas``: the Bedrock quotas applied to the account in a Region (Service Quotas),
optionally only those governing one model id or inference profile, with open increase requests,
and the next steps (usage, the increase request) with the same connection flags.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from account import AppliedQuota, Connection, ModelQuotas, read_model_quotas, read_quotas
from llmcap.commands._account import add_account_args, console, open_connection


def register(sub: Any) -> None:
    """Add the ``quotas`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "quotas",
        help="the account's Bedrock quotas in a Region (Service Quotas)",
        description="Applied Bedrock quotas with their defaults; with --model-id only the TPM, "
        "RPM and TPD quotas of that model in the scope its id selects (on-demand, cross-Region "
        "for us./eu./apac. profiles, global for global.), and their open increase requests.",
    )
    add_account_args(p)
    p.add_argument("--model-id", help="a model id or inference profile id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_quotas)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def _table(title: str, quotas: list[AppliedQuota], requests: bool) -> Table:
    table = Table(title=title)
    columns = ["code", "name", "value", "default", "adjustable"]
    columns += ["open requests", "source"] if requests else []
    for name in columns:
        table.add_column(name, justify="right" if name in ("value", "default") else "left")
    for q in quotas:
        adjustable = "" if q.adjustable is None else ("yes" if q.adjustable else "no")
        row = [q.code, q.name, _num(q.value), _num(q.default), adjustable]
        if requests:
            reqs = ", ".join(
                f"{r.request_id} {r.status} → {r.desired_value:,.0f}" for r in q.open_requests
            )
            row += [reqs, q.source]
        table.add_row(*row)
    return table


def cmd_quotas(args: argparse.Namespace) -> int:
    """Print the quotas (account errors propagate to ``llmcap.cli.main``: one line, exit 2)."""
    conn = open_connection(args)
    if args.model_id is None:
        quotas = read_quotas(conn)
        if args.json:
            print(json.dumps([q.to_dict() for q in quotas], indent=2))
            return 0
        title = f"Amazon Bedrock quotas in {args.region} ({len(quotas)})"
        console().print(_table(title, quotas, requests=False))
        return 0
    mq = read_model_quotas(conn, args.model_id)
    if args.json:
        print(json.dumps(mq.to_dict(), indent=2))
        return 0
    out = console()
    title = f"{mq.display_name} ({mq.model_id}) in {mq.region}: {mq.scope} quotas"
    out.print(_table(title, list(mq.quotas), requests=True))
    for note in mq.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    for line in next_steps(conn, mq):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def next_steps(conn: Connection, mq: ModelQuotas) -> list[str]:
    """The usage and increase-request commands for the model, with the connection's flags."""
    lines = [f"next: measured usage: {conn.follow_up('usage', model_id=mq.model_id)}"]
    code = mq.code("tpm")
    if code is not None:
        ask = conn.follow_up("request-increase", quota_code=code, desired_value="N")
        lines.append(f"      ask for N tokens per minute: {ask}")
    return lines
