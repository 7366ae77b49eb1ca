"""The traffic analysis against independent computations: pandas on the shipped Azure traces
(the issue's acceptance test), numpy on synthetic logs, and the scaling of a template."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from capacity.usage import (
    TEMPLATES,
    USAGE_COLUMNS,
    SyntheticLogs,
    analyze_traffic,
    load_requests,
    percentile_of_counts,
    plot_token_distributions,
    plot_traffic_rates,
    read_usage,
    scale_trace,
    traffic_template,
    write_invocation_logs,
    write_usage,
)

REPO = Path(__file__).resolve().parents[3]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=30),
    st.floats(0, 1),
)
def test_percentile_of_counts_is_numpys_percentile(values: list[int], q: float) -> None:
    v, c = np.unique(np.array(values), return_counts=True)
    expected = np.percentile(np.array(values, dtype=float), q * 100)
    assert percentile_of_counts(v.astype(float), c, q) == pytest.approx(expected, rel=1e-12)


def pandas_reference(path: Path) -> dict[str, float]:
    """The trace's figures computed with pandas alone, from the CSV as Azure publishes it."""
    d = pd.read_csv(path, parse_dates=["TIMESTAMP"]).sort_values("TIMESTAMP")
    # llmcap keeps timestamps to the millisecond: so does this reference
    d["TIMESTAMP"] = d["TIMESTAMP"].dt.floor("ms")
    d = d.set_index("TIMESTAMP")
    d["tokens"] = d["ContextTokens"] + d["GeneratedTokens"]
    minute = d.resample("1min")
    second = d.resample("1s")
    gaps = np.diff(d.index.to_numpy().astype("datetime64[ms]").astype(np.int64)) / 1000.0
    out = {
        "minute_requests": minute.size().max() / minute.size().mean(),
        "minute_tokens": minute["tokens"].sum().max() / minute["tokens"].sum().mean(),
        "second_requests": second.size().max() / second.size().mean(),
        "second_tokens": second["tokens"].sum().max() / second["tokens"].sum().mean(),
        "cv": gaps.std() / gaps.mean(),
        "above_25k": float((d["ContextTokens"] > 25_000).mean()),
        "minutes": len(minute.size()),
    }
    for col, name in (("ContextTokens", "input"), ("GeneratedTokens", "output")):
        for q in (50, 90, 99, 99.9):
            out[f"{name}_p{q:g}"] = float(np.percentile(d[col], q))
        out[f"{name}_mean"] = float(d[col].mean())
        out[f"{name}_max"] = float(d[col].max())
    return out


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_azure_templates_match_an_independent_pandas_computation(template: object) -> None:
    name = template.name  # type: ignore[attr-defined]
    path = REPO / "data" / "traces" / template.file  # type: ignore[attr-defined]
    ref = pandas_reference(path)
    m = analyze_traffic(traffic_template(name)).model(name)
    assert m.per_minute.periods == ref["minutes"]
    assert m.per_minute.peak_to_mean_requests == pytest.approx(ref["minute_requests"], rel=1e-12)
    assert m.per_minute.peak_to_mean_tokens == pytest.approx(ref["minute_tokens"], rel=1e-12)
    assert m.per_second.peak_to_mean_requests == pytest.approx(ref["second_requests"], rel=1e-12)
    assert m.per_second.peak_to_mean_tokens == pytest.approx(ref["second_tokens"], rel=1e-12)
    assert m.interarrival_cv == pytest.approx(ref["cv"], rel=1e-9)
    assert m.share_above_long_prompt == ref["above_25k"]
    for field, name_ in (("input_tokens", "input"), ("output_tokens", "output")):
        d = m.tokens[field]
        for q, got in ((50, d.p50), (90, d.p90), (99, d.p99), (99.9, d.p999)):
            assert got == pytest.approx(ref[f"{name_}_p{q:g}"], rel=1e-12), (field, q)
        assert d.mean == pytest.approx(ref[f"{name_}_mean"], rel=1e-12)
        assert d.max == ref[f"{name_}_max"]


