"""Real traffic on the Evidence page: load an invocation-log folder or a trace file on this
machine, an uploaded trace, or a shipped template, and show its analysis (``capacity.usage``:
rates and peaks, burstiness, token distributions, the share above 25,000 prompt tokens, the two
traffic figures), which the Justification page then replays to size the TPM, as ``llmcap report
--from-logs/--from-trace`` does.

A source that cannot be read is one error naming it as the user named it (a path, an upload's
name), and the traffic loaded before is dropped: nothing on screen or in the session is from
another source than the one named last.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from app import shared

SOURCES = {
    "path": "A log folder or trace file on this machine",
    "upload": "An uploaded trace file",
    "template": "A shipped template",
}


def _keep(table: Any, label: str) -> None:
    """Analyse ``table`` and keep it, its label and its analysis in the session."""
    from capacity.usage import analyze_traffic

    if len(table) == 0:
        raise shared.InputError(f"{label}: no requests")
    with st.spinner("Analysing the traffic…"):
        analysis = analyze_traffic(table)
    st.session_state[shared.TRAFFIC] = table
    st.session_state[shared.TRAFFIC_LABEL] = label
    st.session_state[shared.TRAFFIC_ANALYSIS] = analysis


def _drop() -> None:
    for key in shared.TRAFFIC_KEYS:
        st.session_state.pop(key, None)
    st.session_state.pop("traffic_upload_key", None)


def _try(load: Any, label: str) -> None:
    """Load with ``load()`` and keep it; on a bad source, one error naming ``label`` and the
    traffic loaded before dropped."""
    try:
        _keep(load(), label)
    except shared.LOAD_ERRORS as exc:
        _drop()
        text = str(exc)
        st.error(text if text.startswith(label) else f"Could not load {label}: {text}")


def load() -> None:
    """The traffic loader: the source, its time zone and the model id of a trace without one."""
    from capacity.usage import TEMPLATES

    kind = st.radio(
        "Traffic from", list(SOURCES), format_func=SOURCES.__getitem__, horizontal=True,
        key="traffic_source",
    )  # fmt: skip
    left, right = st.columns(2)
    tz = left.text_input(
        "Time zone of timestamps written without an offset (IANA, e.g. UTC; optional)",
        key="traffic_tz",
    ).strip()
    model_id = right.text_input(
        "Model id of requests that name none (a trace's; default Llama 3.3 70B's profile)",
        placeholder=shared.LLAMA, key="traffic_model_id",
    ).strip()  # fmt: skip
    if kind == "path":
        path = st.text_input(
            "Invocation-log folder (AWSLogs/…), CloudWatch Logs export, or trace file "
            "(CSV, Parquet, JSON lines)",
            placeholder="logs/AWSLogs/123456789012/BedrockModelInvocationLogs",
            key="traffic_path",
        ).strip()
        if st.button("Load the traffic", key="traffic_load"):
            _try(lambda: shared.load_traffic_path(path, tz, model_id), path)
        return
    if kind == "template":
        name = st.selectbox(
            "Template (a production trace, CC BY 4.0; see data/traces/README.md)",
            [t.name for t in TEMPLATES], key="traffic_template",
        )  # fmt: skip
        if st.button("Load the template", key="traffic_load_template"):
            _try(lambda: shared.load_traffic_template(name, model_id), name)
        return
    file = st.file_uploader(
        "Trace file (CSV, Parquet or JSON lines, optionally gzipped; or one invocation-log "
        "file)",
        type=list(shared.TRAFFIC_SUFFIXES), key="traffic_upload",
    )  # fmt: skip
    if file is None:
        return
    upload = shared.as_upload(file)
    key = hashlib.sha256(upload.name.encode() + upload.data + tz.encode() + model_id.encode())
    if st.session_state.get("traffic_upload_key") == key.hexdigest():
        return
    _try(lambda: shared.load_traffic_upload(upload, tz, model_id), upload.name)
    if shared.TRAFFIC in st.session_state:
        st.session_state["traffic_upload_key"] = key.hexdigest()


def show() -> None:
    """The analysis of the traffic loaded, per model: the figures AWS asks about, the traffic
    section ``llmcap usage`` prints, its figures and the per-minute usage summary."""
    from capacity.usage import plot_token_distributions, plot_traffic_rates

    analysis = st.session_state.get(shared.TRAFFIC_ANALYSIS)
    if analysis is None:
        return
    table = st.session_state[shared.TRAFFIC]
    label = st.session_state[shared.TRAFFIC_LABEL]
    models = ", ".join(m.model_id for m in analysis.models)
    st.success(f"{len(table):,} requests of {models} from {label}")
    for line in table.report.lines_for_humans():
        st.caption(f"Note: {line}")
    for m in analysis.models:
        c = st.columns(5)
        c[0].metric("Requests per minute (mean)", f"{m.per_minute.mean_requests:,.1f}")
        c[1].metric("Busiest minute / mean", f"{m.per_minute.peak_to_mean_requests:.2f}×")
        c[2].metric("Busiest second / mean", f"{m.per_second.peak_to_mean_requests:.1f}×")
        c[3].metric("Above 25,000 prompt tokens", f"{m.share_above_long_prompt:.2%}")
        c[4].metric("Throttled in the log", f"{m.throttled:,}")
        st.markdown(m.markdown())
        st.image(shared.png(plot_traffic_rates(m)))
        st.image(shared.png(plot_token_distributions(m)))
        with st.expander("Per-minute usage (as `llmcap usage` summarizes it)"):
            st.markdown(m.summary.markdown())
    st.caption(
        "The Justification page sizes the TPM by replaying this traffic through the quota "
        "ledger (as `llmcap report --from-logs/--from-trace` does)."
    )
