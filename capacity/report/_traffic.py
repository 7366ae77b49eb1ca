"""Real traffic for the report (docs/report.md, "From real traffic").

``measure_traffic`` takes a request table (``capacity.usage.load_requests``, a template, a
trace) and the account's quota, and keeps what the report needs: the traffic as measured (its
section 7), the traffic at the target — scaled with ``scale_trace`` when the users who produced
it are given, else taken as the target's — and the TPM that carries it, sized by replaying every
request through the quota ledger (``capacity.serving.size_quota``). ``MeasuredTraffic``
answers the report's other questions the same way, by replay, never by a closed form:

- ``users_carried(quota)``: the most users whose traffic (the measured traffic scaled to them)
  the quota throttles at most the throttle target of — bisection over users, one replay each;
- ``size_for(users)``: the TPM a growth step needs (``size_quota`` on the traffic scaled);
- ``throttle_curve(tpms)``: the share of the target's requests each TPM throttles;
- ``workload()``: the measured request class as a planning ``Workload`` (mean tokens, the
  mean max_tokens the replay reserved, the target's per-user rate, the measured
  peak-to-average), for the planner's closed form shown beside the replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from capacity.planning import PlanInputError, Quota, Workload, count
from capacity.serving import QuotaLimits, QuotaRule, base_model_id

if TYPE_CHECKING:  # the traffic engine (DuckDB, Arrow) and the replay load when first used
    from capacity.serving import MaxTokensPolicy, QuotaSizing, ReplayResult
    from capacity.usage import ModelTraffic, RequestTable

__all__ = ["Carried", "MeasuredTraffic", "measure_traffic", "prompt_tokens_of"]

KIND_LABEL = {"tokens": "TPM", "requests": "RPM", "tokens_per_day": "TPD"}
"""The ledger's rejection kinds as quota names."""
NOUNS = {
    "invocation-logs": "logged requests",
    "trace": "requests of a trace",
    "llmcap-run": "requests of llmcap runs",
}
MOST_USERS_FACTOR = 64
"""``users_carried`` doubles past the target up to this many times it, then stops."""
USERS_TOLERANCE = 0.01
"""``users_carried`` stops when its bracket is within 1 % (or one user)."""


@dataclass(frozen=True)
class Carried:
    """The users a quota carries (``MeasuredTraffic.users_carried``): ``users``, the quota that
    throttles most of the next users' traffic (``binding``: TPM, RPM or TPD), and how many
    replays the search took."""

    users: float
    binding: str
    replays: int


