"""The report as a sequence of blocks (headings, paragraphs, tables, code, figures), which the
Markdown, HTML and PDF renderers all draw: the three say the same thing in the same order."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from capacity.planning import DEFAULT_THINK_TIME_S
from capacity.report._elements import (
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    PageBreak,
    Para,
    Raw,
    Table,
)
from capacity.report._model import Ask, QuotaRequestReport
from capacity.report._option import option_blocks

NO_MODEL = (
    "No performance model was given: latency is assumed (the workload's mean response time), "
    "not predicted, and no latency objective is checked."
)
KIND_LABEL = {"tpm": "TPM", "rpm": "RPM", "tpd": "TPD"}
HEADINGS = {
    "prompt_label": "Prompt",
    "level": "Level",
    "n": "Requests",
    "n_ok": "OK",
    "input_tokens_mean": "Input tok",
    "output_tokens_mean": "Output tok",
    "tps_p50": "tok/s p50",
    "ttft_p50_s": "TTFT p50 s",
    "ttft_p95_s": "TTFT p95 s",
    "ttlt_p95_s": "TTLT p95 s",
    "output_tps": "System out tok/s",
    "achieved_rpm": "RPM",
    "achieved_tpm": "TPM",
    "concurrency_mean": "In flight",
    "throttle_rate": "Throttled",
    "n_throttled": "Throttled",
}


def num(x: Any, digits: int = 0) -> str:
    """A number with thousands separators (``digits`` decimals); n/a for None or non-finite."""
    if x is None:
        return "n/a"
    v = float(x)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:,.{digits}f}"


def whole(x: float) -> str:
    """Whole users (floor, tolerant of rounding noise) with separators."""
    return f"{math.floor(float(x) + 1e-9):,}"


def pct(x: float) -> str:
    """A share as a percentage."""
    return f"{100 * float(x):.1f} %"


def cell(column: str, value: Any) -> str:
    """One evidence table cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if column == "throttle_rate":
        return pct(value)
    if column in ("level", "n", "n_ok", "n_throttled", "input_tokens_mean", "achieved_tpm"):
        return num(value)
    if column.endswith("_s"):
        return num(value, 2)
    return num(value, 1)


def ask_rows(report: QuotaRequestReport) -> tuple[tuple[str, ...], ...]:
    """Quota, code, current, requested, per ask."""
    return tuple(
        (
            a.name or KIND_LABEL.get(a.kind, a.kind),
            a.code or "unknown",
            num(a.current),
            num(a.desired),
        )
        for a in report.asks
    )


def headline(report: QuotaRequestReport) -> str:
    """The one-paragraph answer."""
    asks = "; ".join(
        f"{KIND_LABEL.get(a.kind, a.kind)} {num(a.current)} → {num(a.desired)}" for a in report.asks
    )
    if report.replay is not None:
        text = replay_headline(report, asks)
    else:
        text = (
            f"Under {report.objective}, today's quota serves {whole(report.users_today)} users, "
            f"limited by {report.binding_today}. To serve {whole(report.target_users)} users we "
            f"request {asks or 'no increase (the current quota suffices)'}; the requested quota "
            f"serves {whole(report.users_requested)} users, limited by "
            f"{report.binding_requested} ({report.headroom_text})."
        )
    if report.latency is not None and report.latency.get("ttft_p95_s") is not None:
        text += (
            f" At the target's busiest minute {num(report.latency['inflight'], 1)} requests are "
            f"in flight with a predicted p95 time to first token of "
            f"{num(report.latency['ttft_p95_s'], 2)} s."
        )
    if not report.feasible and report.infeasible_reason:
        text += f" Caveat: {report.infeasible_reason}."
    return text


def replay_headline(report: QuotaRequestReport, asks: str) -> str:
    """The answer when the TPM was sized by replaying real traffic."""
    d = report.replay
    assert d is not None
    today = d.get("today")
    share = (
        f" (it throttles {pct(today['throttled_share'])} of the target's requests)" if today else ""
    )
    return (
        f"Replaying the traffic of {whole(report.target_users)} users — {report.traffic.source} "
        f"— through Bedrock's quota ledger (rule '{d['rule']}'): today's quota carries the "
        f"traffic of {whole(report.users_today)} users with at most "
        f"{100 * d['throttle_target']:g} % of requests throttled, limited by "
        f"{report.binding_today}{share}. To serve {whole(report.target_users)} users we request "
        f"{asks or 'no increase (the current quota suffices)'}: {num(d['tpm'])} TPM is the "
        f"smallest that throttles at most {100 * d['throttle_target']:g} % of their requests. "
        f"The requested quota carries the traffic of {whole(report.users_requested)} users, "
        f"limited by {report.binding_requested} ({report.headroom_text})."
    )


