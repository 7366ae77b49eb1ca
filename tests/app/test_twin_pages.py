"""A calibrated twin (twin.json) in the app through Streamlit's AppTest (real script runs, no
browser): the What-if page plans with an uploaded twin and says so, with its identification
and extrapolation notes; the Justification page builds its report on one; a JSON file that is
no model is an error message, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import shared
from capacity.planning import SEED_PROMPT, Quota, answer, count
from capacity.records import load_records
from tests.app.pages import justify, page, shown
from tests.capacity.serving.twin_probe import fitted_twin, save_probe


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_probe(tmp_path_factory.mktemp("twin"))


def test_what_if_plans_with_an_uploaded_twin(probe: tuple[Path, Path]) -> None:
    at = page("calculator.py").run()
    at.file_uploader[0].upload("twin.json", probe[1].read_bytes()).run()
    assert not at.exception, at.exception
    assert not at.error
    quota = Quota(tpm=600_000, model_id=shared.LLAMA)
    want = answer(quota, SEED_PROMPT.workload(think_time_s=30.0), fitted_twin(), None, 2_000)
    assert want.plan.latency_source == "model" and want.objective.source == "default"
    assert shown(at)["Users today"] == count(want.plan.users)  # the answer on the twin
    assert shown(at)["TPM to request for 2,000 users"] == f"{want.tpm:,}"
    assert "This plan uses a calibrated digital twin" in at.info[0].value
    details = "\n".join(m.value for m in at.markdown)
    assert "replicas: " in details and "max\\_running: only a lower bound" in details
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Twin: extrapolated") for w in warnings), warnings
    assert any("the twin's serving model carries it" in w for w in warnings), warnings


def test_what_if_refuses_a_json_that_is_no_model() -> None:
    at = page("calculator.py").run()
    at.file_uploader[0].upload("notes.json", b'{"meeting": "Tuesday"}').run()
    assert not at.exception
    assert "notes.json: not a performance model" in at.error[0].value
    assert "twin.json from `llmcap twin fit`" in at.error[0].value
    assert not at.metric


def test_justification_builds_its_report_on_an_uploaded_twin(probe: tuple[Path, Path]) -> None:
    at = page("views/justification.py")
    at.session_state[shared.RECORDS] = load_records(probe[0])
    at.session_state[shared.SOURCE] = "the probe"
    at.run()
    at.file_uploader[0].upload("twin.json", probe[1].read_bytes()).run()
    assert not at.exception, at.exception
    assert "This plan uses a calibrated digital twin" in at.info[0].value
    assert any("no per-prompt fitted curves" in c.value for c in at.caption)
    at = justify(at)
    assert not at.exception, at.exception
    assert not at.error
    preview = "\n".join(m.value for m in at.markdown)
    method = preview.split("## 10. Method", 1)[1]
    assert "### Performance model" in method and "calibrated digital twin" in method
    assert "- replicas: " in method
    assert len(at.get("image")) == 2  # the chart and the measured scaling (no fitted curves)


def test_justification_refuses_a_json_that_is_no_model() -> None:
    at = page("views/justification.py").run()
    at.file_uploader[0].upload("notes.json", b"[1, 2, 3]").run()
    at = justify(at)
    assert not at.exception
    assert "Could not read the model: notes.json: not a performance model" in at.error[0].value
    assert not at.get("download_button") and not at.metric
