"""The probe: the cheapest interval-mode sweep that fits inside a quota (and a budget) and still
identifies the digital twin (docs/twin.md, "Probe design").

Identification needs two prompt sizes (TTFT's per-input-token term and the prefill cost), three
load levels per prompt (the unloaded step time, then how it grows) and enough batches for a
steady state plus a median and a p90 (20 batches at 1 s). The heaviest level of each prompt is
the largest whose tokens, reserved at admission (input + max_tokens per request, Bedrock's
rule), fit in one minute's quota with 10 % headroom. Cost comes from a price of the one price
table (``capacity.usage.load_prices``), in its own unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from capacity.planning._inputs import PlanInputError

__all__ = [
    "PROBE_BATCHES",
    "PROBE_PROMPT_TOKENS",
    "ProbeBudgetError",
    "ProbeLevel",
    "ProbePlan",
    "RequestPrice",
    "plan_probe",
]

PROBE_PROMPT_TOKENS: Mapping[str, int] = {"small": 43, "large": 6027}
"""Input tokens Bedrock reported for the shipped prompts (the seed blog's usage figures)."""
PROBE_BATCHES = 20
MAX_TOP_LEVEL = 10
QUOTA_SHARE = 0.9


class ProbeBudgetError(PlanInputError):
    """The budget cannot buy a probe that identifies the twin; the message says what would."""


class RequestPrice(Protocol):
    """What the probe needs of a price (``capacity.usage.Price``)."""

    def request_cost(self, input_tokens: float, output_tokens: float) -> float:
        """USD of one request."""

    def describe(self) -> str:
        """The price and its source in one line."""


@dataclass(frozen=True)
class ProbeLevel:
    """One level of the probe plan."""

    prompt: str
    level: int
    batches: int
    input_tokens: int
    max_tokens: int

    @property
    def requests(self) -> int:
        """Requests the level sends."""
        return self.level * self.batches

    @property
    def tokens(self) -> int:
        """Tokens reserved at admission (input + max_tokens per request)."""
        return self.requests * (self.input_tokens + self.max_tokens)

    def usd(self, price: RequestPrice) -> float:
        """Cost if every request produces max_tokens."""
        return self.requests * price.request_cost(self.input_tokens, self.max_tokens)


@dataclass(frozen=True)
class ProbePlan:
    """The probe's levels, their cost (None without a price) and what it may leave loosely
    identified."""

    levels: tuple[ProbeLevel, ...]
    usd: float | None
    price: str | None
    notes: tuple[str, ...]

    @property
    def tokens(self) -> int:
        """Tokens reserved in all (input + max_tokens per request)."""
        return sum(p.tokens for p in self.levels)


def plan_probe(
    budget_tpm: float | None,
    budget_usd: float | None = None,
    *,
    price: RequestPrice | None = None,
    max_tokens: int = 350,
    prompts: Mapping[str, int] | None = None,
    max_level: int = MAX_TOP_LEVEL,
) -> ProbePlan:
    """The probe inside ``budget_tpm`` (one level's batches fall in one minute) and, with a
    ``price``, ``budget_usd`` (the heaviest levels trimmed first)."""
    if budget_tpm is None and budget_usd is None:
        raise ProbeBudgetError("give the quota the probe must stay inside (--budget-tpm) and/or "
                               "the most it may cost (--budget-usd)")  # fmt: skip
    for flag, value in (("--budget-tpm", budget_tpm), ("--budget-usd", budget_usd)):
        if value is not None and not value > 0:
            raise ProbeBudgetError(f"{flag} must be above 0, got {value!r}")
    if max_tokens < 2 or max_level < 2:
        raise ProbeBudgetError("--max-tokens and --max-level must be at least 2")
    if budget_usd is not None and price is None:
        raise ProbeBudgetError("--budget-usd needs a price for the model and Region (--prices)")
    sizes = dict(prompts or PROBE_PROMPT_TOKENS)
    batches = PROBE_BATCHES
    plan: list[ProbeLevel] = []
    for prompt, tokens in sizes.items():
        per_request = tokens + max_tokens
        top = max_level
        if budget_tpm is not None:
            top = min(top, math.floor(QUOTA_SHARE * budget_tpm / (batches * per_request)))
        if top < 1:
            need = math.ceil(batches * per_request / QUOTA_SHARE)
            raise ProbeBudgetError(
                f"--budget-tpm {budget_tpm:g} cannot fit one level of the {prompt} prompt "
                f"({batches} requests of {per_request} tokens need {need:,} TPM); raise it"
            )
        levels = sorted({1, max(1, round(top / 2)), top})
        plan.extend(ProbeLevel(prompt, lv, batches, tokens, max_tokens) for lv in levels)
    if budget_usd is not None and price is not None:
        plan = _trim_to_budget(plan, budget_usd, price, list(sizes))
    notes = []
    for prompt in sizes:
        levels = [p.level for p in plan if p.prompt == prompt]
        if len(levels) < 2:
            notes.append(
                f"the {prompt} prompt fits only level {levels[0]} in this budget: the twin sees "
                "it unloaded only, so the prefill cost comes mostly from the other prompt"
            )
    if max(p.level for p in plan) < 4:
        notes.append(
            "no level above 3 fits: the per-sequence and KV-read costs will be loosely pinned "
            "(the twin's intervals will say so)"
        )
    usd = None if price is None else sum(p.usd(price) for p in plan)
    return ProbePlan(tuple(plan), usd, None if price is None else price.describe(), tuple(notes))


def _trim_to_budget(
    plan: list[ProbeLevel], budget_usd: float, price: RequestPrice, order: list[str]
) -> list[ProbeLevel]:
    """Lower the heaviest level by one until the probe fits the money."""

    def cost() -> float:
        return sum(p.usd(price) for p in plan)

    while cost() > budget_usd:
        heaviest = max(plan, key=lambda p: p.usd(price))
        if heaviest.level <= 2:
            raise ProbeBudgetError(
                f"--budget-usd {budget_usd:g} cannot buy an identifying probe (levels 1 and 2 of "
                f"each prompt cost ${cost():.2f}); raise it"
            )
        plan[plan.index(heaviest)] = ProbeLevel(
            heaviest.prompt, heaviest.level - 1, heaviest.batches, heaviest.input_tokens,
            heaviest.max_tokens,
        )  # fmt: skip
    return sorted(set(plan), key=lambda p: (order.index(p.prompt), p.level))
