"""What-if: quota ↔ users for one workload, in the browser (the app's second page; ``make app``).

Every number comes from ``capacity.plan_capacity`` / ``capacity.required_quota``; with a
performance model (the one fitted on the Evidence page, an uploaded ``model.json`` from
``llmcap fit`` or ``llmcap demo``, or a calibrated ``twin.json`` from ``llmcap twin fit``) the
latency constraint and predicted latencies join in; a twin's probe, replicas, identification
and extrapolation notes are shown with the plan. The chart puts today's
and the requested quota on one supported-users curve (``capacity.figures.plot_quota_ask``).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app import shared
from capacity import (
    CapacityError,
    CapacityModel,
    Predictor,
    Quota,
    Slo,
    Workload,
    describe_predictor,
    plan_capacity,
    required_quota,
)
from capacity.figures import plot_quota_ask
from capacity.planning import default_slo


def _model(upload: object, use_evidence: bool) -> Predictor | None:
    if upload is None:
        fitted = st.session_state.get(shared.MODEL)
        return fitted if use_evidence and isinstance(fitted, CapacityModel) else None
    model: Predictor = shared.load_model_upload(shared.as_upload(upload))
    return model


def main() -> None:
    """The page."""
    st.title("What-if: quota ↔ users")
    st.caption(
        "Bedrock's rules: max_tokens reserved at admission, burndown × output at settlement."
    )
    with st.sidebar:
        st.header("Quota")
        model_id = st.text_input("Model id", shared.LLAMA)
        tpm = st.number_input("TPM (tokens per minute)", min_value=1, value=600_000, step=10_000)
        rpm = st.number_input("RPM (0 = none)", min_value=0, value=800, step=50)
        st.header("Workload")
        input_tokens = st.number_input("Input tokens per request", min_value=1, value=43)
        output_tokens = st.number_input("Output tokens per request", min_value=1, value=350)
        max_tokens = st.number_input("max_tokens", min_value=1, value=350)
        think_time_s = st.number_input("Think time between requests (s)", min_value=0.0, value=30.0)
        peak = st.number_input("Peak-to-average", min_value=1.0, value=1.0, step=0.1)
        st.header("Target")
        target = st.number_input("Target users", min_value=1, value=2_000, step=100)
        upload = st.file_uploader(shared.MODEL_UPLOAD_LABEL, type="json")
        use_evidence = st.checkbox(
            "Use the model fitted on the Evidence page",
            value=True,
            disabled=st.session_state.get(shared.MODEL) is None,
        )
        slo_ttft = st.number_input(
            "SLO: p95 TTFT (s; 0 = the default, 2× the unloaded value; needs a model)",
            min_value=0.0,
        )
    try:
        model = _model(upload, use_evidence)
        quota = Quota(tpm=int(tpm), rpm=int(rpm) or None, model_id=model_id or None)
        workload = Workload(
            input_tokens=input_tokens, output_tokens=output_tokens, max_tokens=max_tokens,
            think_time_s=think_time_s, peak_to_average=peak,
        )  # fmt: skip
        slo = None
        if model is not None:
            slo = Slo(ttft_p95_s=slo_ttft) if slo_ttft > 0 else default_slo(model, input_tokens)
        plan = plan_capacity(quota, workload, model, slo)
        request = required_quota(
            workload, target, model, slo, model_id=model_id or None,
            rpm_enforced=True if quota.rpm is not None else None,
        )  # fmt: skip
    except (CapacityError, ValueError, json.JSONDecodeError) as exc:
        st.error(str(exc))
        return
    left, right = st.columns(2)
    left.metric("Users supported", f"{plan.users_whole:,}", help=f"binding: {plan.binding}")
    right.metric(f"TPM to request for {int(target):,} users", f"{request.tpm:,}")
    rpm_ask = "" if request.rpm is None else f" and **{request.rpm:,} RPM**"
    st.write(
        f"**Answer:** {plan.answer()}. For {int(target):,} users request "
        f"**{request.tpm:,} TPM**{rpm_ask}" + ("" if request.feasible else f" — {request.reason}")
    )
    if slo is not None:
        st.caption(f"Latency objective: {slo.describe()}" + (" (default)" if not slo_ttft else ""))
    info = describe_predictor(model, request.peak_inflight, input_tokens)
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
    table = pd.DataFrame(
        {
            "users": plan.users_by_constraint,
            "requests/min": plan.requests_per_min_by_constraint,
            "max in flight": plan.max_inflight_by_constraint,
        }
    )
    st.dataframe(table.round(1), width="stretch")
    st.pyplot(plot_quota_ask(quota, request, workload, model, slo))
    with st.expander("How every number was computed"):
        for key, formula in {**plan.formulas, **request.formulas}.items():
            st.text(f"{key}: {formula}")
    st.download_button(
        "Download the quota request (JSON)",
        json.dumps({"plan": plan.to_dict(), "request": request.to_dict()}, indent=2, default=str),
        file_name="quota_plan.json",
    )


main()
