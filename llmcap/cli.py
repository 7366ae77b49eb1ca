"""``llmcap``: the one console script; the composition root over ``bench`` and ``capacity``.

Each subcommand lives in ``llmcap/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``, the handler returning the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from capacity.serving._profile import ProfileError
from llmcap.commands import bench, demo, emulate, fit, plan, report, summarize

COMMANDS = (demo, bench, summarize, fit, plan, report, emulate)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="llmcap",
        description="Capacity planning and quota modelling for LLM endpoints.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmcap`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