def test_the_issue_figures_of_the_code_trace() -> None:
    """The issue quotes the code trace's 1-second peak at 25× its mean and CV 13."""
    m = analyze_traffic(traffic_template("azure-code-2023")).models[0]
    assert 24 < m.per_second.peak_to_mean_tokens < 26
    assert 12.5 < m.interarrival_cv < 13.5  # type: ignore[operator]
    conv = analyze_traffic(traffic_template("azure-conv-2023")).models[0]
    assert conv.per_minute.peak_to_mean_tokens == pytest.approx(1.77, abs=0.01)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, object]:
    root = tmp_path_factory.mktemp("logs")
    spec = SyntheticLogs(
        requests=3000,
        models=("m.one", "anthropic.claude-sonnet-4-20250514-v1:0"),
        rate_per_s=6.0,
        throttled_share=0.05,
    )
    truth = write_invocation_logs(root, spec)
    return truth, analyze_traffic(load_requests(root), quota_tpm=100_000)


def test_usage_frame_per_minute_against_the_truth(
    synthetic: tuple[pd.DataFrame, object], tmp_path: Path
) -> None:
    truth, analysis = synthetic
    for model_id, mine in truth.groupby("model_id"):
        m = analysis.model(model_id)  # type: ignore[attr-defined]
        minute = mine["timestamp"].dt.floor("min")
        ok = mine["status"] == "ok"
        expected = (
            mine[ok]
            .groupby(minute[ok])
            .agg(
                invocations=("status", "size"),
                input_tokens=("input_tokens", "sum"),
                output_tokens=("output_tokens", "sum"),
                cache_read=("cache_read_tokens", "sum"),
                latency_mean=("latency_s", "mean"),
                latency_p90=("latency_s", lambda s: np.percentile(s.dropna(), 90)),
            )
        )
        frame = m.usage.set_index("timestamp")
        assert list(m.usage.columns) == list(USAGE_COLUMNS)
        got = frame.loc[expected.index]
        assert (got["invocations"] == expected["invocations"]).all()
        assert (got["input_tokens"] == expected["input_tokens"]).all()
        assert (got["output_tokens"] == expected["output_tokens"]).all()
        assert (got["cache_read_tokens"] == expected["cache_read"]).all()
        np.testing.assert_allclose(got["latency_ms_avg"], expected["latency_mean"] * 1000)
        np.testing.assert_allclose(got["latency_ms_p90"], expected["latency_p90"] * 1000)
        throttled = mine[~ok].groupby(minute[~ok]).size()
        assert (frame.loc[throttled.index, "throttles"] == throttled).all()
        assert frame["invocations"].sum() == ok.sum()
        # the span is filled: every minute from the first to the last, empty ones as 0
        assert len(frame) == (minute.max() - minute.min()) / pd.Timedelta("1min") + 1
        assert m.summary.invocations == ok.sum() and m.summary.meta.quota_tpm == 100_000
        assert m.summary.meta.source == "invocation-logs" and m.summary.meta.region == "us-east-1"
        path = write_usage(tmp_path / f"{model_id}.parquet", m.usage, m.summary.meta)
        back, meta = read_usage(path)
        pd.testing.assert_frame_equal(back, m.usage)
        assert meta == m.summary.meta


