"""``llmcap report --from-logs/--from-trace`` end to end: the TPM asked is the replay's (the
same as ``size_quota`` on the same requests), with runs as evidence or without any, from a
shipped template; bad combinations are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.fitting import CapacityModel
from capacity.report import QuotaRequestReport
from capacity.serving import QuotaLimits, size_quota
from capacity.usage import (
    SyntheticLogs,
    load_requests,
    request_arrays,
    scale_trace,
    traffic_template,
    write_invocation_logs,
)
from llmcap.cli import main
from tests.capacity.report.conftest import LLAMA

pytestmark = pytest.mark.timeout(300)
BASE = ["--region", "us-east-1", "--use-case", "Agent assist", "--format", "md,json"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logs")
    write_invocation_logs(root, SyntheticLogs(requests=900, models=(LLAMA,), rate_per_s=4.0))
    return root


@pytest.mark.usefixtures("planted_env")
def test_runs_and_logs_make_one_report_whose_tpm_is_the_replays(
    run_dir: Path, model: CapacityModel, logs: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    model_path = model.save(tmp_path / "model.json")
    out = tmp_path / "report"
    argv = ["report", str(run_dir), "--model", str(model_path), "--from-logs", str(logs),
            "--tpm", "60000", "--target-users", "300", *BASE, "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    report = QuotaRequestReport.from_json((out / "quota_request.json").read_text())
    sized = size_quota(
        request_arrays(load_requests(logs), LLAMA), LLAMA,
        current=QuotaLimits(tpm=60_000),
    )  # fmt: skip
    assert report.replay is not None and report.ask("tpm") is not None
    assert report.ask("tpm").desired == report.request["tpm"] == sized.tpm  # type: ignore[union-attr]
    md = (out / "quota_request.md").read_text()
    assert f"60,000 → {sized.tpm:,}" in md and f"60,000 -> {sized.tpm:,}" in md
    case = (out / "quota_request_case.txt").read_text()
    assert f"60,000 -> {sized.tpm:,}" in case and len(case) <= 8000
    assert f"TPM 60,000 → {sized.tpm:,}" in printed and "TPM sized by replay" in printed
    assert "measured from 900 logged requests" in md and "taken as the traffic of 300 users" in md
    assert report.evidence  # the runs are still the evidence, and the model the latency
    assert report.predictor is not None and report.latency is not None
    names = {p.name for p in (out / "figures").iterdir()}
    assert {"quota_ask.png", "traffic_rates.png", "token_distributions.png",
            "scaling.png", "throughput.png"} <= names  # fmt: skip


def test_a_shipped_template_needs_no_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["report", "--from-trace", "azure-conv-2023", "--trace-users", "100",
            "--target-users", "30", "--tpm", "100000", *BASE, "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "quota_request.json").read_text())
    template = traffic_template("azure-conv-2023", model_id=LLAMA)  # the default model id
    scaled = scale_trace(template, trace_users=100, target_users=30)
    sized = size_quota(request_arrays(scaled, LLAMA), LLAMA)
    assert doc["inference_profile_id"] == LLAMA
    assert doc["request"]["tpm"] == doc["replay"]["tpm"] == sized.tpm
    assert doc["evidence"] == [] and doc["predictor"] is None
    assert (
        "19,366 requests of a trace (azure-conv-2023) of 100 users, scaled to 30"
        in (doc["traffic"]["source"])
    )


def test_bad_combinations_are_one_line_errors(
    logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["report", "--tpm", "60000", "--target-users", "10", *BASE, "-o", str(tmp_path)]
    assert main([*base]) == 2
    assert "no runs and no traffic" in one_line(capsys.readouterr().err)
    assert main([*base, "--from-logs", str(logs), "--input-tokens", "100"]) == 2
    assert "--input-tokens with real traffic" in one_line(capsys.readouterr().err)
    assert main([*base, "--from-logs", str(logs), "--historical-usage", "x.md"]) == 2
    assert "--historical-usage with real traffic" in one_line(capsys.readouterr().err)
    assert main([*base, "--trace-users", "5", str(tmp_path)]) == 2
    assert "--trace-users without traffic" in one_line(capsys.readouterr().err)
    assert main([*base, "--from-trace", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in one_line(capsys.readouterr().err)
    two = tmp_path / "two"
    write_invocation_logs(two, SyntheticLogs(requests=200, models=("m.a", "m.b")))
    assert main([*base, "--from-logs", str(two)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "2 models (m.a, m.b)" in err and "--model-id" in err
