"""``llmcap emulate``: serve the built-in Bedrock/OpenAI-compatible emulator until Ctrl-C."""

from __future__ import annotations

from typing import Any

from emulator.cli import add_arguments, serve


def register(sub: Any) -> None:
    """Add the ``emulate`` subcommand to ``sub`` (an argparse subparsers object)."""
    parser = sub.add_parser("emulate", help="serve the built-in Bedrock/OpenAI-compatible emulator")
    add_arguments(parser)
    parser.set_defaults(func=serve)
