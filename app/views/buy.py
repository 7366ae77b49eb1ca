"""What to buy: every Bedrock option for one workload and a target, in the browser — the table
``llmcap compare`` prints, from the same function (``capacity.compare.compare``) with the same
defaults: on-demand Standard (in-Region, cross-Region, global), Priority, Flex, bedrock-mantle,
Reserved capacity, Provisioned Throughput and batch inference, each with what to request, its
monthly cost, expected latency and the share throttled when the load is replayed through the
quota ledger. Figures AWS does not publish are the user's: empty means not given, and the
option then says what it needs."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from app import controls, shared
from capacity.compare import (
    DEFAULT_OVERFLOW_TARGET,
    DEFAULT_REPLAY_MINUTES,
    PT_TERMS,
    RESERVED_TERMS,
    Comparison,
    GivenFigures,
    compare,
)
from capacity.usage import load_prices

KEY = "buy"
# Session key: the comparison shown, as ``Comparison.to_dict()`` (what ``llmcap compare --json``
# prints for the same inputs). A comment, not a string: Streamlit's magic would show a string.
RESULT = "buy_comparison"
TERM_WORDS = {"1m": "1 month", "3m": "3 months", "none": "no commitment", "6m": "6 months"}


def _optional(box: Any, checks: controls.Checks, label: str, key: str) -> float | None:
    text = box.text_input(label, "", placeholder="not given", key=f"{KEY}_{key}")
    return checks(box, lambda: controls.parse_count(text, label, required=False))


def _share(box: Any, checks: controls.Checks, label: str, key: str, *, below_one: bool) -> Any:
    pct = _optional(box, checks, label, key)
    if pct is not None and below_one and pct >= 100:
        checks(box, lambda: controls.check_number(pct, label, least=0, most=99.999))
        return None
    return None if pct is None else pct / 100


def _given(box: Any, checks: controls.Checks) -> GivenFigures | None:
    """The figures AWS does not publish, as typed (empty: not given)."""
    box.caption("AWS publishes none of these: empty means not given, and the option says so.")
    premium = _share(box, checks, "Priority premium (%)", "premium", below_one=False)
    flex = _share(box, checks, "Flex discount (%)", "flex", below_one=True)
    glob = _share(box, checks, "Global-profile discount (%)", "global", below_one=True)
    reserved: dict[str, dict[str, float]] = {"input": {}, "output": {}}
    for kind in ("input", "output"):
        for term in RESERVED_TERMS:
            label = f"Reserved {kind} USD per 1,000 TPM per month, {TERM_WORDS[term]}"
            value = _optional(box, checks, label, f"reserved_{kind}_{term}")
            if value is not None:
                reserved[kind][term] = value
    unit_in = _optional(box, checks, "Model unit input TPM (your AWS account team)", "pt_in")
    unit_out = _optional(box, checks, "Model unit output TPM", "pt_out")
    hourly: dict[str, float] = {}
    for term in PT_TERMS:
        value = _optional(box, checks, f"USD per model-unit hour, {TERM_WORDS[term]}", f"pt_{term}")
        if value is not None:
            hourly[term] = value
    deferrable = box.number_input(
        "Share of requests that can wait for batch (%)", value=0.0, min_value=0.0,
        max_value=99.0, step=5.0, key=f"{KEY}_deferrable",
    )  # fmt: skip
    overflow = box.number_input(
        "Overflow target of Reserved capacity (%)", value=100 * DEFAULT_OVERFLOW_TARGET,
        min_value=0.1, max_value=99.0, step=1.0, key=f"{KEY}_overflow",
    )  # fmt: skip
    return checks(
        box,
        lambda: GivenFigures(
            priority_premium=premium, flex_discount=flex, global_discount=glob,
            reserved_price_input=reserved["input"], reserved_price_output=reserved["output"],
            pt_unit_input_tpm=unit_in, pt_unit_output_tpm=unit_out, pt_unit_price_hour=hourly,
            deferrable_share=deferrable / 100, overflow_target=overflow / 100,
        ),
    )  # fmt: skip


def _compare() -> Comparison | None:
    """The sidebar's inputs, checked, and the comparison (None when any input is wrong)."""
    checks = controls.Checks()
    sb = st.sidebar
    side = controls.plan_sidebar(sb, checks, KEY, quota_header="Today's quota (bedrock-runtime)",
                                 region=True)  # fmt: skip
    sb.header("Figures AWS does not publish")
    given = _given(sb, checks)
    i, region = side.inputs, side.region
    if i is None or not checks.ok or given is None or region is None:
        return None
    price = checks(sb, lambda: load_prices().price(side.model_id.strip(), region))
    if price is None:
        return None
    return checks(
        st,
        lambda: compare(
            i.quota, i.workload, i.target_users, price, model=i.model, goal=i.goal,
            headroom=i.headroom, given=given, minutes=DEFAULT_REPLAY_MINUTES,
        ),
    )  # fmt: skip


def _pct(x: float | None) -> str:
    return "not replayed" if x is None else f"{100 * x:.2f} %"


def _table(c: Comparison) -> pd.DataFrame:
    rows = []
    for o in c.options:
        rows.append(
            {
                "option": o.name + (" *" if o.key == c.baseline else ""),
                "request": o.request_words(),
                "USD/month": "n/a" if o.monthly_usd is None else f"${o.monthly_usd:,.0f}",
                "latency (mean)": "n/a" if o.latency_s is None else f"{o.latency_s:.2f} s",
                "p95 TTFT": "" if o.ttft_p95_s is None else f"{o.ttft_p95_s:.2f} s",
                "throttled (replayed)": _pct(o.throttled_share),
                "overflow to on-demand": "" if o.overflow_share is None else _pct(o.overflow_share),
                "needs": o.needs or "",
            }
        )
    table = pd.DataFrame(rows)
    # Columns no option fills (no performance model: no TTFT; every figure given: no needs).
    return table.loc[:, [c for c in table.columns if (table[c] != "").any()]]


def main() -> None:
    """The page."""
    st.title("What to buy")
    st.caption(
        "Every Bedrock option for this workload and target: what to request, the monthly cost, "
        "the expected latency and the share throttled when the load is replayed through the "
        "quota ledger. The same table as `llmcap compare` for the same inputs."
    )
    st.session_state.pop(RESULT, None)  # no table from earlier inputs stays
    comparison = _compare()
    if comparison is None:
        st.warning("No table until the inputs marked in the sidebar are fixed.")
        return
    doc = comparison.to_dict()
    st.session_state[RESULT] = doc
    st.markdown(f"**Objective:** {shared.escaped(comparison.objective)}")
    st.markdown(f"**Replayed:** {shared.escaped(comparison.demand)}")
    table = _table(comparison)
    st.dataframe(
        table,
        width="stretch",
        hide_index=True,
        height=35 * (len(table) + 1) + 3,
        column_config={"request": st.column_config.TextColumn(width="large")},
    )  # every row in view, the request lines wide enough to read
    st.caption("* on-demand Standard on today's quota's scope: what the What-if page asks.")
    st.markdown(f"**Prices:** {shared.escaped(comparison.price)}")
    for o in comparison.options:
        with st.expander(f"{o.name}: {o.cost_words}"):
            for line in (*o.assumptions, o.latency_words, o.replay_words, *o.notes):
                st.text(line)
            st.markdown("**Against the others:**")
            for line in comparison.why(o.key):
                st.text(line)
    st.download_button(
        "Download the table (JSON)", json.dumps(doc, indent=2), file_name="what_to_buy.json"
    )


main()
