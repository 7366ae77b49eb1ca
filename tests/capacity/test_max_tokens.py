"""recommend_max_tokens: the truncation quantile and the admission capacity it frees."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity.planning import PlanInputError, recommend_max_tokens

approx = pytest.approx


def test_quantile_of_outputs_and_admission_gain() -> None:
    # Outputs 1..1,000 once each; the 0.99 quantile by the inverse empirical CDF is the
    # smallest v with F(v) ≥ 0.99: v = 990, and 10 of 1,000 outputs (1 %) exceed it.
    # At 500 input tokens, moving from max_tokens 4,096 to 990 takes the reservation from
    # 4,596 to 1,490 tokens: 4,596 / 1,490 − 1 = 2.085 → 3.1× as many admissions per minute.
    advice = recommend_max_tokens(range(1, 1001), 0.99, current_max_tokens=4096, input_tokens=500)
    assert advice.max_tokens == 990
    assert advice.admission_gain == approx(4596 / 1490 - 1)
    assert advice.truncated_share == 0
    assert "990" in advice.formulas["max_tokens"]


def test_records_frame_supplies_current_max_tokens_and_inputs() -> None:
    # Ok rows only: outputs 300 × 998 and 900, 1,000 (the failed row's 4,000 is ignored).
    # 0.999 quantile: F(900) = 999/1000 ≥ 0.999 → 900. Mean input 2,000; current 4,096:
    # gain = (2,000 + 4,096) / (2,000 + 900) − 1 = 1.102.
    outputs = [300] * 998 + [900, 1000, 4000]
    frame = pd.DataFrame(
        {
            "output_tokens": outputs,
            "input_tokens": [2000] * len(outputs),
            "max_tokens": [4096] * len(outputs),
            "status": ["ok"] * 1000 + ["error"],
        }
    )
    advice = recommend_max_tokens(frame, 0.999)
    assert advice.n == 1000
    assert advice.max_tokens == 900
    assert advice.current_max_tokens == 4096 and advice.input_tokens == 2000
    assert advice.admission_gain == approx(6096 / 2900 - 1)


def test_censored_outputs_and_small_samples_are_flagged() -> None:
    # 5 % of outputs hit the current max_tokens (500): their true length is unknown.
    advice = recommend_max_tokens([200] * 95 + [500] * 5, 0.999, current_max_tokens=500)
    assert advice.max_tokens == 500
    assert advice.truncated_share == approx(0.05)
    assert any("true length is unknown" in n for n in advice.notes)
    assert any("sample maximum" in n for n in advice.notes)  # 100 outputs < 1 / 0.001
    assert any("counts max_tokens alone" in n for n in advice.notes)


@pytest.mark.parametrize(
    ("data", "kwargs", "text"),
    [
        ([], {}, "no output token counts"),
        ([1, -2], {}, ">= 0"),
        ([1, 2], {"quantile": 1.0}, "quantile must be in"),
        ([1, 2], {"current_max_tokens": 0}, "current_max_tokens must be > 0"),
        (pd.DataFrame({"x": [1]}), {}, "output_tokens column"),
    ],
)
def test_bad_inputs(data: object, kwargs: dict[str, float], text: str) -> None:
    with pytest.raises(PlanInputError, match=text):
        recommend_max_tokens(data, **kwargs)  # type: ignore[arg-type]
