"""The digital twin's figure: the probe's measured points, the twin's predicted curve with its
90 % band, and the extrapolation region (levels beyond the probe) shaded. See docs/twin.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from capacity.figures._common import PALETTE, new_figure

if TYPE_CHECKING:
    from capacity.serving import Forecast, Twin

PANELS = (
    ("tps_p50", "tpot_p50", "median tokens/s per request", True),
    ("ttft_p50", "ttft_p50", "median TTFT (s)", False),
    ("output_tps", "output_tps", "endpoint output tokens/s", False),
)


def plot_twin(
    twin: Twin,
    mode: str,
    input_tokens: int,
    forecasts: Sequence[Forecast] = (),
    *,
    levels: Sequence[float] | None = None,
    samples: int = 6,
    seed: int = 0,
    truth: dict[float, dict[str, float]] | None = None,
) -> Figure:
    """Measured probe points (same mode, prompts within 10 % of ``input_tokens``), the twin's
    curve and band over ``levels`` (default: from the probe's lowest level to the highest
    forecast), the forecasts as error bars, and the extrapolated levels shaded.

    ``truth`` (level → statistic → value) adds held-out measurements, for accuracy figures."""
    probe = [
        c for c in twin.cells
        if c.mode == mode and abs(c.input_tokens - input_tokens) <= 0.1 * input_tokens
    ]  # fmt: skip
    # Beyond the heaviest level measured with this prompt (any prompt when none matches).
    same_mode = [c.level for c in twin.cells if c.mode == mode]
    probe_max = max([c.level for c in probe] or same_mode or [0.0])
    top = max([f.level for f in forecasts] + [probe_max, 1.0])
    if levels is None:
        levels = sorted({*np.unique(np.linspace(1, top, 9).round()), *(f.level for f in forecasts)})
    top = max(top, *levels)
    grid = [twin.forecast(mode, lv, input_tokens, samples=samples, seed=seed) for lv in levels]
    fig = new_figure(12.0, 3.8)
    axes = fig.subplots(1, len(PANELS))
    x = np.array([g.level for g in grid])
    for ax, (key, measured_key, label, invert) in zip(axes, PANELS, strict=True):
        low = np.array([g.values[key][0] for g in grid])
        mid = np.array([g.values[key][1] for g in grid])
        high = np.array([g.values[key][2] for g in grid])
        ax.fill_between(x, low, high, color=PALETTE[0], alpha=0.2, label="twin, 90 % band")
        ax.plot(x, mid, color=PALETTE[0], label="twin")
        if probe and measured_key:
            px = [c.level for c in probe if measured_key in c.observed]
            py = [c.observed[measured_key] for c in probe if measured_key in c.observed]
            values = [1.0 / v for v in py] if invert else py
            ax.plot(px, values, "o", color=PALETTE[1], label="probe (measured)")
        if truth:
            tx = sorted(lv for lv in truth if key in truth[lv])
            ax.plot(tx, [truth[lv][key] for lv in tx], "s", mfc="none", color="black",
                    label="held out (measured)")  # fmt: skip
        for f in forecasts:
            lo, est, hi = f.values[key]
            ax.errorbar([f.level], [est], yerr=[[est - lo], [hi - est]], fmt="D",
                        color=PALETTE[2], capsize=3)  # fmt: skip
        if top > probe_max:
            ax.axvspan(probe_max, top, color="grey", alpha=0.12, label="extrapolated")
        ax.set_xlabel(f"level ({mode} mode)")
        ax.set_title(label, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Digital twin: {input_tokens} input tokens, {twin.output_tokens} output tokens")
    return fig
