"""What ``compare`` and ``report --option`` share: the figures AWS does not publish, as the user
gives them (``add_given_args``, ``given_of``), and the comparison for a workload or for real
traffic, asked of ``capacity.compare`` with the command's inputs (``comparison_for_workload``,
``comparison_for_traffic``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capacity.compare import (
    DEFAULT_OVERFLOW_TARGET,
    DEFAULT_REPLAY_MINUTES,
    PT_TERMS,
    RESERVED_TERMS,
    Comparison,
    GivenFigures,
    compare,
    compare_traffic,
)
from capacity.planning import DEFAULT_HEADROOM, Objective, Quota, Workload
from llmcap.commands._args import nonneg_float, positive_float

DEFAULT_REGION = "us-east-1"


def _number(text: str) -> float:
    return positive_float(text)


def term_prices(terms: tuple[str, ...]) -> Callable[[str], dict[str, float]]:
    """An argument type: ``PRICE`` (every term) or ``TERM=PRICE,…`` with terms of ``terms``."""

    def parse(text: str) -> dict[str, float]:
        if "=" not in text:
            value = _number(text)
            return dict.fromkeys(terms, value)
        out: dict[str, float] = {}
        for part in text.split(","):
            term, _, price = part.strip().partition("=")
            if term not in terms:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: use PRICE or TERM=PRICE,… with terms {', '.join(terms)}"
                )
            out[term] = _number(price)
        return out

    return parse


def below_one(text: str) -> float:
    """A share in [0, 1), e.g. 0.3."""
    value = nonneg_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a share in [0, 1), e.g. 0.3")
    return value


def above_zero_below_one(text: str) -> float:
    """A share in (0, 1), e.g. 0.05."""
    value = below_one(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a share in (0, 1), e.g. 0.05")
    return value


def add_given_args(p: Any) -> None:
    """The figures AWS does not publish (the user's; never assumed), the deferrable share, the
    overflow target, the replay's length and the price table."""
    g = p.add_argument_group(
        "figures AWS does not publish: yours (an option without them says what it needs)"
    )
    g.add_argument(
        "--priority-premium", type=nonneg_float,
        help="Priority's price over Standard, a share (0.2 = 20 %%)",
    )  # fmt: skip
    g.add_argument("--flex-discount", type=below_one, help="Flex's discount, a share")
    g.add_argument(
        "--global-discount", type=below_one,
        help="a global profile's saving over the geographic one, a share (AWS states about 10 "
        "%% for some models; the price table's where it has one)",
    )  # fmt: skip
    terms = ",".join(f"{t}=P" for t in RESERVED_TERMS)
    for kind in ("input", "output"):
        g.add_argument(
            f"--reserved-price-{kind}", type=term_prices(RESERVED_TERMS), default={},
            metavar=f"PRICE|{terms}",
            help=f"USD per 1,000 Reserved {kind} tokens-per-minute per month (one price, or "
            "one per term)",
        )  # fmt: skip
    g.add_argument(
        "--pt-unit-input-tpm", type=positive_float,
        help="input tokens per minute of one Provisioned Throughput model unit",
    )  # fmt: skip
    g.add_argument(
        "--pt-unit-output-tpm", type=positive_float,
        help="output tokens per minute of one model unit",
    )  # fmt: skip
    g.add_argument(
        "--pt-unit-price-hour", type=term_prices(PT_TERMS), default={},
        metavar="PRICE|" + ",".join(f"{t}=P" for t in PT_TERMS),
        help="USD per model-unit hour (one price, or one per commitment)",
    )  # fmt: skip
    c = p.add_argument_group("what to buy for")
    c.add_argument(
        "--deferrable-share", type=below_one, default=0.0,
        help="share of requests that can wait for batch inference (0)",
    )  # fmt: skip
    c.add_argument(
        "--overflow-target", type=above_zero_below_one, default=DEFAULT_OVERFLOW_TARGET,
        help="largest share of requests Reserved capacity may overflow "
        f"({DEFAULT_OVERFLOW_TARGET:g})",
    )  # fmt: skip
    c.add_argument(
        "--replay-minutes", type=positive_float, default=DEFAULT_REPLAY_MINUTES,
        help=f"minutes of Poisson arrivals replayed for a workload ({DEFAULT_REPLAY_MINUTES:g})",
    )  # fmt: skip
    c.add_argument("--prices", type=Path, help="price table JSON (default: the shipped one)")


def given_of(args: argparse.Namespace) -> GivenFigures:
    """The ``GivenFigures`` of ``add_given_args``' options."""
    return GivenFigures(
        priority_premium=args.priority_premium, flex_discount=args.flex_discount,
        global_discount=args.global_discount, reserved_price_input=args.reserved_price_input,
        reserved_price_output=args.reserved_price_output,
        pt_unit_input_tpm=args.pt_unit_input_tpm, pt_unit_output_tpm=args.pt_unit_output_tpm,
        pt_unit_price_hour=args.pt_unit_price_hour, deferrable_share=args.deferrable_share,
        overflow_target=args.overflow_target,
    )  # fmt: skip


def comparison_for_workload(
    args: argparse.Namespace,
    quota: Quota,
    workload: Workload,
    target_users: float,
    region: str,
    *,
    model: Any = None,
    goal: Objective | None = None,
    headroom: float = DEFAULT_HEADROOM,
) -> Comparison:
    """``capacity.compare`` on the command's workload, priced from ``--prices`` in ``region``."""
    from capacity.usage import load_prices

    assert quota.model_id is not None
    price = load_prices(args.prices).price(quota.model_id, region)
    return compare(
        quota, workload, target_users, price, model=model, goal=goal, headroom=headroom,
        given=given_of(args), minutes=args.replay_minutes,
    )  # fmt: skip


def comparison_for_traffic(
    args: argparse.Namespace,
    arrays: Any,
    model_id: str,
    region: str,
    words: str,
    quota: Quota | None,
    target_users: float | None,
) -> Comparison:
    """``capacity.compare_traffic`` on one model's requests, priced from ``--prices``."""
    from capacity.usage import load_prices

    price = load_prices(args.prices).price(model_id, region)
    return compare_traffic(
        arrays, model_id, price, words=words, quota=quota, rule=args.quota_rule,
        throttle_target=args.throttle_target,
        max_tokens="model default" if args.max_tokens is None else int(args.max_tokens),
        burndown=getattr(args, "burndown", None), given=given_of(args),
        target_users=target_users,
    )  # fmt: skip