@dataclass(frozen=True, eq=False)
class MeasuredTraffic:
    """One model's real traffic as the report uses it (module docstring); ``measure_traffic``
    builds it. ``measured`` is the analysis of the traffic as read, ``at_target`` of the
    traffic at the target (the same when it is not scaled), ``sizing`` the replay sizing of
    the latter under ``rule`` with ``throttle_target``."""

    model_id: str
    label: str
    kind: str
    requests_measured: int
    trace_users: float | None
    target_users: float
    throttle_target: float
    rule: QuotaRule
    max_tokens: MaxTokensPolicy
    burndown: float | None
    measured: ModelTraffic
    at_target: ModelTraffic
    sizing: QuotaSizing
    notes: tuple[str, ...]
    table: RequestTable = field(repr=False)
    target_table: RequestTable = field(repr=False)

    @property
    def prompt_tokens(self) -> float:
        """Mean prompt tokens per served request of the traffic as measured (what the latency
        objective is stated for): ``prompt_tokens_of(measured)``."""
        return prompt_tokens_of(self.measured)

    @property
    def base_users(self) -> float:
        """The users who produced the measured traffic (the target's when not given)."""
        return self.target_users if self.trace_users is None else self.trace_users

    def source(self) -> str:
        """Where the traffic at the target comes from, in words."""
        noun = NOUNS.get(self.kind, "requests")
        text = f"measured from {self.requests_measured:,} {noun} ({self.label})"
        if self.trace_users is None:
            return f"{text}, taken as the traffic of {count(self.target_users)} users"
        return (
            f"{text} of {count(self.trace_users)} users, scaled to {count(self.target_users)} users"
        )

    def table_for(self, users: float) -> RequestTable:
        """The measured traffic scaled to ``users`` (``scale_trace``, its default seed and
        shifts: the target's table is ``table_for(target_users)``)."""
        from capacity.usage import scale_trace

        if users == self.target_users:
            return self.target_table
        return scale_trace(self.table, trace_users=self.base_users, target_users=users)

    def replay_at(self, quota: Quota, users: float) -> ReplayResult | None:
        """The replay of ``users``' traffic through ``quota`` (None when it has no request)."""
        from capacity.serving import replay
        from capacity.usage import request_arrays

        table = self.table_for(users)
        if len(table) == 0:
            return None
        arrays = request_arrays(table, self.model_id)
        return replay(arrays, self.model_id, quota.limits(), max_tokens=self.max_tokens,
                      burndown=self.burndown)  # fmt: skip

    def users_carried(self, quota: Quota) -> Carried:
        """The most users whose traffic ``quota`` throttles at most ``throttle_target`` of:
        from the target, doubling while it passes (up to ``MOST_USERS_FACTOR`` × the target),
        then bisection to ``USERS_TOLERANCE``; rounded down to whole users."""
        replays = 0
        failure: ReplayResult | None = None

        def fails(users: float) -> bool:
            nonlocal replays, failure
            replays += 1
            r = self.replay_at(quota, users)
            if r is not None and r.throttled_share > self.throttle_target:
                failure = r
                return True
            return False

        lo, hi = 0.0, self.target_users
        if not fails(hi):
            lo = hi
            while True:
                if lo >= MOST_USERS_FACTOR * self.target_users:
                    return Carried(math.floor(lo), "nothing within the range tried", replays)
                hi = 2 * lo
                if fails(hi):
                    break
                lo = hi
        while hi - lo > max(1.0, USERS_TOLERANCE * lo):
            mid = (lo + hi) / 2
            if fails(mid):
                hi = mid
            else:
                lo = mid
        return Carried(math.floor(lo + 1e-9), self._binding(failure), replays)

    def _binding(self, failure: ReplayResult | None) -> str:
        if failure is None:
            return "nothing within the range tried"
        kinds = failure.throttled_by_kind
        kind = max(kinds, key=lambda k: kinds[k]) if kinds else "tokens"
        return KIND_LABEL.get(kind, kind)

    def size_for(self, users: float) -> QuotaSizing:
        """``size_quota`` on the traffic scaled to ``users`` (the target's is ``sizing``)."""
        from capacity.serving import size_quota
        from capacity.usage import request_arrays

        if users == self.target_users:
            return self.sizing
        arrays = request_arrays(self.table_for(users), self.model_id)
        return size_quota(arrays, self.model_id, rule=self.rule,
                          throttle_target=self.throttle_target, max_tokens=self.max_tokens,
                          burndown=self.burndown)  # fmt: skip

    def throttle_curve(self, tpms: Sequence[int]) -> list[tuple[int, float]]:
        """(TPM, share of the target's requests throttled) at each TPM, nothing else limited."""
        from capacity.serving import replay
        from capacity.usage import request_arrays

        arrays = request_arrays(self.target_table, self.model_id)
        out = []
        for tpm in tpms:
            r = replay(arrays, self.model_id, QuotaLimits(tpm=int(tpm), rule=self.rule),
                       max_tokens=self.max_tokens, burndown=self.burndown)  # fmt: skip
            out.append((int(tpm), r.throttled_share))
        return out

    def mean_max_tokens(self) -> float:
        """The mean max_tokens the replay reserved per request (logged, else the policy): its
        mean reservation less the mean prompt."""
        from capacity.usage import request_arrays

        at = self.sizing.at_recommended
        arrays = request_arrays(self.target_table, self.model_id)
        prompt = arrays.input_tokens + arrays.cache_read_tokens + arrays.cache_write_tokens
        reserved = float(np.sum(at.minutes.reserved_tokens)) / max(at.requests, 1)
        return max(reserved - float(np.mean(prompt)), 1.0)

    def workload(self) -> Workload:
        """The measured request class at the target (module docstring)."""
        s = self.at_target.summary
        latency = s.latency_ms.get("latency_ms_avg")
        return s.workload(
            self.mean_max_tokens(),
            requests_per_user_per_min=self.at_target.per_minute.mean_requests / self.target_users,
            latency_s=latency / 1000.0 if latency and math.isfinite(latency) else None,
        )


