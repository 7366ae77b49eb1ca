"""The chart a manager reads: supported users along the path from today's quota to the requested
one, with every quota that must be raised as its own step, and the latency at the target.

Along the curve every quota that the request raises is scaled together with TPM, geometrically
from its current value (at today's TPM) to its requested value (at the requested TPM):
q(t) = q_now × (q_asked / q_now) ** f with f = log(t / TPM_now) / log(TPM_asked / TPM_now). So
today's quota and the requested quota are both points of the one curve (``plan_capacity`` on
them), unlike a users-vs-TPM line that holds RPM fixed and flattens where RPM binds. The steps
show what each raise buys on its own, in order (TPM, then RPM, then TPD): raising TPM alone
stops where the next quota binds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from capacity.figures._common import SI_FORMATTER, new_figure, si, style_axes
from capacity.planning import CapacityPlan, Quota, QuotaRequest, Slo, Workload, plan_capacity
from capacity.prediction import Prediction, Predictor

POINTS = 28
"""Points along the supported-users curve."""

KINDS = ("tpm", "rpm", "tpd")
STEP_COLORS = ("#1f77b4", "#ff7f0e", "#8c564b")
CURVE_COLOR = "#2ca02c"


class _Memo:
    """A ``Predictor`` that remembers its answers (the plans along the curve probe the same
    operating points again and again)."""

    def __init__(self, model: Predictor) -> None:
        self._model = model
        self._seen: dict[tuple[float, float], Prediction] = {}

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """The wrapped model's prediction, computed once per operating point."""
        key = (concurrency, input_tokens)
        if key not in self._seen:
            self._seen[key] = self._model.predict(concurrency, input_tokens)
        return self._seen[key]


@dataclass(frozen=True)
class Raise:
    """One quota that must be raised: ``kind`` (tpm, rpm, tpd), ``current`` → ``desired``, and
    the users supported once this raise and the ones before it are granted."""

    kind: str
    current: float
    desired: float
    users_after: float
    binding_after: str


@dataclass(frozen=True)
class TargetLatency:
    """Predicted latency at the target's busiest minute (``inflight`` requests in flight)."""

    inflight: float
    latency_s: float
    ttft_p95_s: float | None
    ttlt_p95_s: float | None
    extrapolated: bool | None
    measured_max_inflight: float | None


def quota_raises(
    current: Quota,
    request: QuotaRequest,
    workload: Workload,
    model: Predictor | None = None,
    slo: Slo | None = None,
) -> list[Raise]:
    """Every quota that must be raised, in order (TPM, RPM, TPD), with the users each raise
    reaches together with the ones before it."""
    out: list[Raise] = []
    quota = current
    for kind in KINDS:
        now, asked = getattr(current, kind), getattr(request, kind)
        if now is None or asked is None or float(asked) <= float(now):
            continue
        want = float(asked)
        quota = _with(quota, kind, want)
        plan = plan_capacity(quota, workload, model, slo)
        out.append(Raise(kind, float(now), want, plan.users, plan.binding))
    return out


def target_latency(
    request: QuotaRequest, workload: Workload, model: Predictor | None
) -> TargetLatency | None:
    """The latency at the target's in-flight count, and whether it is extrapolated beyond the
    measured range (the planner's ``extrapolation_factor``, else the model's own flag); None
    when the endpoint cannot carry the target at all (``request.inflight`` is None)."""
    if request.inflight is None:
        return None
    n = float(request.inflight)
    if model is None:
        return TargetLatency(n, float(request.latency_s), None, None, None, None)
    p = model.predict(max(n, 1.0), workload.prompt_tokens)
    measured = request.measured_max_inflight
    if measured is not None:
        extrapolated = request.extrapolation_factor is not None
    else:
        extrapolated, measured = bool(p.extrapolated), _measured_max(model)
    ttft95 = _q(p.ttft_s, 0.95)
    tps5 = float(p.tps_p5)
    ttlt95 = (
        ttft95 + (float(workload.output_tokens) - 1) / tps5
        if ttft95 is not None and tps5 > 0
        else None
    )
    return TargetLatency(n, float(request.latency_s), ttft95, ttlt95, extrapolated, measured)


def _with(quota: Quota, kind: str, value: float | None) -> Quota:
    """``quota`` with limit ``kind`` (tpm, rpm, tpd) set to ``value``."""
    tpm = float(value) if kind == "tpm" and value is not None else quota.tpm
    rpm = value if kind == "rpm" else quota.rpm
    tpd = value if kind == "tpd" else quota.tpd
    return dataclasses.replace(quota, tpm=tpm, rpm=rpm, tpd=tpd)


