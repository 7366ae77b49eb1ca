"""The Streamlit calculator through Streamlit's AppTest (a real script run, no browser)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from capacity import Workload, required_quota

APP = str(Path(__file__).resolve().parents[2] / "app" / "calculator.py")


def test_default_page_answers_with_the_planners_numbers() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    users, tpm = at.metric
    # 600,000 TPM, 800 RPM, 43 + 350 tokens, 30 s think time, no model: R = 0.28 + 349/136 =
    # 2.846 s; RPM binds: 800/60 × (2.846 + 30) = 437.9 users → 437 whole users.
    assert users.value == "437"
    workload = Workload(input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=30.0)
    expected = required_quota(workload, 2_000, model_id="us.meta.llama3-3-70b-instruct-v1:0")
    assert tpm.value == f"{expected.tpm:,}"  # the page shows the planner's answer
    assert "limited by requests per minute" in at.markdown[0].value
    assert len(at.dataframe) == 1


def test_changing_the_quota_changes_the_answer() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    before = at.metric[0].value
    at.number_input[1].set_value(100)  # RPM 800 → 100
    at.run()
    assert not at.exception
    assert int(at.metric[0].value.replace(",", "")) < int(before.replace(",", ""))


def test_bad_input_is_an_error_message_not_a_crash() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.number_input[4].set_value(10)  # max_tokens below the output tokens
    at.run()
    assert not at.exception
    assert at.error and "max_tokens" in at.error[0].value
