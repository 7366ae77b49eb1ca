"""What the app's page tests share: the synthetic evidence (two prompt sizes measured on a
synthetic Llama endpoint), running a page through Streamlit's AppTest, and reading the answer
a page shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from app import shared
from capacity.records import SyntheticPrompt, synthetic_records

APP = Path(__file__).resolve().parents[2] / "app"
LLAMA = shared.LLAMA
USE_CASE = "Agent assist for 2,000 support agents"


def evidence() -> pd.DataFrame:
    """Records of a small (43 tokens in) and a large (2,000 in) prompt at 1, 10 and 30 in
    flight, 2 % throttled."""
    prompts = [SyntheticPrompt("small", 43, kappa=5e-6), SyntheticPrompt("large", 2000)]
    return synthetic_records(
        prompts, levels=(1, 10, 30), requests_per_level=90, model_id=LLAMA, throttle_rate=0.02
    )


def page(name: str, **state: object) -> AppTest:
    """The page ``name`` (under app/), not yet run, with ``state`` in its session."""
    at = AppTest.from_file(str(APP / name), default_timeout=180)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def with_evidence(name: str, records: pd.DataFrame, model: object) -> AppTest:
    """The page with the Evidence page's records and fitted model in the session."""
    return page(
        name,
        **{shared.RECORDS: records, shared.MODEL: model, shared.SOURCE: "synthetic"},
    )


def shown(at: AppTest) -> dict[str, str]:
    """The answer a page shows: each metric's value by its label, and each "limited by"
    caption under the metrics (``limited today``, ``limited at request``)."""
    out = {m.label: m.value for m in at.metric}
    limits = [c.value for c in at.caption if c.value.startswith("limited by ")]
    if limits:
        out["limited today"], out["limited at request"] = limits
    return out


def justify(at: AppTest, use_case: str = USE_CASE, region: str = "us-east-1") -> AppTest:
    """Fill the use case and Region of the Justification form and submit it."""
    at.text_area(key="use_case").input(use_case)
    at.text_input(key="region").input(region)
    return at.button[0].click().run()
