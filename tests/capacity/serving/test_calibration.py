"""The default profile reproduces the seed blog's published medians within ±10 %
(docs/architecture.md, "Serving model")."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from capacity.serving import interval_medians
from emulator import DEFAULT_PROFILE, load_profile

TABLE = (
    Path(__file__).resolve().parents[3] / "data" / "reference" / "seed_blog_interval_medians.csv"
)
ROWS = list(csv.DictReader(TABLE.open()))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['prompt_label']}-{r['level']}")
def test_default_profile_matches_the_blog_in_interval_mode(row: dict[str, str]) -> None:
    tps, ttft = interval_medians(
        load_profile(DEFAULT_PROFILE),
        int(row["level"]),
        input_tokens=int(row["input_tokens"]),
        max_tokens=int(row["output_tokens"]),
        seed=1,
    )
    assert tps == pytest.approx(float(row["median_tps"]), rel=0.10)
    assert ttft == pytest.approx(float(row["median_ttft_s"]), rel=0.10)
