"""The option chosen in the report (``build_report(comparison=..., option=...)``, ``llmcap
report --option``): one section of the block structure, so Markdown, HTML, PDF and the case
text all carry it; its numbers are the comparison's for the same inputs, whose on-demand
Standard option asks what the report asks; JSON round-trips and older reports still read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from capacity.compare import CompareError, Comparison, GivenFigures, compare
from capacity.fitting import CapacityModel
from capacity.planning import PlanInputError, objective
from capacity.report import (
    CASE_BODY_LIMIT,
    QuotaRequestReport,
    build_report,
    case_body,
    to_html,
    to_markdown,
    to_pdf,
)
from capacity.usage import load_prices
from llmcap.cli import main
from tests.capacity.report.conftest import CURRENT, LLAMA, WORKLOAD
from tests.capacity.report.test_traffic_report import write_trace

GIVEN = GivenFigures(reserved_price_input={"3m": 1.5}, reserved_price_output={"3m": 15.0})


@pytest.fixture(scope="module")
def comparison(model: CapacityModel) -> Comparison:
    goal = objective(model, WORKLOAD.prompt_tokens)
    price = load_prices().price(LLAMA, "us-east-1")
    return compare(CURRENT, WORKLOAD, 2000, price, model=model, goal=goal, given=GIVEN,
                   minutes=10)  # fmt: skip


def make(
    model: CapacityModel, comparison: Comparison | None, option: str | None
) -> QuotaRequestReport:
    return build_report(
        use_case="Support agents", region="us-east-1", current=CURRENT, workload=WORKLOAD,
        target_users=2000, model=model, comparison=comparison, option=option, figures=False,
        generated_at="2026-01-01 00:00 UTC",
    )  # fmt: skip


@pytest.fixture(scope="module")
def chosen(model: CapacityModel, comparison: Comparison) -> QuotaRequestReport:
    return make(model, comparison, "reserved-3m")


def test_every_renderer_carries_the_section(chosen: QuotaRequestReport) -> None:
    md, html, case = to_markdown(chosen), to_html(chosen), case_body(chosen)
    assert "## The option chosen: Reserved capacity, 3 months" in md
    assert "| ▶ Reserved capacity, 3 months |" in md
    assert "<h2>The option chosen: Reserved capacity, 3 months</h2>" in html
    assert "Option chosen:\n- Reserved capacity, 3 months: Reserved input TPM" in case
    assert len(case) <= CASE_BODY_LIMIT
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(to_pdf(chosen))).pages)
    assert "The option chosen: Reserved capacity, 3 months" in text


def test_its_numbers_are_the_comparisons(
    chosen: QuotaRequestReport, comparison: Comparison
) -> None:
    o = comparison.option("reserved-3m")
    doc = chosen.option
    assert doc is not None
    assert (doc["monthly_usd"], doc["buys"]) == (o.monthly_usd, o.request_words())
    assert doc["why"] == list(comparison.why("reserved-3m"))
    assert [x["key"] for x in doc["options"]] == list(comparison.keys)
    # The report asks what the comparison's on-demand Standard option asks (one answer).
    base = {line.kind: line.value for line in comparison.option(comparison.baseline).lines}
    asks = {a.kind: float(a.desired) for a in chosen.asks}
    assert asks == {k: v for k, v in base.items() if k in asks} and "tpm" in asks
    assert (
        f"The quotas asked above are those of {comparison.option('standard-cross-region').name}"
        in to_markdown(chosen)
    )


def test_json_round_trips_and_older_versions_read(chosen: QuotaRequestReport) -> None:
    again = QuotaRequestReport.from_json(chosen.to_json())
    assert again == chosen
    doc = json.loads(chosen.to_json())
    assert doc["version"] == 4
    del doc["option"]
    doc["version"] = 3
    assert QuotaRequestReport.from_dict(doc).option is None


def test_no_option_no_section(model: CapacityModel, comparison: Comparison) -> None:
    plain = make(model, None, None)
    assert plain.option is None and "The option chosen" not in to_markdown(plain)
    assert "Option chosen" not in case_body(plain)
    with pytest.raises(PlanInputError, match="needs the comparison it was chosen from"):
        make(model, None, "flex")
    with pytest.raises(CompareError, match="no option 'cheapest'"):
        make(model, comparison, "cheapest")


def test_report_option_from_traffic_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "trace.csv", n=600, minutes=5)
    out = tmp_path / "report"
    argv = ["report", "--from-trace", str(trace), "--model-id", LLAMA, "--tpm", "300000",
            "--target-users", "50", "--region", "us-east-1", "--use-case", "Agents",
            "--format", "md,json", "--option", "batch", "--deferrable-share", "0.5",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = QuotaRequestReport.from_json((out / "quota_request.json").read_text())
    assert report.option is not None and report.option["key"] == "batch"
    assert report.option["monthly_usd"] is not None  # Llama's batch discount is in the table
    standard = next(x for x in report.option["options"] if x["key"] == "standard-cross-region")
    assert standard["buys"] == f"TPM {report.ask('tpm').desired:,} (L-0E7AA8B7)"  # type: ignore[union-attr]
    assert (
        "## The option chosen: Batch inference for the deferrable share"
        in (out / "quota_request.md").read_text()
    )
