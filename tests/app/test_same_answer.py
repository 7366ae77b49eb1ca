"""The app's part of "one answer everywhere": for the same inputs — 600,000 TPM, the model
fitted on the synthetic evidence, 2,000 users, with the default objective, with none and with
an own p95 TTFT target — the What-if page and the Justification page show the users today, the
TPM to request and the users at the requested quota (with what limits each) that
``capacity.answer`` gives, and name the objective; where the choice differs from the default,
both pages say so in words."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import shared
from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import (
    DEFAULT_THINK_TIME_S,
    CapacityAnswer,
    Quota,
    answer,
    count,
    objective,
    pick_prompt,
)
from capacity.records import prompt_sizes
from tests.app.pages import LLAMA, evidence, justify, shown, with_evidence


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return evidence()


@pytest.fixture(scope="module")
def model(records: pd.DataFrame) -> CapacityModel:
    return fit_capacity(records, n_boot=20)


def expected(records: pd.DataFrame, model: CapacityModel, choice: str) -> CapacityAnswer:
    """``capacity.answer`` on the pages' defaults: the largest measured prompt, 30 s think
    time, no RPM, 20 % headroom; the objective as chosen (own: 1.5 × the default's target)."""
    workload = pick_prompt(prompt_sizes(records)).workload(think_time_s=DEFAULT_THINK_TIME_S)
    assert workload.input_tokens == 2000  # the large prompt: the largest measured
    default = objective(model, workload.prompt_tokens)
    assert default.slo is not None and default.source == "default"
    goal = {
        "default": default,
        "none": objective(model, workload.prompt_tokens, use_default=False),
        "own": objective(model, workload.prompt_tokens, ttft_p95_s=own_target(model, records)),
    }[choice]
    return answer(Quota(tpm=600_000, model_id=LLAMA), workload, model, goal, 2_000)


def own_target(model: CapacityModel, records: pd.DataFrame) -> float:
    workload = pick_prompt(prompt_sizes(records)).workload()
    default = objective(model, workload.prompt_tokens).slo
    assert default is not None and default.ttft_p95_s is not None
    return round(1.5 * default.ttft_p95_s, 2)


def choose(at: AppTest, key: str, choice: str, target: float) -> None:
    at.radio(key=f"{key}_objective").set_value(choice)
    if choice == "own":
        at.number_input(key=f"{key}_own_ttft").set_value(target)


@pytest.mark.parametrize("choice", ["default", "none", "own"])
def test_what_if_and_justification_give_capacity_answers_numbers(
    records: pd.DataFrame, model: CapacityModel, choice: str
) -> None:
    want = expected(records, model, choice)
    assert want.request is not None and want.users_at_request is not None
    numbers = {
        "Users today": count(want.plan.users),
        "limited today": f"limited by {want.limited_by_today}",
        "TPM to request for 2,000 users": f"{want.tpm:,}",
        "Users at the requested quota": count(want.requested.users),  # type: ignore[union-attr]
        "limited at request": f"limited by {want.limited_by_at_request}",
        "Headroom delivered": f"{want.headroom_delivered:.0%}",
    }
    target = own_target(model, records)

    what_if = with_evidence("calculator.py", records, model).run()
    choose(what_if, "whatif", choice, target)
    what_if.run()
    assert not what_if.exception and not what_if.error, what_if.error
    assert shown(what_if) == numbers

    just = with_evidence("views/justification.py", records, model).run()
    choose(just, "justification", choice, target)
    just = justify(just)
    assert not just.exception and not just.error, just.error
    assert shown(just) == numbers

    describe = shared.escaped(want.objective.describe())
    for at in (what_if, just):
        assert f"**Latency objective:** {describe}" in [m.value for m in at.markdown]
        said = "\n".join(i.value for i in at.info)
        if choice == "default":
            assert "differ from the defaults" not in said
        elif choice == "none":
            assert "Latency objective: none, as you chose" in said
        else:
            assert f"Latency objective: your own target (p95 TTFT <= {target:.2f} s" in said
    preview = "\n".join(m.value for m in just.markdown)
    assert f"today's quota serves {count(want.plan.users)} users" in preview


def test_another_prompt_than_the_largest_is_said_in_words(
    records: pd.DataFrame, model: CapacityModel
) -> None:
    small = pick_prompt(prompt_sizes(records), "small").workload()
    want = answer(Quota(tpm=600_000, model_id=LLAMA), small, model, None, 2_000)
    for name, key in (("calculator.py", "whatif"), ("views/justification.py", "justification")):
        at = with_evidence(name, records, model).run()
        at.selectbox(key=f"{key}_prompt").set_value("small").run()
        if key == "justification":
            at = justify(at)
        assert not at.exception and not at.error
        assert shown(at)["Users today"] == count(want.plan.users)
        assert shown(at)["TPM to request for 2,000 users"] == f"{want.tpm:,}"
        said = "\n".join(i.value for i in at.info)
        assert "Prompt size: 'small' (43 in / 350 out / max\\_tokens 350), not the largest" in said
