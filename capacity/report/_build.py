"""``build_report``: the quota-increase justification from the inputs a user has.

Every number the report quotes is read from the planner's ``CapacityPlan.to_dict()`` and
``QuotaRequest.to_dict()`` (or computed from them with the formula written next to it), so the
report cannot disagree with ``plan_capacity`` / ``required_quota``. With real traffic
(``traffic=``, ``measure_traffic``) the TPM asked is the replay's instead, put into that request
(``_replayed.py``), and sections 4 and 7 are measured from the traffic.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from capacity.compare import Comparison
from capacity.figures.justification import (
    quota_raises,
    target_latency,
)
from capacity.planning import (
    DEFAULT_HEADROOM,
    CapacityAnswer,
    Objective,
    PlanInputError,
    Quota,
    Workload,
    answer,
    fmt,
    required_quota,
)
from capacity.prediction import Predictor
from capacity.predictors import describe_predictor
from capacity.report._evidence import (
    context_words,
    evidence_figures,
    evidence_rows,
    measured_range,
    throttle_rows,
)
from capacity.report._history import history_markdown, usage_text
from capacity.report._model import (
    ABOVE_TOKENS,
    Ask,
    CurrentQuota,
    FigureImage,
    GrowthStep,
    QuotaRequestReport,
    Traffic,
    plain,
)
from capacity.report._option import option_section
from capacity.report._replayed import (
    Replayed,
    check_traffic,
    measured_section,
    replay_figures,
    replay_formulas,
    replay_headroom,
    replayed,
)
from capacity.report._traffic import MeasuredTraffic
from capacity.serving import base_model_id, is_profile_id

TRAFFIC_ONLY = (
    "No benchmark runs were attached: the evidence is the traffic itself (sections 4 and 7, "
    "and its figures below), replayed through the quota ledger."
)
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
KINDS = ("tpm", "rpm", "tpd")
UNITS = {"tpm": "tokens/min", "rpm": "requests/min", "tpd": "tokens/day"}


def _need(doc: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in doc:
        raise KeyError(f"the {what} has no {key!r} (keys: {', '.join(sorted(doc))})")
    return doc[key]


def check_region(region: str) -> str:
    """``region`` stripped, or a ``PlanInputError`` when it is not shaped like an AWS Region."""
    r = (region or "").strip()
    if not REGION.match(r):
        raise PlanInputError(f"region must be an AWS Region code like us-east-1, got {region!r}")
    return r


def default_monitoring(model_id: str, region: str, tpm: float, burndown: float) -> str:
    """Monitoring and alarms to describe when the user gives none: CloudWatch's AWS/Bedrock
    metrics for the model, alarms at 80 % of the requested TPM and on any throttle."""
    alarm = math.floor(0.8 * tpm)
    charge = "InputTokenCount + OutputTokenCount" + (f" × {fmt(burndown)}" if burndown != 1 else "")
    return (
        f"CloudWatch namespace AWS/Bedrock, dimension ModelId={model_id}, Region {region}: "
        "Invocations, InvocationThrottles, InvocationClientErrors, InvocationServerErrors, "
        "InputTokenCount, OutputTokenCount and InvocationLatency, at 1-minute resolution. "
        f"Alarms: tokens charged per minute ({charge}, summed per minute) above {alarm:,} "
        "(80 % of the requested TPM) for 5 minutes; InvocationThrottles > 0 for 3 minutes. "
        "Clients retry throttles with exponential backoff and jitter and cap requests in flight."
    )


def _share_above(
    records: pd.DataFrame | None, workload: Workload, records_input: float | None
) -> tuple[float, str]:
    if records is not None and "input_tokens" in records and len(records):
        x = pd.to_numeric(records["input_tokens"], errors="coerce").dropna()
        if len(x):
            share = float((x > ABOVE_TOKENS).mean())
            return share, f"measured: {len(x):,} requests in the evidence runs"
    above = workload.input_tokens > ABOVE_TOKENS
    source = f"workload: every request has {fmt(workload.input_tokens)} input tokens"
    if records_input is not None:
        source += f" (evidence mean {fmt(records_input)})"
    return (1.0 if above else 0.0), source


def _traffic(request: Mapping[str, Any], workload: Workload, share: tuple[float, str]) -> Traffic:
    rate = float(_need(request, "requests_per_min", "request"))
    peak = float(_need(request, "peak_requests_per_min", "request"))
    charge = float(_need(request, "settlement_tokens", "request"))
    par = float(workload.peak_to_average)
    f = {
        "steady_rpm": f"λ = requests_per_min = {fmt(rate)} req/min (the average minute, p50)",
        "peak_rpm": f"λ_peak = λ × PAR = {fmt(rate)} × {fmt(par)} = {fmt(peak)} req/min "
        "(the busiest minute, p90)",
        "steady_tpm": f"λ × tokens charged per request = {fmt(rate)} × {fmt(charge)} = "
        f"{fmt(rate * charge)} tokens/min",
        "peak_tpm": f"λ_peak × tokens charged per request = {fmt(peak)} × {fmt(charge)} = "
        f"{fmt(peak * charge)} tokens/min",
    }
    return Traffic(
        steady_tpm=rate * charge,
        peak_tpm=peak * charge,
        steady_rpm=rate,
        peak_rpm=peak,
        input_tokens=float(workload.input_tokens),
        output_tokens=float(workload.output_tokens),
        max_tokens=float(workload.max_tokens),
        share_above_25k=share[0],
        share_source=share[1],
        formulas=f,
        source=f"from the planner's rate for the target (λ = {fmt(rate)} requests/min, "
        f"peak-to-average {fmt(par)})",
    )


def cli_command(code: str, desired: int, region: str) -> str:
    """The AWS CLI call that files the increase."""
    return (
        "aws service-quotas request-service-quota-increase --service-code bedrock "
        f"--quota-code {code} --desired-value {desired} --region {region}"
    )


def boto3_call(code: str, desired: int, region: str) -> str:
    """The boto3 call that files the increase."""
    return (
        f'boto3.client("service-quotas", region_name="{region}").request_service_quota_increase('
        f'ServiceCode="bedrock", QuotaCode="{code}", DesiredValue={float(desired)!r})'
    )


def _asks(
    current: Quota,
    codes: Codes,
    request: Mapping[str, Any],
    region: str,
    kinds: set[str],
    replay: Mapping[str, Any] | None = None,
) -> tuple[Ask, ...]:
    """The asks of ``kinds`` (``CapacityAnswer.asks``) above today's values; with a
    ``replay``, the TPM's reason is the replay's."""
    formulas = request.get("formulas", {})
    target = float(_need(request, "target_users", "request"))
    out = []
    for kind in KINDS:
        now = getattr(current, kind)
        value = _need(request, kind, "request")
        desired = None if value is None else int(value)
        if kind not in kinds or desired is None or (now is not None and desired <= float(now)):
            continue
        code, name = codes.get(kind, (None, None))
        why = (
            f"{kind.upper()} for {target:,.0f} users with {float(request['headroom']):.0%} "
            f"headroom: {formulas.get(kind, '')}"
        )
        if replay is not None and kind == "tpm":
            why = (
                f"TPM for {target:,.0f} users, sized by replaying their traffic "
                f"({replay['source']}): {formulas.get(kind, '')} ({replay['comparison']})"
            )
        if code is None:
            why += (
                f". Quota code unknown: list it with `aws service-quotas list-service-quotas "
                f"--service-code bedrock --region {region}`"
            )
        out.append(
            Ask(
                kind=kind,
                name=name,
                code=code,
                current=None if now is None else float(now),
                desired=desired,
                why=why,
                cli=None if code is None else cli_command(code, desired, region),
                boto3=None if code is None else boto3_call(code, desired, region),
            )
        )
    return tuple(out)


Codes = Mapping[str, tuple[str | None, str | None]]
"""Quota kind → (Service Quotas code, quota name), where known."""


def _codes(request: Mapping[str, Any], overrides: Mapping[str, str] | None) -> Codes:
    """The request's quota codes and names from the model table, ``overrides`` over the codes."""
    out: dict[str, tuple[str | None, str | None]] = {
        line["kind"]: (line.get("code"), line.get("name")) for line in request.get("lines", [])
    }
    for kind, code in (overrides or {}).items():
        out[kind] = (code, out.get(kind, (None, None))[1])
    return out


