"""What the account commands (``quotas``, ``usage``, ``request-increase``, ``request-status``)
share: the connection flags, the deprecated ``--profile`` alias, and the connection they make.

The next-step commands they print come from ``account.Connection.follow_up``: it writes back the
Region, AWS profile and endpoint of the connection the parsed flags made, so a follow-up carries
every connection flag the user gave (``--quotas-endpoint-url`` becomes the follow-up's
``--endpoint-url`` when the next step talks to Service Quotas).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.console import Console

from account import Connection, connect
from llmcap.commands._args import add_aws_profile

__all__ = [
    "add_account_args",
    "console",
    "days",
    "iso_utc",
    "open_connection",
]


def add_account_args(p: argparse.ArgumentParser, *, region_required: bool = True) -> None:
    """--region, --aws-profile (and its deprecated alias --profile) and --endpoint-url."""
    p.add_argument("--region", required=region_required, help="AWS Region (e.g. us-west-2)")
    add_aws_profile(p, alias=True)
    p.add_argument(
        "--endpoint-url",
        help="send the calls to this URL instead of AWS (e.g. the emulator: llmcap emulate)",
    )


def open_connection(args: argparse.Namespace, endpoint_url: str | None = None) -> Connection:
    """The connection the flags ask for (``endpoint_url`` instead of ``--endpoint-url`` when
    given); raises ``WrongRegion`` (``account.check_region``) or ``NoCredentials`` before any
    call."""
    return connect(args.region, args.aws_profile, endpoint_url or args.endpoint_url)


def console() -> Console:
    """A console that does not wrap at 80 columns when the output is captured."""
    out = Console()
    return out if out.is_terminal else Console(width=140)


def iso_utc(text: str) -> datetime:
    """An ISO 8601 time (``2026-05-01T00:00``), UTC unless it names its zone."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use an ISO 8601 time such as 2026-05-01T00:00 (UTC)"
        ) from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def days(text: str) -> float:
    """Days of CloudWatch history: above 0, at most 455 (its retention)."""
    from account.cloudwatch import MAX_DAYS

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a number of days above 0 and at most {MAX_DAYS} (CloudWatch keeps "
            "data that long)"
        )
    return value
