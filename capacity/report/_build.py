"""``build_report``: the quota-increase justification from the inputs a user has.

Every number the report quotes is read from the planner's ``CapacityPlan.to_dict()`` and
``QuotaRequest.to_dict()`` (or computed from them with the formula written next to it), so the
report cannot disagree with ``plan_capacity`` / ``required_quota``.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from capacity.figures import png_bytes
from capacity.figures.justification import (
    plot_quota_ask,
    quota_raises,
    target_latency,
)
from capacity.planning import (
    DEFAULT_HEADROOM,
    CapacityAnswer,
    Objective,
    PlanInputError,
    Quota,
    QuotaRequest,
    Slo,
    Workload,
    answer,
    fmt,
    required_quota,
)
from capacity.prediction import Predictor
from capacity.predictors import PredictorInfo, describe_predictor
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
from capacity.serving import base_model_id, is_profile_id

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
KINDS = ("tpm", "rpm", "tpd")
UNITS = {"tpm": "tokens/min", "rpm": "requests/min", "tpd": "tokens/day"}

EVIDENCE_COLUMNS = (
    "prompt_label",
    "level",
    "n",
    "n_ok",
    "input_tokens_mean",
    "output_tokens_mean",
    "tps_p50",
    "ttft_p50_s",
    "ttft_p95_s",
    "ttlt_p95_s",
    "output_tps",
    "achieved_rpm",
    "achieved_tpm",
    "concurrency_mean",
    "throttle_rate",
)
"""Summary columns quoted as evidence (``capacity.summarize``), per prompt size and level."""


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
) -> tuple[Ask, ...]:
    """The asks of ``kinds`` (``CapacityAnswer.asks``) above today's values."""
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


def _png(fig: Any) -> str:
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def _figures(
    current: Quota,
    request: QuotaRequest,
    workload: Workload,
    model: Predictor | None,
    slo: Slo | None,
    records: pd.DataFrame | None,
) -> tuple[FigureImage, ...]:
    from capacity.figures import plot_scaling, plot_throughput
    from capacity.fitting import CapacityModel

    out = [
        FigureImage(
            "quota_ask",
            "Users supported today and with the requested quota, both on the supported-users "
            "curve (raised quotas scale together); each raise as its own step; latency at the "
            "target beside it.",
            _png(plot_quota_ask(current, request, workload, model, slo)),
        )
    ]
    if records is not None and len(records):
        fitted = model if isinstance(model, CapacityModel) else None
        curves = (
            "with the fitted curves."
            if fitted is not None
            else "measured only: the latency model has no per-prompt fitted curves to draw."
        )
        out.append(
            FigureImage(
                "scaling",
                "Measured per-request tokens/s and TTFT vs requests in flight (bands: p10-p90), "
                + curves,
                _png(plot_scaling(records, fitted)),
            )
        )
        if fitted is not None:
            out.append(
                FigureImage(
                    "throughput",
                    "System output throughput vs requests in flight: measured points, the USL "
                    "fit and its band, and the knees.",
                    _png(plot_throughput(records, fitted)),
                )
            )
    return tuple(out)


def _evidence(summary: pd.DataFrame | None) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    if summary is None or summary.empty:
        return (), ()
    cols = tuple(c for c in EVIDENCE_COLUMNS if c in summary.columns)
    rows = tuple(plain(r) for r in summary[list(cols)].to_dict("records"))
    return cols, rows


def _throttles(summary: pd.DataFrame | None) -> tuple[dict[str, Any], ...]:
    if summary is None or summary.empty or "n_throttled" not in summary.columns:
        return ()
    hit = summary[pd.to_numeric(summary["n_throttled"], errors="coerce").fillna(0) > 0]
    cols = [c for c in ("prompt_label", "level", "n", "n_throttled", "throttle_rate") if c in hit]
    return tuple(plain(r) for r in hit[cols].to_dict("records"))


def _measured_range(
    latency: Mapping[str, Any] | None, model: Predictor | None, info: PredictorInfo | None
) -> str:
    if model is None:
        return "No fitted model: latency is assumed, not measured; the SLO is not checked."
    if latency is None:
        return "The fitted endpoint cannot carry the target at all (see the reason)."
    top = latency.get("measured_max_inflight")
    n = float(latency["inflight"])
    measured = f"measured up to {fmt(top)} requests in flight" if top is not None else "measured"
    if latency.get("extrapolated"):
        factor = f" (×{n / float(top):.1f})" if top else ""
        return (
            f"The evidence was {measured}; the target's busiest minute runs {fmt(n)} in flight, "
            f"beyond it{factor}: the latency there is extrapolated from "
            + ("the twin's serving model." if info and info.is_twin else "the fitted curves.")
        )
    return (
        f"The evidence was {measured}; the target's busiest minute runs {fmt(n)} in flight, "
        "within the measured range."
    )


_USAGE_HEADING = re.compile(r"^#+\s*historical usage\s*\n+", re.IGNORECASE)


