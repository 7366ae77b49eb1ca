"""The quota figure: supported users vs TPM quota, one line per constraint of ``plan_capacity``."""

from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from capacity.figures._common import SI_FORMATTER, new_figure, si, style_axes
from capacity.planning import (
    CONSTRAINTS,
    CapacityPlan,
    Quota,
    QuotaRequest,
    Slo,
    Workload,
    plan_capacity,
    required_quota,
)
from capacity.prediction import Prediction, Predictor

POINTS = 80
"""TPM values evaluated across the range."""

DESCRIPTIONS = {
    "tpm": "TPM, sustained (refill pays input + burndown × output)",
    "tpm_inflight": "TPM, reservations held by requests in flight",
    "input_tpm": "input TPM, sustained (bedrock-mantle)",
    "input_tpm_inflight": "input TPM, input + max_tokens held in flight (bedrock-mantle)",
    "output_tpm": "output TPM, sustained (bedrock-mantle)",
    "rpm": "RPM (where enforced)",
    "tpd": "TPD (tokens per day)",
    "slo": "endpoint (SLO or peak throughput, from the model)",
}
_PALETTE = ("#1f77b4", "#17becf", "#1f77b4", "#17becf", "#9467bd", "#ff7f0e", "#8c564b", "#d62728")
COLORS = dict(zip(CONSTRAINTS, _PALETTE, strict=True))
_DASHES = ("-", "--", "-", "--", (0, (3, 1)), "-.", ":", (0, (5, 1, 1, 1)))
STYLES = dict(zip(CONSTRAINTS, _DASHES, strict=True))
BINDING_WIDTH = 3.4
OTHER_WIDTH = 1.6


class _Memo:
    """A ``Predictor`` that remembers its answers: the plans along the TPM axis probe the same
    operating points again and again (the latency curve does not depend on the quota)."""

    def __init__(self, model: Predictor) -> None:
        self._model = model
        self._seen: dict[tuple[float, float], Prediction] = {}

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """The wrapped model's prediction, computed once per operating point."""
        key = (concurrency, input_tokens)
        if key not in self._seen:
            self._seen[key] = self._model.predict(concurrency, input_tokens)
        return self._seen[key]


def constraint_label(key: str, plan: CapacityPlan) -> str:
    """Legend text of constraint ``key``: its name, meaning, and whether it binds at the quota."""
    text = f"{key}: {DESCRIPTIONS.get(key, key)}"
    if key == "rpm" and plan.quota.rpm is not None:
        text += f" = {si(plan.quota.rpm)}"
    if key == "tpd" and plan.quota.tpd is not None:
        text += f" = {si(plan.quota.tpd)}"
    return text + (" — binding" if key == plan.binding else "")


def plot_capacity(
    quota: Quota,
    workload: Workload,
    model: Predictor | None = None,
    slo: Slo | None = None,
    *,
    target_users: float | None = None,
    request: QuotaRequest | None = None,
    tpm_range: tuple[float, float] | None = None,
) -> Figure:
    """Supported users vs TPM quota: one line per constraint that ``plan_capacity`` reports
    (the one binding at the current quota bold, the minimum over all shaded), the current TPM
    marked, and the requested TPM (``request``, e.g. ``CapacityAnswer.request``; or the one
    ``required_quota`` asks for ``target_users``) at the users it really serves.

    Other limits (RPM, TPD) stay as in ``quota`` while TPM varies over ``tpm_range`` (default:
    up to 1.3 × the larger of the current and the requested TPM).
    """
    model = _Memo(model) if model is not None else None
    plan = plan_capacity(quota, workload, model, slo)
    if request is None and target_users is not None:
        request = required_quota(
            workload, target_users, model, slo, model_id=quota.model_id, scope=quota.scope
        )
    if request is not None:
        target_users = request.target_users
    if tpm_range is None:
        top = 1.3 * max(quota.runtime_tpm, request.runtime_tpm if request is not None else 0.0)
        tpm_range = (top / 100, top)
    lo, hi = tpm_range
    if not 0 < lo < hi:
        raise ValueError(f"tpm_range must satisfy 0 < low < high, got {tpm_range!r}")
    tpm = np.linspace(lo, hi, POINTS)
    plans = [
        plan_capacity(dataclasses.replace(quota, tpm=float(t)), workload, model, slo) for t in tpm
    ]
    fig = new_figure(12, 7.8)
    ax = fig.subplots()
    style_axes(ax)
    keys = [c for c in CONSTRAINTS if c in plan.users_by_constraint]
    users = {c: np.array([p.users_by_constraint.get(c, np.nan) for p in plans]) for c in keys}
    supported = np.array([p.users for p in plans])
    ax.plot(
        tpm,
        supported,
        color="black",
        alpha=0.15,
        linewidth=9,
        solid_capstyle="butt",
        label="supported users (minimum over constraints)",
    )
    y_top = 1.3 * max(float(np.nanmax(supported)), target_users or 0.0, plan.users)
    for c in keys:  # a limit not far above the others is worth showing; farther, say so
        lowest = float(np.nanmin(users[c]))
        if lowest <= 2 * y_top:
            y_top = max(y_top, 1.1 * lowest)
    for c in keys:
        binding = c == plan.binding
        off = " (above the plot)" if float(np.nanmin(users[c])) > y_top else ""
        ax.plot(
            tpm,
            users[c],
            color=COLORS[c],
            linestyle=STYLES[c],
            linewidth=BINDING_WIDTH if binding else OTHER_WIDTH,
            zorder=3 if binding else 2,
            label=constraint_label(c, plan) + off,
        )
    then = None if request is None else plan_capacity(
        request.applied_to(quota), workload, model, slo
    )  # fmt: skip
    _mark_quotas(ax, plan, request, then)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, y_top)
    ax.xaxis.set_major_formatter(SI_FORMATTER)
    ax.yaxis.set_major_formatter(SI_FORMATTER)
    ax.set_xlabel("TPM quota (tokens/min)")
    ax.set_ylabel("supported users (users, Little's law)")
    ax.set_title(_title(quota, workload, slo))
    fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    return fig


