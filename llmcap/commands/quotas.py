"""``llmcap quotas``: the Bedrock quotas applied to the account in a Region (Service Quotas),
optionally only those governing one model id or inference profile, with open increase requests.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from account import AccountError, AppliedQuota, connect, read_model_quotas, read_quotas


def add_account_args(p: argparse.ArgumentParser) -> None:
    """--region, --profile and --endpoint-url, shared by the account commands."""
    p.add_argument("--region", required=True, help="AWS Region (e.g. us-west-2)")
    p.add_argument(
        "--profile",
        "--aws-profile",
        dest="profile",
        help="AWS named profile (default: the standard credential chain)",
    )
    p.add_argument(
        "--endpoint-url",
        help="send the calls to this URL instead of AWS (e.g. the emulator: llmcap emulate)",
    )


def console() -> Console:
    """A console that does not wrap at 80 columns when the output is captured."""
    out = Console()
    return out if out.is_terminal else Console(width=140)


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
    """Print the quotas; exit 2 with one line naming the fix on an account error."""
    try:
        conn = connect(args.region, args.profile, args.endpoint_url)
        if args.model_id is None:
            quotas = read_quotas(conn)
            if args.json:
                print(json.dumps([q.to_dict() for q in quotas], indent=2))
                return 0
            title = f"Amazon Bedrock quotas in {args.region} ({len(quotas)})"
            console().print(_table(title, quotas, requests=False))
            return 0
        mq = read_model_quotas(conn, args.model_id)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(mq.to_dict(), indent=2))
        return 0
    out = console()
    title = f"{mq.display_name} ({mq.model_id}) in {mq.region}: {mq.scope} quotas"
    out.print(_table(title, list(mq.quotas), requests=True))
    for note in mq.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    return 0
