"""Argument types shared by the subcommands: a bad value is one line naming the fix."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from capacity.planning import DEFAULT_SLO_FACTOR, Objective, objective
from llmcap.errors import UserError


def _number(text: str) -> float:
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def positive_int(text: str) -> int:
    """A whole number above 0."""
    value = _number(text)
    if not (value > 0 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number above 0")
    return int(value)


def nonneg_int(text: str) -> int:
    """A whole number, 0 or more."""
    value = _number(text)
    if not (value >= 0 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number, 0 or more")
    return int(value)


def positive_float(text: str) -> float:
    """A number above 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number above 0")
    return value


def nonneg_float(text: str) -> float:
    """A number, 0 or more."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number, 0 or more")
    return value


def share(text: str) -> float:
    """A share in (0, 1], e.g. 0.5."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a share in (0, 1], e.g. 0.5")
    return value


class Deprecated(argparse.Action):
    """A renamed option kept working: stores into the new option's dest and says so once."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kw: object) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)  # type: ignore[arg-type]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_aws_profile(parser: Any, *, alias: bool = False) -> None:
    """``--aws-profile``: the AWS named profile (credentials); ``alias`` keeps the old
    ``--profile`` working (hidden, with a deprecation warning) where it meant the same."""
    parser.add_argument(
        "--aws-profile", help="AWS named profile for credentials (default: the AWS chain)"
    )
    if alias:
        parser.add_argument(
            "--profile", dest="aws_profile", action=Deprecated, new="--aws-profile",
            help=argparse.SUPPRESS,
        )  # fmt: skip


def add_emulator_profile(parser: Any, default: str | None, *, alias: bool = False) -> None:
    """``--emulator-profile``: the built-in emulator's serving profile (a shipped name or a
    JSON file); ``alias`` keeps the old ``--profile`` working (hidden, deprecated)."""
    shown = f" (default: {default})" if default else ""
    parser.add_argument(
        "--emulator-profile", default=default,
        help=f"serving profile of the built-in emulator: a shipped name or a JSON file{shown}",
    )  # fmt: skip
    if alias:
        parser.add_argument(
            "--profile", dest="emulator_profile", action=Deprecated, new="--emulator-profile",
            help=argparse.SUPPRESS,
        )  # fmt: skip


def add_out(parser: Any, default: Path | None, what: str) -> None:
    """``-o/--out``: where a command writes (one spelling for every command)."""
    shown = f" (default: {default})" if default is not None else ""
    parser.add_argument("-o", "--out", type=Path, default=default, help=f"{what}{shown}")


def add_objective(parser: Any, *, tps: bool = True) -> None:
    """The latency objective, the same options on every command that states a capacity
    (``capacity.planning.objective`` decides): given targets, else the default (p95 TTFT at
    most ``--slo-ttft-factor`` × the unloaded value) wherever a model is given, or none."""
    group = parser.add_argument_group(
        "latency objective (default with a model: p95 TTFT <= 2x the unloaded p95 TTFT)"
    )
    group.add_argument("--slo-ttft-p95", type=positive_float, help="p95 TTFT target, seconds")
    group.add_argument("--slo-ttlt-p95", type=positive_float, help="p95 TTLT target, seconds")
    if tps:
        group.add_argument(
            "--slo-min-tps-p5", type=positive_float, help="floor on p5 tokens/s per request"
        )
    group.add_argument(
        "--slo-ttft-factor", type=positive_float, default=DEFAULT_SLO_FACTOR,
        help=f"the default objective's multiple of the unloaded p95 TTFT ({DEFAULT_SLO_FACTOR:g})",
    )  # fmt: skip
    group.add_argument(
        "--no-slo", action="store_true",
        help="no latency objective: users limited by the quota and the endpoint's peak",
    )  # fmt: skip


def objective_of(args: argparse.Namespace, model: Any, prompt_tokens: float) -> Objective:
    """The objective ``add_objective``'s options ask for (``capacity.planning.objective``)."""
    given = (args.slo_ttft_p95, args.slo_ttlt_p95, getattr(args, "slo_min_tps_p5", None))
    if args.no_slo and any(v is not None for v in given):
        raise UserError("--no-slo contradicts --slo-*", "give targets or --no-slo, not both")
    return objective(
        model, prompt_tokens, ttft_p95_s=given[0], ttlt_p95_s=given[1], min_tps_p5=given[2],
        use_default=not args.no_slo, factor=args.slo_ttft_factor,
    )  # fmt: skip
