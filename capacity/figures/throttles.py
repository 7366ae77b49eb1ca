"""The chart a manager reads when the quota is sized from real traffic: the share of the
target's requests each TPM quota throttles, replayed through the quota ledger, with today's
quota, the requested one (the smallest within the throttle target), the throttle target and
the planner's closed-form answer marked. The points are given (``capacity.report`` replays
them); this module only draws."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from capacity.figures._common import SI_FORMATTER, new_figure, si, style_axes

CURVE_COLOR = "#2ca02c"


def plot_throttle_curve(
    points: Sequence[tuple[float, float]],
    *,
    throttle_target: float,
    today_tpm: float,
    today_share: float,
    requested_tpm: float,
    requested_share: float,
    closed_form_tpm: float | None = None,
    title: str = "",
) -> Figure:
    """Share of requests throttled (per cent, symmetric-log axis) against the TPM quota:
    ``points`` are (TPM, share) pairs; today's and the requested quota are drawn at their own
    replayed shares; ``closed_form_tpm`` (the planner's answer for the same workload) is a
    vertical line."""
    fig = new_figure(11.5, 5.6)
    ax = fig.add_subplot()
    style_axes(ax)
    pts = sorted(points)
    x = np.array([p[0] for p in pts], dtype=float)
    y = 100.0 * np.array([p[1] for p in pts], dtype=float)
    ax.plot(x, y, color=CURVE_COLOR, linewidth=2.5, marker="o", markersize=3,
            label="share of the target's requests throttled, replayed", zorder=3)  # fmt: skip
    ax.axhline(100 * throttle_target, color="0.35", linestyle=":", linewidth=1.3,
               label=f"throttle target {100 * throttle_target:g} %")  # fmt: skip
    ax.plot([today_tpm], [100 * today_share], "o", color="0.15", markersize=10, zorder=6,
            label=f"today: {si(today_tpm)} TPM → {100 * today_share:.2f} % throttled")  # fmt: skip
    ax.plot([requested_tpm], [100 * requested_share], "D", color=CURVE_COLOR, markersize=10,
            markeredgecolor="white", zorder=7,
            label=f"requested: {si(requested_tpm)} TPM → {100 * requested_share:.3f} % "
            "throttled")  # fmt: skip
    if closed_form_tpm is not None:
        ax.axvline(closed_form_tpm, color="#ff7f0e", linestyle="--", linewidth=1.2,
                   label=f"planner's closed form: {si(closed_form_tpm)} TPM")  # fmt: skip
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_formatter(SI_FORMATTER)
    ax.set_xlabel("TPM quota (tokens/min)")
    ax.set_ylabel("requests throttled (%)")
    ax.set_title(title or "Requests throttled against the TPM quota (replayed traffic)")
    ax.legend(loc="upper right", fontsize=8.5, framealpha=0.92)
    return fig
