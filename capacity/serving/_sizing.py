"""The smallest quotas that carry logged traffic: bisection over replays (``_replay.py``).

A quota *passes* when its replay throttles at most ``throttle_target`` of the requests. The
search assumes that a larger quota never throttles more (true of a single bucket without
debts; the acceptance test checks the answer, replayed, and 0.9× of it):

1. **Bracket.** A quota below the (k + 1)-th largest reservation, k the throttles allowed,
   fails without a replay (more than k reservations can never fit). From a first guess (the
   busiest minute's settled tokens for TPM under rule "bucket", its reservations under rule
   "window", the whole trace's settled tokens for TPD), halve while it passes or double while
   it fails.
2. **Bisection** on the geometric mean until the passing bound is within ``tolerance`` (0.5 %)
   of the failing one, in whole tokens. A failing replay stops as soon as it exceeds the
   allowed throttles.

`size_quota` sizes TPM under the chosen rule (RPM as given, TPD unlimited), then TPM under the
other rule, then TPD with TPM at its sized value (so the pair together meets the target), and
what a max_tokens policy (max_tokens capped at the p99 of the model's successful outputs)
would need; with today's quota it replays that too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from capacity.serving._ledger import QUOTA_RULES, QuotaLimits, QuotaRule
from capacity.serving._replay import ReplayResult, run, summarise
from capacity.serving._requests import (
    FailedPolicy,
    MaxTokensPolicy,
    Prepared,
    ReplayError,
    RequestArrays,
    prepare,
)

if TYPE_CHECKING:
    from capacity.serving._profile import ServingModel

__all__ = [
    "DEFAULT_THROTTLE_TARGET",
    "MaxTokensSaving",
    "QuotaSizing",
    "allowed_throttles",
    "size_quota",
    "smallest_passing",
]

DEFAULT_THROTTLE_TARGET = 0.001
"""The largest share of requests a sized quota may throttle, by default (0.1 %)."""
DEFAULT_TOLERANCE = 0.005
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class MaxTokensSaving:
    """What capping max_tokens at the p99 of the successful outputs (``max_tokens``) would need
    instead of today's setting: ``tpm`` under the same rule and target, ``saving_share`` =
    1 − tpm / today's TPM, and how many logged outputs are longer (``cut_requests``: they would
    be truncated)."""

    max_tokens: int
    tpm: int
    saving_share: float
    cut_requests: int
    replays: int


@dataclass(frozen=True)
class QuotaSizing:
    """The quotas one model's traffic needs (module docstring).

    ``tpm``: the smallest TPM throttling at most ``throttle_target`` under ``rule`` (RPM as
    given, TPD unlimited); ``tpm_other_rule``: the same under ``other_rule``; ``tpd``: the
    smallest TPD that, with TPM = ``tpm``, keeps the throttles within the target;
    ``at_recommended``: the replay at (``tpm``, ``rpm``, ``tpd``); ``current``: the replay at
    today's quota when given; ``replays``: replays run in all.
    """

    model_id: str
    rule: QuotaRule
    throttle_target: float
    requests: int
    allowed_throttles: int
    tpm: int
    other_rule: QuotaRule
    tpm_other_rule: int
    rpm: int | None
    tpd: int
    at_recommended: ReplayResult
    max_tokens: MaxTokensSaving | None
    current: ReplayResult | None
    replays: int
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the recommended TPM is under ``"tpm"``."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["at_recommended"] = self.at_recommended.to_dict()
        out["current"] = None if self.current is None else self.current.to_dict()
        out["max_tokens"] = None if self.max_tokens is None else vars(self.max_tokens)
        out["notes"] = list(self.notes)
        return out


def allowed_throttles(requests: int, throttle_target: float) -> int:
    """The most throttles a replay of ``requests`` may have at ``throttle_target``."""
    k = math.floor(throttle_target * requests)
    return k - 1 if k > 0 and k / requests > throttle_target else k


def smallest_passing(
    passes: Callable[[int], bool], guess: int, known_fail: int, tolerance: float
) -> int:
    """The smallest whole quota for which ``passes`` holds, to ``tolerance`` (module docstring).

    ``known_fail`` (≥ 0) is a quota known to fail, below which nothing is tried.
    """
    lo, hi = known_fail, max(guess, known_fail + 1)
    if passes(hi):
        while hi // 2 > lo:
            if not passes(hi // 2):
                lo = hi // 2
                break
            hi //= 2
    else:
        for _ in range(_MAX_DOUBLINGS):
            lo, hi = hi, 2 * hi
            if passes(hi):
                break
        else:
            raise ReplayError(f"no quota up to {hi:,} meets the throttle target")
    while hi - lo > 1 and hi > lo * (1.0 + tolerance):
        mid = min(max(math.isqrt(lo * hi), lo + 1), hi - 1)
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


class _Search:
    """Replays one prepared trace at candidate quotas, counting them."""

    def __init__(self, prep: Prepared, allowed: int, tolerance: float) -> None:
        self.prep = prep
        self.allowed = allowed
        self.tolerance = tolerance
        self.replays = 0
        k = min(allowed, len(prep) - 1)  # the (k + 1)-th largest reservation never fits below
        self.known_fail = int(np.partition(prep.reservation, len(prep) - 1 - k)[-1 - k]) - 1

    def passes(self, quota: QuotaLimits) -> bool:
        self.replays += 1
        status = run(self.prep, quota, max_throttles=self.allowed)
        return int(np.count_nonzero(status >= 0)) <= self.allowed

    def smallest(self, make: Callable[[int], QuotaLimits], guess: int) -> int:
        return smallest_passing(
            lambda v: self.passes(make(v)), guess, max(self.known_fail, 0), self.tolerance
        )


def _tpm(search: _Search, rule: QuotaRule, rpm: int | None, demand: ReplayResult) -> int:
    guess = demand.peak_settled_tpm if rule == "bucket" else demand.peak_reserved_tpm
    return search.smallest(lambda v: QuotaLimits(tpm=v, rpm=rpm, rule=rule), max(guess, 1))


def size_quota(
    requests: RequestArrays,
    model_id: str,
    *,
    rule: QuotaRule = "bucket",
    throttle_target: float = DEFAULT_THROTTLE_TARGET,
    rpm: int | None = None,
    current: QuotaLimits | None = None,
    max_tokens: MaxTokensPolicy = "model default",
    burndown: float | None = None,
    serving: ServingModel | None = None,
    failed: FailedPolicy = "demand",
    tolerance: float = DEFAULT_TOLERANCE,
) -> QuotaSizing:
    """Size TPM and TPD for one model's logged ``requests`` (a `RequestArrays`; module docstring).

    ``rule``: the quota rule assumed (the other rule's TPM is computed next to it);
    ``throttle_target``: the largest share of requests that may be throttled; ``rpm``: an RPM
    quota applied throughout (None: unlimited); ``current``: today's quota, replayed as is;
    ``max_tokens``, ``burndown``, ``serving``, ``failed``: as for `replay`; ``tolerance``: the
    relative precision of the search.
    """
    if rule not in QUOTA_RULES:
        raise ReplayError(f"rule must be one of {QUOTA_RULES}; got {rule!r}")
    if not 0.0 <= throttle_target < 1.0:
        raise ReplayError(f"throttle_target must be in [0, 1); got {throttle_target!r}")
    if not 0.0 < tolerance < 1.0:
        raise ReplayError(f"tolerance must be in (0, 1); got {tolerance!r}")
    options: dict[str, Any] = {"max_tokens": max_tokens, "burndown": burndown,
                               "serving": serving, "failed": failed}  # fmt: skip
    prep = prepare(requests, model_id, **options)
    allowed = allowed_throttles(len(prep), throttle_target)
    search = _Search(prep, allowed, tolerance)
    demand = summarise(prep, QuotaLimits(rule=rule), run(prep, QuotaLimits(rule=rule)))
    if rpm is not None and not search.passes(QuotaLimits(rpm=rpm, rule=rule)):
        raise ReplayError(
            f"RPM {rpm:,} alone throttles more than {100 * throttle_target:g} % of {model_id}'s "
            "requests: raise rpm, or pass rpm=None (Bedrock no longer enforces RPM on "
            "bedrock-runtime)"
        )
    tpm = _tpm(search, rule, rpm, demand)
    other: QuotaRule = "window" if rule == "bucket" else "bucket"
    tpm_other = _tpm(search, other, rpm, demand)
    total = int(demand.minutes.settled_tokens.sum())
    tpd = search.smallest(lambda v: QuotaLimits(tpm=tpm, rpm=rpm, tpd=v, rule=rule), total)
    recommended = QuotaLimits(tpm=tpm, rpm=rpm, tpd=tpd, rule=rule)
    at_recommended = summarise(prep, recommended, run(prep, recommended))
    replays = search.replays + 2
    saving = _max_tokens_saving(requests, model_id, rule, rpm, tpm, allowed, tolerance, options)
    if saving is not None:
        replays += saving.replays
    now = None
    if current is not None:
        now = summarise(prep, current, run(prep, current))
        replays += 1
    span_h = float(prep.end_s.max()) / 3600.0
    notes = (
        f"quota rule {rule!r} assumed; under {other!r} the same traffic needs {tpm_other:,} TPM",
        f"TPM sized with TPD unlimited and RPM {rpm or 'unlimited'}; TPD sized with TPM {tpm:,}",
        f"the trace spans {span_h:.2f} h: a TPD bucket starts full and refills over 24 h, so "
        "a trace shorter than a day sizes TPD for that span only",
        *prep.notes,
    )
    return QuotaSizing(
        model_id=model_id, rule=rule, throttle_target=throttle_target, requests=len(prep),
        allowed_throttles=allowed, tpm=tpm, other_rule=other, tpm_other_rule=tpm_other,
        rpm=rpm, tpd=tpd, at_recommended=at_recommended, max_tokens=saving, current=now,
        replays=replays, notes=notes,
    )  # fmt: skip


def _max_tokens_saving(
    requests: RequestArrays,
    model_id: str,
    rule: QuotaRule,
    rpm: int | None,
    tpm_today: int,
    allowed: int,
    tolerance: float,
    options: dict[str, Any],
) -> MaxTokensSaving | None:
    """TPM needed when max_tokens is capped at the p99 of successful outputs."""
    ok_out = requests.output_tokens[requests.ok]
    if len(ok_out) == 0:
        return None
    p99 = max(math.ceil(float(np.quantile(ok_out, 0.99))), 1)
    prep = prepare(requests, model_id, max_tokens_cap=p99, **options)
    search = _Search(prep, allowed, tolerance)
    demand = summarise(prep, QuotaLimits(rule=rule), run(prep, QuotaLimits(rule=rule)))
    tpm = _tpm(search, rule, rpm, demand)
    cut = int(np.count_nonzero(ok_out > p99))
    return MaxTokensSaving(p99, tpm, 1.0 - tpm / tpm_today, cut, search.replays + 1)