def usage_text(usage: str | Mapping[str, Any] | None) -> str | None:
    """Historical usage as Markdown: text as given (a leading "Historical usage" heading
    dropped: the report has its own); a mapping (e.g. ``capacity.usage``'s ``to_dict()``) as a
    table of its numbers and words, nested mappings one level deep (``tpm.p90``), lists left
    out; None when empty."""
    if usage is None:
        return None
    if isinstance(usage, str):
        return _USAGE_HEADING.sub("", usage.strip()).strip() or None
    rows = []
    for key, value in usage.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            if v is None or isinstance(v, list | tuple | Mapping):
                continue
            name = key if sub is None else f"{key}.{sub}"
            shown = f"{v:,.6g}" if isinstance(v, float) else str(v)
            rows.append(f"| {name} | {shown} |")
    if not rows:
        return None
    return "\n".join(["| Measure | Value |", "|---|---|", *rows])


def build_report(
    *,
    use_case: str,
    region: str,
    current: Quota,
    workload: Workload,
    target_users: float,
    model: Predictor | None = None,
    goal: Objective | None = None,
    headroom: float = DEFAULT_HEADROOM,
    result: CapacityAnswer | None = None,
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
    """
    if not (use_case or "").strip():
        raise PlanInputError("use_case must describe the application (it is what AWS reads first)")
    if current.model_id is None:
        raise PlanInputError("current.model_id must name the model or inference profile")
    region = check_region(region)
    if account_id and not re.fullmatch(r"\d{12}", account_id.strip()):
        raise PlanInputError(f"account_id must be 12 digits, got {account_id!r}")
    invoked = current.model_id
    profile = inference_profile_id or (invoked if is_profile_id(invoked) else None)
    # RPM is asked for where the account has an RPM quota (it is then enforced), else only
    # where the model table says Bedrock still enforces it (``answer`` decides).
    if result is None:
        result = answer(current, workload, model, goal, target_users, headroom=headroom)
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
    traffic = _traffic(rd, workload, _share_above(records, workload, records_input))
    at = None if latency_obj is None else latency_obj.inflight
    info = describe_predictor(model, at, workload.prompt_tokens)
    rpm_enforced = request.rpm is not None
    steps = []
    for label, users in growth:
        g = required_quota(
            workload, users, model, slo, request.headroom, model_id=invoked,
            scope=current.scope, rule=current.rule, rpm_enforced=rpm_enforced,
        )  # fmt: skip
        steps.append(GrowthStep(str(label), float(users), g.runtime_tpm, g.rpm))
    codes = _codes(rd, quota_codes)
    formulas = {f"plan.{k}": v for k, v in pd_.get("formulas", {}).items()}
    formulas.update({f"request.{k}": v for k, v in rd.get("formulas", {}).items()})
    formulas.update({f"traffic.{k}": v for k, v in traffic.formulas.items()})
    raises = quota_raises(current, request, workload, model, slo)
    for i, r in enumerate(raises, start=1):
        formulas[f"steps.{i}.{r.kind}"] = (
            f"plan_capacity with {r.kind.upper()} {fmt(r.current)} → {fmt(r.desired)} "
            f"(and the raises before it) = {fmt(r.users_after)} users ({r.binding_after} binds)"
        )
    formulas["users_requested"] = (
        f"plan_capacity on the requested quota = {fmt(then.users)} users ({then.binding} binds)"
    )
    cols, rows = _evidence(summary)
    notes = tuple(dict.fromkeys([*pd_.get("notes", []), *rd.get("notes", [])]))
    asked = request.applied_to(current)
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
        objective=result.objective.describe(),
        headroom=request.headroom,
        headroom_delivered=float(result.headroom_delivered or 0.0),
        headroom_text=result.headroom_words(),
        workload=plain(_need(pd_, "workload", "plan")),
        traffic=traffic,
        growth=tuple(steps),
        monitoring=(monitoring or "").strip()
        or default_monitoring(invoked, region, asked.runtime_tpm, request.burndown),
        historical_usage=usage_text(historical_usage),
        users_today=float(plan.users),
        binding_today=plan.binding_words,
        users_requested=float(then.users),
        binding_requested=then.binding_words,
        feasible=request.feasible,
        infeasible_reason=request.reason,
        latency=latency,
        measured_range=_measured_range(latency, model, info),
        evidence_context=_evidence_context(evidence_context, summary, current),
        evidence_columns=cols,
        evidence=rows,
        throttles=_throttles(summary),
        figures=_figures(current, request, workload, model, slo, records) if figures else (),
        formulas=formulas,
        notes=notes,
        asks=_asks(current, codes, rd, region, {line.kind for line in result.asks}),
        plan=pd_,
        request=rd,
        predictor=None if info is None else plain(info.to_dict()),
    )


def _evidence_context(given: str | None, summary: pd.DataFrame | None, current: Quota) -> str:
    """What the evidence was measured against; a note when it ran above today's quota."""
    text = (given or "").strip() or "The evidence's endpoint and quota were not recorded."
    if summary is not None and "achieved_tpm" in summary and len(summary):
        top = float(pd.to_numeric(summary["achieved_tpm"], errors="coerce").max())
        if math.isfinite(top) and top > current.runtime_tpm:
            text += (
                f" The measurements reached {fmt(top)} tokens per minute, above today's quota "
                f"of {fmt(current.runtime_tpm)}: they show what the endpoint serves, not what "
                "the account may send today."
            )
    return text
