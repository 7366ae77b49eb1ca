"""Each option priced and put in words, from what sizing found (``Sized``): the on-demand
tiers, profiles and endpoints, Reserved capacity, Provisioned Throughput and batch inference.

Costs are monthly: on-demand is the load's tokens at the price table's on-demand price (a tier
or profile scales it by a share only where the user or the price table gives one); Reserved
capacity is its USD per 1,000 tokens-per-minute per month plus its overflow at the Standard
price; Provisioned Throughput is units × USD per unit-hour × 730 h; batch is the deferrable
share at the batch discount. Where a figure is missing the cost is None and says what to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from capacity.compare._given import (
    DEFAULT_OVERFLOW_TARGET,
    PT_TERM_WORDS,
    RESERVED_TERM_WORDS,
    Figure,
    GivenFigures,
    figure,
    term_price,
)
from capacity.compare._table import BuyLine, BuyOption
from capacity.planning import fmt
from capacity.serving import ReplayResult
from capacity.usage import HOURS_PER_MONTH, Price

__all__ = [
    "NAMES",
    "ON_DEMAND",
    "PRIORITY_CLAIM",
    "Latency",
    "Month",
    "Sized",
    "batch_row",
    "on_demand_row",
    "pt_row",
    "replay_words",
    "reserved_row",
]

NAMES = {
    "standard-in-region": "On-demand Standard, in-Region",
    "standard-cross-region": "On-demand Standard, cross-Region (geographic profile)",
    "standard-global": "On-demand Standard, global profile",
    "priority": "Priority tier",
    "flex": "Flex tier",
    "mantle": "bedrock-mantle (Standard)",
    "reserved-1m": "Reserved capacity, 1 month",
    "reserved-3m": "Reserved capacity, 3 months",
    "pt-none": "Provisioned Throughput, no commitment",
    "pt-1m": "Provisioned Throughput, 1 month",
    "pt-6m": "Provisioned Throughput, 6 months",
    "batch": "Batch inference for the deferrable share",
}
"""Every option's key and name, in table order."""

ON_DEMAND = "on-demand price: "
"""How every option's on-demand price assumption begins."""
PRIORITY_CLAIM = (
    "AWS claims 'up to 25% better output tokens per second' than Standard for most models "
    "(a claim, not computed here: the latency shown is the model's as measured)"
)
FLEX_CAVEAT = (
    "AWS: Flex requests 'receive lower priority' during periods of high demand; no figure is "
    "published, so latency under load may be worse than shown"
)


@dataclass(frozen=True)
class Latency:
    """The expected mean response time, p95 TTFT (None without a model) and their source."""

    latency_s: float | None
    ttft_p95_s: float | None
    words: str


@dataclass(frozen=True)
class Sized:
    """What sizing found for one option, before it is priced: the ``lines`` to request, the
    replay through them (None: not replayed, ``replay_why`` says why), the latency, how much
    Reserved capacity or how many model units (``capacity``) and notes."""

    lines: tuple[BuyLine, ...]
    result: ReplayResult | None
    latency: Latency
    replay_why: str = ""
    capacity: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    listed: bool | None = None


@dataclass(frozen=True)
class Month:
    """The whole load for a month on demand at the Standard price: ``usd`` and how."""

    usd: float
    words: str


def replay_words(result: ReplayResult) -> str:
    """What the replay did, in words."""
    text = (
        f"{result.requests:,} requests replayed through the quotas asked (rule "
        f"'{result.quota.rule}'): {result.throttled:,} throttled"
    )
    if result.reserved_requests:
        text += (
            f"; Reserved capacity took {result.admitted_on_reserved:,}, "
            f"{result.reserved_requests - result.admitted_on_reserved:,} overflowed"
        )
    return text


