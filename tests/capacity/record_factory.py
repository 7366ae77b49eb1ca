"""Hand-made request records for the capacity tests (no ``bench`` import: the seam stays clean)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def rec(**overrides: Any) -> dict[str, Any]:
    """One ok record: sent at 0, first token at 0.3 s, 350 tokens by 2.3 s, closed at 2.4 s."""
    row: dict[str, Any] = {
        "run_id": "r1",
        "request_id": "0",
        "provider": "test",
        "model_id": "m",
        "prompt_label": "small",
        "mode": "concurrency",
        "level": 1.0,
        "batch": 0,
        "max_tokens": 350,
        "temperature": 0.5,
        "start_s": 0.0,
        "first_token_s": 0.3,
        "last_token_s": 2.3,
        "end_s": 2.4,
        "input_tokens": 43.0,
        "output_tokens": 350.0,
        "status": "ok",
    }
    row.update(overrides)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """Records as a DataFrame (request ids numbered when not given)."""
    return pd.DataFrame(
        [{**r, "request_id": r.get("request_id", str(i))} for i, r in enumerate(rows)]
    )
