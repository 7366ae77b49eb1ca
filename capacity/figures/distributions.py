"""Per-level distribution figures: the seed's metrics mosaic and its tokens/s + in-flight pair.

Latency, token and tokens/s statistics use ``ok`` requests; in-flight concurrency counts every
request that was sent (a throttled request occupies a client slot until it fails).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from capacity.figures._common import (
    HIST_COLOR,
    PALETTE,
    Floats,
    hist_kde,
    new_figure,
    no_data,
    number,
    number_of,
    ok_values,
    select,
    style_axes,
    text_of,
)
from capacity.records import concurrency_stats, concurrency_timeline, interval_end_s

# (panel, column, scale, title, x label, unit in the title's median)
_PANELS = (
    ("A", "input_tokens", 1.0, "Input tokens", "input tokens per request (tokens)", "tokens"),
    ("B", "output_tokens", 1.0, "Output tokens", "output tokens per request (tokens)", "tokens"),
    ("C", "ttft_s", 1.0, "Time to first token", "TTFT (s)", "s"),
    ("D", "ttlt_s", 1.0, "Time to last token", "TTLT (s)", "s"),
    ("E", "tpot_s", 1e3, "Time per output token", "TPOT (ms/token)", "ms"),
    ("F", "active_at_start", 1.0, "In flight at send", "other requests in flight (requests)", ""),
)

STAT_LINES = (("mean", "red"), ("median", "black"), ("min", "blue"), ("max", "orange"))
"""The tokens/s reference lines of ``plot_tokens_and_calls`` and their colours (the seed's)."""


def _selection_text(prompt_label: str | None, level: float | None, recs: pd.DataFrame) -> str:
    prompt = prompt_label if prompt_label is not None else text_of(recs, "prompt_label")
    lvl = f"{level:g}" if level is not None else number_of(recs, "level")
    return f"prompt {prompt} · level {lvl}"


def _max_tokens_text(recs: pd.DataFrame) -> str:
    text = number_of(
        recs.assign(max_tokens=recs["max_tokens"].where(recs["max_tokens"] > 0)), "max_tokens"
    )
    return "unknown" if text == "?" else text


def plot_all_metrics(
    records: pd.DataFrame,
    *,
    prompt_label: str | None = None,
    level: float | None = None,
    performance: str = "standard",
) -> Figure:
    """The seed's dashboard: one figure, subplot mosaic ``"ABC;DEF;GGI"``.

    A–F: histogram + KDE of input tokens, output tokens, TTFT, TTLT, TPOT and the requests in
    flight when each was sent; G: a large tokens/s (1/TPOT) histogram + KDE with its mean and
    median; I: a tokens/s boxplot. The suptitle names the model, max_tokens, temperature,
    ``performance`` setting (Bedrock's latency mode), prompt, level and sample counts. Records
    are narrowed to ``prompt_label`` and ``level`` when given (all otherwise).
    """
    recs = select(records, prompt_label, level)
    fig = new_figure(15, 11)
    axes = fig.subplot_mosaic("ABC;DEF;GGI")
    for key, column, scale, title, xlabel, unit in _PANELS:
        ax = axes[key]
        all_rows = column == "active_at_start"
        values = (
            recs[column].to_numpy(dtype=np.float64, na_value=np.nan)
            if all_rows
            else ok_values(recs, column)
        )
        values = values[np.isfinite(values)] * scale
        hist_kde(ax, values, bins=30)
        if values.size:
            title += f" · median {number(float(np.median(values)))}{' ' + unit if unit else ''}"
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
    _tps_panel(axes["G"], ok_values(recs, "tps"))
    _tps_box(axes["I"], ok_values(recs, "tps"))
    n_ok = int((recs["status"] == "ok").sum())
    fig.suptitle(
        f"{text_of(recs, 'model_id')}\n"
        f"max_tokens {_max_tokens_text(recs)} · temperature {number_of(recs, 'temperature')} · "
        f"performance {performance} · {_selection_text(prompt_label, level, recs)} · "
        f"n = {len(recs)} requests ({n_ok} ok)",
        fontsize=13,
    )
    return fig


def _tps_panel(ax: Axes, tps: Floats) -> None:
    hist_kde(ax, tps, bins=40)
    ax.set_title("Per-request decode speed (tokens/s = 1 / TPOT)", fontsize=11)
    ax.set_xlabel("tokens/s per request (tokens/s)")
    if tps.size:
        ax.axvline(
            float(np.mean(tps)),
            color="red",
            linestyle="--",
            label=f"mean {np.mean(tps):.1f} tokens/s",
        )
        ax.axvline(
            float(np.median(tps)),
            color="black",
            linestyle="-",
            label=f"median {np.median(tps):.1f} tokens/s",
        )
        ax.legend(loc="upper left", fontsize=9)


def _tps_box(ax: Axes, tps: Floats) -> None:
    style_axes(ax)
    ax.set_title("tokens/s", fontsize=11)
    ax.set_ylabel("tokens/s per request (tokens/s)")
    if tps.size == 0:
        no_data(ax)
        return
    ax.boxplot(
        tps,
        widths=0.5,
        patch_artist=True,
        boxprops={"facecolor": HIST_COLOR, "alpha": 0.55},
        medianprops={"color": "black"},
    )
    ax.set_xticks([1], ["ok requests"])


def plot_tokens_and_calls(
    records: pd.DataFrame,
    *,
    prompt_label: str | None = None,
    level: float | None = None,
    xlim_tps: tuple[float, float] | None = None,
) -> Figure:
    """Tokens/s histogram with mean (red), median (black), min (blue) and max (orange) lines,
    beside the exact number of requests in flight over time (sweep-line step plot).

    Each run is drawn on its own clock, from its first send in the selection. ``xlim_tps`` fixes
    the tokens/s axis so that figures of several levels compare at a glance.
    """
    recs = select(records, prompt_label, level)
    fig = new_figure(14, 5)
    ax_tps, ax_conc = fig.subplots(1, 2, width_ratios=(1, 1.3))
    tps = ok_values(recs, "tps")
    hist_kde(ax_tps, tps, bins=40)
    if tps.size:
        stats = {
            "mean": np.mean(tps),
            "median": np.median(tps),
            "min": np.min(tps),
            "max": np.max(tps),
        }
        for name, color in STAT_LINES:
            ax_tps.axvline(
                float(stats[name]),
                color=color,
                linewidth=1.8,
                linestyle="--" if name == "mean" else "-",  # mean and median often coincide
                label=f"{name} {stats[name]:.1f} tokens/s",
            )
        ax_tps.legend(loc="upper left", fontsize=9)
    if xlim_tps is not None:
        ax_tps.set_xlim(*xlim_tps)
    ax_tps.set_xlabel("tokens/s per request (tokens/s)")
    ax_tps.set_title(f"Decode speed of {tps.size} ok requests")
    _concurrency_panel(ax_conc, recs)
    fig.suptitle(
        f"{text_of(recs, 'model_id')} · {_selection_text(prompt_label, level, recs)} · "
        f"max_tokens {_max_tokens_text(recs)}",
        fontsize=12,
    )
    return fig


def _concurrency_panel(ax: Axes, recs: pd.DataFrame) -> None:
    style_axes(ax)
    runs = list(recs.groupby("run_id", sort=True, dropna=False))
    top = 0.0
    for i, (run_id, part) in enumerate(runs):
        timeline = concurrency_timeline(part)
        t = timeline["time"].to_numpy(dtype=np.float64)
        active = timeline["active"].to_numpy(dtype=np.float64)
        t0 = float(t[0]) if t.size else 0.0
        top = max(top, float(active.max(initial=0.0)))
        stats = concurrency_stats(part["start_s"].to_numpy(dtype=np.float64), interval_end_s(part))
        color = PALETTE[i % len(PALETTE)]
        name = f"run {run_id}: " if len(runs) > 1 else ""
        ax.step(
            t - t0,
            active,
            where="post",
            color=color,
            linewidth=1.2,
            label=f"{name}in flight (max {stats.max})",
        )
        ax.fill_between(t - t0, active, step="post", color=color, alpha=0.15)
        if np.isfinite(stats.mean):
            ax.axhline(
                stats.mean,
                color=color,
                linestyle="--",
                linewidth=1.2,
                label=f"{name}time-weighted mean {stats.mean:.1f}",
            )
    ax.set_xlabel("time since first send (s)")
    ax.set_ylabel("requests in flight (requests)")
    ax.set_ylim(0, 1.3 * max(top, 1.0))  # room for the legend above the data
    ax.set_title("Requests in flight over time (exact sweep-line)")
    ax.legend(loc="upper right", fontsize=9, ncols=2)


__all__ = ["STAT_LINES", "plot_all_metrics", "plot_tokens_and_calls"]
