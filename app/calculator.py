"""The what-if calculator: quota ↔ users for one workload, in the browser.

Run it with ``streamlit run app/calculator.py`` (or ``make app``). Every number comes from
``capacity.plan_capacity`` / ``capacity.required_quota``; with a fitted ``model.json`` (from
``llmcap fit`` or ``llmcap demo``) the latency constraint and predicted latencies join in.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from capacity import (
    CapacityError,
    CapacityModel,
    Quota,
    Slo,
    Workload,
    plan_capacity,
    required_quota,
)
from capacity.figures import plot_capacity

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"


def _model(upload: object) -> CapacityModel | None:
    if upload is None:
        return None
    data = upload.getvalue()  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_bytes(data)
        return CapacityModel.load(path)


def main() -> None:
    """The page."""
    st.set_page_config(page_title="llmcap — quota ↔ users", layout="wide")
    st.title("Quota ↔ users")
    st.caption(
        "Bedrock's rules: max_tokens reserved at admission, burndown × output at settlement."
    )
    with st.sidebar:
        st.header("Quota")
        model_id = st.text_input("Model id", LLAMA)
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
        upload = st.file_uploader("Fitted model (model.json from llmcap fit)", type="json")
        slo_ttft = st.number_input("SLO: p95 TTFT (s, 0 = none; needs a model)", min_value=0.0)
    try:
        model = _model(upload)
        quota = Quota(tpm=int(tpm), rpm=int(rpm) or None, model_id=model_id or None)
        workload = Workload(
            input_tokens=input_tokens, output_tokens=output_tokens, max_tokens=max_tokens,
            think_time_s=think_time_s, peak_to_average=peak,
        )  # fmt: skip
        slo = Slo(ttft_p95_s=slo_ttft) if slo_ttft > 0 and model is not None else None
        plan = plan_capacity(quota, workload, model, slo)
        request = required_quota(workload, target, model, slo, model_id=model_id or None)
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
    table = pd.DataFrame(
        {
            "users": plan.users_by_constraint,
            "requests/min": plan.requests_per_min_by_constraint,
            "max in flight": plan.max_inflight_by_constraint,
        }
    )
    st.dataframe(table.round(1), width="stretch")
    st.pyplot(plot_capacity(quota, workload, model, slo, target_users=target))
    with st.expander("How every number was computed"):
        for key, formula in {**plan.formulas, **request.formulas}.items():
            st.text(f"{key}: {formula}")
    st.download_button(
        "Download the quota request (JSON)",
        json.dumps({"plan": plan.to_dict(), "request": request.to_dict()}, indent=2, default=str),
        file_name="quota_plan.json",
    )


main()
