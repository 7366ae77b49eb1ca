"""The seed blog's published figures: the fit reproduces its qualitative findings.

The blog: small prompts scale near-linearly to level 50; large prompts show diminishing returns
past ~30 ("minimal throughput gains beyond concurrency level 30"; optimum "around 30-35").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from capacity.fitting import UslFit, fit_usl

FIGURES = Path(__file__).resolve().parents[2] / "data" / "reference" / "seed_blog_figures.csv"


def fits() -> dict[str, UslFit]:
    figures = pd.read_csv(FIGURES)
    medians = figures[(figures["metric"] == "tps") & (figures["statistic"] == "median")]
    return {
        str(label): fit_usl(part["level"], part["value"])
        for label, part in medians.groupby("prompt_label")
    }


def test_the_figures_file_matches_the_medians_table() -> None:
    figures = pd.read_csv(FIGURES)
    medians = pd.read_csv(FIGURES.with_name("seed_blog_interval_medians.csv"))
    tps = figures[(figures["metric"] == "tps") & (figures["statistic"] == "median")]
    assert sorted(tps["value"]) == sorted(medians["median_tps"])


def test_small_prompt_scales_near_linearly_to_50() -> None:
    small = fits()["small"]
    assert small.efficiency(50.0) > 0.85  # X(50) is > 85 % of linear scaling
    assert small.peak_concurrency() > 3 * 50  # the retrograde point is far beyond the data
    assert small.throughput(50.0) / small.throughput(30.0) - 1 > 0.5  # +54 % for +67 % load


def test_large_prompt_has_diminishing_returns_past_30() -> None:
    large = fits()["large"]
    gain_30_50 = large.throughput(50.0) / large.throughput(30.0) - 1
    gain_10_30 = large.throughput(30.0) / large.throughput(10.0) - 1
    assert gain_30_50 < 0.15 < gain_10_30  # +9 % from 30 to 50 after +115 % from 10 to 30
    assert 35 <= large.peak_concurrency() <= 60  # the blog: optimum around 30–35, peak ~50
    assert large.concurrency_at_efficiency(0.8) == pytest.approx(22, abs=3)
    assert large.r2 > 0.99
