"""The app's "What to buy" page through Streamlit's AppTest: its table is ``llmcap compare
--json``'s for the same inputs (the page's defaults, then figures typed in), and a bad input
shows one error under its field and no table."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from llmcap.cli import main
from tests.app.pages import LLAMA, page

RESULT = "buy_comparison"
DEFAULTS = ["compare", "--tpm", "600000", "--model-id", LLAMA, "--region", "us-east-1",
            "--input-tokens", "43", "--output-tokens", "350", "--max-tokens", "350",
            "--think-time-s", "30", "--target-users", "2000", "--json"]  # fmt: skip


def cli(capsys: pytest.CaptureFixture[str], *extra: str) -> object:
    assert main([*DEFAULTS, *extra]) == 0
    return json.loads(capsys.readouterr().out)


def run() -> AppTest:
    at = page("views/buy.py").run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> object:
    return json.loads(json.dumps(at.session_state[RESULT]))


def test_the_default_table_is_the_clis(capsys: pytest.CaptureFixture[str]) -> None:
    at = run()
    assert not at.error
    assert shown(at) == cli(capsys)
    assert at.title[0].value == "What to buy"
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 12


def test_figures_typed_in_are_the_clis_flags(capsys: pytest.CaptureFixture[str]) -> None:
    at = run()
    at.sidebar.text_input(key="buy_premium").input("20")
    at.sidebar.text_input(key="buy_reserved_input_3m").input("1.5")
    at.sidebar.text_input(key="buy_reserved_output_3m").input("15")
    at.sidebar.number_input(key="buy_deferrable").set_value(30.0)
    at.run()
    assert not at.error and not at.exception
    want = cli(capsys, "--priority-premium", "0.2", "--reserved-price-input", "3m=1.5",
               "--reserved-price-output", "3m=15", "--deferrable-share", "0.3")  # fmt: skip
    assert shown(at) == want


def test_a_bad_input_shows_one_error_and_no_table() -> None:
    at = run()
    at.sidebar.text_input(key="buy_pt_in").input("1,000,000")  # without the output TPM
    at.run()
    assert [e.value for e in at.error] == [
        "a model unit's throughput needs both its input and its output tokens per minute "
        "(your AWS account team gives them)"
    ]
    assert RESULT not in at.session_state and not at.dataframe