def replay_bullets(report: QuotaRequestReport) -> tuple[str, ...]:
    """What the replay found, beside the planner's closed form (with real traffic only)."""
    d = report.replay
    assert d is not None
    at = (
        f"{num(d['throttled'])} of the target's {num(d['requests'])} requests throttled "
        f"({100 * d['throttled_share']:.3f} %)"
    )
    out = [
        f"TPM sized by replay: {num(d['tpm'])} under rule '{d['rule']}' ({at}); under rule "
        f"'{d['other_rule']}' it would take {num(d['tpm_other_rule'])}.",
        f"The planner's closed form for the measured workload asks {num(d['closed_form_tpm'])} "
        f"TPM with {d['closed_form_headroom']:.0%} headroom: {d['comparison']}.",
        f"Busiest minute of the target's traffic: {num(d['peak_reserved_tpm'])} tokens reserved "
        f"at admission, {num(d['peak_settled_tpm'])} kept at settlement.",
    ]
    today = d.get("today")
    if today:
        out.append(
            f"Today's quota ({num(today['tpm'])} TPM) throttles {num(today['throttled'])} of "
            f"them ({pct(today['throttled_share'])}) in {num(today['throttled_minutes'])} minutes."
        )
    saving = d.get("max_tokens_saving")
    if saving:
        out.append(
            f"A max_tokens of {num(saving['max_tokens'])} (the p99 of the observed outputs) would "
            f"need {num(saving['tpm'])} TPM ({saving['saving_share']:.0%} less); "
            f"{num(saving['cut_requests'])} logged outputs were longer and would be cut."
        )
    return tuple(out)


def traffic_rows(report: QuotaRequestReport) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Section 4's table: steady and peak (and the busiest minute, when measured)."""
    t = report.traffic
    if t.busiest_tpm is None:
        return ("Measure", "Steady state (p50)", "Peak (p90)"), (
            ("Tokens per minute (TPM)", num(t.steady_tpm), num(t.peak_tpm)),
            ("Requests per minute (RPM)", num(t.steady_rpm, 1), num(t.peak_rpm, 1)),
        )
    return ("Measure", "Steady state (p50 minute)", "Peak (p90 minute)", "Busiest minute"), (
        ("Tokens per minute (TPM)", num(t.steady_tpm), num(t.peak_tpm), num(t.busiest_tpm)),
        ("Requests per minute (RPM)", num(t.steady_rpm, 1), num(t.peak_rpm, 1),
         num(t.busiest_rpm, 1)),
    )  # fmt: skip


def target_words(report: QuotaRequestReport) -> str:
    """The target in users, with what they mean in requests: users are people who each send
    a request, wait for it and think; requests in flight are what the endpoint holds."""
    w = report.workload
    think = w.get("think_time_s")
    rate = w.get("requests_per_user_per_min")
    how = (
        f"each sending {num(rate, 2)} requests per minute"
        if rate is not None
        else f"each thinking {num(DEFAULT_THINK_TIME_S if think is None else think, 0)} s between "
        "answers"
    )
    text = f"Target: {whole(report.target_users)} users, {how}"
    if report.latency is not None:
        text += f"; {num(report.latency['inflight'], 0)} requests in flight at the busiest minute"
    return text


def _ask_detail(a: Ask, region: str) -> list[Block]:
    label = KIND_LABEL.get(a.kind, a.kind)
    out: list[Block] = [
        Heading(3, f"{label}: {a.name or 'quota name unknown'} ({a.code or 'code unknown'})"),
        Para(f"Current {num(a.current)} → requested {num(a.desired)}. Why: {a.why}"),
    ]
    if a.cli is not None and a.boto3 is not None:
        out += [Code(a.cli), Code(f"import boto3\n{a.boto3}")]
    else:
        out.append(
            Para(
                "No quota code is known for this model and quota: find it with "
                f"`aws service-quotas list-service-quotas --service-code bedrock --region "
                f"{region}` and request the value above."
            )
        )
    return out


