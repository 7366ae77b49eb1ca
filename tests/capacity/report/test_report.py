"""The quota-request report: its numbers are the planner's (parsed back from the Markdown and the
JSON), it round-trips, the PDF opens with the expected pages and figures, the HTML references
nothing outside itself, and the case text fits a support-case message."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from html.parser import HTMLParser

import pandas as pd
import pypdf
import pytest

from capacity.fitting import CapacityModel
from capacity.planning import (
    CapacityAnswer,
    Objective,
    PlanInputError,
    Quota,
    Slo,
    answer,
    plan_capacity,
    required_quota,
)
from capacity.report import (
    CASE_BODY_LIMIT,
    QuotaRequestReport,
    build_report,
    case_body,
    to_html,
    to_markdown,
    to_pdf,
)
from capacity.report._model import plain
from tests.capacity.report.conftest import CURRENT, LLAMA, WORKLOAD

USE_CASE = "Customer-support assistant answering 2,000 agents' questions during business hours."


@pytest.fixture(scope="module")
def report(records: pd.DataFrame, model: CapacityModel) -> QuotaRequestReport:
    return build_report(
        use_case=USE_CASE,
        region="us-east-1",
        current=CURRENT,
        workload=WORKLOAD,
        target_users=2_000,
        model=model,
        records=records,
        growth=[("+6 months", 3_000)],
        account_id="123456789012",
        generated_at="2026-01-01 00:00 UTC",
    )


@pytest.fixture(scope="module")
def expected(model: CapacityModel) -> CapacityAnswer:
    """The same question through the Python API (the default objective applies)."""
    return answer(CURRENT, WORKLOAD, model, target_users=2_000)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def test_markdown_quotes_the_planners_numbers(
    report: QuotaRequestReport, model: CapacityModel, expected: CapacityAnswer
) -> None:
    md = to_markdown(report)
    plan, request = expected.plan, expected.request
    assert request is not None
    today = re.search(r"today's quota serves ([\d,]+) users, limited by ([a-z ]+)\.", md)
    assert today is not None
    assert _int(today.group(1)) == plan.users_whole and today.group(2) == plan.binding_words
    assert expected.objective.describe() in md  # every capacity names its objective
    assert request.rpm is not None  # the account has an RPM quota: it is enforced, so asked
    asked = Quota(
        tpm=max(CURRENT.runtime_tpm, request.runtime_tpm),
        rpm=max(CURRENT.rpm or 0, request.rpm),
        model_id=LLAMA,
    )
    served = re.search(r"the requested quota serves ([\d,]+) users", md)
    assert served is not None
    then = plan_capacity(asked, WORKLOAD, model, expected.objective.slo)
    assert _int(served.group(1)) == math.floor(then.users + 1e-9) == expected.users_at_request
    if request.feasible:
        assert then.users >= 2_000  # the requested quota serves the target
    else:  # the objective caps the users below the target: the report says why
        assert then.users < 2_000 and f"Caveat: {request.reason}." in md
    rows = dict(
        (m.group(1), (_int(m.group(2)), _int(m.group(3))))
        for m in re.finditer(r"^\| [^|]+ \| (L-[0-9A-F]{8}) \| ([\d,]+) \| ([\d,]+) \|$", md, re.M)
    )
    assert rows == {"L-0E7AA8B7": (600_000, request.tpm), "L-DEDE703C": (800, request.rpm)}
    steady = re.search(r"^\| Tokens per minute \(TPM\) \| ([\d,]+) \| ([\d,]+) \|$", md, re.M)
    assert steady is not None
    assert _int(steady.group(1)) == round(request.requests_per_min * request.settlement_tokens)
    assert _int(steady.group(2)) == round(request.peak_requests_per_min * request.settlement_tokens)
    growth = re.search(r"^\| \+6 months \| 3,000 \| ([\d,]+) \| ([\d,]+) \|$", md, re.M)
    assert growth is not None
    later = required_quota(
        WORKLOAD, 3_000, model, expected.objective.slo, model_id=LLAMA, scope=CURRENT.scope,
        rpm_enforced=True,
    )  # fmt: skip
    assert (_int(growth.group(1)), _int(growth.group(2))) == (later.tpm, later.rpm)
    for key, formula in request.formulas.items():  # the method section quotes every formula
        assert f"| request.{key} | {formula.replace('|', chr(92) + '|')} |" in md


def test_json_round_trips_and_holds_the_planners_output(
    report: QuotaRequestReport, expected: CapacityAnswer
) -> None:
    assert QuotaRequestReport.from_dict(report.to_dict()) == report
    text = report.to_json()
    assert QuotaRequestReport.from_json(text) == report
    doc = json.loads(text)
    request, plan = expected.request, expected.plan
    assert request is not None
    assert doc["request"] == plain(request.to_dict())
    assert doc["plan"] == plain(plan.to_dict())
    assert {a["kind"]: a["desired"] for a in doc["asks"]} == {
        "tpm": request.tpm,
        "rpm": request.rpm,
    }
    assert doc["users_today"] == pytest.approx(plan.users)
    with pytest.raises(ValueError, match=r"not a llmcap\.quota-request-report"):
        QuotaRequestReport.from_dict({**doc, "format": "something-else"})


def test_asks_carry_the_exact_cli_and_boto3_calls(report: QuotaRequestReport) -> None:
    tpm = report.ask("tpm")
    assert tpm is not None and tpm.code == "L-0E7AA8B7" and tpm.current == 600_000
    assert tpm.cli == (
        "aws service-quotas request-service-quota-increase --service-code bedrock "
        f"--quota-code L-0E7AA8B7 --desired-value {tpm.desired} --region us-east-1"
    )
    assert tpm.boto3 == (
        'boto3.client("service-quotas", region_name="us-east-1").request_service_quota_increase('
        f'ServiceCode="bedrock", QuotaCode="L-0E7AA8B7", DesiredValue={float(tpm.desired)!r})'
    )
    assert "20% headroom" in tpm.why and f"{tpm.desired:,}" in tpm.why
    assert report.inference_profile_id == LLAMA and report.model_id == LLAMA[3:]


def test_evidence_covers_every_level_and_the_throttles(
    report: QuotaRequestReport, records: pd.DataFrame
) -> None:
    levels = {(r["prompt_label"], r["level"]) for r in report.evidence}
    assert levels == {(p, float(n)) for p in ("small", "large") for n in (1, 10, 20, 30, 40, 50)}
    assert report.throttles and all(t["n_throttled"] > 0 for t in report.throttles)
    assert sum(t["n_throttled"] for t in report.throttles) == int(
        (records["status"] == "throttled").sum()
    )
    assert report.latency is not None and report.latency["extrapolated"] is True
    assert "extrapolated" in report.measured_range


def test_pdf_opens_with_the_expected_pages_and_figures(report: QuotaRequestReport) -> None:
    reader = pypdf.PdfReader(io.BytesIO(to_pdf(report)))
    pages = [p.extract_text() for p in reader.pages]
    assert 4 <= len(pages) <= 12
    first = pages[0]
    assert "The ask" in first and "L-0E7AA8B7" in first and "600,000" in first
    assert len(reader.pages[0].images) == 1  # the manager's chart is on page 1
    assert sum(len(p.images) for p in reader.pages) == len(report.figures) == 3
    evidence = next(i for i, text in enumerate(pages) if "9. Evidence" in text)
    assert evidence > 0 and "10. Method" in "".join(pages[evidence:])
    assert "Support case text" in pages[-1]
    assert all(f"page {i + 1}/{len(pages)}" in text for i, text in enumerate(pages))


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]


def test_html_is_self_contained(report: QuotaRequestReport) -> None:
    page = to_html(report)
    parser = _Refs()
    parser.feed(page)
    assert not {"script", "link", "iframe", "object", "embed"} & set(parser.tags)
    assert parser.refs and all(r.startswith("data:image/png;base64,") for r in parser.refs)
    assert len(parser.refs) == len(report.figures)
    assert "url(" not in page and "@import" not in page
    for ref in parser.refs:  # each embedded figure is a real PNG
        assert base64.b64decode(ref.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "@media print" in page


def test_case_body_fits_a_support_case_and_answers_what_aws_asks(
    report: QuotaRequestReport,
) -> None:
    body = case_body(report)
    assert len(body) <= CASE_BODY_LIMIT
    for needed in (
        "Use case:",
        "Model id: meta.llama3-3-70b-instruct-v1:0",
        "Region: us-east-1",
        f"Cross-Region inference profile: {LLAMA}",
        "steady state (p50)",
        "peak (p90)",
        "above 25,000 input tokens: 0.0 %",
        "Growth projections:",
        "Monitoring and alarms:",
        "Historical usage:",
    ):
        assert needed in body, needed
    tpm = report.ask("tpm")
    assert tpm is not None and f"600,000 -> {tpm.desired:,}" in body
    long = QuotaRequestReport.from_dict({**report.to_dict(), "use_case": "word " * 4_000})
    cut = case_body(long)
    assert len(cut) <= CASE_BODY_LIMIT and f"600,000 -> {tpm.desired:,}" in cut


def test_no_ask_when_the_current_quota_suffices(model: CapacityModel) -> None:
    r = build_report(
        use_case="A pilot for 20 users.", region="eu-west-1", current=CURRENT, workload=WORKLOAD,
        target_users=20, model=model, figures=False,
    )  # fmt: skip
    assert r.asks == () and r.users_today >= 20
    assert "Nothing to raise" in to_markdown(r)
    assert "no increase (the current quota suffices)" in case_body(r)


def test_an_unknown_model_has_no_invented_quota_code() -> None:
    r = build_report(
        use_case="Batch summaries.", region="us-west-2",
        current=Quota(tpm=10_000, model_id="acme.unknown-model-v1"), workload=WORKLOAD,
        target_users=500, figures=False,
    )  # fmt: skip
    (tpm,) = r.asks
    assert tpm.code is None and tpm.cli is None and tpm.boto3 is None
    assert "list-service-quotas --service-code bedrock --region us-west-2" in tpm.why
    assert r.latency is not None and r.latency["ttft_p95_s"] is None  # no model: not predicted


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(PlanInputError, match="region"):
        build_report(
            use_case="x", region="mars-1", current=CURRENT, workload=WORKLOAD, target_users=10,
            figures=False,
        )  # fmt: skip
    with pytest.raises(PlanInputError, match="account_id must be 12 digits"):
        build_report(
            use_case="x", region="us-east-1", current=CURRENT, workload=WORKLOAD,
            target_users=10, account_id="1234-5678", figures=False,
        )  # fmt: skip
    with pytest.raises(PlanInputError, match="use_case"):
        build_report(
            use_case="  ", region="us-east-1", current=CURRENT, workload=WORKLOAD,
            target_users=10, figures=False,
        )  # fmt: skip


def test_historical_usage_is_quoted_as_given(model: CapacityModel) -> None:
    history = "| Month | Peak TPM |\n|---|---|\n| 2026-05 | 512,000 |"
    r = build_report(
        use_case="Batch summaries.", region="us-east-1", current=CURRENT, workload=WORKLOAD,
        target_users=2_000, historical_usage=history, figures=False,
    )  # fmt: skip
    assert "## 7. Historical usage\n\n" + history in to_markdown(r)
    assert "<pre>| Month | Peak TPM |\n|---|---|\n| 2026-05 | 512,000 |</pre>" in to_html(r)
    assert "512,000" in "".join(
        p.extract_text() for p in pypdf.PdfReader(io.BytesIO(to_pdf(r))).pages
    )
    assert "Historical usage:\n" + history in case_body(r)
    headed = build_report(
        use_case="Batch summaries.", region="us-east-1", current=CURRENT, workload=WORKLOAD,
        target_users=2_000, historical_usage="## Historical usage\n\n" + history, figures=False,
    )  # fmt: skip
    assert headed.historical_usage == history  # the report's own heading, not a second one
    usage = {
        "meta": {"model_id": LLAMA, "quota_tpm": 600_000.0},
        "tpm": {"p50": 210_000.0, "p90": 512_000.0},
        "throttles": 14,
        "daily": [{"day": "2026-05-01"}],
        "forecast": None,
    }
    table = build_report(
        use_case="Batch summaries.", region="us-east-1", current=CURRENT, workload=WORKLOAD,
        target_users=2_000, historical_usage=usage, figures=False,
    )  # fmt: skip
    assert table.historical_usage == (
        "| Measure | Value |\n|---|---|\n"
        f"| meta.model_id | {LLAMA} |\n| meta.quota_tpm | 600,000 |\n"
        "| tpm.p50 | 210,000 |\n| tpm.p90 | 512,000 |\n| throttles | 14 |"
    )


def test_a_code_resolved_live_overrides_the_table() -> None:
    r = build_report(
        use_case="Batch summaries.", region="eu-central-1",
        current=Quota(tpm=10_000, model_id="acme.unknown-model-v1"), workload=WORKLOAD,
        target_users=500, quota_codes={"tpm": "L-1234ABCD"}, figures=False,
    )  # fmt: skip
    (tpm,) = r.asks
    assert tpm.code == "L-1234ABCD" and r.current_quotas[0].code == "L-1234ABCD"
    assert tpm.cli is not None and "--quota-code L-1234ABCD" in tpm.cli
    assert tpm.cli.endswith(f"--desired-value {tpm.desired} --region eu-central-1")


def test_an_infeasible_target_says_why_and_what_can_close_the_gap(model: CapacityModel) -> None:
    slo = Slo(ttft_p95_s=0.31)  # barely above the unloaded TTFT: holds at a few in flight only
    r = build_report(
        use_case="Agent assist.", region="us-east-1", current=CURRENT, workload=WORKLOAD,
        target_users=2_000, model=model, goal=Objective(slo, "given"), figures=False,
    )  # fmt: skip
    request = required_quota(
        WORKLOAD, 2_000, model, slo, model_id=LLAMA, scope=CURRENT.scope, rpm_enforced=True
    )
    assert not request.feasible and request.reason and request.options
    assert not r.feasible and r.infeasible_reason == request.reason
    md = to_markdown(r)
    assert f"Caveat: {request.reason}." in md
    for option in request.options:
        assert f"- {option.name}: {option.effect}" in md
    assert f"Caveat: {request.reason}." in case_body(r)
    assert QuotaRequestReport.from_json(r.to_json()) == r  # options and all