def _q(values: Mapping[float, float], q: float) -> float | None:
    for key, value in values.items():
        if abs(float(key) - q) < 1e-6 and math.isfinite(float(value)):
            return float(value)
    return None


def _measured_max(model: Predictor) -> float | None:
    """The largest fitted concurrency when the predictor says (a ``CapacityModel`` does)."""
    prompts = getattr(model, "prompts", None)
    if not prompts:
        return None
    try:
        return max(float(p.n_max) for p in prompts)
    except (AttributeError, TypeError, ValueError):
        return None


def plot_quota_ask(
    current: Quota,
    request: QuotaRequest,
    workload: Workload,
    model: Predictor | None = None,
    slo: Slo | None = None,
) -> Figure:
    """Users supported by today's quota and by the requested one, both on the supported-users
    curve (every raised quota scaled with TPM, see the module docstring), each raise as its own
    step, and beside it the latency at the target (p95 TTFT vs requests in flight, measured range
    shaded) or, without a model, the assumed response time."""
    memo = _Memo(model) if model is not None else None
    asked = request.applied_to(current)
    now = plan_capacity(current, workload, memo, slo)
    then = plan_capacity(asked, workload, memo, slo)
    raises = quota_raises(current, request, workload, memo, slo)
    tpm, users = _curve(current, asked, workload, memo, slo)
    fig = new_figure(12.5, 6.2)
    main, side = fig.subplots(1, 2, width_ratios=(2.1, 1))
    style_axes(main)
    main.plot(tpm, users, color=CURVE_COLOR, linewidth=3, label="supported users", zorder=3)
    _steps(main, now, raises, asked.runtime_tpm)
    main.axhline(
        request.target_users,
        color="0.35",
        linestyle=":",
        linewidth=1.3,
        label=f"target {request.target_users:,.0f} users",
    )
    main.plot(
        [current.runtime_tpm], [now.users], "o", color="0.15", markersize=10, zorder=6,
        label=f"today: {si(current.runtime_tpm)} TPM → {now.users_whole:,} users "
        f"({now.binding} binds)",
    )  # fmt: skip
    reaches = then.users >= request.target_users * (1 - 1e-9)
    if reaches:
        verdict = f"(target + {request.headroom:.0%} headroom)"
    elif not request.feasible:
        verdict = "— short of the target: " + (
            "the SLO cannot hold there" if request.slo is not None else "the endpoint peaks"
        )
    else:
        verdict = f"— short of the target: {then.binding} still binds, not raised"
    main.plot(
        [asked.runtime_tpm], [then.users], "D", color=CURVE_COLOR if reaches else "#d62728",
        markersize=10, markeredgecolor="white", zorder=7,
        label=f"requested: {si(asked.runtime_tpm)} TPM → {then.users_whole:,} users "
        f"{verdict}",
    )  # fmt: skip
    main.set_xlim(0, float(tpm[-1]))
    main.set_ylim(0, 1.15 * max(float(np.nanmax(users)), request.target_users, then.users))
    main.xaxis.set_major_formatter(SI_FORMATTER)
    main.yaxis.set_major_formatter(SI_FORMATTER)
    main.set_xlabel("TPM quota (tokens/min); raised quotas scale with it")
    main.set_ylabel("users supported")
    main.set_title(f"Today's quota → the requested quota ({current.model_id or 'model'})")
    main.legend(loc="upper left", fontsize=8.5, framealpha=0.92)
    _latency_panel(side, request, workload, model, slo, now)
    return fig


def _curve(
    current: Quota, asked: Quota, workload: Workload, model: Predictor | None, slo: Slo | None
) -> tuple[np.ndarray, np.ndarray]:
    """Supported users along the scaled path, TPM from 2 % of today's value to 1.3 × asked
    (today's and the asked TPM among the points)."""
    now_tpm, asked_tpm = current.runtime_tpm, asked.runtime_tpm
    lo, hi = 0.02 * now_tpm, 1.3 * asked_tpm
    tpm = np.unique(np.concatenate([np.linspace(lo, hi, POINTS), [now_tpm, asked_tpm]]))
    span = math.log(asked_tpm / now_tpm)
    users = []
    for t in tpm:
        # Without a TPM raise every quota scales in proportion to TPM instead.
        f = math.log(t / now_tpm) / span if span > 0 else None
        quota = _with(current, "tpm", float(t))
        for kind in ("rpm", "tpd"):
            a, b = getattr(current, kind), getattr(asked, kind)
            if a is None:
                continue
            if f is None:
                quota = _with(quota, kind, float(a) * t / now_tpm)
            else:
                quota = _with(quota, kind, float(a) * (float(b) / float(a)) ** f)
        users.append(plan_capacity(quota, workload, model, slo).users)
    return tpm, np.array(users, dtype=np.float64)


