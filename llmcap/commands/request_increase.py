"""``llmcap request-increase`` (print, and with --submit file, a Service Quotas increase request)
and ``llmcap request-status`` (follow one by id). The next step each prints carries the
connection flags the user gave (``account.Connection.follow_up``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from account import RequestStatus, plan_increase, request_status, submit_increase
from llmcap.commands._account import add_account_args, open_connection
from llmcap.commands._args import positive_float


def register(sub: Any) -> None:
    """Add ``request-increase`` and ``request-status`` to ``sub``."""
    p = sub.add_parser(
        "request-increase",
        help="print (dry run) or --submit a quota increase request",
        description="Check the quota (exists, adjustable, below the desired value, no request "
        "already open), print the exact call, and with --submit file it once (never retried) "
        "and print the request id and status.",
    )
    add_account_args(p)
    p.add_argument("--quota-code", required=True, help="e.g. L-0E7AA8B7 (see llmcap quotas)")
    p.add_argument(
        "--desired-value", type=positive_float, required=True, help="the new quota value"
    )
    p.add_argument("--submit", action="store_true", help="file the request (default: dry run)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_request_increase)
    s = sub.add_parser(
        "request-status",
        help="the status of a quota increase request",
        description="GetRequestedServiceQuotaChange for a request id.",
    )
    s.add_argument("request_id", help="the id printed by request-increase --submit")
    add_account_args(s)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_request_status)


def _print_status(status: RequestStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.to_dict(), indent=2))
        return
    print(f"request id: {status.request_id}")
    print(f"status:     {status.status}")
    print(f"quota:      {status.quota_code} ({status.quota_name})")
    print(f"desired:    {status.desired_value:,.0f}")
    print(f"filed:      {status.created}; last updated {status.last_updated}")
    if status.case_id:
        print(f"support case: {status.case_id}")


def cmd_request_increase(args: argparse.Namespace) -> int:
    """Dry run by default; --submit files it (account errors propagate to
    ``llmcap.cli.main``: one line, exit 2)."""
    conn = open_connection(args)
    plan = plan_increase(conn, args.quota_code, args.desired_value)
    if not args.submit:
        if args.json:
            print(json.dumps({"dry_run": True, **plan.to_dict()}, indent=2))
            return 0
        print(f"quota:   {plan.quota_code} ({plan.quota_name}) in {plan.region}")
        print(f"current: {plan.current_value:,.0f} → desired: {plan.desired_value:,.0f}")
        print("dry run; the call that --submit makes:")
        print(f"  {plan.cli_text()}")
        print(f"  ({plan.api_text()})")
        submit = conn.follow_up(
            "request-increase", quota_code=plan.quota_code,
            desired_value=plan.desired_value, submit=True,
        )  # fmt: skip
        print(f"file it with: {submit}")
        return 0
    status = submit_increase(conn, plan)
    _print_status(status, args.json)
    if not args.json:
        print(f"follow it with: {conn.follow_up('request-status', status.request_id)}")
    return 0


def cmd_request_status(args: argparse.Namespace) -> int:
    """Print the request's status (account errors propagate to ``llmcap.cli.main``)."""
    status = request_status(open_connection(args), args.request_id)
    _print_status(status, args.json)
    return 0
