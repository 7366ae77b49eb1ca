"""Figures of a model's traffic: per-second vs per-minute request rate, and token
distributions (matplotlib's object API, as ``capacity.figures``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from capacity.figures import save_figure
from capacity.usage._requests import LONG_PROMPT_TOKENS
from capacity.usage._traffic import ModelTraffic

_LABELS = {
    "prompt_tokens": "prompt (input + cache)",
    "output_tokens": "output",
    "max_tokens": "max_tokens (request setting)",
}


def plot_traffic_rates(m: ModelTraffic) -> Figure:
    """Requests per second, each second and as each minute's mean, over the whole window."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.add_subplot()
    sec = m.seconds
    ts = sec["timestamp"].dt.tz_localize(None)
    ax.plot(ts, sec["requests"], lw=0.4, color="#9ecae1", label="each second")
    minute = m.usage["timestamp"].dt.tz_localize(None)
    per_min = (m.usage["invocations"] + m.usage["throttles"]).to_numpy(float)
    ax.step(
        minute, per_min / 60.0, where="post", lw=1.4, color="#08519c", label="each minute's mean"
    )
    ax.axhline(m.per_second.mean_requests, color="#636363", lw=0.8, ls="--", label="mean")
    ax.set_ylabel("requests per second")
    ax.set_title(
        f"{m.model_id}: peak/mean {m.per_second.peak_to_mean_requests:.1f}× per second, "
        f"{m.per_minute.peak_to_mean_requests:.2f}× per minute"
    )
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_token_distributions(m: ModelTraffic) -> Figure:
    """Histograms (power-of-two bins) of prompt, output and max_tokens per served request."""
    fields = [f for f in _LABELS if f in m.tokens]
    fig = Figure(figsize=(4.2 * max(1, len(fields)), 3.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(fields)), squeeze=False)[0]
    for ax, f in zip(axes, fields, strict=False):
        d = m.tokens[f]
        lo = np.array([max(b[0], 0.5) for b in d.histogram], dtype=float)
        hi = np.array([b[1] for b in d.histogram], dtype=float)
        share = np.array([b[2] for b in d.histogram], dtype=float) / d.count
        ax.bar(lo, share, width=hi - lo, align="edge", color="#4c72b0", edgecolor="white")
        ax.set_xscale("log", base=2)
        ax.axvline(d.p50, color="#2ca02c", lw=1, label=f"p50 {d.p50:,.0f}")
        ax.axvline(d.p99, color="#d62728", lw=1, label=f"p99 {d.p99:,.0f}")
        if f == "prompt_tokens":
            ax.axvline(
                LONG_PROMPT_TOKENS,
                color="#9467bd",
                lw=1,
                ls="--",
                label=f"> 25k: {m.share_above_long_prompt:.2%}",
            )
        ax.set_xlabel(f"{_LABELS[f]} tokens")
        ax.set_ylabel("share of requests")
        ax.legend(fontsize=8)
    fig.suptitle(f"{m.model_id}: tokens per request ({m.ok:,} served)")
    return fig


def traffic_figures(m: ModelTraffic, out_dir: str | Path) -> list[Path]:
    """Write ``traffic_rates.png`` and ``token_distributions.png`` to ``out_dir``."""
    out = Path(out_dir)
    return [
        save_figure(plot_traffic_rates(m), out / "traffic_rates.png"),
        save_figure(plot_token_distributions(m), out / "token_distributions.png"),
    ]


def model_slug(model_id: str) -> str:
    """A folder name for ``model_id`` (letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_") or "model"
