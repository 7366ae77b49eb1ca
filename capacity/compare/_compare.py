"""What to buy: every way to carry a load on Amazon Bedrock, each with what to request, its
monthly cost, expected latency and replayed throttle share (docs/architecture.md, "What to
buy"). ``compare`` takes a workload and a target (the planner sizes, Poisson arrivals are
replayed); ``compare_traffic`` takes real traffic (replays size and check). Both are pure:
prices come in (``capacity.usage.Price``), nothing is read or written."""

from __future__ import annotations

import math

from capacity.compare._demand import traffic_demand
from capacity.compare._given import CompareError, GivenFigures
from capacity.compare._rows import (
    NAMES,
    Latency,
    Month,
    Sized,
    batch_row,
    on_demand_row,
    pt_row,
    reserved_row,
)
from capacity.compare._table import BuyOption, Comparison
from capacity.compare._traffic import size_traffic
from capacity.compare._workload import baseline_key, size_workload
from capacity.planning import DEFAULT_HEADROOM, Objective, Quota, Workload, fmt
from capacity.prediction import Predictor
from capacity.serving import (
    DEFAULT_THROTTLE_TARGET,
    MaxTokensPolicy,
    QuotaRule,
    RequestArrays,
    base_model_id,
    is_profile_id,
)
from capacity.usage import HOURS_PER_MONTH, Price, monthly_cost

__all__ = ["DEFAULT_REPLAY_MINUTES", "compare", "compare_traffic"]

DEFAULT_REPLAY_MINUTES = 60.0
"""Minutes of Poisson arrivals replayed for a workload (as ``verify_plan``'s default)."""

TRAFFIC_OBJECTIVE = (
    "none: the traffic's own requests are replayed (each settles at its logged latency, or the "
    "serving model's where the log has none); quotas are sized on throttles, not latency"
)


def _rows(
    sized: dict[str, Sized], month: Month, price: Price, given: GivenFigures
) -> tuple[BuyOption, ...]:
    out = []
    for key in NAMES:
        s = sized[key]
        if key.startswith("reserved-"):
            out.append(reserved_row(key.removeprefix("reserved-"), s, month, price, given))
        elif key.startswith("pt-"):
            out.append(pt_row(key.removeprefix("pt-"), s, price, given))
        elif key == "batch":
            out.append(batch_row(s, month, price, given))
        else:
            out.append(on_demand_row(key, s, month, price, given))
    return tuple(out)


def _check(price: Price, model_id: str) -> None:
    if not base_model_id(model_id).startswith(price.model_match):
        raise CompareError(
            f"the price given is {price.model_match}'s, not {model_id}'s: look it up with "
            "capacity.usage.load_prices(...).price(model_id, region)"
        )


def compare(
    quota: Quota,
    workload: Workload,
    target_users: float,
    price: Price,
    *,
    model: Predictor | None = None,
    goal: Objective | None = None,
    headroom: float = DEFAULT_HEADROOM,
    given: GivenFigures | None = None,
    minutes: float = DEFAULT_REPLAY_MINUTES,
    seed: int = 0,
) -> Comparison:
    """The options for ``workload`` at ``target_users`` from today's bedrock-runtime ``quota``
    (its ``model_id`` names the model), priced with ``price`` (the price table's row for the
    model and Region) and the user's ``given`` figures, under ``goal`` (default: the default
    objective wherever a model is given — ``capacity.objective``). Each option's quotas are the
    planner's (``answer``: the on-demand Standard option on today's scope is exactly
    ``llmcap plan``'s ask) and are replayed for ``minutes`` of Poisson arrivals at the target's
    busiest minute."""
    if quota.endpoint != "runtime" or quota.model_id is None:
        raise CompareError(
            "compare starts from today's bedrock-runtime quota of a named model: give "
            "Quota(tpm=..., model_id=...)"
        )
    if not (math.isfinite(minutes) and minutes > 0):
        raise CompareError(f"replay minutes must be above 0, got {minutes!r}")
    given = given or GivenFigures()
    _check(price, quota.model_id)
    s = size_workload(
        quota,
        workload,
        target_users,
        model=model,
        goal=goal,
        headroom=headroom,
        given=given,
        minutes=minutes,
        seed=seed,
    )
    req = s.standard.request
    assert req is not None
    w = s.standard.workload
    cost = monthly_cost(
        price,
        req.peak_requests_per_min,
        input_tokens=w.input_tokens,
        output_tokens=w.output_tokens,
        cache_read_tokens=w.cache_read_tokens,
        cache_write_tokens=w.cache_write_tokens,
        peak_to_average=w.peak_to_average,
        active_hours_per_day=w.active_hours_per_day,
    )
    month = Month(
        cost.monthly_usd,
        f"{fmt(cost.requests_per_min)} requests/min on average over "
        f"{fmt(cost.active_hours_per_day)} h/day at ${cost.per_request:.5f} per request",
    )
    return Comparison(
        source="workload",
        model_id=quota.model_id,
        region=price.region,
        target_users=float(target_users),
        objective=s.objective.describe(),
        demand=s.demand.words,
        rule=quota.rule,
        price=price.describe(),
        given=given.to_dict(),
        baseline=baseline_key(quota),
        options=_rows(s.sized, month, price, given),
        notes=(f"today's quota: {quota.describe()} ({quota.scope})", *req.notes),
    )


