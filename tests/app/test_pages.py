"""The multi-page app through Streamlit's AppTest (real script runs, no browser): the home page
routes to Evidence; Evidence loads a run directory or uploads, and a bad upload's error names
the file as uploaded; What-if and Justification start from the evidence's largest prompt;
Justification checks every field in place (the Region against the AWS SDK's list), starts with
no growth, wraps the case text and never keeps a report for other values than those on screen."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app import shared
from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import SEED_PROMPT, Quota, answer, count, objective
from llmcap.commands.fit import knees_rows, prompt_objectives
from tests.app.pages import APP, LLAMA, USE_CASE, evidence, justify, page, shown, with_evidence


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return evidence()


@pytest.fixture(scope="module")
def model(records: pd.DataFrame) -> CapacityModel:
    return fit_capacity(records, n_boot=20)


@pytest.fixture()
def run_dir(tmp_path: Path, records: pd.DataFrame) -> Path:
    folder = tmp_path / "20260101T000000Z-run"
    folder.mkdir()
    records.to_parquet(folder / "records.parquet")
    return folder


def test_home_routes_to_the_evidence_page() -> None:
    at = page("Home.py").run()
    assert not at.exception
    assert at.title[0].value == "Evidence"
    assert "Load a run directory" in at.info[0].value


def test_evidence_loads_a_run_directory(run_dir: Path, records: pd.DataFrame) -> None:
    (run_dir / "run.json").write_text(
        json.dumps({"config": {"endpoint": {"model_id": LLAMA, "region": "us-east-1"}}})
    )
    at = page("views/evidence.py").run()
    at.text_input[0].input(str(run_dir))
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error
    assert at.success[0].value == f"{len(records):,} requests from {run_dir}"
    model = at.session_state[shared.MODEL]
    assert isinstance(model, CapacityModel)
    # what the run was measured against, as `llmcap report` says it, for the Justification
    assert at.session_state[shared.CONTEXT].startswith("Measured on Amazon Bedrock in us-east-1")
    summary = at.dataframe[0].value
    assert set(summary["Prompt"]) == {"small", "large"} and len(summary) == 6
    assert len(at.get("image")) == 4  # dashboard, tokens and calls, scaling, throughput
    assert any(h.value == "Throttles" for h in at.subheader)
    # the knees as `llmcap fit` prints them, under the default objective
    knees = at.dataframe[-1].value
    goals = prompt_objectives(model, lambda tokens: objective(model, tokens))
    rows, _ = knees_rows(model, goals)
    assert [tuple(r) for r in knees.astype(str).itertuples(index=False)] == rows
    assert all(goals[r[0]].source == "default" for r in rows)


def test_evidence_reports_a_bad_path_next_to_the_field(tmp_path: Path) -> None:
    at = page("views/evidence.py").run()
    at.text_input[0].input(str(tmp_path / "missing"))
    at.button[0].click().run()
    assert not at.exception
    assert "no such file or directory" in at.error[0].value
    at.text_input[0].input(str(tmp_path))  # a directory without records
    at.button[0].click().run()
    assert not at.exception and "no records.jsonl or records.parquet" in at.error[0].value


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("my runs.parquet", b"this is not parquet", "my runs.parquet: not a readable Parquet"),
        ("week1.jsonl", b'{"prompt_label": "small", "level": \n{oops', "week1.jsonl: line 1"),
        ("seed.csv", b"a,b\n1,2\n", "seed.csv: missing column(s)"),
        ("blob.csv", b"\xff\xfe\x00binary\x00", "blob.csv: not a readable CSV"),
        ("empty.jsonl", b"", "empty.jsonl: no records"),
    ],
)
def test_a_bad_upload_names_the_file_never_a_temporary_path(
    name: str, data: bytes, expected: str
) -> None:
    at = page("views/evidence.py").run()
    at.radio[0].set_value("Uploaded record files").run()
    at.file_uploader[0].upload(name, data).run()
    assert not at.exception, at.exception
    (error,) = at.error
    assert error.value.startswith(f"Could not read the upload: {expected}"), error.value
    assert tempfile.gettempdir() not in error.value and "0_" not in error.value
    assert shared.RECORDS not in at.session_state


def test_only_record_files_are_read() -> None:
    # Streamlit's uploader already refuses other suffixes; the loader says why as well.
    with pytest.raises(shared.InputError, match=r"notes\.txt: records must be \.jsonl, \.parquet"):
        shared.load_uploads([shared.Upload("notes.txt", b"hello")])
    with pytest.raises(shared.InputError, match="no file uploaded"):
        shared.load_uploads([])


def test_a_good_upload_is_loaded(records: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    records.to_parquet(path)
    at = page("views/evidence.py").run()
    at.radio[0].set_value("Uploaded record files").run()
    at.file_uploader[0].upload("r.parquet", path.read_bytes()).run()
    assert not at.exception and not at.error
    assert len(at.session_state[shared.RECORDS]) == len(records)


def tokens(where: Any) -> list[float]:
    """The token fields' values: input, output, max_tokens."""
    names = ("Input tokens", "Output tokens", "max_tokens")
    by_label = {n.label.split(" per ")[0].split(" (")[0]: n.value for n in where.number_input}
    return [by_label[name] for name in names]


