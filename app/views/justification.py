"""Justification: the use case, account facts, current quotas, workload, target, latency
objective and growth → the answer (``capacity.answer``, through ``build_report``), a preview of
the quota-increase report and its downloads (Markdown, HTML, PDF, JSON, case text).

The quota, workload, target and objective controls are What-if's (``app.controls``): the same
defaults and meaning on both pages. From the first submit on, every field is checked where it
is typed (the Region against the AWS SDK's list); an error shows under its field, and no report
is shown until all are right. Nothing the user did not give goes into the case: no Region, no
growth. The model and records loaded on the Evidence page are used when present; an uploaded
model.json or calibrated twin.json replaces the Evidence page's model.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import streamlit as st

from app import answer_view, controls, shared
from capacity.errors import CapacityError
from capacity.planning import Quota

ACCOUNT = re.compile(r"^\d{12}$")
KEY = "justification"
REPORT = "justification_report"  # session key of the last report built
VALUES = "justification_values"  # session key of the values it was built from
SUBMITTED = "justification_submitted"  # session key: the form was submitted once


def _use_case(text: str) -> str:
    if not text.strip():
        raise shared.InputError("Describe the use case.")
    return text.strip()


def _account(text: str) -> str | None:
    if text.strip() and not ACCOUNT.match(text.strip()):
        raise shared.InputError("An AWS account id is 12 digits.")
    return text.strip() or None


def _model_id(text: str) -> str:
    if not text.strip():
        raise shared.InputError("Model id: enter the model or inference profile id invoked.")
    return text.strip()


def _growth(text: str) -> list[tuple[str, float]]:
    from capacity.report import parse_growth

    return parse_growth(text)


def _default_model_id() -> str:
    """The evidence's model id when it has exactly one, else Llama 3.3 70B's profile (as
    ``llmcap report`` defaults)."""
    records = st.session_state.get(shared.RECORDS)
    ids = (
        records["model_id"].dropna().unique()
        if records is not None and "model_id" in records
        else []
    )
    return str(ids[0]) if len(ids) == 1 and str(ids[0]).strip() else shared.LLAMA


def _form(model: Any, choice: controls.PromptChoice) -> tuple[dict[str, Any] | None, bool]:
    """The form's values once submitted and valid (else None; errors shown under their fields
    from the first submit on), and whether any field is in error."""
    shown = bool(st.session_state.get(SUBMITTED, False))
    checks = controls.Checks(show=shown)
    with st.form("justification"):
        st.subheader("Use case")
        use_case_text = st.text_area(
            "What the application does, for whom, and why the current quota is not enough",
            key="use_case",
        )
        use_case = checks(st, lambda: _use_case(use_case_text))
        st.subheader("Account, model, Region")
        c1, c2 = st.columns(2)
        account_text = c1.text_input("AWS account id (12 digits, optional)", key="account_id")
        account = checks(c1, lambda: _account(account_text))
        organization = c2.text_input("Organization (optional)", key="organization")
        region_text = c1.text_input(
            "Region of the quota", placeholder="e.g. us-east-1", key="region"
        )
        region = checks(c1, lambda: controls.check_region(region_text))
        model_id_text = c2.text_input(
            "Model id or cross-Region inference profile id", value=_default_model_id(),
            key="model_id",
        )  # fmt: skip
        model_id = checks(c2, lambda: _model_id(model_id_text))
        contact = c2.text_input("Contact (optional)", key="contact")
        st.subheader("Current quotas (applied values)")
        q = st.columns(3)
        tpm, rpm, tpd = controls.quota_fields(q[0], q[1], q[2], checks, KEY)
        st.subheader("Workload and target")
        w = st.columns(3)
        tokens = controls.token_fields(w, choice, KEY)
        think, peak = controls.workload_extras(w[0], w[1], checks, KEY)
        workload = None
        if think is not None and peak is not None:
            workload = checks(w[2], lambda: controls.make_workload(tokens, think, peak))
        target, headroom = controls.target_fields(w[2], w[0], checks, KEY)
        st.subheader("Latency objective")
        prompt_tokens = None if workload is None else workload.prompt_tokens
        goal, objective_choice = controls.objective_field(st, checks, model, prompt_tokens, KEY)
        growth_text = st.text_area(
            "Growth projections, one per line: WHEN=USERS (optional; only what you expect)",
            placeholder="e.g. +6 months=3,000", key="growth",
        )  # fmt: skip
        growth = checks(st, lambda: _growth(growth_text))
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
    if submitted and not shown:
        st.session_state[SUBMITTED] = True
        st.rerun()  # run again so every field is checked in place
    if not shown:
        return None, False
    if not checks.ok:
        return None, True
    assert tpm is not None and workload is not None and goal is not None
    assert target is not None and headroom is not None and model_id is not None
    quota = checks(st, lambda: Quota(tpm, rpm, tpd, model_id=model_id))
    if quota is None:
        return None, True
    inputs = controls.Inputs(
        quota, workload, target, headroom, goal, objective_choice, choice, model=model
    )
    return {
        "inputs": inputs, "use_case": use_case, "account_id": account,
        "organization": organization.strip() or None, "contact": contact.strip() or None,
        "region": region, "growth": growth, "monitoring": monitoring, "history": history,
    }, False  # fmt: skip


def _model() -> tuple[Any, str, bool]:
    """The performance model (an uploaded model.json or twin.json, else the Evidence page's
    fit, else None), a key naming it (so a new model rebuilds the report) and whether the
    upload failed (the error shown under the uploader)."""
    label = f"{shared.MODEL_UPLOAD_LABEL} (optional; replaces the Evidence page's fitted model)"
    uploaded, digest, failed = shared.model_upload(st, label, "justification_model_file")
    if digest is None:
        return st.session_state.get(shared.MODEL), "evidence", False
    return uploaded, digest, failed


def _build(v: dict[str, Any], model: Any) -> Any:
    from capacity.report import build_report

    inputs: controls.Inputs = v["inputs"]
    return build_report(
        use_case=v["use_case"], region=v["region"], current=inputs.quota,
        workload=inputs.workload, target_users=inputs.target_users, model=model,
        goal=inputs.goal, headroom=inputs.headroom, account_id=v["account_id"],
        organization=v["organization"], contact=v["contact"],
        records=st.session_state.get(shared.RECORDS), growth=v["growth"],
        monitoring=v["monitoring"], historical_usage=v["history"],
        evidence_context=st.session_state.get(shared.CONTEXT),
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
    st.code(body, language="text", wrap_lines=True)  # long lines wrap, never cut
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
    choice = controls.prompt_choice(st, st.session_state.get(shared.RECORDS), KEY)
    values, bad = _form(model, choice)
    if bad:
        st.warning("No report until the fields marked above are fixed.")
    if bad or unreadable:  # never show a report for other values than the ones on screen
        values = None
        st.session_state.pop(REPORT, None)
        st.session_state.pop(VALUES, None)
    if values is not None:
        values["model"] = model_key  # a new model is new values: the report is rebuilt
    if values is not None and values != st.session_state.get(VALUES):
        st.session_state.pop(REPORT, None)
        st.session_state[VALUES] = values
        try:
            with st.spinner("Building the report…"):
                st.session_state[REPORT] = _build(values, model)
        except CapacityError as exc:
            st.error(f"Cannot build the report: {exc}")
            st.session_state.pop(VALUES, None)
    report = st.session_state.get(REPORT)
    kept = st.session_state.get(VALUES)
    if report is not None and kept is not None:
        st.subheader("The answer")
        answer_view.show_choices(kept["inputs"])
        answer_view.show_answer(answer_view.AnswerView.of_report(report))
        _preview(report)


main()
