"""The report's answer when real traffic is given (docs/report.md, "From real traffic").

One answer: the TPM asked is the replay's (``MeasuredTraffic.sizing.tpm``: the smallest TPM
whose replay of the target's requests throttles at most the throttle target), put into the
planner's ``QuotaRequest`` in place of its closed-form TPM, so the headline, the ask table,
the JSON's ``request`` and the case text all read the same value. The planner's closed-form
TPM for the measured workload stays beside it (``replay["closed_form_tpm"]``) with why the two
differ. The users today's and the requested quota serve are the users whose traffic each
carries, replayed (``users_carried``), not the closed form's. RPM and TPD, where asked, stay
the planner's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capacity.figures import plot_throttle_curve
from capacity.planning import (
    CapacityAnswer,
    PlanInputError,
    Quota,
    QuotaRequest,
    fmt,
    plan_capacity,
)
from capacity.prediction import Predictor
from capacity.report._evidence import png_base64
from capacity.report._model import FigureImage, Traffic
from capacity.report._traffic import Carried, MeasuredTraffic
from capacity.serving import base_model_id

__all__ = [
    "Replayed",
    "check_traffic",
    "measured_section",
    "replay_figures",
    "replay_formulas",
    "replay_headroom",
    "replayed",
]

AGREE = 0.05
"""Closed form and replay within 5 % of each other are said to agree."""
CURVE_POINTS = 16
"""Replays along the throttle curve."""


@dataclass(frozen=True)
class Replayed:
    """The answer with the replay's TPM, the planner's own request beside it, the users today's
    and the requested quota carry, and the report's ``replay`` document."""

    answer: CapacityAnswer
    closed: QuotaRequest
    today: Carried
    requested: Carried
    doc: dict[str, Any]


def _pct(share: float, digits: int = 2) -> str:
    return f"{100 * share:.{digits}f} %"


def differ_words(traffic: MeasuredTraffic, closed: QuotaRequest, workload_par: float) -> str:
    """Why the replay's TPM and the planner's closed form differ, in one clause."""
    tpm, other = traffic.sizing.tpm, closed.tpm
    ratio = tpm / other if other else math.inf
    if abs(ratio - 1) <= AGREE:
        return f"the two agree within {AGREE:.0%}"
    at = traffic.at_target
    if ratio > 1:
        return (
            f"the replay asks {ratio - 1:.0%} more: Bedrock admits each request on its "
            "reservation (prompt + max_tokens) and this traffic comes in bursts — its busiest "
            f"second has {at.per_second.peak_to_mean_requests:.1f}× the mean rate, its busiest "
            f"minute {at.per_minute.peak_to_mean_requests:.2f}× — that drain a quota sized on "
            "the average tokens per request and a peak-to-average ratio"
        )
    lend = (
        "the token bucket carries a burst of up to its full TPM on top of its refill"
        if traffic.rule == "bucket"
        else "the replay counts what each minute really reserves"
    )
    return (
        f"the replay asks {1 - ratio:.0%} less: the closed form adds {closed.headroom:.0%} "
        f"headroom and sizes every busy minute at the p99 minute's rate ({workload_par:.2f}× "
        f"the mean), while {lend}; replayed, the measured traffic fits in less"
    )


def _request(closed: QuotaRequest, traffic: MeasuredTraffic) -> QuotaRequest:
    """``closed`` with the replay's TPM (its line, its formula), the closed form's kept."""
    s = traffic.sizing
    at = s.at_recommended
    formula = (
        f"the smallest TPM whose replay of the target's {s.requests:,} requests through the "
        f"quota ledger (rule '{s.rule}') throttles at most {100 * s.throttle_target:g} % of "
        f"them (bisection) = {s.tpm:,} tokens/min; it throttles {at.throttled:,} "
        f"({_pct(at.throttled_share, 3)}); the planner's closed form: {closed.tpm:,}"
    )
    lines = tuple(
        dataclasses.replace(line, value=s.tpm) if line.kind == "tpm" else line
        for line in closed.lines
    )
    formulas = {**closed.formulas, "tpm": formula,
                "tpm_closed_form": closed.formulas.get("tpm", "")}  # fmt: skip
    return dataclasses.replace(closed, tpm=s.tpm, lines=lines, formulas=formulas)


def replayed(result: CapacityAnswer, traffic: MeasuredTraffic, model: Predictor | None) -> Replayed:
    """``result`` (the planner's answer for the measured workload, with ``model``) with the
    replay's TPM."""
    closed = result.request
    assert closed is not None and result.target_users is not None
    request = _request(closed, traffic)
    asked = request.applied_to(result.quota)
    then = plan_capacity(asked, result.workload, model, result.objective.slo)
    answer = dataclasses.replace(result, request=request, requested=then)
    today = traffic.users_carried(result.quota)
    carried = traffic.users_carried(asked)
    return Replayed(answer, closed, today, carried, _doc(traffic, closed, result, today, carried))


