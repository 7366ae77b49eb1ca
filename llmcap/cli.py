"""``llmcap``: the one console script; the composition root over ``bench`` and ``capacity``.

Each subcommand lives in ``llmcap/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``, the handler returning the exit code. Handlers raise
typed errors; ``main`` turns every one of them into a single line (``llmcap.errors``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from llmcap.commands import (
    bench,
    compare,
    demo,
    emulate,
    fit,
    plan,
    probe,
    quotas,
    report,
    request_increase,
    summarize,
    twin,
    usage,
)
from llmcap.errors import EXIT_USAGE, describe

COMMANDS = (
    demo, bench, summarize, fit, plan, compare, report, emulate, twin, probe, quotas, usage,
    request_increase,
)  # fmt: skip


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line with the fix, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <prog>: <message> — see `<prog> --help``` and exit 2: the same
        ``error: what — fix`` line as every other failure (``llmcap.errors``)."""
        first = message.strip().splitlines()[0] if message.strip() else "invalid arguments"
        self.exit(EXIT_USAGE, f"error: {self.prog}: {first} — see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(
        prog="llmcap",
        description="Capacity planning and quota modelling for LLM endpoints.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an unexpected error (also LLMCAP_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmcap`` console script: one line per failure, never a traceback
    (``llmcap --debug …`` or ``LLMCAP_DEBUG=1`` re-raises for one)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or an argument error already printed as one line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.func(args)
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug or os.environ.get("LLMCAP_DEBUG") == "1":
            raise
        failure = describe(exc, aws_profile=getattr(args, "aws_profile", None))
        sys.stdout.flush()
        print(failure.line, file=sys.stderr)
        return failure.code
    return code


if __name__ == "__main__":
    sys.exit(main())