def test_rates_burstiness_and_distributions_against_numpy(
    synthetic: tuple[pd.DataFrame, object],
) -> None:
    truth, analysis = synthetic
    for model_id, mine in truth.groupby("model_id"):
        m = analysis.model(model_id)  # type: ignore[attr-defined]
        per_second = mine.set_index("timestamp").resample("1s").size()
        assert m.per_second.peak_requests == per_second.max()
        assert m.per_second.mean_requests == pytest.approx(per_second.mean(), rel=1e-12)
        assert m.dispersion_1s == pytest.approx(per_second.var(ddof=0) / per_second.mean())
        assert m.interarrival_cv is None  # Bedrock's whole-second stamps
        ok = mine[mine["status"] == "ok"]
        prompt = ok["input_tokens"] + ok["cache_read_tokens"] + ok["cache_write_tokens"]
        assert m.tokens["prompt_tokens"].p99 == pytest.approx(np.percentile(prompt, 99))
        assert m.tokens["max_tokens"].count == len(ok) == m.max_tokens_known
        assert m.above_long_prompt == (prompt > 25_000).sum()
        assert m.throttled == (mine["status"] == "throttled").sum()
        assert m.error_codes == {"ThrottlingException": m.throttled}
        bd = 5.0 if "sonnet-4" in str(model_id) else 1.0
        assert m.burndown == bd
        minute = ok.groupby(ok["timestamp"].dt.floor("min"))
        quota = (
            minute["input_tokens"].sum()
            + minute["cache_write_tokens"].sum()
            + bd * minute["output_tokens"].sum()
        )
        assert m.per_minute.peak_quota_tokens == quota.max()


def test_markdown_and_json(synthetic: tuple[pd.DataFrame, object]) -> None:
    import json

    _, analysis = synthetic
    d = json.loads(json.dumps(analysis.to_dict(), default=str))  # type: ignore[attr-defined]
    assert [m["model_id"] for m in d["models"]] == sorted(
        ["m.one", "anthropic.claude-sonnet-4-20250514-v1:0"]
    )
    first = d["models"][0]
    assert {
        "per_second",
        "per_minute",
        "tokens",
        "share_above_long_prompt",
        "usage_summary",
    } <= set(first)
    text = analysis.models[0].markdown()  # type: ignore[attr-defined]
    assert "requests per second" in text and "25,000 prompt tokens" in text


def test_figures_render(synthetic: tuple[pd.DataFrame, object]) -> None:
    _, analysis = synthetic
    m = analysis.models[0]  # type: ignore[attr-defined]
    for fig in (plot_traffic_rates(m), plot_token_distributions(m)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["azure-code-2023", "azure-conv-2023"])
@pytest.mark.parametrize("target", [0.5, 3.0])
def test_scaled_trace_keeps_its_shape(name: str, target: float) -> None:
    base = traffic_template(name)
    scaled = scale_trace(base, trace_users=100, target_users=100 * target)
    a = analyze_traffic(base).models[0]
    b = analyze_traffic(scaled).models[0]
    # the mean rate scales by target / trace users (thinning: within sampling error)
    assert b.per_minute.mean_requests / a.per_minute.mean_requests == pytest.approx(
        target, rel=0.03
    )
    assert b.per_minute.periods == a.per_minute.periods  # same window
    # and the minute-scale burstiness stays close
    assert b.per_minute.peak_to_mean_requests == pytest.approx(
        a.per_minute.peak_to_mean_requests, rel=0.2
    )
    assert b.tokens["input_tokens"].p50 == pytest.approx(a.tokens["input_tokens"].p50, rel=0.1)


def test_scaling_by_one_is_the_trace_and_whole_copies_are_exact() -> None:
    base = traffic_template("azure-conv-2023")
    same = scale_trace(base, trace_users=7, target_users=7)
    assert same.arrow.equals(base.arrow)
    triple = scale_trace(base, trace_users=10, target_users=30, seed=3)
    assert len(triple) == 3 * len(base)
    assert sorted(triple.to_pandas()["input_tokens"]) == sorted(
        list(base.to_pandas()["input_tokens"]) * 3
    )
    ts = triple.to_pandas()["timestamp"]
    original = base.to_pandas()["timestamp"]
    assert ts.min() >= original.min() and ts.max() <= original.max()
    smoother = analyze_traffic(
        scale_trace(base, trace_users=1, target_users=10, max_shift_s=None)
    ).models[0]
    assert smoother.per_minute.peak_to_mean_requests < 1.3  # independent groups average out