def _mark_quotas(
    ax: Axes, plan: CapacityPlan, request: QuotaRequest | None, then: CapacityPlan | None
) -> None:
    """Vertical lines at the current and requested TPM, each with its operating point (the
    users that quota serves: ``then`` for the request), its values in the legend and a short
    name on the top axis (names pushed apart when close)."""
    marks = [
        (
            "current",
            plan.quota.runtime_tpm,
            plan.users,
            "0.2",
            "-",
            f"current quota {si(plan.quota.runtime_tpm)} TPM → {plan.users_whole:,} users "
            f"({plan.binding} binds)",
        )
    ]
    if request is not None and then is not None:
        color = "#2ca02c" if request.feasible else "#d62728"
        over = then.users / request.target_users - 1
        verdict = (
            f"{over:+.0%} over the target" if over >= 0 else f"{-over:.0%} short of the target"
        )
        if not request.feasible:
            verdict += ": the objective cannot hold"
        # The TPM line holds RPM and TPD fixed: say when they must rise as well.
        raise_too = [
            f"{kind.upper()} to {si(value)}"
            for kind, current, value in (
                ("rpm", plan.quota.rpm, request.rpm),
                ("tpd", plan.quota.tpd, request.tpd),
            )
            if current is not None and value is not None and value > current
        ]
        if raise_too:
            verdict += "; also raise " + " and ".join(raise_too)
        marks.append(
            (
                "requested",
                float(request.runtime_tpm),
                then.users,
                color,
                "--",
                f"requested {si(request.runtime_tpm)} TPM → {then.users_whole:,} users "
                f"({then.binding} binds; {verdict})",
            )
        )
        ax.axhline(
            request.target_users,
            color=color,
            linestyle=":",
            linewidth=1.2,
            label=f"target {request.target_users:,.0f} users",
        )
    for _, x, y, color, style, text in marks:
        ax.axvline(x, color=color, linestyle=style, linewidth=1.6, zorder=4)
        ax.plot(
            [x], [y], "o", color=color, markersize=8, markeredgecolor="white", zorder=6, label=text
        )
    top = ax.secondary_xaxis("top")
    top.set_xticks([m[1] for m in marks], [m[0] for m in marks])
    top.tick_params(length=4)
    if len(marks) == 2:
        lo_first = marks[0][1] <= marks[1][1]
        labels = top.get_xticklabels()
        labels[0].set_horizontalalignment("right" if lo_first else "left")
        labels[1].set_horizontalalignment("left" if lo_first else "right")


def _title(quota: Quota, w: Workload, slo: Slo | None) -> str:
    think = w.effective_think_time_s
    pace = (
        f"think time {think:g} s"
        if think is not None
        else f"{w.requests_per_user_per_min:g} requests/user/min"
    )
    head = f"Supported users vs TPM quota — {quota.model_id or 'model'} ({quota.scope})"
    body = (
        f"{w.input_tokens:,.0f} input + {w.output_tokens:,.0f} output tokens "
        f"(max_tokens {w.max_tokens:,.0f}), {pace}, peak/average {w.peak_to_average:g}"
    )
    return f"{head}\n{body}" + (f", SLO {slo.describe()}" if slo is not None else "")


__all__ = ["DESCRIPTIONS", "constraint_label", "plot_capacity"]