def _steps(ax: Axes, now: CapacityPlan, raises: list[Raise], asked_tpm: float) -> None:
    """Each raise as a step: across to the raised TPM at the users before it, then an arrow up
    to the users after it (a TPM raise that buys no users is an arrow across)."""
    x0, y0 = now.quota.runtime_tpm, now.users
    for i, r in enumerate(raises):
        x1 = asked_tpm if r.kind == "tpm" else x0
        color = STEP_COLORS[KINDS.index(r.kind)]
        start = (x0, y0)
        if x1 != x0 and not math.isclose(r.users_after, y0):
            ax.plot([x0, x1], [y0, y0], color=color, linewidth=2.2, alpha=0.9, zorder=5)
            start = (x1, y0)
        ax.annotate(
            "",
            xy=(x1, r.users_after),
            xytext=start,
            arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 2.2, "alpha": 0.9},
            zorder=5,
        )
        ax.plot(
            [x1], [r.users_after], "s", color=color, markersize=7, zorder=5,
            label=f"step {i + 1}: raise {r.kind.upper()} {si(r.current)} → {si(r.desired)}: "
            f"{math.floor(r.users_after + 1e-9):,} users ({r.binding_after} binds)",
        )  # fmt: skip
        x0, y0 = x1, r.users_after


def _latency_panel(
    ax: Axes,
    request: QuotaRequest,
    workload: Workload,
    model: Predictor | None,
    slo: Slo | None,
    now: CapacityPlan,
) -> None:
    style_axes(ax)
    at = target_latency(request, workload, model)
    if model is None or at is None:
        ax.set_axis_off()
        lines = ["Latency at the target"]
        if at is None:
            lines.append("the endpoint cannot carry the target")
        else:
            lines += [
                f"{at.inflight:,.1f} requests in flight",
                f"mean response time {at.latency_s:.2f} s",
                "(assumed: no fitted model,",
                " latency not predicted)",
            ]
        ax.text(0.02, 0.95, "\n".join(lines), va="top", fontsize=11, transform=ax.transAxes)
        return
    tokens = workload.prompt_tokens
    top = max(2.0, 1.4 * at.inflight, 1.2 * (at.measured_max_inflight or 0.0))
    grid = np.linspace(1.0, top, 80)
    preds = [model.predict(float(n), tokens) for n in grid]
    ttft = np.array([_q(p.ttft_s, 0.95) or np.nan for p in preds])
    ax.plot(grid, ttft, color="#d62728", linewidth=2, label="p95 TTFT (fitted model)")
    if at.measured_max_inflight is not None:
        ax.axvspan(
            0, at.measured_max_inflight, color="0.85", alpha=0.6, label="measured range", zorder=0
        )
    if now.ttft_p95_s is not None:
        ax.plot([now.inflight], [now.ttft_p95_s], "o", color="0.15", markersize=8, label="today")
    if at.ttft_p95_s is not None:
        where = "extrapolated" if at.extrapolated else "within the measured range"
        ax.plot(
            [at.inflight], [at.ttft_p95_s], "D", color=CURVE_COLOR, markersize=9,
            markeredgecolor="white",
            label=f"target: {at.ttft_p95_s:.2f} s at {at.inflight:,.0f} in flight ({where})",
        )  # fmt: skip
    if slo is not None and slo.ttft_p95_s is not None:
        ax.axhline(slo.ttft_p95_s, color="0.3", linestyle="--", label="SLO p95 TTFT")
    ax.set_xlim(0, top)
    highest = [float(np.nanmax(ttft))] if np.isfinite(ttft).any() else [1.0]
    highest += [v for v in (at.ttft_p95_s, now.ttft_p95_s) if v is not None]
    if slo is not None and slo.ttft_p95_s is not None:
        highest.append(slo.ttft_p95_s)
    ax.set_ylim(0, 1.6 * max(highest))  # room for the legend above the curve
    ax.set_xlabel("requests in flight (busiest minute)")
    ax.set_ylabel("p95 time to first token (s)")
    ax.set_title("Latency at the target")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.92)


__all__ = [
    "Raise",
    "TargetLatency",
    "plot_quota_ask",
    "quota_raises",
    "target_latency",
]