def _current(current: Quota, codes: Codes) -> tuple[CurrentQuota, ...]:
    out = []
    for kind in KINDS:
        value = getattr(current, kind)
        if value is not None:
            code, name = codes.get(kind, (None, None))
            out.append(CurrentQuota(kind, float(value), code, name))
    return tuple(out)


def build_report(
    *,
    use_case: str,
    region: str,
    current: Quota,
    target_users: float,
    workload: Workload | None = None,
    model: Predictor | None = None,
    goal: Objective | None = None,
    headroom: float = DEFAULT_HEADROOM,
    result: CapacityAnswer | None = None,
    traffic: MeasuredTraffic | None = None,
    inference_profile_id: str | None = None,
    account_id: str | None = None,
    organization: str | None = None,
    contact: str | None = None,
    quota_codes: Mapping[str, str] | None = None,
    records: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    evidence_context: str | None = None,
    growth: Sequence[tuple[str, float]] = (),
    monitoring: str | None = None,
    historical_usage: str | Mapping[str, Any] | None = None,
    figures: bool = True,
    generated_at: str | None = None,
    title: str | None = None,
    comparison: Comparison | None = None,
    option: str | None = None,
) -> QuotaRequestReport:
    """The justification for raising ``current`` so that ``target_users`` are served.

    ``current.model_id`` is the id the application invokes (a model id or a cross-Region
    inference profile id). The numbers are ``capacity.answer``'s: pass ``result`` to report an
    answer already given (the demo does), else it is asked here with ``goal`` (default: the
    default objective wherever a model is given) and ``headroom``. ``records`` (request
    records) add the measured share above 25k input tokens and the measured figures;
    ``summary`` (``capacity.summarize``) the evidence table (computed from ``records`` when not
    given); ``evidence_context`` says what they were measured against and under which quota.
    ``growth`` is ``(label, users)`` pairs (``parse_growth``). ``quota_codes`` maps kind →
    Service Quotas code resolved live, over the shipped table. ``historical_usage`` is a
    Markdown section or a mapping of measures (e.g. from ``capacity.usage``).

    ``traffic`` (``measure_traffic``: real traffic at ``target_users``) makes the report one
    from real traffic (docs/report.md, "From real traffic"): the TPM asked is the replay's,
    section 4 is measured from the traffic at the target, section 7 is the traffic as
    measured, the users each quota serves are the users whose traffic it carries, replayed,
    and growth steps are sized by replay too; the planner's closed form, on the measured
    workload (``traffic.workload()`` unless ``workload`` is given), is shown beside it.
    """
    if not (use_case or "").strip():
        raise PlanInputError("use_case must describe the application (it is what AWS reads first)")
    if current.model_id is None:
        raise PlanInputError("current.model_id must name the model or inference profile")
    region = check_region(region)
    if account_id and not re.fullmatch(r"\d{12}", account_id.strip()):
        raise PlanInputError(f"account_id must be 12 digits, got {account_id!r}")
    if traffic is not None:
        check_traffic(traffic, current, target_users, historical_usage, result)
        workload = workload or traffic.workload()
    if workload is None and result is None:
        raise PlanInputError("a report needs a workload (or real traffic to measure it from)")
    if option is not None and comparison is None:
        raise PlanInputError("an option chosen needs the comparison it was chosen from")
    chosen = None if option is None or comparison is None else option_section(comparison, option)
    invoked = current.model_id
    profile = inference_profile_id or (invoked if is_profile_id(invoked) else None)
    # RPM is asked for where the account has an RPM quota (it is then enforced), else only
    # where the model table says Bedrock still enforces it (``answer`` decides).
    if result is None:
        assert workload is not None
        result = answer(current, workload, model, goal, target_users, headroom=headroom)
    workload = result.workload
    rep: Replayed | None = None
    if traffic is not None:
        rep = replayed(result, traffic, model)
        result = rep.answer
    plan, request, then = result.plan, result.request, result.requested
    if request is None or then is None:
        raise PlanInputError("a report needs an answer with target_users")
    slo = result.objective.slo
    pd_, rd = plain(plan.to_dict()), plain(request.to_dict())
    if summary is None and records is not None and len(records):
        from capacity.records import summarize

        summary = summarize(records)
    latency_obj = target_latency(request, workload, model)
    latency = None if latency_obj is None else plain(latency_obj)
    records_input = (
        float(summary["input_tokens_mean"].mean())
        if summary is not None and "input_tokens_mean" in summary and len(summary)
        else None
    )
    traffic_doc = (
        measured_section(traffic, workload.max_tokens)
        if traffic is not None
        else _traffic(rd, workload, _share_above(records, workload, records_input))
    )
    at = None if latency_obj is None else latency_obj.inflight
    info = describe_predictor(model, at, workload.prompt_tokens)
    steps = _growth_steps(growth, current, result, model, traffic)
    codes = _codes(rd, quota_codes)
    formulas = {f"plan.{k}": v for k, v in pd_.get("formulas", {}).items()}
    formulas.update({f"request.{k}": v for k, v in rd.get("formulas", {}).items()})
    formulas.update({f"traffic.{k}": v for k, v in traffic_doc.formulas.items()})
    if rep is None:
        raises = quota_raises(current, request, workload, model, slo)
        for i, r in enumerate(raises, start=1):
            formulas[f"steps.{i}.{r.kind}"] = (
                f"plan_capacity with {r.kind.upper()} {fmt(r.current)} → {fmt(r.desired)} "
                f"(and the raises before it) = {fmt(r.users_after)} users "
                f"({r.binding_after} binds)"
            )
        formulas["users_requested"] = (
            f"plan_capacity on the requested quota = {fmt(then.users)} users ({then.binding} binds)"
        )
        users = (plan.users, plan.binding_words, then.users, then.binding_words)
        delivered, headroom_text = float(result.headroom_delivered or 0.0), result.headroom_words()
        objective_text = result.objective.describe()
    else:
        formulas.update(replay_formulas(rep))
        users = (rep.today.users, rep.today.binding, rep.requested.users, rep.requested.binding)
        delivered = rep.requested.users / float(target_users) - 1
        headroom_text = replay_headroom(delivered, rep)
        objective_text = (
            f"at most {100 * rep.doc['throttle_target']:g} % of requests throttled, replayed "
            f"through the quota ledger (rule '{rep.doc['rule']}'); latency: "
            f"{result.objective.describe()}"
        )
    cols, rows = evidence_rows(summary)
    notes = tuple(dict.fromkeys([*pd_.get("notes", []), *rd.get("notes", []),
                                 *(rep.doc["notes"] if rep else [])]))  # fmt: skip
    asked = request.applied_to(current)
    figs: tuple[FigureImage, ...] = ()
    if figures:
        figs = evidence_figures(
            current, request, workload, model, slo, records, ask_chart=rep is None
        )
        if rep is not None and traffic is not None:  # the replay's chart is the ask's
            figs = replay_figures(traffic, current, rep) + figs
    return QuotaRequestReport(
        title=title or f"Quota increase request: {base_model_id(invoked)} in {region}",
        generated_at=generated_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        use_case=use_case.strip(),
        account_id=account_id.strip() if account_id else None,
        organization=organization or None,
        contact=contact or None,
        model_id=base_model_id(invoked),
        region=region,
        inference_profile_id=profile,
        scope=str(current.scope),
        current_quotas=_current(current, codes),
        target_users=float(target_users),
        objective=objective_text,
        headroom=request.headroom,
        headroom_delivered=delivered,
        headroom_text=headroom_text,
        workload=plain(_need(pd_, "workload", "plan")),
        traffic=traffic_doc,
        growth=steps,
        monitoring=(monitoring or "").strip()
        or default_monitoring(invoked, region, asked.runtime_tpm, request.burndown),
        historical_usage=history_markdown(traffic)
        if traffic is not None
        else usage_text(historical_usage),
        users_today=float(users[0]),
        binding_today=users[1],
        users_requested=float(users[2]),
        binding_requested=users[3],
        feasible=request.feasible,
        infeasible_reason=request.reason,
        latency=latency,
        measured_range=measured_range(latency, model, info),
        evidence_context=context_words(
            evidence_context or (TRAFFIC_ONLY if traffic is not None and summary is None else None),
            summary,
            current,
        ),
        evidence_columns=cols,
        evidence=rows,
        throttles=throttle_rows(summary),
        figures=figs,
        formulas=formulas,
        notes=notes,
        asks=_asks(
            current,
            codes,
            rd,
            region,
            {line.kind for line in result.asks},
            None if rep is None else rep.doc,
        ),
        plan=pd_,
        request=rd,
        predictor=None if info is None else plain(info.to_dict()),
        replay=None if rep is None else plain(rep.doc),
        option=chosen,
    )


def _growth_steps(
    growth: Sequence[tuple[str, float]],
    current: Quota,
    result: CapacityAnswer,
    model: Predictor | None,
    traffic: MeasuredTraffic | None,
) -> tuple[GrowthStep, ...]:
    """``required_quota`` at each projected user count; with traffic, the TPM by replay of the
    traffic scaled to those users (RPM stays the planner's)."""
    request = result.request
    assert request is not None
    steps = []
    for label, users in growth:
        g = required_quota(
            result.workload, users, model, result.objective.slo, request.headroom,
            model_id=current.model_id, scope=current.scope, rule=current.rule,
            rpm_enforced=request.rpm is not None,
        )  # fmt: skip
        tpm = g.runtime_tpm if traffic is None else traffic.size_for(float(users)).tpm
        steps.append(GrowthStep(str(label), float(users), int(tpm), g.rpm))
    return tuple(steps)