def compare_traffic(
    arrays: RequestArrays,
    model_id: str,
    price: Price,
    *,
    words: str,
    quota: Quota | None = None,
    rule: QuotaRule = "bucket",
    throttle_target: float = DEFAULT_THROTTLE_TARGET,
    max_tokens: MaxTokensPolicy = "model default",
    burndown: float | None = None,
    given: GivenFigures | None = None,
    target_users: float | None = None,
) -> Comparison:
    """The options for real traffic: ``arrays`` (one model's requests, already scaled to
    ``target_users`` where that was asked; ``words`` say what they are), priced with
    ``price``. Every quota is the smallest whose replay throttles at most ``throttle_target``
    (the on-demand Standard TPM is ``size_quota``'s, as ``llmcap plan --from-trace``);
    ``quota`` is today's, when known (its scope, RPM and TPD apply)."""
    given = given or GivenFigures()
    _check(price, model_id)
    if quota is not None and quota.endpoint != "runtime":
        raise CompareError("compare starts from today's bedrock-runtime quota (or none)")
    today = "not given" if quota is None else f"{quota.describe()} ({quota.scope})"
    demand = traffic_demand(
        arrays, base_model_id(model_id), rule, words, max_tokens=max_tokens, burndown=burndown
    )
    mean, source = demand.latency_s()
    latency = Latency(mean, None, f"mean response {fmt(mean)} s: {source}")
    baseline = baseline_key(quota or Quota(tpm=1, model_id=model_id))  # only its scope is read
    s = size_traffic(
        demand,
        quota,
        throttle_target=throttle_target,
        given=given,
        latency=latency,
        baseline=baseline,
    )
    a = arrays
    scale = HOURS_PER_MONTH * 3600.0 / demand.span_s
    usd = (
        price.request_cost(
            float(a.input_tokens.sum()),
            float(a.output_tokens.sum()),
            float(a.cache_read_tokens.sum()),
            float(a.cache_write_tokens.sum()),
        )
        * scale
    )
    month = Month(
        usd,
        f"the traffic's {len(a):,} requests over its {fmt(demand.span_s / 3600)} h, at that "
        f"rate all month ({fmt(HOURS_PER_MONTH)} h)",
    )
    named = f"profile id {model_id}" if is_profile_id(model_id) else f"model {model_id}"
    notes = (f"today's quota: {today}", named, *s.standard.notes)
    return Comparison(
        source="traffic",
        model_id=model_id,
        region=price.region,
        target_users=target_users,
        objective=TRAFFIC_OBJECTIVE + f"; at most {100 * throttle_target:g} % throttled",
        demand=words,
        rule=rule,
        price=price.describe(),
        given=given.to_dict(),
        baseline=baseline,
        options=_rows(s.sized, month, price, given),
        notes=notes,
    )
