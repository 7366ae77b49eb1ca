"""Justification: the use case, account facts, current quotas, workload, target and growth → a
preview of the quota-increase report and its downloads (Markdown, HTML, PDF, JSON, case text).

Every field is checked where it is typed; an error shows under its field and no report is built
until all are right. The model and records loaded on the Evidence page are used when present; an
uploaded model.json or calibrated twin.json replaces the Evidence page's model.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import streamlit as st

from app import shared
from capacity.errors import CapacityError
from capacity.planning import Quota, Workload, objective

ACCOUNT = re.compile(r"^\d{12}$")
REPORT = "justification_report"  # session key of the last report built
UPLOADED = "justification_model"  # session key: (upload hash, the uploaded model)


def _field_error(message: str | None) -> bool:
    if message:
        st.error(message)
        return True
    return False


def _form() -> tuple[dict[str, Any] | None, bool]:
    """The form's values once submitted and valid (else None; errors shown in place), and
    whether any field is in error."""
    from capacity.report import check_region

    bad = False
    with st.form("justification"):
        st.subheader("Use case")
        use_case = st.text_area(
            "What the application does, for whom, and why the current quota is not enough",
            key="use_case",
        )
        submitted_before = st.session_state.get("justification_submitted", False)
        if submitted_before:
            bad |= _field_error(None if use_case.strip() else "Describe the use case.")
        st.subheader("Account, model, Region")
        c1, c2 = st.columns(2)
        account = c1.text_input("AWS account id (12 digits, optional)", key="account_id")
        if submitted_before and account.strip() and not ACCOUNT.match(account.strip()):
            with c1:
                bad |= _field_error("An AWS account id is 12 digits.")
        organization = c2.text_input("Organization (optional)", key="organization")
        region = c1.text_input("Region", value="us-east-1", key="region")
        if submitted_before:
            try:
                check_region(region)
            except CapacityError as exc:
                with c1:
                    bad |= _field_error(str(exc))
        model_id = c2.text_input(
            "Model id or cross-Region inference profile id", value=shared.LLAMA, key="model_id"
        )
        contact = c2.text_input("Contact (optional)", key="contact")
        st.subheader("Current quotas (applied values)")
        q1, q2, q3 = st.columns(3)
        tpm = q1.number_input("TPM", min_value=1, value=600_000, step=10_000, key="tpm")
        rpm = q2.number_input(
            "RPM (0 = not enforced; Bedrock no longer enforces it for many models)",
            min_value=0, value=0, key="rpm",
        )  # fmt: skip
        tpd = q3.number_input("TPD (0 = none)", min_value=0, value=0, key="tpd")
        st.subheader("Workload and target")
        w1, w2, w3 = st.columns(3)
        input_tokens = w1.number_input("Input tokens per request", min_value=1, value=43)
        output_tokens = w2.number_input("Output tokens per request", min_value=1, value=350)
        max_tokens = w3.number_input("max_tokens", min_value=1, value=350)
        if submitted_before and output_tokens > max_tokens:
            with w3:
                bad |= _field_error("max_tokens must be at least the output tokens.")
        think = w1.number_input("Think time (s)", min_value=0.0, value=30.0)
        par = w2.number_input("Peak-to-average (busiest minute / mean)", min_value=1.0, value=1.0)
        target = w3.number_input("Target users", min_value=1, value=2_000, step=100, key="target")
        headroom = w1.number_input("Headroom (%)", min_value=0, max_value=500, value=20)
        slo_ttft = w2.number_input("SLO p95 TTFT (s, 0 = none; needs a model)", min_value=0.0)
        growth_text = st.text_area(
            "Growth projections, one per line: WHEN=USERS", value="+6 months=3000", key="growth"
        )
        growth: list[tuple[str, float]] = []
        if submitted_before:
            try:
                growth = shared.parse_growth(growth_text)
            except ValueError as exc:
                bad |= _field_error(f"Growth: {exc}")
        st.subheader("Operations")
        monitoring = st.text_area(
            "Monitoring and alarms (empty: CloudWatch AWS/Bedrock metrics and alarms at 80 % of "
            "the requested TPM)",
            key="monitoring",
        )
        history = st.text_area(
            "Historical usage (optional; Markdown, e.g. from capacity.usage)", key="history"
        )
        submitted = st.form_submit_button("Build the report", type="primary")
    if submitted and not submitted_before:
        st.session_state["justification_submitted"] = True
        st.rerun()  # run again so every field is checked in place
    if not (submitted or submitted_before) or bad:
        return None, bad
    return {
        "use_case": use_case, "account_id": account.strip() or None,
        "organization": organization.strip() or None, "contact": contact.strip() or None,
        "region": region, "model_id": model_id.strip(), "tpm": float(tpm),
        "rpm": float(rpm) or None, "tpd": float(tpd) or None, "input_tokens": input_tokens,
        "output_tokens": output_tokens, "max_tokens": max_tokens, "think": think, "par": par,
        "target": float(target), "headroom": headroom / 100, "slo_ttft": slo_ttft,
        "growth": growth, "monitoring": monitoring, "history": history,
    }, False  # fmt: skip


def _model() -> tuple[Any, str, bool]:
    """The performance model (an uploaded model.json or twin.json, else the Evidence page's
    fit, else None), a key naming it (so a new model rebuilds the report) and whether the
    upload failed (the error shown in place)."""
    upload = st.file_uploader(
        f"{shared.MODEL_UPLOAD_LABEL} (optional; replaces the Evidence page's fitted model)",
        type="json",
        key="justification_model_file",
    )
    if upload is None:
        st.session_state.pop(UPLOADED, None)
        return st.session_state.get(shared.MODEL), "evidence", False
    file = shared.as_upload(upload)
    key = hashlib.sha256(file.data).hexdigest()
    kept = st.session_state.get(UPLOADED)
    if kept is not None and kept[0] == key:  # keep the loaded twin: its simulations are cached
        return kept[1], key, False
    try:
        model = shared.load_model_upload(file)
    except shared.LOAD_ERRORS as exc:
        st.error(f"Could not read the model: {exc}")
        return None, key, True
    st.session_state[UPLOADED] = (key, model)
    return model, key, False


def _build(v: dict[str, Any], model: Any) -> Any:
    from capacity.report import build_report

    records = st.session_state.get(shared.RECORDS)
    workload = Workload(
        input_tokens=v["input_tokens"], output_tokens=v["output_tokens"],
        max_tokens=v["max_tokens"], think_time_s=v["think"], peak_to_average=v["par"],
    )  # fmt: skip
    goal = objective(model, workload.prompt_tokens, ttft_p95_s=v["slo_ttft"] or None)
    return build_report(
        use_case=v["use_case"], region=v["region"],
        current=Quota(v["tpm"], v["rpm"], v["tpd"], model_id=v["model_id"] or None),
        workload=workload,
        target_users=v["target"], model=model, goal=goal, headroom=v["headroom"],
        account_id=v["account_id"], organization=v["organization"], contact=v["contact"],
        records=records, growth=v["growth"], monitoring=v["monitoring"],
        historical_usage=v["history"],
    )  # fmt: skip


def _preview(report: Any) -> None:
    from capacity.report import case_body, to_html, to_markdown, to_pdf

    body = case_body(report)
    st.subheader("Downloads")
    d = st.columns(5)
    d[0].download_button(
        "PDF",
        to_pdf(report),
        "quota_request.pdf",
        "application/pdf",
        key="dl_pdf",
        on_click="ignore",
    )
    d[1].download_button(
        "HTML", to_html(report), "quota_request.html", "text/html", key="dl_html", on_click="ignore"
    )
    d[2].download_button(
        "Markdown",
        to_markdown(report),
        "quota_request.md",
        "text/markdown",
        key="dl_md",
        on_click="ignore",
    )
    d[3].download_button(
        "JSON",
        report.to_json(),
        "quota_request.json",
        "application/json",
        key="dl_json",
        on_click="ignore",
    )
    d[4].download_button(
        "Case text", body, "quota_request_case.txt", "text/plain", key="dl_txt", on_click="ignore"
    )
    st.subheader("Support case text")
    st.caption(f"{len(body):,} characters (a support case message holds at most 8,000).")
    st.code(body, language="text")
    st.subheader("Preview")
    for f in report.figures:
        if f.name == "quota_ask":
            st.image(base64.b64decode(f.png_base64), caption=f.caption)
    st.markdown(to_markdown(report, figures=False))
    for f in report.figures:
        if f.name != "quota_ask":
            st.image(base64.b64decode(f.png_base64), caption=f.caption)


def _caption(model: Any, model_key: str) -> None:
    """Where the evidence and the latency curve come from."""
    from capacity.predictors import describe_predictor

    source = st.session_state.get(shared.SOURCE)
    records = st.session_state.get(shared.RECORDS)
    if model is None:
        st.caption(
            "No evidence loaded: latency is assumed, not predicted. Load runs on the Evidence "
            "page to add the measurements, the fitted curves and the latency at the target, "
            "or upload a model above."
        )
    elif model_key == "evidence":
        st.caption(f"Evidence: {source} (fitted model and records from the Evidence page).")
    else:
        runs = f"; records: {source}" if records is not None else ""
        st.caption(f"Performance model: the uploaded file{runs}.")
    info = describe_predictor(model)
    if info is not None and info.is_twin:
        shared.show_predictor(info)
        if records is not None:
            st.caption(
                "A twin has no per-prompt fitted curves: the report's evidence figures show the "
                "measurements only, and the method section describes the twin."
            )


def main() -> None:
    """The page."""
    st.title("Justification")
    model, model_key, unreadable = _model()
    _caption(model, model_key)
    values, bad = _form()
    if bad:
        st.error("Some fields need fixing: see the messages under them above.")
    if bad or unreadable:  # never show a report for other values than the ones on screen
        values = None
        st.session_state.pop(REPORT, None)
        st.session_state.pop("justification_values", None)
    if values is not None:
        values["model"] = model_key  # a new model is new values: the report is rebuilt
    if values is not None and values != st.session_state.get("justification_values"):
        st.session_state["justification_values"] = values
        try:
            with st.spinner("Building the report…"):
                st.session_state[REPORT] = _build(values, model)
        except (CapacityError, ValueError) as exc:
            st.error(f"Cannot build the report: {exc}")
            st.session_state.pop(REPORT, None)
    report = st.session_state.get(REPORT)
    if report is not None:
        _preview(report)


main()
