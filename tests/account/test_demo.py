"""The offline account demo states the demo's own answer: the quota, Region, model id and
workload it is given, the users of the caller's plan and the TPM of the caller's request; the
quota comes back through Service Quotas and the requests through CloudWatch, both served by the
emulator to real boto3."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from capacity.planning import Quota, Workload, plan_capacity, required_quota
from capacity.usage import read_usage, summarize_usage
from llmcap.account_demo import run_account_demo

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"


def test_account_demo_states_the_callers_answer(tmp_path: Path) -> None:
    quota = Quota(tpm=600_000, model_id=MODEL)
    workload = Workload(input_tokens=1_800, output_tokens=340, max_tokens=350, think_time_s=30)
    plan = plan_capacity(quota, workload)
    request = required_quota(workload, 2_000, model_id=MODEL)
    buf = io.StringIO()
    shown = run_account_demo(tmp_path / "demo", "us-east-1", plan, request,
                             Console(file=buf, width=160))  # fmt: skip
    text = buf.getvalue()
    assert (shown.quota_tpm, shown.quota_code) == (600_000, "L-0E7AA8B7")  # read back
    assert (shown.users_today, shown.requested_tpm) == (plan.users_whole, request.tpm)
    assert f"{plan.users_whole:,} users" in text and f"ask for {request.tpm:,} TPM" in text
    assert "us-east-1" in text and "us-west-2" not in text
    assert "300,000" not in text and "600,000" in text
    # CloudWatch (the emulator's) counted the requests of the workload it was sent
    assert shown.cloudwatch_requests == 6
    assert "6 invocations, 1,800 input and 340 output tokens per request" in text
    assert f"--quota-code L-0E7AA8B7 --desired-value {request.tpm}" in text
    assert f"PENDING (desired {request.tpm:,})" in text
    frame, meta = read_usage(shown.out_dir / "usage.parquet")
    assert meta.source.startswith("synthetic") and "SYNTHETIC" in text
    assert (meta.region, meta.quota_tpm, meta.model_id) == ("us-east-1", 600_000, MODEL)
    summary = summarize_usage(frame, meta)
    assert summary.mean_input_tokens == pytest.approx(1_800, rel=0.02)  # the workload's
    assert summary.mean_output_tokens == pytest.approx(340, rel=0.02)
    assert (shown.out_dir / "forecast.png").stat().st_size > 0
