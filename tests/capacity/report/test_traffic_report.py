"""The report from real traffic: its numbers are the traffic analysis' and the replay sizing's
on the same input (checked through the JSON and the Markdown parsed back, and against an
independent pandas computation of the per-minute usage); one TPM everywhere; users carried by
replay; growth by replay; JSON round trip, version 2 read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity.planning import Quota, answer
from capacity.report import (
    QuotaRequestReport,
    build_report,
    case_body,
    measure_traffic,
    to_markdown,
)
from capacity.serving import size_quota
from capacity.usage import RequestTable, load_requests, request_arrays, scale_trace

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TODAY = Quota(300_000, model_id=LLAMA)
pytestmark = pytest.mark.timeout(300)


def write_trace(path: Path, n: int = 1200, minutes: int = 10) -> Path:
    """A trace of ``n`` requests over ``minutes``: every tenth has a 30,000-token prompt, the
    rest 200 to 4,000; outputs 20 to 400; max_tokens 512 (all known); no model column."""
    rng = np.random.default_rng(7)
    t0 = 1_767_000_000.0  # epoch seconds, a whole minute
    ts = np.sort(t0 + rng.uniform(0, minutes * 60, n)).round(3)
    inp = rng.integers(200, 4000, n)
    inp[::10] = 30_000
    pd.DataFrame(
        {
            "timestamp": ts,
            "input_tokens": inp,
            "output_tokens": rng.integers(20, 400, n),
            "max_tokens": 512,
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(tmp_path_factory.mktemp("trace") / "trace.csv")


@pytest.fixture(scope="module")
def table(trace: Path) -> RequestTable:
    return load_requests(trace, default_model_id=LLAMA)


@pytest.fixture(scope="module")
def report(table: RequestTable) -> QuotaRequestReport:
    traffic = measure_traffic(table, TODAY, target_users=20, trace_users=10, label="trace.csv")
    return build_report(
        use_case="Support agents", region="us-east-1", current=TODAY, target_users=20,
        traffic=traffic, growth=[("+6 months", 30)], generated_at="2026-01-01 00:00 UTC",
    )  # fmt: skip


def minute_stats(frame: pd.DataFrame) -> dict[str, float]:
    """Per-minute quota tokens (burndown 1: input + output) and served requests, every minute
    from the first to the last counted (empty ones as 0): p50, p90 and max — pandas only."""
    ok = frame[frame["status"] == "ok"]
    seconds = (pd.to_datetime(frame["timestamp"], utc=True) - pd.Timestamp(0, tz="UTC")).dt
    m = seconds.total_seconds().floordiv(60).astype("int64")
    ok_m = m[frame["status"] == "ok"]
    tokens = (ok["input_tokens"] + ok["cache_write_tokens"] + ok["output_tokens"]).astype(float)
    index = range(int(m.min()), int(m.max()) + 1)
    tpm = tokens.groupby(ok_m.to_numpy()).sum().reindex(index, fill_value=0.0).to_numpy()
    rpm = ok_m.value_counts().reindex(index, fill_value=0).to_numpy(float)
    return {
        "steady_tpm": float(np.percentile(tpm, 50)), "peak_tpm": float(np.percentile(tpm, 90)),
        "busiest_tpm": float(tpm.max()), "steady_rpm": float(np.percentile(rpm, 50)),
        "peak_rpm": float(np.percentile(rpm, 90)), "busiest_rpm": float(rpm.max()),
    }  # fmt: skip


def test_the_numbers_are_the_traffic_and_the_replay_on_the_same_input(
    table: RequestTable, report: QuotaRequestReport
) -> None:
    scaled = scale_trace(table, trace_users=10, target_users=20)
    sized = size_quota(request_arrays(scaled, LLAMA), LLAMA, current=TODAY.limits())
    doc = json.loads(report.to_json())
    # one TPM everywhere: the replay's
    assert doc["replay"]["tpm"] == doc["request"]["tpm"] == sized.tpm
    assert [(a["kind"], a["desired"]) for a in doc["asks"]] == [("tpm", sized.tpm)]
    md = to_markdown(report, figures=False)
    row = re.search(r"\| [^|]*tokens per minute[^|]* \| L-\w+ \| ([\d,]+) \| ([\d,]+) \|", md)
    assert row is not None and row.groups() == ("300,000", f"{sized.tpm:,}")
    assert f"we request TPM 300,000 → {sized.tpm:,}" in md
    assert f"300,000 -> {sized.tpm:,}" in case_body(report)
    assert doc["replay"]["today"]["throttled"] == sized.current.throttled  # type: ignore[union-attr]
    assert doc["replay"]["tpm_other_rule"] == sized.tpm_other_rule
    # section 4: measured from the traffic at the target (independent pandas computation)
    want = minute_stats(scaled.to_pandas())
    for key, value in want.items():
        assert doc["traffic"][key] == pytest.approx(value, rel=1e-12), key
    tpm_row = re.search(r"\| Tokens per minute \(TPM\) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|", md)
    assert tpm_row is not None
    assert tpm_row.groups() == tuple(
        f"{want[k]:,.0f}" for k in ("steady_tpm", "peak_tpm", "busiest_tpm")
    )
    assert doc["traffic"]["share_above_25k"] == pytest.approx(0.1)  # every tenth prompt
    assert "Share of requests above 25,000 input tokens: 10.0 %" in md
    assert "measured from 1,200 requests of a trace (trace.csv) of 10 users, scaled to 20" in md
    # the closed form beside it is the planner's for the measured workload
    traffic = measure_traffic(table, TODAY, target_users=20, trace_users=10)
    closed = answer(TODAY, traffic.workload(), None, None, 20).request
    assert closed is not None and doc["replay"]["closed_form_tpm"] == closed.tpm
    assert f"asks {closed.tpm:,} TPM" in md


def test_section_7_is_the_traffic_as_measured(report: QuotaRequestReport) -> None:
    history = report.historical_usage or ""
    assert history.startswith("The traffic as measured: 1,200 requests from trace.csv (10 users)")
    assert "Requests with more than 25,000 prompt tokens: 120 (10.00%)" in history
    assert "| requests (RPM) |" in history and "### Traffic of" in history
    assert "## Historical usage" not in history  # the report has its own heading


def test_users_and_growth_come_from_replays(
    table: RequestTable, report: QuotaRequestReport
) -> None:
    traffic = measure_traffic(table, TODAY, target_users=20, trace_users=10)
    today = report.users_today
    assert 0 < today < 20 and report.binding_today == "TPM"
    passing = traffic.replay_at(TODAY, today)
    failing = traffic.replay_at(TODAY, 1.5 * today)
    assert passing is not None and passing.throttled_share <= 0.001
    assert failing is not None and failing.throttled_share > 0.001
    assert report.users_requested >= 20 and report.headroom_delivered >= 0
    grown = size_quota(
        request_arrays(scale_trace(table.for_model(LLAMA), trace_users=10, target_users=30),
                       LLAMA), LLAMA,
    )  # fmt: skip
    assert [(g.users, g.tpm) for g in report.growth] == [(30.0, grown.tpm)]


def test_json_round_trips_and_version_2_still_reads(report: QuotaRequestReport) -> None:
    assert QuotaRequestReport.from_json(report.to_json()) == report
    old = report.to_dict()
    old["version"] = 2
    del old["replay"]
    for key in ("source", "busiest_tpm", "busiest_rpm"):
        del old["traffic"][key]
    back = QuotaRequestReport.from_dict(old)
    assert back.replay is None and back.traffic.busiest_tpm is None
    assert "from the planner's rate" in back.traffic.source


def test_the_traffic_of_another_model_or_target_is_refused(table: RequestTable) -> None:
    from capacity.planning import PlanInputError

    other = Quota(300_000, model_id="anthropic.claude-3-5-haiku-20241022-v1:0")
    with pytest.raises(PlanInputError, match=r"holds requests of .*llama"):
        measure_traffic(table, other, target_users=20)
    traffic = measure_traffic(table, TODAY, target_users=20)
    with pytest.raises(PlanInputError, match="measured at 20 users"):
        build_report(use_case="x", region="us-east-1", current=TODAY, target_users=40,
                     traffic=traffic, figures=False)  # fmt: skip
    with pytest.raises(PlanInputError, match="not both"):
        build_report(use_case="x", region="us-east-1", current=TODAY, target_users=20,
                     traffic=traffic, historical_usage="typed", figures=False)  # fmt: skip