def _doc(
    traffic: MeasuredTraffic,
    closed: QuotaRequest,
    result: CapacityAnswer,
    today: Carried,
    carried: Carried,
) -> dict[str, Any]:
    s, at = traffic.sizing, traffic.at_target
    now = s.current
    saving = s.max_tokens
    return {
        "source": traffic.source(),
        "label": traffic.label,
        "kind": traffic.kind,
        "requests_measured": traffic.requests_measured,
        "trace_users": traffic.trace_users,
        "target_users": traffic.target_users,
        "requests": s.requests,
        "rule": s.rule,
        "throttle_target": s.throttle_target,
        "tpm": s.tpm,
        "throttled": s.at_recommended.throttled,
        "throttled_share": s.at_recommended.throttled_share,
        "peak_reserved_tpm": s.at_recommended.peak_reserved_tpm,
        "peak_settled_tpm": s.at_recommended.peak_settled_tpm,
        "other_rule": s.other_rule,
        "tpm_other_rule": s.tpm_other_rule,
        "tpd": s.tpd,
        "today": None
        if now is None
        else {
            "tpm": now.quota.tpm,
            "throttled": now.throttled,
            "throttled_share": now.throttled_share,
            "throttled_minutes": now.throttled_minutes,
        },
        "users_today": today.users,
        "binding_today": today.binding,
        "users_requested": carried.users,
        "binding_requested": carried.binding,
        "max_tokens_policy": traffic.max_tokens,
        "max_tokens_saving": None if saving is None else dict(vars(saving)),
        "closed_form_tpm": closed.tpm,
        "closed_form_headroom": closed.headroom,
        "comparison": differ_words(traffic, closed, result.workload.peak_to_average),
        "per_second_peak_to_mean": at.per_second.peak_to_mean_requests,
        "per_minute_peak_to_mean": at.per_minute.peak_to_mean_requests,
        "replays": s.replays + today.replays + carried.replays,
        "notes": [*s.notes, *traffic.notes],
    }


def measured_section(traffic: MeasuredTraffic, max_tokens: float) -> Traffic:
    """Section 4 from the traffic at the target: the median, 90th-percentile and busiest
    minute of quota tokens and of served requests (its ``UsageSummary``), mean tokens per
    request and the measured share above 25,000 prompt tokens."""
    at = traffic.at_target
    s = at.summary
    minutes = f"the traffic at the target's {s.periods:,} minutes"
    tokens = f"quota tokens (input + cache write + {fmt(at.burndown)} × output, served requests)"

    def line(stat: str, what: str, value: float) -> str:
        return f"{stat} of {what} per minute over {minutes} = {fmt(value)}"

    formulas = {
        "steady_tpm": line("p50", tokens, s.tpm.p50),
        "peak_tpm": line("p90", tokens, s.tpm.p90),
        "busiest_tpm": line("max", tokens, s.tpm.max),
        "steady_rpm": line("p50", "served requests", s.rpm.p50),
        "peak_rpm": line("p90", "served requests", s.rpm.p90),
        "busiest_rpm": line("max", "served requests", s.rpm.max),
    }
    return Traffic(
        steady_tpm=s.tpm.p50, peak_tpm=s.tpm.p90, steady_rpm=s.rpm.p50, peak_rpm=s.rpm.p90,
        input_tokens=s.mean_input_tokens, output_tokens=s.mean_output_tokens,
        max_tokens=float(max_tokens), share_above_25k=at.share_above_long_prompt,
        share_source=f"measured: {at.above_long_prompt:,} of {at.ok:,} served requests had "
        "more than 25,000 prompt tokens (input + cache)",
        formulas=formulas, source=traffic.source(), busiest_tpm=s.tpm.max,
        busiest_rpm=s.rpm.max,
    )  # fmt: skip


