"""What-if: quota ↔ users for one workload, in the browser (the app's second page; ``make app``).

Every number comes from ``capacity.answer``: users today, the quota to request for the target
and what that request buys, under one latency objective (``capacity.objective``), with the
same controls and defaults as the Justification page (``app.controls``). With a performance
model (the one fitted on the Evidence page, an uploaded ``model.json`` from ``llmcap fit`` or
``llmcap demo``, or a calibrated ``twin.json`` from ``llmcap twin fit``) the latency objective
and predicted latencies join in; a twin's probe, replicas, identification and extrapolation
notes are shown with the plan. The chart puts today's and the requested quota on one
supported-users curve (``capacity.figures.plot_quota_ask``).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app import answer_view, controls, shared
from capacity import CapacityError, Predictor
from capacity.figures import plot_quota_ask
from capacity.planning import CapacityAnswer, answer
from capacity.predictors import describe_predictor

KEY = "whatif"


def _inputs() -> controls.Inputs | None:
    """The sidebar's inputs, checked (errors under their fields; None when any is wrong)."""
    return controls.plan_sidebar(st.sidebar, controls.Checks(), KEY).inputs


def _details(ans: CapacityAnswer, model: Predictor | None) -> None:
    """The twin's notes, the extrapolation warning, users per constraint, the chart, the
    formulas and the download."""
    request = ans.request
    assert request is not None
    info = describe_predictor(model, request.peak_inflight, ans.workload.input_tokens)
    if info is not None:
        shared.show_predictor(info)
    if request.extrapolation_factor is not None:
        advice = (
            "the twin's serving model carries it, its probe does not"
            if info is not None and info.is_twin
            else "measure closer to it or calibrate a twin"
        )
        st.warning(
            f"The target needs {request.peak_inflight:,.0f} requests in flight, "
            f"×{request.extrapolation_factor:.1f} beyond the {request.measured_max_inflight:,.0f} "
            f"measured: its latency is extrapolated ({advice})."
        )
    plan = ans.plan
    st.subheader("Today's quota, per constraint")
    table = pd.DataFrame(
        {
            "users": plan.users_by_constraint,
            "requests/min": plan.requests_per_min_by_constraint,
            "max requests in flight": plan.max_inflight_by_constraint,
        }
    )
    st.dataframe(table.round(1), width="stretch")
    st.pyplot(plot_quota_ask(ans.quota, request, ans.workload, model, ans.objective.slo))
    with st.expander("How every number was computed"):
        for key, formula in {**plan.formulas, **request.formulas}.items():
            st.text(f"{key}: {formula}")
    st.download_button(
        "Download the answer (JSON)",
        json.dumps(ans.to_dict(), indent=2, default=str),
        file_name="capacity_answer.json",
    )


def main() -> None:
    """The page."""
    st.title("What-if: quota ↔ users")
    st.caption(
        "Bedrock's rules: max_tokens reserved at admission, burndown × output at settlement. "
        "The same answer as `llmcap plan` and the Justification page for the same inputs."
    )
    inputs = _inputs()
    if inputs is None:  # nothing is computed from a bad input, and no old answer stays
        st.warning("No answer until the inputs marked in the sidebar are fixed.")
        return
    try:
        ans = answer(
            inputs.quota, inputs.workload, inputs.model, inputs.goal, inputs.target_users,
            headroom=inputs.headroom,
        )  # fmt: skip
    except CapacityError as exc:
        st.error(f"No answer: {exc}")
        return
    answer_view.show_choices(inputs)
    answer_view.show_answer(answer_view.AnswerView.of_answer(ans))
    st.markdown(f"**Answer:** {shared.escaped(ans.headline())}")
    _details(ans, inputs.model)


main()
