"""``llmcap report`` end to end on a run directory: every format is written, numbers match the
planner, and no credential planted in the environment or in run.json reaches any output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from capacity.fitting import CapacityModel
from capacity.planning import Quota, Workload, answer
from capacity.report import QuotaRequestReport
from llmcap.cli import main
from llmcap.commands.report import write_demo_reports
from tests.capacity.report.conftest import CURRENT, LLAMA, SECRETS


def _assert_no_secret(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        texts = [data.decode("latin-1")]
        if path.suffix == ".pdf":  # PDF text streams are compressed: read them as text
            texts += [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages]
        for secret in SECRETS:
            assert all(secret not in t for t in texts), f"{secret} leaked into {path}"
            assert all(secret[:12] not in t for t in texts), f"part of {secret} in {path}"


@pytest.mark.usefixtures("planted_env")
def test_report_command_writes_every_format_and_no_secret(
    run_dir: Path, model: CapacityModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_path = model.save(tmp_path / "model.json")
    out = tmp_path / "report"
    code = main(
        [
            "report", str(run_dir), "--model", str(model_path), "--tpm", "600000",
            "--region", "us-east-1", "--rpm", "800", "--target-users", "2000", "--prompt", "small",
            "--use-case", "Agent assist for 2,000 support agents", "--growth", "+1 year=4000",
            "--format", "md,html,pdf,json", "-o", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {
        "quota_request.md", "quota_request.html", "quota_request.pdf", "quota_request.json",
        "quota_request_case.txt", "figures/quota_ask.png", "figures/scaling.png",
        "figures/throughput.png",
    }  # fmt: skip
    report = QuotaRequestReport.from_json((out / "quota_request.json").read_text())
    pm = model.prompt("small")
    assert report.workload["input_tokens"] == pytest.approx(pm.input_tokens)
    workload = Workload(**report.workload)
    # The same question through the Python API: the default objective applies in both.
    result = answer(Quota(600_000, 800, model_id=LLAMA), workload, model, target_users=2_000)
    request = result.request
    assert request is not None and result.objective.source == "default"
    assert report.objective == result.objective.describe()
    assert {a.kind: a.desired for a in report.asks} == {"tpm": request.tpm, "rpm": request.rpm}
    assert report.users_today == pytest.approx(result.plan.users)
    assert f"request TPM 600,000 → {request.tpm:,}" in printed.out
    assert "](figures/quota_ask.png)" in (out / "quota_request.md").read_text()
    assert len((out / "quota_request_case.txt").read_text()) <= 8000
    _assert_no_secret(out)


def test_bad_arguments_are_one_line_errors(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["report", str(run_dir), "--tpm", "600000", "--target-users", "10", "--region",
            "us-east-1", "-o", str(tmp_path)]  # fmt: skip
    assert main([*base, "--use-case", "x", "--format", "md,docx"]) == 2
    assert "unknown report format(s) ['docx']" in capsys.readouterr().err
    assert main([*base, "--use-case", "x", "--growth", "soon"]) == 2
    assert "growth 'soon': write WHEN=USERS" in capsys.readouterr().err
    assert main([*base, "--use-case", "x", "--region", "moon", "--format", "json"]) == 2
    assert "Amazon Bedrock is not offered in Region 'moon'" in capsys.readouterr().err
    # A Region shaped right but unknown to the SDK (a typo) is refused too.
    assert main([*base, "--use-case", "x", "--region", "us-esat-1", "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert "'us-esat-1' — did you mean us-east-1?" in err
    assert main([*base, "--use-case", "x", "--prompt", "huge", "--format", "json"]) == 2
    assert (
        "prompt 'huge' was not measured: the evidence has large, small" in capsys.readouterr().err
    )
    assert not list(tmp_path.glob("quota_request*"))


def test_demo_reports_one_pdf_per_prompt(
    records: object, model: CapacityModel, tmp_path: Path
) -> None:
    workload = Workload(input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=30.0)
    result = answer(CURRENT, workload, model, target_users=2_000)
    pdfs = write_demo_reports(records, model, {"small": result}, tmp_path, "us-east-1", None)
    assert pdfs == [tmp_path / "small" / "quota_request.pdf"]
    reader = pypdf.PdfReader(pdfs[0])
    assert "(small prompt)" in reader.pages[0].extract_text()
    doc = json.loads((tmp_path / "small" / "quota_request.json").read_text())
    assert doc["use_case"].startswith("llmcap demo:")
    request = result.request
    assert request is not None
    asks = {a["kind"]: a["desired"] for a in doc["asks"]}
    assert asks == {"tpm": request.tpm, "rpm": request.rpm}  # the demo's own request, quoted
    assert doc["objective"] == result.objective.describe()
