"""Evidence: load a run directory or upload records; the seed's summary table and dashboards, the
fitted curves and knees. What is loaded here feeds the What-if and Justification pages."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from app import shared


def _load() -> None:
    source = st.radio(
        "Records from",
        ["A run directory on this machine", "Uploaded record files"],
        horizontal=True,
    )
    if source.startswith("A run"):
        path = st.text_input(
            "Run directory or records file", placeholder="out/demo/runs/20260101T000000Z-abc123"
        )
        if st.button("Load the run"):
            try:
                _keep(shared.load_run_dir(path), path.strip(), shared.run_context(path))
            except shared.LOAD_ERRORS as exc:
                st.error(f"Could not load {path!r}: {exc}")
        return
    files = st.file_uploader(
        "Record files (.jsonl, .parquet, .csv; several files pool)",
        type=list(shared.RECORD_SUFFIXES),
        accept_multiple_files=True,
    )
    if not files:
        return
    uploads = [shared.as_upload(f) for f in files]
    key = hashlib.sha256(b"".join(u.name.encode() + u.data for u in uploads)).hexdigest()
    if st.session_state.get("evidence_upload_key") == key:
        return
    try:
        _keep(shared.load_uploads(uploads), ", ".join(u.name for u in uploads), None)
        st.session_state["evidence_upload_key"] = key
    except shared.LOAD_ERRORS as exc:
        st.error(f"Could not read the upload: {exc}")


def _keep(records: pd.DataFrame, source: str, context: str | None) -> None:
    if records.empty:
        raise shared.InputError(f"{source}: the records are empty")
    with st.spinner("Fitting the capacity model…"):
        try:
            model = shared.fit(records)
        except shared.LOAD_ERRORS as exc:
            st.warning(f"Loaded, but the fit failed: {exc}")
            model = None
    st.session_state[shared.RECORDS] = records
    st.session_state[shared.MODEL] = model
    st.session_state[shared.SOURCE] = source
    st.session_state[shared.CONTEXT] = context


def _show(records: pd.DataFrame) -> None:
    from capacity import figures as fig
    from capacity.records import compare_prompts, seed_table, summarize

    model = st.session_state.get(shared.MODEL)
    summary = summarize(records)
    st.subheader("Summary per prompt size and level")
    st.dataframe(seed_table(summary).round(3), width="stretch", hide_index=True)
    comparison = compare_prompts(summary)
    if comparison is not None and not comparison.empty:
        st.subheader("Small vs large prompt: system output tokens/s")
        st.dataframe(comparison.round(2), width="stretch", hide_index=True)
    throttled = summary[summary["n_throttled"] > 0] if "n_throttled" in summary else summary[:0]
    if len(throttled):
        st.subheader("Throttles")
        st.dataframe(
            throttled[["prompt_label", "level", "n", "n_throttled", "throttle_rate"]],
            hide_index=True,
        )
    labels = [str(x) for x in summary["prompt_label"].unique()]
    left, right = st.columns(2)
    label = left.selectbox("Prompt size", labels)
    levels = sorted(float(x) for x in summary[summary["prompt_label"] == label]["level"])
    level = right.selectbox("Level", levels, index=len(levels) - 1, format_func=lambda x: f"{x:g}")
    st.subheader("Dashboard")
    st.image(shared.png(fig.plot_all_metrics(records, prompt_label=label, level=level)))
    st.image(shared.png(fig.plot_tokens_and_calls(records, prompt_label=label, level=level)))
    st.subheader("Fits")
    st.image(shared.png(fig.plot_scaling(records, model)))
    if model is not None:
        st.image(shared.png(fig.plot_throughput(records, model)))
        _knees(model)


def _knees(model: Any) -> None:
    """The knees per prompt size under the default objective, as ``llmcap fit`` prints them:
    no operating point advised beyond what was measured."""
    from capacity.planning import objective
    from llmcap.commands.fit import KNEE_HEADS, knees_rows, prompt_objectives

    goals = prompt_objectives(model, lambda tokens: objective(model, tokens))
    rows, notes = knees_rows(model, goals)
    st.subheader("Knees (requests in flight)")
    st.dataframe(pd.DataFrame(rows, columns=list(KNEE_HEADS)), hide_index=True)
    for note in notes:
        st.caption(note)


def main() -> None:
    """The page."""
    st.title("Evidence")
    st.caption(
        "Measured runs (llmcap bench / llmcap demo, or the seed's CSV): the summary per prompt "
        "size and level, the dashboards and the fitted curves."
    )
    _load()
    records = st.session_state.get(shared.RECORDS)
    if records is None:
        st.info("Load a run directory or upload records to see the evidence.")
        return
    st.success(f"{len(records):,} requests from {st.session_state.get(shared.SOURCE)}")
    _show(records)


main()
