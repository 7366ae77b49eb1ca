"""The option chosen (``llmcap report --option``): what it buys, its cost and why, against the
other options of the same comparison (``capacity.compare``) — kept in the report as plain data
(``option_section``) and drawn as blocks (``option_blocks``) by every renderer."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from capacity.compare import Comparison
from capacity.report._elements import Block, Bullets, Heading, Para, Table
from capacity.report._model import plain

__all__ = ["option_blocks", "option_case_text", "option_section"]


def option_section(comparison: Comparison, key: str) -> dict[str, Any]:
    """The chosen option ``key`` of ``comparison`` and the others, as JSON-ready data
    (``CompareError`` naming the options when ``key`` is not one)."""
    o = comparison.option(key)
    return dict(
        plain(
            {
                "key": o.key,
                "name": o.name,
                "buys": o.request_words(),
                "lines": [dataclasses.asdict(line) for line in o.lines],
                "monthly_usd": o.monthly_usd,
                "cost": o.cost_words,
                "latency": o.latency_words,
                "throttled_share": o.throttled_share,
                "overflow_share": o.overflow_share,
                "assumptions": list(o.assumptions),
                "needs": o.needs,
                "why": list(comparison.why(key)),
                "demand": comparison.demand,
                "baseline": comparison.option(comparison.baseline).name,
                "is_baseline": key == comparison.baseline,
                "options": [
                    {
                        "key": x.key,
                        "name": x.name,
                        "buys": x.request_words(),
                        "monthly_usd": x.monthly_usd,
                        "throttled_share": x.throttled_share,
                        "overflow_share": x.overflow_share,
                    }
                    for x in comparison.options
                ],
            }
        )
    )


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.0f}"


def _throttled(x: Mapping[str, Any]) -> str:
    if x["throttled_share"] is None:
        return "not replayed"
    text = f"{100 * x['throttled_share']:.2f} %"
    if x["overflow_share"] is not None:
        text += f" (overflow {100 * x['overflow_share']:.2f} %)"
    return text


def option_blocks(doc: Mapping[str, Any] | None) -> list[Block]:
    """The section "The option chosen" (nothing without a chosen option)."""
    if not doc:
        return []
    cost = _usd(doc["monthly_usd"]) + "/month" if doc["monthly_usd"] is not None else doc["cost"]
    rows = tuple(
        (("▶ " if x["key"] == doc["key"] else "") + x["name"], x["buys"], _usd(x["monthly_usd"]),
         _throttled(x))
        for x in doc["options"]
    )  # fmt: skip
    asked = (
        "The quotas asked above are this option's."
        if doc["is_baseline"]
        else f"The quotas asked above are those of {doc['baseline']}; with this option, request "
        "the lines above instead."
    )
    return [
        Heading(2, f"The option chosen: {doc['name']}"),
        Para(f"It buys {doc['buys']}, for {cost}. {asked}"),
        Bullets(tuple(doc["why"][1:])),  # the first says what it buys: the paragraph does
        Para(
            "Every option below was sized for the same target and replayed through the quota "
            f"ledger ({doc['demand']}):"
        ),
        Table(("Option", "Request", "USD/month", "Throttled (replayed)"), rows),
        Para("Assumed for this option:"),
        Bullets(tuple(doc["assumptions"]) or ("nothing beyond the planner's inputs",)),
    ]


def option_case_text(doc: Mapping[str, Any] | None) -> str | None:
    """The option chosen, a few lines for the support case (None without one)."""
    if not doc:
        return None
    cost = _usd(doc["monthly_usd"]) + "/month" if doc["monthly_usd"] is not None else "not priced"
    lines = [f"- {doc['name']}: {doc['buys']}; {cost}; throttled (replayed) {_throttled(doc)}"]
    lines += [f"- {w}" for w in doc["why"][1:3]]
    return "\n".join(lines)
