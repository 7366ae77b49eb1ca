"""The numbers AWS does not publish, as the user gives them, and where every price figure of a
comparison comes from (docs/architecture.md, "What to buy").

AWS states no figure for the Priority premium, the Flex discount, a Provisioned Throughput
model unit's tokens per minute and (on the pages the authors had) Reserved capacity's price per
1,000 tokens-per-minute: the user gives them (``GivenFigures``), the price table may carry them
(``capacity.usage.Price``), and without either the option says what is needed — never a
constant in the code. Every figure used is labelled with its source (``Figure``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from capacity.errors import CapacityError
from capacity.usage import RESERVED_TERMS, Price

__all__ = [
    "DEFAULT_OVERFLOW_TARGET",
    "PT_TERMS",
    "PT_TERM_WORDS",
    "RESERVED_TERMS",
    "RESERVED_TERM_WORDS",
    "CompareError",
    "Figure",
    "GivenFigures",
    "figure",
    "term_price",
]

DEFAULT_OVERFLOW_TARGET = 0.05
"""The largest share of requests Reserved capacity may let overflow to the on-demand quota, by
default (5 %)."""
PT_TERMS = ("none", "1m", "6m")
"""Provisioned Throughput's commitments: none, 1 month, 6 months (prov-throughput.html)."""
PT_TERM_WORDS = {"none": "no commitment", "1m": "1 month", "6m": "6 months"}
RESERVED_TERM_WORDS = {"1m": "1 month", "3m": "3 months"}


class CompareError(CapacityError, ValueError):
    """A comparison input that cannot be used; the message names it and the fix."""


def _share(name: str, value: float | None, *, most: float = 1.0) -> None:
    if value is None:
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value < most):
        bound = "a share in [0, 1), e.g. 0.2" if most == 1.0 else "a share >= 0, e.g. 0.2"
        raise CompareError(f"{name} must be {bound}, got {value!r}")


def _terms(name: str, prices: Mapping[str, float], terms: tuple[str, ...]) -> None:
    for term, value in prices.items():
        if term not in terms:
            raise CompareError(f"{name}: term {term!r} is not one of {', '.join(terms)}")
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise CompareError(f"{name} for term {term!r} must be a price above 0, got {value!r}")


@dataclass(frozen=True)
class GivenFigures:
    """What the user supplies because AWS publishes no number for it (None or empty: not given).

    ``priority_premium`` and ``flex_discount``: shares of the on-demand price (0.2 = 20 %);
    ``global_discount``: the share a global profile saves over the geographic one;
    ``reserved_price_input`` / ``reserved_price_output``: USD per 1,000 tokens-per-minute per
    month of Reserved capacity, by term (``"1m"``, ``"3m"``); ``pt_unit_input_tpm`` and
    ``pt_unit_output_tpm``: the input and output tokens per minute of one Provisioned
    Throughput model unit (your AWS account team gives them); ``pt_unit_price_hour``: USD per
    model-unit hour by commitment (``"none"``, ``"1m"``, ``"6m"``); ``deferrable_share``: the
    share of requests that can wait for batch inference; ``overflow_target``: the largest share
    of requests Reserved capacity may overflow.
    """

    priority_premium: float | None = None
    flex_discount: float | None = None
    global_discount: float | None = None
    reserved_price_input: dict[str, float] = field(default_factory=dict)
    reserved_price_output: dict[str, float] = field(default_factory=dict)
    pt_unit_input_tpm: float | None = None
    pt_unit_output_tpm: float | None = None
    pt_unit_price_hour: dict[str, float] = field(default_factory=dict)
    deferrable_share: float = 0.0
    overflow_target: float = DEFAULT_OVERFLOW_TARGET

    def __post_init__(self) -> None:
        _share("priority premium", self.priority_premium, most=math.inf)
        _share("Flex discount", self.flex_discount)
        _share("global discount", self.global_discount)
        _share("deferrable share", self.deferrable_share)
        _terms("Reserved input price", self.reserved_price_input, RESERVED_TERMS)
        _terms("Reserved output price", self.reserved_price_output, RESERVED_TERMS)
        _terms("model unit price per hour", self.pt_unit_price_hour, PT_TERMS)
        units = (self.pt_unit_input_tpm, self.pt_unit_output_tpm)
        if (units[0] is None) != (units[1] is None):
            raise CompareError(
                "a model unit's throughput needs both its input and its output tokens per minute "
                "(your AWS account team gives them)"
            )
        for name, value in zip(("input", "output"), units, strict=True):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise CompareError(
                    f"a model unit's {name} tokens per minute must be above 0, got {value!r}"
                )
        t = self.overflow_target
        if not (isinstance(t, int | float) and math.isfinite(t) and 0 < t < 1):
            raise CompareError(f"overflow target must be a share in (0, 1), e.g. 0.05, got {t!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "priority_premium": self.priority_premium,
            "flex_discount": self.flex_discount,
            "global_discount": self.global_discount,
            "reserved_price_input": dict(self.reserved_price_input),
            "reserved_price_output": dict(self.reserved_price_output),
            "pt_unit_input_tpm": self.pt_unit_input_tpm,
            "pt_unit_output_tpm": self.pt_unit_output_tpm,
            "pt_unit_price_hour": dict(self.pt_unit_price_hour),
            "deferrable_share": self.deferrable_share,
            "overflow_target": self.overflow_target,
        }


@dataclass(frozen=True)
class Figure:
    """One number a comparison uses and where it comes from (``"given"``, ``"price table"``),
    or None with what is needed."""

    value: float | None
    source: str

    @property
    def known(self) -> bool:
        """Whether there is a value."""
        return self.value is not None


def figure(given: float | None, table: float | None, price: Price, need: str) -> Figure:
    """The user's value, else the price table's, else unknown with ``need`` (what to pass)."""
    if given is not None:
        return Figure(float(given), "given")
    if table is not None:
        return Figure(float(table), f"price table, {price.as_of}")
    return Figure(None, f"not published: pass {need}")


def term_price(
    given: Mapping[str, float], table: Mapping[str, float], term: str, price: Price, need: str
) -> Figure:
    """A per-term price: the user's for ``term``, else the price table's, else unknown."""
    return figure(given.get(term), table.get(term), price, need)
