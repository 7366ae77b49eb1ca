"""The multi-page app through Streamlit's AppTest (real script runs, no browser): the home page
routes to Evidence; Evidence loads a run directory or uploads and survives bad ones; What-if
uses the Evidence model; Justification validates in place and previews the planner's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import shared
from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import Quota, Workload, plan_capacity, required_quota
from capacity.records import SyntheticPrompt, synthetic_records

APP = Path(__file__).resolve().parents[2] / "app"
LLAMA = shared.LLAMA


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    prompts = [SyntheticPrompt("small", 43, kappa=5e-6), SyntheticPrompt("large", 2000)]
    return synthetic_records(
        prompts, levels=(1, 10, 30), requests_per_level=90, model_id=LLAMA, throttle_rate=0.02
    )


@pytest.fixture(scope="module")
def model(records: pd.DataFrame) -> CapacityModel:
    return fit_capacity(records, n_boot=20)


@pytest.fixture()
def run_dir(tmp_path: Path, records: pd.DataFrame) -> Path:
    folder = tmp_path / "20260101T000000Z-run"
    folder.mkdir()
    records.to_parquet(folder / "records.parquet")
    return folder


def page(name: str) -> AppTest:
    return AppTest.from_file(str(APP / name), default_timeout=120)


def test_home_routes_to_the_evidence_page() -> None:
    at = page("Home.py").run()
    assert not at.exception
    assert at.title[0].value == "Evidence"
    assert "Load a run directory" in at.info[0].value


def test_evidence_loads_a_run_directory(run_dir: Path, records: pd.DataFrame) -> None:
    at = page("views/evidence.py").run()
    at.text_input[0].input(str(run_dir))
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error
    assert at.success[0].value == f"{len(records):,} requests from {run_dir}"
    assert isinstance(at.session_state[shared.MODEL], CapacityModel)
    summary = at.dataframe[0].value
    assert set(summary["Prompt"]) == {"small", "large"} and len(summary) == 6
    assert len(at.get("image")) == 4  # dashboard, tokens and calls, scaling, throughput
    assert any(h.value == "Throttles" for h in at.subheader)


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
        ("records.parquet", b"this is not parquet", "Could not read the upload"),
        ("records.jsonl", b'{"prompt_label": "small", "level": \n{oops', "Could not read"),
        ("records.csv", b"a,b\n1,2\n", "Could not read the upload"),
        ("records.csv", b"\xff\xfe\x00binary\x00", "Could not read the upload"),
        ("records.jsonl", b"", "Could not read the upload"),
    ],
)
def test_a_bad_upload_is_an_error_not_a_crash(name: str, data: bytes, expected: str) -> None:
    at = page("views/evidence.py").run()
    at.radio[0].set_value("Uploaded record files").run()
    at.file_uploader[0].upload(name, data).run()
    assert not at.exception, at.exception
    assert at.error and expected in at.error[0].value
    assert shared.RECORDS not in at.session_state


def test_only_record_files_are_read() -> None:
    # Streamlit's uploader already refuses other suffixes; the loader says why as well.
    with pytest.raises(ValueError, match=r"notes\.txt: records must be \.jsonl, \.parquet or"):
        shared.load_uploads([shared.Upload("notes.txt", b"hello")])
    with pytest.raises(ValueError, match="no file uploaded"):
        shared.load_uploads([])


def test_a_good_upload_is_loaded(records: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    records.to_parquet(path)
    at = page("views/evidence.py").run()
    at.radio[0].set_value("Uploaded record files").run()
    at.file_uploader[0].upload("r.parquet", path.read_bytes()).run()
    assert not at.exception and not at.error
    assert len(at.session_state[shared.RECORDS]) == len(records)


def test_what_if_uses_the_evidence_model(model: CapacityModel) -> None:
    at = page("calculator.py")
    at.session_state[shared.MODEL] = model
    at.run()
    assert not at.exception
    quota = Quota(tpm=600_000, rpm=800, model_id=LLAMA)
    workload = Workload(input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=30.0)
    plan = plan_capacity(quota, workload, model)
    assert plan.latency_source == "model"
    assert at.metric[0].value == f"{plan.users_whole:,}"
    at.checkbox[0].uncheck().run()
    no_model = plan_capacity(quota, workload)
    assert at.metric[0].value == f"{no_model.users_whole:,}"


def _justify(at: AppTest, use_case: str = "Agent assist for 2,000 support agents") -> AppTest:
    at.text_area(key="use_case").input(use_case)
    return at.button[0].click().run()


def test_justification_previews_the_planners_numbers() -> None:
    at = _justify(page("views/justification.py").run())
    assert not at.exception and not at.error
    assert [getattr(b, "label", None) for b in at.get("download_button")] == [
        "PDF", "HTML", "Markdown", "JSON", "Case text",
    ]  # fmt: skip
    workload = Workload(input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=30.0)
    quota = Quota(tpm=600_000, model_id=LLAMA)  # the form's default: no RPM quota
    request = required_quota(workload, 2_000, model_id=LLAMA, scope=quota.scope)
    assert request.rpm is None  # Bedrock no longer enforces Llama's RPM: not asked
    preview = "\n".join(m.value for m in at.markdown)
    today = re.search(r"Today's quota serves ([\d,]+) users", preview)
    assert today is not None and today.group(1) == f"{plan_capacity(quota, workload).users_whole:,}"
    asks = re.findall(r"^\| [^|]+ \| (L-[0-9A-F]{8}) \| ([\d,]+) \| ([\d,]+) \|$", preview, re.M)
    assert asks == [("L-0E7AA8B7", "600,000", f"{request.tpm:,}")]
    body = at.code[0].value
    assert len(body) <= 8000 and f"600,000 -> {request.tpm:,}" in body
    assert "Agent assist for 2,000 support agents" in body


def test_justification_uses_the_evidence(model: CapacityModel, records: pd.DataFrame) -> None:
    at = page("views/justification.py")
    at.session_state[shared.MODEL] = model
    at.session_state[shared.RECORDS] = records
    at.session_state[shared.SOURCE] = "synthetic"
    at = _justify(at.run())
    assert not at.exception and not at.error
    preview = "\n".join(m.value for m in at.markdown)
    assert "## 9. Evidence" in preview and "Throttle history" in preview
    assert len(at.get("image")) == 3  # the chart, scaling, throughput


def test_justification_errors_sit_next_to_their_fields() -> None:
    at = page("views/justification.py").run()
    at.text_input(key="account_id").input("12ab")
    at.text_input(key="region").input("mars-1")
    at.text_area(key="growth").input("soon")
    at = _justify(at, use_case="   ")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == [
        "Describe the use case.",
        "An AWS account id is 12 digits.",
        "region must be an AWS Region code like us-east-1, got 'mars-1'",
        "Growth: line 1: write WHEN=USERS, e.g. '+6 months=3000'",
        "Some fields need fixing: see the messages under them above.",
    ]
    assert not at.get("download_button")