def _option(
    key: str,
    sized: Sized,
    usd: float | None,
    cost: str,
    assumptions: list[str],
    latency_extra: str = "",
    needs: str | None = None,
) -> BuyOption:
    r = sized.result
    lat = sized.latency
    return BuyOption(
        key=key,
        name=NAMES[key],
        lines=sized.lines,
        monthly_usd=usd,
        cost_words=cost,
        latency_s=lat.latency_s,
        ttft_p95_s=lat.ttft_p95_s,
        latency_words=lat.words + (f"; {latency_extra}" if latency_extra else ""),
        throttled_share=None if r is None else r.throttled_share,
        overflow_share=None if r is None or not r.reserved_requests else r.overflow_share,
        replay_words=sized.replay_why if r is None else replay_words(r),
        assumptions=tuple(assumptions),
        listed=sized.listed,
        notes=sized.notes,
        needs=needs,
    )


def _share_words(f: Figure, what: str) -> str:
    return f"{what} {100 * (f.value or 0):g} % ({f.source})"


def on_demand_row(
    key: str, sized: Sized, month: Month, price: Price, given: GivenFigures
) -> BuyOption:
    """An on-demand option: Standard in-Region, cross-Region or global; Priority; Flex;
    bedrock-mantle."""
    base = [ON_DEMAND + price.describe()]
    plain = f"${month.usd:,.0f}/month: {month.words}"
    if key == "standard-global":
        g = figure(given.global_discount, price.global_discount, price, "--global-discount")
        if not g.known:
            note = (
                "no global-profile discount for this model in the price table (AWS states about "
                "10 % for some models): priced as geographic; pass --global-discount"
            )
            return _option(key, sized, month.usd, plain, [*base, note])
        usd = month.usd * (1 - (g.value or 0))
        cost = f"${usd:,.0f}/month: {month.words}, less the global discount"
        return _option(key, sized, usd, cost, [*base, _share_words(g, "global discount")])
    if key in ("priority", "flex"):
        premium = key == "priority"
        flag = "--priority-premium" if premium else "--flex-discount"
        table = price.priority_premium if premium else price.flex_discount
        f = figure(given.priority_premium if premium else given.flex_discount, table, price, flag)
        what = "Priority premium" if premium else "Flex discount"
        extra = PRIORITY_CLAIM if premium else FLEX_CAVEAT
        if not f.known:
            cost = f"{what} {f.source}"
            return _option(key, sized, None, cost, [*base, f"{what}: {f.source}"], extra, flag)
        factor = 1 + (f.value or 0) if premium else 1 - (f.value or 0)
        usd = month.usd * factor
        cost = f"${usd:,.0f}/month: {month.words}, × {factor:g} ({what.lower()})"
        return _option(key, sized, usd, cost, [*base, _share_words(f, what)], extra)
    if key == "mantle":
        base.append("bedrock-mantle priced at the same on-demand price (one price per model)")
    if key == "standard-cross-region":
        base.append("a geographic profile is billed at the source Region's price")
    return _option(key, sized, month.usd, plain, base)


