"""On-demand cost from a price table (``capacity/data/bedrock_prices.json`` or your own file).

Prices are USD per 1,000 tokens for input, output, cache read and cache write, per model (longest
id prefix after a ``us.``/``eu.``/… profile prefix) and Region; geo profiles are billed at the
source Region's price. A row may also carry what the options of ``capacity.compare`` are priced
with: the batch and global-profile discounts, the Priority premium and Flex discount (shares of
the on-demand price) and Reserved capacity's USD per 1,000 tokens-per-minute per month by term;
null (or absent) where AWS publishes no figure. Pure and light: no pandas.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from capacity.errors import CapacityError
from capacity.serving import base_model_id

__all__ = [
    "HOURS_PER_MONTH",
    "RESERVED_TERMS",
    "MonthlyCost",
    "Price",
    "PriceError",
    "PriceTable",
    "load_prices",
    "monthly_cost",
]

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8,760 / 12), the usual basis of monthly cloud prices."""
RESERVED_TERMS = ("1m", "3m")
"""Reserved capacity's terms (1 or 3 months), as the price table and ``--reserved-price-*`` name
them."""
SHARES = ("batch_discount", "global_discount", "priority_premium", "flex_discount")
"""A row's optional shares of the on-demand price (null: not published)."""


class PriceError(CapacityError, ValueError):
    """No price for a model or Region, or an unreadable price file; the message has the fix."""


@dataclass(frozen=True)
class Price:
    """USD per 1,000 tokens of one model in one Region, with where the numbers come from.
    A None cache price means the model does not bill that item (or has no caching)."""

    model_match: str
    region: str
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None
    source: str
    as_of: str
    batch_discount: float | None = None
    """Share off the on-demand price for batch inference (0.5: half; None: not known)."""
    global_discount: float | None = None
    """Share off the geographic profile's price through a global profile (None: not stated)."""
    priority_premium: float | None = None
    """Share added to the on-demand price by the Priority tier (None: not published)."""
    flex_discount: float | None = None
    """Share off the on-demand price for the Flex tier (None: not published)."""
    reserved_input: dict[str, float] = field(default_factory=dict)
    """Reserved capacity's USD per 1,000 input tokens-per-minute per month, by term (``1m``,
    ``3m``); a term without a price is absent."""
    reserved_output: dict[str, float] = field(default_factory=dict)
    """The same for output tokens-per-minute."""

    def request_cost(
        self,
        input_tokens: float,
        output_tokens: float,
        cache_read_tokens: float = 0.0,
        cache_write_tokens: float = 0.0,
    ) -> float:
        """USD of one request (or of token totals)."""
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_read_tokens * (self.cache_read or 0.0)
            + cache_write_tokens * (self.cache_write or 0.0)
        ) / 1000.0

    def describe(self) -> str:
        """One line: the prices and their source."""
        cache = ""
        if self.cache_read is not None or self.cache_write is not None:
            cache = (
                f", cache read ${self.cache_read or 0:g}, cache write ${self.cache_write or 0:g}"
            )
        return (
            f"{self.model_match} in {self.region}: input ${self.input:g}, output "
            f"${self.output:g}{cache} per 1k tokens ({self.source}, {self.as_of})"
        )


@dataclass(frozen=True)
class PriceTable:
    """A parsed price file."""

    rows: tuple[dict[str, Any], ...]
    source: str
    as_of: str
    path: str
    sources: dict[str, str] = field(default_factory=dict)
    """Where the optional fields come from (``batch_discount``, ``global_discount``, …)."""

    def price(self, model_id: str, region: str) -> Price:
        """The price of ``model_id`` in ``region``; ``PriceError`` naming the fix if none."""
        key = base_model_id(model_id)
        rows = [r for r in self.rows if key.startswith(r["match"])]
        if not rows:
            raise PriceError(
                f"no on-demand price for model {model_id!r} in {self.path} — pass --prices FILE "
                "with a row for it (layout: capacity/data/bedrock_prices.json)"
            )
        best = max(rows, key=lambda r: len(r["match"]))
        if region not in best["regions"]:
            raise PriceError(
                f"no on-demand price for {best['match']} in Region {region!r} in {self.path} "
                f"(it lists {', '.join(best['regions'])}) — pass --prices FILE with that Region"
            )
        reserved = best.get("reserved_per_1k_tpm_month") or {}
        return Price(
            best["match"], region, float(best["input"]), float(best["output"]),
            _opt(best.get("cache_read")), _opt(best.get("cache_write")), self.source, self.as_of,
            batch_discount=_opt(best.get("batch_discount")),
            global_discount=_opt(best.get("global_discount")),
            priority_premium=_opt(best.get("priority_premium")),
            flex_discount=_opt(best.get("flex_discount")),
            reserved_input=_terms(reserved.get("input")),
            reserved_output=_terms(reserved.get("output")),
        )  # fmt: skip


