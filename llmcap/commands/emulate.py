"""``llmcap emulate``: serve the built-in Bedrock/OpenAI-compatible emulator until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from emulator.cli import add_arguments, serve
from llmcap.commands._args import Deprecated


def register(sub: Any) -> None:
    """Add the ``emulate`` subcommand to ``sub`` (an argparse subparsers object)."""
    parser = sub.add_parser("emulate", help="serve the built-in Bedrock/OpenAI-compatible emulator")
    add_arguments(parser, profile_flag="--emulator-profile")
    parser.add_argument(
        "--profile", dest="profile", action=Deprecated, new="--emulator-profile",
        help=argparse.SUPPRESS,
    )  # fmt: skip
    parser.set_defaults(func=serve)