def reserved_row(
    term: str, sized: Sized, month: Month, price: Price, given: GivenFigures
) -> BuyOption:
    """Reserved capacity for ``term`` (``1m``, ``3m``): its monthly price per 1,000 TPM, plus
    its overflow at the Standard on-demand price."""
    key = f"reserved-{term}"
    need = "--reserved-price-input and --reserved-price-output"
    pin = term_price(given.reserved_price_input, price.reserved_input, term, price, need)
    pout = term_price(given.reserved_price_output, price.reserved_output, term, price, need)
    r_in, r_out = sized.capacity["reserved_input_tpm"], sized.capacity["reserved_output_tpm"]
    overflow = 0.0 if sized.result is None else sized.result.overflow_share
    spill = overflow * month.usd
    per = f"per 1,000 TPM per month ({RESERVED_TERM_WORDS[term]})"
    target = "(given)" if given.overflow_target != DEFAULT_OVERFLOW_TARGET else "(the default)"
    assumptions = [
        f"Reserved input price {per}: "
        + (f"${pin.value:g} ({pin.source})" if pin.known else pin.source),
        f"Reserved output price {per}: "
        + (f"${pout.value:g} ({pout.source})" if pout.known else pout.source),
        "requests served on Reserved capacity are covered by its monthly price; the overflow is "
        "billed at the Standard on-demand price",
        f"overflow target {100 * given.overflow_target:g} % {target}",
    ]
    if not (pin.known and pout.known):
        cost = f"Reserved price not published: pass {need}; overflow ${spill:,.0f}/month"
        return _option(key, sized, None, cost, assumptions, needs=need)
    fixed = (pin.value or 0) * r_in / 1000 + (pout.value or 0) * r_out / 1000
    usd = fixed + spill
    cost = (
        f"${usd:,.0f}/month: ${pin.value:g} × {fmt(r_in)}/1,000 + ${pout.value:g} × "
        f"{fmt(r_out)}/1,000 = ${fixed:,.0f} reserved, + {100 * overflow:.2f} % overflow × "
        f"${month.usd:,.0f} on demand = ${spill:,.0f}"
    )
    return _option(key, sized, usd, cost, assumptions)


def pt_row(term: str, sized: Sized, price: Price, given: GivenFigures) -> BuyOption:
    """Provisioned Throughput for a commitment (``none``, ``1m``, ``6m``): units × USD per
    unit-hour × 730 h."""
    key = f"pt-{term}"
    units = sized.capacity.get("model_units")
    if units is None:
        need = "--pt-unit-input-tpm and --pt-unit-output-tpm"
        cost = f"a model unit's throughput is not published: pass {need} (your AWS account team)"
        return _option(key, sized, None, cost, [f"a model unit's tokens per minute: {cost}"],
                       needs=need)  # fmt: skip
    assumptions = [
        f"a model unit processes {fmt(given.pt_unit_input_tpm or 0)} input and "
        f"{fmt(given.pt_unit_output_tpm or 0)} output tokens per minute (given)"
    ]
    hourly = given.pt_unit_price_hour.get(term)
    if hourly is None:
        need = "--pt-unit-price-hour"
        cost = f"price per model-unit hour ({PT_TERM_WORDS[term]}) not given: pass {need}"
        return _option(key, sized, None, cost, [*assumptions, cost], needs=need)
    assumptions.append(f"${hourly:g} per model-unit hour, {PT_TERM_WORDS[term]} (given)")
    usd = units * hourly * HOURS_PER_MONTH
    cost = f"${usd:,.0f}/month: {units:,.0f} units × ${hourly:g}/h × {HOURS_PER_MONTH:g} h"
    return _option(key, sized, usd, cost, assumptions)


def batch_row(sized: Sized, month: Month, price: Price, given: GivenFigures) -> BuyOption:
    """Batch inference for the deferrable share, the rest on demand (Standard)."""
    d = given.deferrable_share
    base = [ON_DEMAND + price.describe()]
    if d <= 0:
        cost = "no deferrable share given: pass --deferrable-share (the share that can wait)"
        return _option("batch", sized, None, cost, [*base, cost], needs="--deferrable-share")
    b = price.batch_discount
    base.append(f"deferrable share {100 * d:g} % (given)")
    if b is None:
        need = "a batch_discount for this model in --prices FILE"
        cost = f"no batch price for this model in the price table: give {need}"
        return _option("batch", sized, None, cost, base, needs=need)
    base.append(f"batch discount {100 * b:g} % (price table, {price.as_of})")
    usd = month.usd * ((1 - d) + d * (1 - b))
    cost = (
        f"${usd:,.0f}/month: {100 * (1 - d):g} % on demand + {100 * d:g} % at "
        f"{100 * (1 - b):g} % of the on-demand price ({month.words})"
    )
    extra = "the deferred share runs as batch jobs (asynchronous: no latency objective)"
    return _option("batch", sized, usd, cost, base, extra)
