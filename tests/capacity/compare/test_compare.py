"""``capacity.compare`` on a workload: every option's numbers against hand-derived arithmetic
(the planner's rules on the seed prompt, no model) and its replayed throttle and overflow
shares against the emulator's ledger driven request by request (``ledger_loop``); figures AWS
does not publish appear only when given; the table round-trips through JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from capacity.compare import (
    OPTIONS,
    PRIORITY_CLAIM,
    CompareError,
    Comparison,
    GivenFigures,
    compare,
)
from capacity.planning import Quota, Workload, answer
from capacity.serving import QuotaLimits, RequestArrays, poisson_arrivals
from capacity.usage import load_prices
from tests.capacity.compare.ledger_loop import ledger_run

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TODAY = Quota(600_000, model_id=LLAMA)
SEED = Workload(43, 350, 350, think_time_s=30)
PRICE = load_prices().price(LLAMA, "us-east-1")
# No model: R = 0.28 + (350 − 1) / 136 s (the seed blog's single-request speed); 2,000 users
# thinking 30 s send 2,000 × 60 / (R + 30) requests per minute; each reserves and settles
# 43 + 350 = 393 tokens (burndown 1).
R = 0.28 + 349 / 136
RATE = 2000 * 60 / (R + 30)
MINUTES = 10.0
GIVEN = GivenFigures(
    priority_premium=0.2, flex_discount=0.5, global_discount=0.1,
    reserved_price_input={"1m": 2.0, "3m": 1.5}, reserved_price_output={"1m": 20.0, "3m": 15.0},
    pt_unit_input_tpm=1_000_000, pt_unit_output_tpm=100_000,
    pt_unit_price_hour={"none": 40.0, "1m": 30.0, "6m": 20.0}, deferrable_share=0.3,
)  # fmt: skip


@pytest.fixture(scope="module")
def given() -> Comparison:
    return compare(TODAY, SEED, 2000, PRICE, given=GIVEN, minutes=MINUTES)


@pytest.fixture(scope="module")
def bare() -> Comparison:
    return compare(TODAY, SEED, 2000, PRICE, minutes=MINUTES)


def values(c: Comparison, key: str) -> dict[str, float]:
    return {line.kind: line.value for line in c.option(key).lines}


def poisson(rate: float, minutes: float = MINUTES) -> RequestArrays:
    """The requests compare replays for the seed workload: Poisson arrivals (seed 0), in
    seconds from the first."""
    t = np.asarray(poisson_arrivals(rate, minutes, seed=0))
    t -= t[0]
    n = len(t)
    full = np.full
    return RequestArrays(t, full(n, 43), full(n, 0), full(n, 0), full(n, 350), full(n, 350),
                         full(n, R), np.ones(n, dtype=bool))  # fmt: skip


def test_every_option_is_in_the_table_in_order(given: Comparison) -> None:
    assert given.keys == OPTIONS and given.baseline == "standard-cross-region"
    assert given.source == "workload" and given.target_users == 2000


def test_on_demand_quotas_are_the_planners_worked_by_hand(given: Comparison) -> None:
    tpm = math.ceil(1.2 * RATE * 393)
    assert tpm == 1_722_941  # the What-if page's default answer
    for key in ("standard-in-region", "standard-cross-region", "standard-global", "priority",
                "flex"):  # fmt: skip
        assert values(given, key) == {"tpm": tpm}, key
    codes = {k: given.option(k).lines[0].code for k in OPTIONS[:3]}
    assert codes == {"standard-in-region": None, "standard-cross-region": "L-0E7AA8B7",
                     "standard-global": None}  # fmt: skip
    # What `llmcap plan` asks on today's scope: the same answer.
    ask = answer(TODAY, SEED, target_users=2000).asks
    assert [(a.kind, a.value, a.code) for a in ask] == [("tpm", tpm, "L-0E7AA8B7")]
    # bedrock-mantle: input TPM keeps 43 per request, output TPM 350 (1.2 × λ_peak each).
    assert values(given, "mantle") == {
        "input_tpm": math.ceil(1.2 * RATE * 43), "output_tpm": math.ceil(1.2 * RATE * 350)
    }  # fmt: skip


def test_costs_worked_by_hand(given: Comparison) -> None:
    month = RATE * 60 * 730 * 393 * 0.00072 / 1000  # λ × minutes a month × $ per request
    usd = {o.key: o.monthly_usd for o in given.options}
    assert usd["standard-cross-region"] == pytest.approx(month, rel=1e-9)
    assert usd["standard-in-region"] == pytest.approx(month, rel=1e-9)
    assert usd["standard-global"] == pytest.approx(0.9 * month, rel=1e-9)
    assert usd["priority"] == pytest.approx(1.2 * month, rel=1e-9)
    assert usd["flex"] == pytest.approx(0.5 * month, rel=1e-9)
    assert usd["mantle"] == pytest.approx(month, rel=1e-9)
    assert usd["batch"] == pytest.approx(month * (0.7 + 0.3 * 0.5), rel=1e-9)
    units = 16  # max(ceil(1.2 λ 43 / 1e6), ceil(1.2 λ 350 / 1e5)) = max(1, 16)
    assert values(given, "pt-none") == {"model_units": units}
    assert usd["pt-none"] == units * 40 * 730 and usd["pt-6m"] == units * 20 * 730
    for term, pin, pout in (("1m", 2.0, 20.0), ("3m", 1.5, 15.0)):
        o = given.option(f"reserved-{term}")
        v = values(given, f"reserved-{term}")
        assert o.overflow_share is not None
        fixed = pin * v["reserved_input_tpm"] / 1000 + pout * v["reserved_output_tpm"] / 1000
        assert o.monthly_usd == pytest.approx(fixed + o.overflow_share * month, rel=1e-9)


def test_batch_asks_the_interactive_share_only(given: Comparison) -> None:
    # 70 % of the requests: 1,400 users on demand (no model: the rate is linear in users).
    assert values(given, "batch") == {"tpm": math.ceil(1.2 * 0.7 * RATE * 393), "batch_share": 0.3}


def test_throttles_are_the_ledgers_request_by_request() -> None:
    # Rule 'window' and no headroom: a minute with more arrivals than the mean throttles.
    quota = Quota(600_000, model_id=LLAMA, rule="window")
    c = compare(quota, SEED, 2000, PRICE, headroom=0.0, minutes=MINUTES)
    peak = answer(quota, SEED, target_users=2000, headroom=0.0).request.peak_requests_per_min  # type: ignore[union-attr]
    assert peak == pytest.approx(RATE)
    arrays = poisson(peak)
    tpm = int(values(c, "standard-cross-region")["tpm"])
    assert tpm == math.ceil(RATE * 393)
    throttled, _ = ledger_run(arrays, QuotaLimits(tpm=tpm, rule="window"))
    assert throttled > 0
    for key in ("standard-cross-region", "priority", "flex"):
        assert c.option(key).throttled_share == pytest.approx(throttled / len(arrays)), key


def test_reserved_capacity_is_the_smallest_that_keeps_overflow_within_the_target(
    given: Comparison,
) -> None:
    v = values(given, "reserved-3m")
    peak = answer(TODAY, SEED, target_users=2000).request.peak_requests_per_min  # type: ignore[union-attr]
    arrays = poisson(peak)

    def overflow(r_in: float, r_out: float) -> float:
        limits = QuotaLimits(reserved_input_tpm=math.ceil(r_in),
                             reserved_output_tpm=math.ceil(r_out))  # fmt: skip
        _, on_reserved = ledger_run(arrays, limits, tier="reserved")
        return 1 - on_reserved / len(arrays)

    found = overflow(v["reserved_input_tpm"], v["reserved_output_tpm"])
    assert found <= 0.05
    assert given.option("reserved-3m").overflow_share == pytest.approx(found)
    assert overflow(0.9 * v["reserved_input_tpm"], 0.9 * v["reserved_output_tpm"]) > 0.05
    limits = QuotaLimits(tpm=int(v["tpm"]), reserved_input_tpm=int(v["reserved_input_tpm"]),
                         reserved_output_tpm=int(v["reserved_output_tpm"]))  # fmt: skip
    throttled, _ = ledger_run(arrays, limits, tier="reserved")
    assert given.option("reserved-3m").throttled_share == pytest.approx(throttled / len(arrays))


def test_reserved_capacity_is_never_below_awss_minimums() -> None:
    # 5 users send 9.1 requests/min: 393 input and 3,200 output TPM would carry them.
    c = compare(TODAY, SEED, 5, PRICE, minutes=MINUTES)
    v = values(c, "reserved-1m")
    assert (v["reserved_input_tpm"], v["reserved_output_tpm"]) == (100_000, 10_000)
    assert c.option("reserved-1m").overflow_share == 0.0


def test_unpublished_figures_appear_only_when_given(bare: Comparison, given: Comparison) -> None:
    for key in ("priority", "flex", "reserved-1m", "reserved-3m", "pt-none", "pt-1m", "pt-6m",
                "batch"):  # fmt: skip
        o = bare.option(key)
        assert o.monthly_usd is None and o.needs, key
        assert given.option(key).monthly_usd is not None and given.option(key).needs is None
    assert bare.option("priority").needs == "--priority-premium"
    assert bare.option("pt-1m").lines == () and bare.option("pt-1m").request_words().startswith(
        "n/a: needs --pt-unit-input-tpm"
    )
    # Without a global discount the global profile is priced as the geographic one, said so.
    glob = bare.option("standard-global")
    assert glob.monthly_usd == bare.option("standard-cross-region").monthly_usd
    assert any("pass --global-discount" in a for a in glob.assumptions)
    # Every figure used is labelled with its source.
    assert "Priority premium 20 % (given)" in given.option("priority").assumptions
    assert any(a.startswith("batch discount 50 % (price table") for a in
               given.option("batch").assumptions)  # fmt: skip
    # Priority's latency benefit is AWS's claim, shown, not computed.
    p, s = given.option("priority"), given.option("standard-cross-region")
    assert p.latency_s == s.latency_s and PRIORITY_CLAIM in p.latency_words


def test_the_shipped_price_table_invents_nothing() -> None:
    table = load_prices()
    for row in table.rows:
        assert row["priority_premium"] is None and row["flex_discount"] is None
        assert row["global_discount"] is None
        reserved = row["reserved_per_1k_tpm_month"]
        assert all(v is None for kind in reserved.values() for v in kind.values())
        assert row["batch_discount"] in (None, 0.5)
    assert "batch" in table.sources["batch_discount"] and "50%" in table.sources["batch_discount"]


def test_why_compares_against_the_others(given: Comparison, bare: Comparison) -> None:
    why = given.why("reserved-3m")
    assert why[0].startswith("It buys: Reserved input TPM")
    assert "against On-demand Standard, cross-Region" in why[1]
    assert any(w.startswith("Replayed: ") and "overflowed" in w for w in why)
    assert any("does not list" in w for w in why)  # Llama 3.3 is not listed for Reserved
    unpriced = next(w for w in bare.why("standard-cross-region") if w.startswith("Not priced"))
    assert "Priority tier" in unpriced and "Reserved capacity, 3 months" in unpriced
    with pytest.raises(CompareError, match="choose one of standard-in-region"):
        given.why("cheapest")


def test_the_table_round_trips_through_json(given: Comparison) -> None:
    doc = json.loads(given.to_json())
    assert Comparison.from_dict(doc) == given
    assert doc["format"] == "llmcap.buy-comparison" and len(doc["options"]) == len(OPTIONS)
    with pytest.raises(CompareError, match=r"not a llmcap\.buy-comparison"):
        Comparison.from_dict({"format": "other"})


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(CompareError, match="deferrable share must be a share in"):
        GivenFigures(deferrable_share=1.5)
    with pytest.raises(CompareError, match="both its input and its output tokens per minute"):
        GivenFigures(pt_unit_input_tpm=1e6)
    with pytest.raises(CompareError, match="term '2m' is not one of 1m, 3m"):
        GivenFigures(reserved_price_input={"2m": 1.0})
    with pytest.raises(CompareError, match="bedrock-runtime quota of a named model"):
        compare(Quota(600_000), SEED, 2000, PRICE)
    nova = load_prices().price("amazon.nova-lite-v1:0", "us-east-1")
    with pytest.raises(CompareError, match=r"the price given is amazon\.nova-lite's"):
        compare(TODAY, SEED, 2000, nova)
