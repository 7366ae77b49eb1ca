"""The What-if page through Streamlit's AppTest (real script runs, no browser): its answer is
``capacity.answer``'s on the page's defaults (checked by hand here: no model, the seed prompt,
no RPM quota), an RPM quota counts only when typed, and every input is checked before anything
is computed — a bad one is one error under its field and no answer (none left from before)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.pages import page, shown


def what_if() -> AppTest:
    at = page("calculator.py").run()
    assert not at.exception and not at.error
    return at


def sidebar_input(at: AppTest, key: str, text: str) -> AppTest:
    at.sidebar.text_input(key=f"whatif_{key}").input(text)
    return at.run()


def test_the_default_answer_worked_by_hand() -> None:
    at = what_if()
    # 600,000 TPM, no RPM quota, the seed prompt (43 in, 350 out, max_tokens 350), 30 s think
    # time, no model: R = 0.28 + 349/136 = 2.846 s, so a user sends 60 / 32.846 = 1.8267
    # requests per minute, each charging 43 + 350 = 393 tokens (Llama: burndown 1).
    # Today: 600,000 / 393 / 1.8267 = 835.8 users. For 2,000 users with 20 % headroom:
    # 2,400 × 1.8267 × 393 = 1,722,941 TPM, which serves the 2,400.
    assert shown(at) == {
        "Users today": "835",
        "limited today": "limited by tokens per minute",
        "TPM to request for 2,000 users": "1,722,941",
        "Users at the requested quota": "2,400",
        "limited at request": "limited by tokens per minute",
        "Headroom delivered": "20%",
    }
    said = [m.value for m in at.markdown]
    assert "**Quotas to request:** TPM 600,000 → 1,722,941" in said  # no RPM: not enforced
    assert any("no latency objective (no performance model" in m for m in said)
    assert not at.info  # nothing chosen differently from the defaults
    assert at.sidebar.text_input(key="whatif_rpm").value == ""


def test_an_rpm_quota_counts_when_typed_and_the_page_says_so() -> None:
    at = sidebar_input(what_if(), "rpm", "800")
    # 800 requests per minute / 1.8267 per user = 437.9 users.
    assert shown(at)["Users today"] == "437"
    assert shown(at)["limited today"] == "limited by requests per minute"
    asks = next(m.value for m in at.markdown if m.value.startswith("**Quotas to request:**"))
    assert "TPM 600,000 → " in asks and "RPM 800 → " in asks
    assert "RPM quota: 800 given, so it is planned and asked as enforced" in at.info[0].value


def test_a_bad_input_clears_the_answer_and_says_one_thing() -> None:
    at = what_if()
    good = {"tpm": "600,000", "rpm": "", "target": "2,000"}
    for key, text, message in [
        ("tpm", "-600,000", "TPM quota must be above 0, got -600,000"),
        ("tpm", "lots", "TPM quota must be a number like 600,000, got 'lots'"),
        ("rpm", "0", "RPM quota must be above 0, got 0"),
        ("target", "1e12", "Target users must be at most 1,000,000,000, got 1e12"),
        ("target", "1,000,000,000,000", "Target users must be at most 1,000,000,000"),
    ]:
        assert at.metric  # an answer on screen before
        at = sidebar_input(at, key, text)
        assert not at.exception
        assert [e.value for e in at.error] == [at.sidebar.error[0].value]  # one, in the sidebar
        assert at.error[0].value.startswith(message), at.error[0].value
        assert not at.metric and not at.get("download_button")  # nothing from before stays
        assert at.warning[0].value == "No answer until the inputs marked in the sidebar are fixed."
        at = sidebar_input(at, key, good[key])
        assert not at.error and shown(at)["Users today"] == "835"


def test_numbers_are_written_for_people() -> None:
    at = sidebar_input(what_if(), "target", "500,000,000")
    assert not at.error
    label, value = at.metric[1].label, at.metric[1].value
    assert label == "TPM to request for 500.0 million users"
    assert value.count(",") >= 3 and int(value.replace(",", "")) > 1e11


def test_max_tokens_below_the_output_is_an_error_under_the_workload() -> None:
    at = what_if()
    at.sidebar.number_input[2].set_value(10).run()  # max_tokens below the 350 output tokens
    assert not at.exception and not at.metric
    (error,) = at.error
    assert "must be <= max_tokens" in error.value


def test_the_objective_means_one_thing_and_needs_a_model_for_a_target() -> None:
    at = what_if()
    at.sidebar.number_input(key="whatif_own_ttft").set_value(1.5).run()
    assert "choose 'My own target' to use it, or clear it" in at.error[0].value
    assert not at.metric
    at.sidebar.radio(key="whatif_objective").set_value("own").run()
    assert "a latency objective needs a performance model" in at.error[0].value
    assert not at.metric
    at.sidebar.number_input(key="whatif_own_ttft").set_value(None)
    at.sidebar.radio(key="whatif_objective").set_value("none").run()
    assert not at.error and shown(at)["Users today"] == "835"
    assert "Latency objective: none, as you chose" in at.info[0].value