def _opt(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def _terms(by_term: object) -> dict[str, float]:
    """The priced terms of a ``{"1m": price|null, "3m": …}`` mapping."""
    if not by_term:
        return {}
    assert isinstance(by_term, dict)
    return {str(t): float(v) for t, v in by_term.items() if v is not None}


def _check_row(r: dict[str, Any]) -> None:
    """A row's fields are of the layout's kinds (``KeyError``/``TypeError``/``ValueError``)."""
    float(r["input"]), float(r["output"]), list(r["regions"]), str(r["match"])
    for name in SHARES:
        value = _opt(r.get(name))
        if value is not None and not 0 <= value < (math.inf if name == "priority_premium" else 1):
            raise ValueError(f"{r['match']}: {name} must be a share in [0, 1), got {value!r}")
    reserved = r.get("reserved_per_1k_tpm_month") or {}
    for kind in reserved:
        if kind not in ("input", "output"):
            raise ValueError(f"{r['match']}: reserved_per_1k_tpm_month has {kind!r}")
        for term, value in _terms(reserved[kind]).items():
            if term not in RESERVED_TERMS or not value > 0:
                raise ValueError(
                    f"{r['match']}: Reserved {kind} price for term {term!r} must be > 0 with a "
                    f"term of {RESERVED_TERMS}"
                )


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The shipped price table, or the JSON file at ``path`` (same layout)."""
    try:
        if path is None:
            text = resources.files("capacity").joinpath("data/bedrock_prices.json").read_text()
            where = "the shipped price table"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
        doc = json.loads(text)
        rows = tuple(doc["prices"])
        for r in rows:
            _check_row(r)
        sources = {str(k): str(v) for k, v in dict(doc.get("sources") or {}).items()}
        return PriceTable(
            rows, str(doc.get("source", "")), str(doc.get("as_of", "")), where, sources
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise PriceError(
            f"price file {path or 'bedrock_prices.json'} is invalid ({exc}) — see the layout "
            "of capacity/data/bedrock_prices.json"
        ) from exc


@dataclass(frozen=True)
class MonthlyCost:
    """The monthly cost of a steady load: ``requests_per_min`` on average over
    ``active_hours_per_day``, each request costing ``per_request`` USD."""

    requests_per_min: float
    active_hours_per_day: float
    per_request: float
    monthly_usd: float
    price: Price

    def describe(self) -> str:
        """One line for a plan."""
        return (
            f"${self.monthly_usd:,.0f}/month on demand: {self.requests_per_min:,.1f} requests/min "
            f"on average over {self.active_hours_per_day:g} h/day at ${self.per_request:.5f} "
            f"per request ({self.price.describe()})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "requests_per_min": self.requests_per_min,
            "active_hours_per_day": self.active_hours_per_day,
            "per_request_usd": self.per_request, "monthly_usd": self.monthly_usd,
            "price": self.price.__dict__,
        }  # fmt: skip


def monthly_cost(
    price: Price,
    peak_requests_per_min: float,
    *,
    input_tokens: float,
    output_tokens: float,
    cache_read_tokens: float = 0.0,
    cache_write_tokens: float = 0.0,
    peak_to_average: float = 1.0,
    active_hours_per_day: float = 24.0,
) -> MonthlyCost:
    """The monthly on-demand cost of a planned load: the busiest minute's request rate (what a
    plan reports) divided by ``peak_to_average``, sustained for ``active_hours_per_day`` hours a
    day over an average month (730 h × active share)."""
    if peak_to_average < 1:
        raise PriceError(f"peak_to_average must be >= 1, got {peak_to_average!r}")
    per_request = price.request_cost(
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
    )
    rpm = peak_requests_per_min / peak_to_average
    minutes = HOURS_PER_MONTH * 60.0 * active_hours_per_day / 24.0
    return MonthlyCost(rpm, active_hours_per_day, per_request, rpm * minutes * per_request, price)