def replay_figures(
    traffic: MeasuredTraffic, current: Quota, replay: Replayed
) -> tuple[FigureImage, ...]:
    """The throttle curve (page 1, named ``quota_ask`` as the planner's chart it replaces) and
    the two traffic figures of the traffic at the target."""
    s = traffic.sizing
    now = s.current
    closed = replay.closed.runtime_tpm
    today = current.runtime_tpm
    low = min(today, float(s.tpm), float(closed)) / 1.5
    high = max(today, float(s.tpm), float(closed)) * 1.3
    near = {round(f * s.tpm) for f in (0.8, 0.9, 0.95, 1.05, 1.1, 1.25)}  # the step's shape
    spread = {round(low * (high / low) ** (i / (CURVE_POINTS - 1))) for i in range(CURVE_POINTS)}
    tpms = sorted(spread | near | {s.tpm})
    points = traffic.throttle_curve(tpms)
    chart = plot_throttle_curve(
        points, throttle_target=s.throttle_target, today_tpm=today,
        today_share=0.0 if now is None else now.throttled_share, requested_tpm=float(s.tpm),
        requested_share=s.at_recommended.throttled_share, closed_form_tpm=float(closed),
        title=f"{traffic.model_id}: requests throttled against the TPM quota, the target's "
        f"traffic replayed (rule '{s.rule}')",
    )  # fmt: skip
    caption = (
        f"Share of the target's {s.requests:,} requests throttled at each TPM quota, replayed "
        f"through the quota ledger (rule '{s.rule}', RPM and TPD unlimited): today's quota, "
        f"the requested one (the smallest within the {100 * s.throttle_target:g} % target) and "
        "the planner's closed-form answer for the same workload."
    )
    at = traffic.at_target

    from capacity.usage import plot_token_distributions, plot_traffic_rates

    def image(name: str, caption: str, fig: Any) -> FigureImage:
        return FigureImage(name, caption, png_base64(fig))

    return (
        image("quota_ask", caption, chart),
        image(
            "traffic_rates",
            "Requests per second of the traffic at the target, each second and as each "
            "minute's mean.",
            plot_traffic_rates(at),
        ),
        image(
            "token_distributions",
            "Tokens per served request of the traffic at the target: prompt, output and "
            "max_tokens where logged, with p50, p99 and the 25,000-token line.",
            plot_token_distributions(at),
        ),
    )


def check_traffic(
    traffic: MeasuredTraffic,
    current: Quota,
    target_users: float,
    historical_usage: str | Mapping[str, Any] | None,
    result: CapacityAnswer | None,
) -> None:
    """Refuse real traffic measured for another target, model or quota rule, or given with a
    hand-made history or answer (with traffic, the report measures both itself)."""
    if not math.isclose(traffic.target_users, float(target_users)):
        raise PlanInputError(
            f"the traffic was measured at {fmt(traffic.target_users)} users, the report is for "
            f"{fmt(target_users)}: measure it at the report's target"
        )
    assert current.model_id is not None
    if base_model_id(traffic.model_id) != base_model_id(current.model_id):
        raise PlanInputError(
            f"the traffic is {traffic.model_id}'s, the quota {current.model_id}'s: measure the "
            "traffic of the model the quota is for"
        )
    if traffic.rule != current.rule:
        raise PlanInputError(
            f"the traffic was sized under quota rule '{traffic.rule}', the quota says "
            f"'{current.rule}': measure it with the quota the report is for"
        )
    if historical_usage is not None and historical_usage != "":
        raise PlanInputError(
            "give real traffic or a historical usage, not both: with traffic, the historical "
            "usage section is the traffic as measured"
        )
    if result is not None:
        raise PlanInputError("give real traffic or an answer (result), not both")


def replay_formulas(rep: Replayed) -> dict[str, str]:
    """The replay's arithmetic, for the method section."""
    d = rep.doc
    out = {
        "replay.source": str(d["source"]),
        "replay.tpm": str(rep.answer.request.formulas["tpm"]) if rep.answer.request else "",
        "replay.other_rule": f"the same search under rule '{d['other_rule']}' = "
        f"{d['tpm_other_rule']:,} tokens/min",
        "replay.closed_form": f"required_quota on the measured workload = {d['closed_form_tpm']:,}"
        f" tokens/min with {d['closed_form_headroom']:.0%} headroom; {d['comparison']}",
        "replay.users_today": f"users whose traffic today's quota carries with at most "
        f"{100 * d['throttle_target']:g} % throttled (bisection over the traffic scaled, one "
        f"replay each) = {fmt(rep.today.users)} ({rep.today.binding} binds)",
        "replay.users_requested": f"the same on the requested quota = "
        f"{fmt(rep.requested.users)} ({rep.requested.binding} binds)",
    }
    if d["today"] is not None:
        t = d["today"]
        out["replay.today"] = (
            f"today's quota replayed: {t['throttled']:,} of the target's {d['requests']:,} "
            f"requests throttled ({100 * t['throttled_share']:.2f} %) in "
            f"{t['throttled_minutes']:,} minutes"
        )
    return out


def replay_headroom(delivered: float, rep: Replayed) -> str:
    """The headroom the replay-sized quota buys, in words."""
    if delivered < 0:
        return f"{-delivered:.0%} short of the target: {rep.requested.binding}"
    return (
        f"headroom {delivered:.0%}: the replay sizes TPM to the throttle target and adds no "
        "headroom of its own"
    )
