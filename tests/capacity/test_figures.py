"""capacity.figures: panel layout, units, legends, statistics drawn, marked quotas, saved files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from capacity.errors import CapacityError
from capacity.figures import (
    plot_all_metrics,
    plot_capacity,
    plot_scaling,
    plot_throughput,
    plot_tokens_and_calls,
    save_figure,
)
from capacity.figures._common import kde_curve
from capacity.figures.scaling import throughput_band
from capacity.fitting import CapacityModel, fit_capacity
from capacity.planning import Quota, Slo, Workload, plan_capacity, required_quota
from capacity.records import (
    concurrency_stats,
    concurrency_timeline,
    interval_end_s,
    summarize,
    validate_records,
)

LEVELS = (1, 5, 10, 20, 30)
MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"
# label, input tokens, λ (tokens/s at N = 1), κ, TTFT at N = 1 (s)
PROMPTS = (("small", 43, 136.0, 3e-5, 0.3), ("large", 6027, 126.0, 4.6e-4, 0.8))


def make_records(*, per_level: int = 120, run_id: str = "r1", seed: int = 0) -> pd.DataFrame:
    """A closed-loop sweep: ``level`` clients send back to back; tps falls with concurrency
    (USL, lognormal noise), TTFT rises; 5 % of the requests at level 30 are throttled."""
    rng = np.random.default_rng(seed)
    parts = []
    clock = 0.0
    for label, tokens, lam, kappa, ttft0 in PROMPTS:
        for level in LEVELS:
            shape = (level, math.ceil(per_level / level))
            median = lam / (1 + 0.002 * (level - 1) + kappa * level * (level - 1))
            tps = median * np.exp(rng.normal(0.0, 0.08, shape))
            ttft = ttft0 + 0.002 * level + rng.exponential(0.03, shape)
            throttled = (rng.random(shape) < 0.05) & (level == 30)
            busy = np.where(throttled, 0.02, ttft + 349 / tps + 0.005)
            start = clock + np.cumsum(busy, axis=1) - busy
            clock = float((start + busy).max()) + 1.0
            parts.append(
                pd.DataFrame(
                    {
                        "prompt_label": label,
                        "level": float(level),
                        "start_s": start.ravel(),
                        "first_token_s": np.where(throttled, np.nan, start + ttft).ravel(),
                        "last_token_s": np.where(
                            throttled, np.nan, start + ttft + 349 / tps
                        ).ravel(),
                        "end_s": (start + busy).ravel(),
                        "input_tokens": float(tokens),
                        "output_tokens": np.where(throttled, np.nan, 350.0).ravel(),
                        "status": np.where(throttled, "throttled", "ok").ravel(),
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True)
    frame["run_id"] = run_id
    frame["request_id"] = [f"{run_id}-{i}" for i in range(len(frame))]
    frame = frame.assign(model_id=MODEL_ID, mode="concurrency", max_tokens=350, temperature=0.5)
    return validate_records(frame, source="test", run_id=run_id)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return make_records()


@pytest.fixture(scope="module")
def model(records: pd.DataFrame) -> CapacityModel:
    return fit_capacity(records, n_boot=20)


def legend_texts(ax: Axes | Figure) -> list[str]:
    legend = ax.legends[0] if isinstance(ax, Figure) else ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def xs(line: Line2D) -> npt.NDArray[np.float64]:
    return np.asarray(line.get_xdata(), dtype=np.float64)


def ys(line: Line2D) -> npt.NDArray[np.float64]:
    return np.asarray(line.get_ydata(), dtype=np.float64)


def label_of(artist: Line2D) -> str:
    return str(artist.get_label())


def vertical_lines(ax: Axes) -> dict[float, Line2D]:
    """axvline artists by their x (data coordinates)."""
    out = {}
    for line in ax.get_lines():
        x = xs(line)
        if x.size == 2 and x[0] == x[1] and tuple(ys(line)) == (0, 1):
            out[float(x[0])] = line
    return out


def ok_column(records: pd.DataFrame, column: str, label: str, level: float) -> np.ndarray:
    rows = records[
        (records["prompt_label"] == label)
        & (records["level"] == level)
        & (records["status"] == "ok")
    ]
    return rows[column].to_numpy(dtype=float)


def test_all_metrics_is_the_seed_mosaic_with_units_and_a_full_suptitle(
    records: pd.DataFrame,
) -> None:
    fig = plot_all_metrics(records, prompt_label="large", level=30)
    assert len(fig.axes) == 8  # A–F, G (spanning two columns), I
    by_label = {ax.get_label(): ax for ax in fig.axes}
    assert set(by_label) == set("ABCDEFGI")
    g_box, a_box = by_label["G"].get_position(), by_label["A"].get_position()
    assert g_box.width > 1.8 * a_box.width  # G spans two columns
    xlabels = [by_label[k].get_xlabel() for k in "ABCDEFG"]
    for unit in ("(tokens)", "(s)", "(ms/token)", "(requests)", "(tokens/s)"):
        assert any(unit in label for label in xlabels), unit
    assert "(tokens/s)" in by_label["I"].get_ylabel()
    assert all(by_label[k].get_ylabel() == "requests" for k in "ABCDEFG")
    suptitle = fig.get_suptitle()
    n = int(((records["prompt_label"] == "large") & (records["level"] == 30)).sum())
    for part in (
        MODEL_ID,
        "max_tokens 350",
        "temperature 0.5",
        "performance standard",
        "prompt large",
        "level 30",
        f"n = {n} requests",
    ):
        assert part in suptitle, part
    tps = ok_column(records, "tps", "large", 30)
    assert legend_texts(by_label["G"]) == [
        f"mean {tps.mean():.1f} tokens/s",
        f"median {np.median(tps):.1f} tokens/s",
    ]
    kde = [ln for ln in by_label["C"].get_lines() if xs(ln).size > 100]
    assert len(kde) == 1  # the TTFT histogram carries its KDE
    assert "median" in by_label["C"].get_title()
    flat = [ys(ln) for ln in by_label["I"].get_lines()]
    assert any(np.allclose(y, np.median(tps)) for y in flat)  # the box's median line
    (box,) = by_label["I"].patches
    corners = np.asarray(box.get_path().vertices)[:, 1]
    assert (corners.min(), corners.max()) == pytest.approx(tuple(np.percentile(tps, (25, 75))))


def test_all_metrics_guards_degenerate_and_empty_data(records: pd.DataFrame) -> None:
    # Constant input/output tokens: one labelled bar and no KDE; a level with no ok requests.
    fig = plot_all_metrics(records, prompt_label="small", level=1)
    by_label = {ax.get_label(): ax for ax in fig.axes}
    assert [t.get_text() for t in by_label["A"].get_xticklabels()] == ["43"]
    assert by_label["A"].get_lines() == []
    throttled = records.assign(status="throttled")
    fig = plot_all_metrics(throttled, prompt_label="small", level=5)
    by_label = {ax.get_label(): ax for ax in fig.axes}
    assert [t.get_text() for t in by_label["G"].texts] == ["no data"]
    assert "(0 ok)" in fig.get_suptitle()
    with pytest.raises(ValueError, match=r"levels \[1, 5, 10, 20, 30\]"):
        plot_all_metrics(records, level=99)


def test_kde_is_none_for_degenerate_data_and_a_density_otherwise() -> None:
    grid = np.linspace(-5, 5, 2001)
    assert kde_curve(np.array([]), grid) is None
    assert kde_curve(np.array([1.0]), grid) is None
    assert kde_curve(np.full(10, 3.0), grid) is None
    density = kde_curve(np.random.default_rng(0).normal(size=500), grid)
    assert density is not None
    assert float(np.sum(density) * (grid[1] - grid[0])) == pytest.approx(1.0, abs=0.01)


def test_tokens_and_calls_draws_the_four_statistics_and_the_exact_timeline(
    records: pd.DataFrame,
) -> None:
    fig = plot_tokens_and_calls(records, prompt_label="small", level=20, xlim_tps=(0, 200))
    ax_tps, ax_conc = fig.axes
    tps = ok_column(records, "tps", "small", 20)
    expected = {"mean": tps.mean(), "median": np.median(tps), "min": tps.min(), "max": tps.max()}
    colors = {"mean": "red", "median": "black", "min": "blue", "max": "orange"}
    texts = legend_texts(ax_tps)
    assert [t.split()[0] for t in texts] == ["mean", "median", "min", "max"]
    lines = vertical_lines(ax_tps)
    for name, value in expected.items():
        line = lines[float(value)]
        assert line.get_color() == colors[name]
        assert label_of(line) == f"{name} {value:.1f} tokens/s"
    assert ax_tps.get_xlim() == (0, 200)
    assert "(tokens/s)" in ax_tps.get_xlabel()
    assert "(s)" in ax_conc.get_xlabel() and "(requests)" in ax_conc.get_ylabel()
    part = records[(records["prompt_label"] == "small") & (records["level"] == 20)]
    timeline = concurrency_timeline(part)
    (step,) = [ln for ln in ax_conc.get_lines() if ln.get_drawstyle() == "steps-post"]
    assert np.array_equal(ys(step), timeline["active"].to_numpy(dtype=float))
    assert np.allclose(xs(step), timeline["time"] - timeline["time"].iloc[0])
    stats = concurrency_stats(part["start_s"].to_numpy(dtype=float), interval_end_s(part))
    assert legend_texts(ax_conc) == [
        f"in flight (max {stats.max})",
        f"time-weighted mean {stats.mean:.1f}",
    ]


def test_tokens_and_calls_puts_each_run_on_its_own_clock() -> None:
    both = pd.concat(
        [make_records(per_level=40, run_id="a"), make_records(per_level=40, run_id="b", seed=1)]
    )
    fig = plot_tokens_and_calls(both, prompt_label="large", level=10)
    steps = [ln for ln in fig.axes[1].get_lines() if ln.get_drawstyle() == "steps-post"]
    assert [label_of(ln).split(":")[0] for ln in steps] == ["run a", "run b"]
    assert all(float(xs(ln)[0]) == 0.0 for ln in steps)


def test_scaling_plots_medians_bands_and_fits_against_measured_concurrency(
    records: pd.DataFrame, model: CapacityModel
) -> None:
    fig = plot_scaling(records, model)
    ax_tps, ax_ttft = fig.axes
    summary = summarize(records)
    for ax, metric, unit in ((ax_tps, "tps", "(tokens/s)"), (ax_ttft, "ttft_s", "(s)")):
        assert unit in ax.get_ylabel()
        assert "measured" in ax.get_xlabel() and "(time-weighted" in ax.get_xlabel()
        marked = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
        fitted = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(marked) == len(fitted) == 2  # one median line and one fit per prompt
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        for line, band, label in zip(marked, bands, ("small", "large"), strict=True):
            rows = summary[summary["prompt_label"] == label]
            assert np.allclose(xs(line), rows["concurrency_mean"])
            assert not np.allclose(xs(line), rows["level"])  # in flight, not offered
            values = [ok_column(records, metric, label, lv) for lv in LEVELS]
            assert np.allclose(ys(line), [np.median(v) for v in values])
            edge = np.asarray(band.get_paths()[0].vertices)[:, 1]
            assert edge.min() == pytest.approx(min(np.percentile(v, 25) for v in values))
            assert edge.max() == pytest.approx(max(np.percentile(v, 75) for v in values))
    texts = legend_texts(fig)
    assert texts[:2] == ["small (43 input tokens)", "large (6,027 input tokens)"]
    assert {"median per level", "25th–75th percentile", "fitted median"} <= set(texts)
    without = plot_scaling(records)
    assert "fitted median" not in legend_texts(without)
    assert all(ln.get_linestyle() != "--" for ln in without.axes[0].get_lines())


def test_throughput_marks_the_fit_its_band_and_the_knees(
    records: pd.DataFrame, model: CapacityModel
) -> None:
    fig = plot_throughput(records, model)
    (ax,) = fig.axes
    assert "(tokens/s)" in ax.get_ylabel() and "(time-weighted" in ax.get_xlabel()
    summary = summarize(records)
    measured = [ln for ln in ax.get_lines() if label_of(ln).endswith(": measured")]
    assert len(measured) == 2
    for line, label in zip(measured, ("small", "large"), strict=True):
        rows = summary[summary["prompt_label"] == label]
        assert np.allclose(ys(line), rows["output_tps"])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    texts = legend_texts(fig)
    assert len(texts) == 8  # per prompt: measured, fit, peak, 80 % efficiency
    large = model.prompt("large")
    knees = model.knees(large.input_tokens)
    peak = f"large: peak N* = {knees.peak_concurrency:.0f} in flight"
    assert any(t.startswith(peak) for t in texts)
    assert any(t.startswith("large: 80% efficiency = ") for t in texts)
    star = next(ln for ln in ax.get_lines() if label_of(ln).startswith(peak))
    assert float(xs(star)[0]) == pytest.approx(knees.peak_concurrency)
    assert knees.peak_concurrency in vertical_lines(ax)
    # The summary table gives the same figure.
    again = plot_throughput(summary, model)
    assert legend_texts(again) == texts


def test_throughput_band_brackets_the_fit(model: CapacityModel) -> None:
    fit = model.prompts[1].throughput
    n = np.linspace(1, 60, 50)
    band = throughput_band(fit, n)
    assert band is not None
    lo, hi = band
    assert np.all(lo <= fit.throughput(n)) and np.all(fit.throughput(n) <= hi)
    assert np.all(hi - lo > 0)


QUOTA = Quota(tpm=600_000, rpm=800, tpd=300_000_000, model_id=MODEL_ID)
WORKLOAD = Workload(input_tokens=43, output_tokens=350, max_tokens=2000, think_time_s=30)


def test_capacity_draws_every_constraint_bold_binding_and_marks_the_quotas() -> None:
    fig = plot_capacity(QUOTA, WORKLOAD, target_users=500)
    (ax,) = fig.axes
    plan = plan_capacity(QUOTA, WORKLOAD)
    request = required_quota(WORKLOAD, 500, model_id=MODEL_ID)
    assert "(tokens/min)" in ax.get_xlabel() and "users" in ax.get_ylabel()
    constraint = {label_of(ln).split(":")[0]: ln for ln in ax.get_lines()}
    assert set(plan.users_by_constraint) == {"tpm", "tpm_inflight", "rpm", "tpd"}
    assert set(plan.users_by_constraint) <= set(constraint)
    binding = constraint[plan.binding]
    assert label_of(binding).endswith("— binding")
    others = [constraint[c] for c in plan.users_by_constraint if c != plan.binding]
    assert all(binding.get_linewidth() > 2 * ln.get_linewidth() for ln in others)
    assert sum("binding" in t for t in legend_texts(fig)) == 1
    marks = vertical_lines(ax)
    assert set(marks) == {QUOTA.tpm, float(request.runtime_tpm)}
    texts = legend_texts(fig)
    assert f"current quota 600k TPM → {plan.users_whole:,} users ({plan.binding} binds)" in texts
    then = plan_capacity(request.applied_to(QUOTA), WORKLOAD)
    served = f"TPM → {then.users_whole:,} users ({then.binding} binds; "
    assert any(t.startswith("requested ") and served in t for t in texts)
    assert "target 500 users" in texts
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["current", "requested"]
    assert np.allclose(top.get_xticks(), [QUOTA.runtime_tpm, request.runtime_tpm])


def test_capacity_with_a_model_adds_the_slo_line(model: CapacityModel) -> None:
    slo = Slo(ttft_p95_s=0.5)
    fig = plot_capacity(QUOTA, WORKLOAD, model, slo, tpm_range=(10_000, 2_000_000))
    (ax,) = fig.axes
    plan = plan_capacity(QUOTA, WORKLOAD, model, slo)
    assert "slo" in plan.users_by_constraint
    labels = [label_of(ln) for ln in ax.get_lines()]
    assert any(label.startswith("slo:") for label in labels)
    assert ax.get_xlim() == (0, 2_000_000)
    assert "SLO p95 TTFT <= 0.5 s" in ax.get_title()
    assert list(vertical_lines(ax)) == [QUOTA.tpm]  # no target: no requested quota
    with pytest.raises(ValueError, match="tpm_range"):
        plot_capacity(QUOTA, WORKLOAD, tpm_range=(5.0, 1.0))


def test_saved_png_is_not_blank_and_svg_and_bad_suffixes(
    records: pd.DataFrame, tmp_path: Path
) -> None:
    fig = plot_tokens_and_calls(records, prompt_label="small", level=10)
    png = save_figure(fig, tmp_path / "out" / "tokens.png")
    pixels = mpimg.imread(png)
    assert pixels.shape[1] == 14 * 130  # 14 in wide at 130 dpi
    assert float(pixels[..., :3].std()) > 0.05
    svg = save_figure(fig, tmp_path / "tokens.svg")
    assert "<svg" in svg.read_text(encoding="utf-8")[:2000]
    with pytest.raises(CapacityError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "tokens.jpg")


def test_figures_use_neither_pyplot_nor_bench() -> None:
    code = (
        "import sys, capacity.figures\n"
        "bad = [m for m in sys.modules if m == 'bench' or m.startswith('bench.')"
        " or m == 'matplotlib.pyplot']\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