def test_both_pages_start_from_the_largest_measured_prompt(
    records: pd.DataFrame, model: CapacityModel
) -> None:
    for name, box in (("calculator.py", "sidebar"), ("views/justification.py", "main")):
        at = with_evidence(name, records, model).run()
        assert not at.exception and not at.error
        where = at.sidebar if box == "sidebar" else at
        assert tokens(where) == [2000.0, 350.0, 350.0]  # the large prompt, not the seed's 43
        assert where.selectbox[0].value == "large"
    at = page("calculator.py").run()  # no evidence: the seed prompt
    workload = SEED_PROMPT.workload()
    assert tokens(at.sidebar) == [
        workload.input_tokens, workload.output_tokens, workload.max_tokens,
    ]  # fmt: skip


def test_a_bad_model_upload_names_the_file() -> None:
    at = page("calculator.py").run()
    at.sidebar.file_uploader[0].upload("my model.json", b"{not json").run()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("Could not read the model: my model.json: not JSON")
    assert tempfile.gettempdir() not in error.value and not at.metric


def test_justification_previews_the_planners_numbers() -> None:
    at = page("views/justification.py").run()
    assert at.text_area(key="growth").value == ""  # no growth unless the user gives one
    assert at.text_input(key="region").value == ""  # no Region the user did not give
    at = justify(at)
    assert not at.exception and not at.error
    assert [getattr(b, "label", None) for b in at.get("download_button")] == [
        "PDF", "HTML", "Markdown", "JSON", "Case text",
    ]  # fmt: skip
    quota = Quota(tpm=600_000, model_id=LLAMA)  # the form's default: no RPM quota
    want = answer(quota, SEED_PROMPT.workload(think_time_s=30.0), None, None, 2_000)
    assert want.request is not None and want.request.rpm is None  # not enforced: not asked
    assert shown(at)["Users today"] == count(want.plan.users)
    assert shown(at)["TPM to request for 2,000 users"] == f"{want.tpm:,}"
    preview = "\n".join(m.value for m in at.markdown)
    assert f"today's quota serves {count(want.plan.users)} users" in preview
    asks = re.findall(r"^\| [^|]+ \| (L-[0-9A-F]{8}) \| ([\d,]+) \| ([\d,]+) \|$", preview, re.M)
    assert asks == [("L-0E7AA8B7", "600,000", f"{want.tpm:,}")]
    assert "concurrent users" not in preview.lower()
    (code,) = at.code
    body = code.value
    assert len(body) <= 8000 and f"600,000 -> {want.tpm:,}" in body
    assert USE_CASE in body and "concurrent users" not in body.lower()
    assert code.proto.wrap_lines  # long lines wrap in the preview, none is cut


def test_justification_uses_the_evidence(model: CapacityModel, records: pd.DataFrame) -> None:
    at = with_evidence("views/justification.py", records, model)
    context = "Measured against llmcap's built-in emulator, which enforced no quota."
    at.session_state[shared.CONTEXT] = context  # as the Evidence page keeps it from run.json
    at = justify(at.run())
    assert not at.exception and not at.error
    preview = "\n".join(m.value for m in at.markdown)
    assert "## 9. Evidence" in preview and "Throttle history" in preview
    assert context in preview
    assert len(at.get("image")) == 3  # the chart, scaling, throughput


def test_justification_errors_sit_under_their_fields() -> None:
    at = page("views/justification.py").run()
    at.text_input(key="account_id").input("12ab")
    at.text_area(key="growth").input("soon")
    at = justify(at, use_case="   ", region="us-esat-1")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Describe the use case.",
        "An AWS account id is 12 digits.",
        "Amazon Bedrock is not offered in Region 'us-esat-1' — did you mean us-east-1?",
        "growth 'soon': write WHEN=USERS with 0 < USERS <= 1,000,000,000, e.g. '+6 months=3000'",
    ]
    region = next(c for c in at.columns if any(t.key == "region" for t in c.text_input))
    assert "'us-esat-1'" in [e.value for e in region.error][-1]  # under it
    assert at.warning[0].value == "No report until the fields marked above are fixed."
    assert not at.get("download_button") and not at.metric


def test_justification_keeps_no_report_under_an_error() -> None:
    at = justify(page("views/justification.py").run())
    assert at.get("download_button") and at.metric
    at.text_input(key="justification_tpm").input("-1")
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["TPM quota must be above 0, got -1"]
    assert not at.get("download_button") and not at.metric and not at.code
    at.text_input(key="justification_tpm").input("600,000")
    at.text_input(key="justification_target").input("1000000000000")
    at.button[0].click().run()
    assert [e.value for e in at.error] == [
        "Target users must be at most 1,000,000,000, got 1000000000000"
    ]
    assert not at.get("download_button") and not at.metric


def test_the_app_never_calls_requests_in_flight_concurrent_users() -> None:
    for path in APP.rglob("*.py"):
        assert "concurrent user" not in path.read_text(encoding="utf-8").lower(), path