def prompt_tokens_of(m: ModelTraffic) -> float:
    """Mean prompt tokens (input + cache read + cache write) per served request of ``m``."""
    d = m.tokens.get("prompt_tokens")
    return 0.0 if d is None else float(d.mean)


def _model_of(table: RequestTable, model_id: str, label: str) -> str:
    """The model of ``table`` that ``model_id`` (the id the quota is for) names."""
    models = table.models
    if model_id in models:
        return model_id
    same = [m for m in models if base_model_id(m) == base_model_id(model_id)]
    if len(same) == 1:
        return same[0]
    raise PlanInputError(
        f"{label}: the traffic holds requests of {', '.join(models) or 'no model'}, not of "
        f"{model_id}: name the model the quota is for (--model-id), or load the traffic as "
        "that model's"
    )


def measure_traffic(
    table: RequestTable,
    current: Quota,
    *,
    target_users: float,
    trace_users: float | None = None,
    throttle_target: float | None = None,
    max_tokens: MaxTokensPolicy = "model default",
    burndown: float | None = None,
    label: str | None = None,
    region: str | None = None,
    executor: str = "duckdb",
    ray_address: str | None = None,
) -> MeasuredTraffic:
    """The traffic of ``current.model_id`` in ``table`` at ``target_users`` (module docstring):
    scaled from ``trace_users`` when given, else taken as the target's; analysed; and its TPM
    sized by replay under ``current.rule`` with ``throttle_target`` (default: size_quota's,
    0.1 %; requests whose log lacks
    max_tokens reserve ``max_tokens``), today's quota replayed too. ``label`` names the source
    in the report (default: the table's own); ``region`` the usage summaries' Region (default:
    the one the logs name); ``executor``/``ray_address`` as for ``analyze_traffic``."""
    from capacity.serving import DEFAULT_THROTTLE_TARGET, size_quota
    from capacity.usage import analyze_traffic, request_arrays, scale_trace

    if throttle_target is None:
        throttle_target = DEFAULT_THROTTLE_TARGET
    if current.model_id is None:
        raise PlanInputError("current.model_id must name the model the traffic is sized for")
    if not target_users > 0:
        raise PlanInputError(f"target users must be above 0, got {target_users!r}")
    name = label or table.report.source
    model_id = _model_of(table, current.model_id, name)
    one = table.for_model(model_id)
    target = (
        one
        if trace_users is None
        else scale_trace(one, trace_users=trace_users, target_users=target_users)
    )

    def analyse(t: RequestTable) -> ModelTraffic:
        return analyze_traffic(
            t, executor=executor, ray_address=ray_address, burndown=burndown, region=region,
            quota_tpm=current.tpm, quota_rpm=current.rpm,
        ).model(model_id)  # fmt: skip

    measured = analyse(one)
    at_target = measured if trace_users is None else analyse(target)
    sizing = size_quota(
        request_arrays(target, model_id), model_id, rule=current.rule,
        throttle_target=throttle_target, current=current.limits(), max_tokens=max_tokens,
        burndown=burndown,
    )  # fmt: skip
    return MeasuredTraffic(
        model_id=model_id, label=name, kind=measured.summary.meta.source,
        requests_measured=len(one), trace_users=trace_users, target_users=float(target_users),
        throttle_target=throttle_target, rule=current.rule, max_tokens=max_tokens,
        burndown=burndown, measured=measured, at_target=at_target, sizing=sizing,
        notes=tuple(target.report.lines_for_humans()), table=one, target_table=target,
    )  # fmt: skip
