"""Scaling figures: per-request speed and TTFT vs concurrency, and system throughput with the USL.

The x axis is the **measured** in-flight concurrency of each level (time-weighted sweep-line
mean, ``summarize``'s ``concurrency_mean``) unless a model fitted on offered levels is given:
curves are drawn on the basis they were fitted on (docs/architecture.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from capacity.figures._common import PALETTE, Floats, new_figure, si, style_axes, text_of
from capacity.fitting import EXTRAPOLATION_LIMIT, Basis, CapacityModel, Knees, PromptModel, UslFit
from capacity.records import ensure_records, summarize

BAND = (25.0, 75.0)
"""Percentiles of the shaded band around each median (the seed's ``errorbar=("pi", 50)``)."""

X_LABELS: dict[Basis, str] = {
    "measured": "in-flight concurrency, measured (time-weighted mean per level, requests)",
    "offered": "offered level (requests in flight, closed loop)",
}


def _column(basis: Basis) -> str:
    return "concurrency_mean" if basis == "measured" else "level"


def level_bands(records: pd.DataFrame, basis: Basis = "measured") -> pd.DataFrame:
    """Per (prompt_label, level): ``x`` (on ``basis``), input tokens, and the 25th, 50th and
    75th percentiles (linear interpolation) of tps and TTFT over the ok requests."""
    recs = ensure_records(records)
    summary = summarize(recs)
    ok = recs[recs["status"] == "ok"]
    rows = []
    for _, srow in summary.iterrows():
        part = ok[(ok["prompt_label"] == srow["prompt_label"]) & (ok["level"] == srow["level"])]
        row = {
            "prompt_label": srow["prompt_label"],
            "level": srow["level"],
            "x": srow[_column(basis)],
            "input_tokens": srow["input_tokens_mean"],
        }
        for metric in ("tps", "ttft_s"):
            v = part[metric].to_numpy(dtype=np.float64, na_value=np.nan)
            v = v[np.isfinite(v)]
            q = np.percentile(v, (BAND[0], 50.0, BAND[1])) if v.size else [np.nan] * 3
            for name, value in zip(("lo", "mid", "hi"), q, strict=True):
                row[f"{metric}_{name}"] = float(value)
        rows.append(row)
    return pd.DataFrame(rows)


def _prompt_name(label: str, input_tokens: float) -> str:
    return f"{label} ({input_tokens:,.0f} input tokens)" if math.isfinite(input_tokens) else label


def plot_scaling(records: pd.DataFrame, model: CapacityModel | None = None) -> Figure:
    """Per-request tokens/s and TTFT vs concurrency, one line per prompt size.

    Each line is the median per level with a band from the 25th to the 75th percentile (the
    seed's ``errorbar=("pi", 50)``); with ``model`` its fitted median curves are overlaid
    (dashed). x is the measured in-flight concurrency, or the offered level for a model fitted
    on offered levels.
    """
    basis: Basis = model.concurrency if model is not None else "measured"
    recs = ensure_records(records)
    bands = level_bands(recs, basis)
    fig = new_figure(13, 5.6)
    ax_tps, ax_ttft = fig.subplots(1, 2)
    handles: list[Line2D | Patch] = []
    for i, (label, part) in enumerate(bands.groupby("prompt_label", sort=False)):
        color = PALETTE[i % len(PALETTE)]
        part = part.sort_values("x")
        x = part["x"].to_numpy(dtype=np.float64)
        for ax, metric in ((ax_tps, "tps"), (ax_ttft, "ttft_s")):
            ax.plot(x, part[f"{metric}_mid"], marker="o", color=color, linewidth=1.3)
            ax.fill_between(
                x, part[f"{metric}_lo"], part[f"{metric}_hi"], color=color, alpha=0.2, linewidth=0
            )
        tokens = float(part["input_tokens"].median())
        handles.append(
            Line2D([], [], color=color, marker="o", label=_prompt_name(str(label), tokens))
        )
        pm = _matching_prompt(model, str(label))
        if model is not None and pm is not None:
            grid = np.linspace(1.0, max(float(x.max()), pm.n_max), 200)
            curves = model.curves(grid, pm.input_tokens)
            fit_style: dict[str, Any] = {
                "color": color,
                "linestyle": "--",
                "linewidth": 2.2,
                "alpha": 0.7,
            }
            ax_tps.plot(grid, curves["tps_p50"], **fit_style)
            if "ttft_0.5" in curves:
                ax_ttft.plot(grid, curves["ttft_0.5"], **fit_style)
    handles += [
        Line2D([], [], color="0.3", marker="o", label="median per level"),
        Patch(color="0.3", alpha=0.2, label="25th–75th percentile"),
    ]
    if model is not None:
        handles.append(
            Line2D([], [], color="0.3", linestyle="--", linewidth=2.2, label="fitted median")
        )
    for ax, title, ylabel in (
        (ax_tps, "Per-request decode speed", "tokens/s per request (tokens/s)"),
        (ax_ttft, "Time to first token", "TTFT (s)"),
    ):
        style_axes(ax)
        ax.set_title(title)
        ax.set_xlabel(X_LABELS[basis])
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
    ax_ttft.set_ylim(bottom=0)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    model_id = model.model_id if model is not None else text_of(recs, "model_id")
    fig.suptitle(f"Scaling with concurrency — {model_id} (percentiles: linear interpolation)")
    return fig


def _matching_prompt(model: CapacityModel | None, label: str) -> PromptModel | None:
    if model is None:
        return None
    return next((pm for pm in model.prompts if pm.prompt_label == label), None)


def throughput_band(fit: UslFit, n: Floats) -> tuple[Floats, Floats] | None:
    """Pointwise interval of the system throughput ``X(N)`` at the fit's level (delta method on
    the covariance of λ, σ, κ); ``None`` when the covariance is undefined (no residual dof)."""
    cov = np.asarray(fit.cov, dtype=np.float64)
    if not (np.all(np.isfinite(cov)) and math.isfinite(fit.t_quantile)):
        return None
    # X(N) = λN/d(N) in either fit space (the spaces differ in what was fitted, not in X).
    d = 1.0 + fit.sigma * (n - 1.0) + fit.kappa * n * (n - 1.0)
    grad = np.stack([n / d, -fit.lam * n * (n - 1) / d**2, -fit.lam * n * n * (n - 1) / d**2])
    sd = np.sqrt(np.maximum(np.einsum("in,ij,jn->n", grad, cov, grad), 0.0))
    mid = fit.throughput(n)
    return mid - fit.t_quantile * sd, mid + fit.t_quantile * sd


def plot_throughput(records_or_summary: pd.DataFrame, model: CapacityModel) -> Figure:
    """System output throughput (tokens/s) vs concurrency, one colour per prompt size: measured
    levels, the USL fit with its confidence band, and the knees marked — N*, where requests/s
    peak on the planner's capacity curve (★), and the point where efficiency X/(λN) falls to
    80 % (◆); their values are in the legend (one
    column per prompt size, below the plot, so no text covers the data).

    ``records_or_summary`` is request records or ``summarize``'s table (detected by its columns).
    """
    frame = records_or_summary
    is_summary = {"output_tps", "concurrency_mean"} <= set(frame.columns)
    summary = frame if is_summary else summarize(frame)
    column = _column(model.concurrency)
    fig = new_figure(11, 7.5)
    ax = fig.subplots()
    style_axes(ax)
    x_hi = 1.15 * max(pm.n_max for pm in model.prompts)
    knees = [model.knees(pm.input_tokens) for pm in model.prompts]
    for pm, k in zip(model.prompts, knees, strict=True):
        for n in (k.peak_concurrency, k.efficient_concurrency):
            if math.isfinite(n) and n <= 2 * pm.n_max:  # show knees near the data, not far ones
                x_hi = max(x_hi, 1.1 * n)
    grid = np.linspace(0.0, x_hi, 300)
    for i, (pm, k) in enumerate(zip(model.prompts, knees, strict=True)):
        _throughput_lines(ax, summary, column, pm, k, grid, PALETTE[i % len(PALETTE)])
    ax.set_xlim(0, x_hi)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(X_LABELS[model.concurrency])
    ax.set_ylabel("system output throughput (tokens/s)")
    level = model.prompts[0].throughput.level
    ax.set_title(
        f"System output throughput vs concurrency — {model.model_id or 'model'}\n"
        f"USL fit (line) with its {level:.0%} confidence band (shaded); dotted lines mark the knees"
    )
    fig.legend(loc="outside lower center", ncols=len(model.prompts), fontsize=9)
    return fig


def _throughput_lines(
    ax: Axes,
    summary: pd.DataFrame,
    column: str,
    pm: PromptModel,
    knees: Knees,
    grid: Floats,
    color: str,
) -> None:
    """Four legend entries per prompt (measured, fit, peak, efficiency knee), always, so that
    the legend's columns line up by prompt. The fit is dashed beyond the measured range."""
    fit = pm.throughput
    name = _prompt_name(pm.prompt_label, pm.input_tokens)
    rows = summary[summary["prompt_label"] == pm.prompt_label]
    ax.plot(rows[column], rows["output_tps"], "o", color=color, label=f"{name}: measured")
    inside = grid <= pm.n_max
    ax.plot(
        grid[inside],
        fit.throughput(grid[inside]),
        color=color,
        linewidth=2,
        label=f"{name}: USL fit (dashed: extrapolated)",
    )
    beyond = grid >= pm.n_max
    ax.plot(
        grid[beyond],
        fit.throughput(grid[beyond]),
        color=color,
        linewidth=2,
        linestyle="--",
        alpha=0.8,
    )
    band = throughput_band(fit, grid)
    if band is not None:
        ax.fill_between(grid, band[0], band[1], color=color, alpha=0.15, linewidth=0)
    x_hi = float(grid[-1])
    for n, marker, what, never in (
        (knees.peak_concurrency, "*", "peak N*", "none (requests/s still rising)"),
        (knees.efficient_concurrency, "D", f"{knees.efficiency:.0%} efficiency", "never"),
    ):
        size = 14 if marker == "*" else 8
        style: dict[str, Any] = {
            "marker": marker,
            "color": color,
            "markersize": size,
            "linestyle": "none",
            "markeredgecolor": "black",
        }
        if not math.isfinite(n):
            ax.plot([], [], **style, label=f"{pm.prompt_label}: {what} {never}")
            continue
        x_n = fit.throughput(n)
        far = ", extrapolated" if n > EXTRAPOLATION_LIMIT * pm.n_max else ""
        text = f"{pm.prompt_label}: {what} = {n:.0f} in flight, {si(x_n)} tokens/s{far}"
        if n <= x_hi:
            ax.axvline(n, color=color, linestyle=":", linewidth=1.2)
            ax.plot([n], [x_n], **style, label=text, zorder=5)
        else:
            ax.plot([], [], **style, label=f"{text} (off the plot)")


__all__ = ["BAND", "level_bands", "plot_scaling", "plot_throughput", "throughput_band"]