def blocks(report: QuotaRequestReport) -> list[Block]:
    """The report, section by section."""
    r, t = report, report.traffic
    out: list[Block] = [
        Heading(1, r.title),
        Para(f"Generated {r.generated_at} by llmcap."),
        Heading(2, "The ask"),
        Para(headline(r)),
        Table(("Quota", "Code", "Current", "Requested"), ask_rows(r)),
    ]
    chart = next((f for f in r.figures if f.name == "quota_ask"), None)
    if chart is not None:
        out.append(Image(chart))  # the manager's chart stays on page 1
    if r.replay is not None:
        out.append(Bullets(replay_bullets(r)))
    options = r.request.get("options") or []
    if not r.feasible and options:
        out += [
            Para("What can close the gap (from the planner):"),
            Bullets(tuple(f"{o.get('name')}: {o.get('effect')}" for o in options)),
        ]
    out += option_blocks(r.option)
    out += [
        Para(r.measured_range),
        Para(r.evidence_context),
        Heading(2, "1. Use case"),
        Para(r.use_case),
        Heading(2, "2. Account, model, Region"),
        Table(
            ("Field", "Value"),
            (
                ("AWS account", r.account_id or "(not given)"),
                ("Organization", r.organization or "(not given)"),
                ("Contact", r.contact or "(not given)"),
                ("Model id", r.model_id),
                ("Region", r.region),
                ("Cross-Region inference profile", r.inference_profile_id or "none (on-demand)"),
                ("Quota scope", r.scope),
            ),
        ),
        Heading(2, "3. Current quotas"),
        Table(
            ("Quota", "Code", "Value"),
            tuple(
                (q.name or KIND_LABEL.get(q.kind, q.kind), q.code or "unknown", num(q.value))
                for q in r.current_quotas
            ),
        ),
        Heading(2, "4. Expected traffic at the target"),
        Table(*traffic_rows(r)),
        Bullets(
            (
                f"Traffic at the target: {t.source}.",
                target_words(r),
                f"Latency objective: {r.objective}",
                f"Average input tokens per request: {num(t.input_tokens)}; average output "
                f"tokens per request: {num(t.output_tokens)}; max_tokens "
                + ("reserved on average " if t.measured else "")
                + num(t.max_tokens),
                f"Share of requests above 25,000 input tokens: {pct(t.share_above_25k)} "
                f"({t.share_source})",
                steady_words(r),
            )
        ),
        Heading(2, "5. Growth projections"),
    ]
    if r.growth:
        out.append(
            Table(
                ("When", "Users", "TPM needed", "RPM needed"),
                tuple(
                    (
                        g.label,
                        whole(g.users),
                        num(g.tpm),
                        "not enforced" if g.rpm is None else num(g.rpm),
                    )
                    for g in r.growth
                ),
            )
        )
    else:
        out.append(Para("No growth beyond the target was given."))
    out += [
        Heading(2, "6. Monitoring and alarms"),
        Para(r.monitoring),
        Heading(2, "7. Historical usage"),
        Raw(r.historical_usage)
        if r.historical_usage
        else Para("No historical usage was attached (new workload)."),
        Heading(2, "8. The ask per quota"),
    ]
    for a in r.asks:
        out += _ask_detail(a, r.region)
    if not r.asks:
        out.append(Para("Nothing to raise: the current quotas already serve the target."))
    out += [PageBreak(), Heading(2, "9. Evidence")]
    if r.evidence:
        out += [
            Para("Measured per prompt size and level (capacity.summarize of the runs):"),
            Table(
                tuple(HEADINGS.get(c, c) for c in r.evidence_columns),
                tuple(tuple(cell(c, row.get(c)) for c in r.evidence_columns) for row in r.evidence),
            ),
        ]
    else:
        out.append(Para("No measured runs were attached."))
    if r.throttles:
        out += [
            Para("Throttle history in the runs:"),
            Table(
                tuple(HEADINGS.get(c, c) for c in r.throttles[0]),
                tuple(tuple(cell(c, v) for c, v in row.items()) for row in r.throttles),
            ),
        ]
    elif r.evidence:
        out.append(Para("No request was throttled in the runs."))
    out += [Image(f) for f in r.figures if f.name != "quota_ask"]
    out += [
        Heading(2, "10. Method"),
        Para(method_words(r)),
        Table(("Quantity", "Formula"), tuple((k, v) for k, v in r.formulas.items())),
        *_model_blocks(r.predictor),
        Heading(3, "Notes"),
        Bullets(r.notes),
    ]
    return out


def method_words(report: QuotaRequestReport) -> str:
    """Where the numbers come from, before the formulas."""
    if report.replay is not None:
        return (
            "The TPM asked and the users each quota carries come from replaying the traffic "
            "through the quota ledger (replay.*); the rest from llmcap's planner (plan_capacity "
            "for the quotas, required_quota for the target, on the measured workload); the "
            "arithmetic, with its numbers:"
        )
    return (
        "Every number above comes from llmcap's planner (plan_capacity for the quotas, "
        "required_quota for the target); the arithmetic, with its numbers:"
    )


def steady_words(report: QuotaRequestReport) -> str:
    """What steady state and peak mean in section 4."""
    if report.traffic.measured:
        return (
            "Steady state is the median minute, peak the 90th-percentile minute and the "
            "busiest minute the largest of the traffic at the target; tokens are the quota's "
            "(input + cache write + burndown × output)."
        )
    return (
        "Steady state is the average minute; peak is the busiest minute "
        f"(peak-to-average {num(report.workload.get('peak_to_average'), 2)})."
    )


def _model_blocks(predictor: Mapping[str, Any] | None) -> list[Block]:
    """The method's performance model: where the latency curve came from and what it knows."""
    if not predictor:
        return [Heading(3, "Performance model"), Para(NO_MODEL)]
    out: list[Block] = [Heading(3, "Performance model"), Para(str(predictor["source"]))]
    if predictor.get("details"):
        out.append(Bullets(tuple(str(d) for d in predictor["details"])))
    if predictor.get("notes"):
        out += [
            Para("What the model says about the target's operating point:"),
            Bullets(tuple(str(n) for n in predictor["notes"])),
        ]
    return out
