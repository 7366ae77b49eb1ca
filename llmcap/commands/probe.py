"""``llmcap probe``: the cheapest interval-mode sweep that fits inside a quota and still
identifies the digital twin; prints its cost in tokens, runs it, and (with ``--twin``) fits it.

Identification needs (docs/twin.md, "Probe design"): two prompt sizes (TTFT's per-input-token
term and the prefill cost), three load levels per prompt (the unloaded step time, then how it
grows), and enough batches for a steady state plus a median and a p90 (20 batches at 1 s). The
heaviest level of each prompt is the largest whose tokens, reserved at admission
(input + max_tokens per request, Bedrock's rule), fit in one minute's quota with 10 % headroom;
levels are separated by a drain of a minute against a real endpoint so that no two share a
quota window.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

PROMPT_TOKENS = {"small": 43, "large": 6027}
"""Input tokens Bedrock reports for the shipped prompts (the seed blog's usage figures)."""

MIN_BATCHES = 20
MAX_TOP_LEVEL = 10
HEADROOM = 0.9
# Meta Llama 3.3 70B Instruct on Amazon Bedrock, on-demand, US Regions (USD per 1M tokens);
# check the pricing page for your model and Region and pass --price-in/--price-out.
PRICE_IN_PER_MTOK = 0.72
PRICE_OUT_PER_MTOK = 0.72


class ProbeBudgetError(ValueError):
    """The budget cannot buy a probe that identifies the twin; the message says what would."""


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

    def usd(self, price_in: float, price_out: float) -> float:
        """Cost if every request produces max_tokens."""
        return self.requests * (self.input_tokens * price_in + self.max_tokens * price_out) / 1e6


def plan_probe(
    budget_tpm: float | None,
    budget_usd: float | None,
    *,
    max_tokens: int = 350,
    prompts: dict[str, int] | None = None,
    price_in: float = PRICE_IN_PER_MTOK,
    price_out: float = PRICE_OUT_PER_MTOK,
    max_level: int = MAX_TOP_LEVEL,
) -> tuple[list[ProbeLevel], list[str]]:
    """The probe's levels and notes on what it may leave loosely identified."""
    sizes = prompts or PROMPT_TOKENS
    notes: list[str] = []
    batches = MIN_BATCHES
    plan: list[ProbeLevel] = []
    for prompt, tokens in sizes.items():
        per_request = tokens + max_tokens
        top = max_level
        if budget_tpm is not None:
            # One level's batches all fall inside one minute (20 batches at 1 s).
            top = min(top, math.floor(HEADROOM * budget_tpm / (batches * per_request)))
        if top < 1:
            need = math.ceil(batches * per_request / HEADROOM)
            raise ProbeBudgetError(
                f"--budget-tpm {budget_tpm:g} cannot fit one level of the {prompt} prompt "
                f"({batches} requests of {per_request} tokens need {need:,} TPM); raise it"
            )
        levels = sorted({1, max(1, round(top / 2)), top})
        plan.extend(ProbeLevel(prompt, lv, batches, tokens, max_tokens) for lv in levels)
    if budget_usd is not None:
        # Trim the heaviest levels first until the probe fits the money.
        def cost() -> float:
            return sum(p.usd(price_in, price_out) for p in plan)

        while cost() > budget_usd:
            heaviest = max(plan, key=lambda p: p.usd(price_in, price_out))
            if heaviest.level <= 2:
                raise ProbeBudgetError(
                    f"--budget-usd {budget_usd:g} cannot buy an identifying probe (levels 1 and 2 "
                    f"of each prompt cost ${cost():.2f}); raise it"
                )
            plan[plan.index(heaviest)] = ProbeLevel(
                heaviest.prompt, heaviest.level - 1, batches, heaviest.input_tokens, max_tokens
            )
        order = list(sizes)
        plan = sorted(set(plan), key=lambda p: (order.index(p.prompt), p.level))
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
    return plan, notes


def register(sub: Any) -> None:
    """Add the ``probe`` subcommand to ``sub``."""
    p = sub.add_parser(
        "probe",
        help="the cheapest sweep inside a quota that identifies the twin; run it",
        description="Plan the cheapest interval-mode probe that fits --budget-tpm (and/or "
        "--budget-usd) and identifies the digital twin, print its cost in tokens, run it "
        "(against the built-in emulator unless --endpoint-url or --region is given) and, with "
        "--twin, calibrate the twin from it.",
    )
    p.error = _one_line_error(p)
    p.add_argument("--budget-tpm", type=float, help="the quota the probe must stay inside")
    p.add_argument("--budget-usd", type=float, help="the most the probe may cost")
    p.add_argument("--price-in", type=float, default=PRICE_IN_PER_MTOK, help="USD per 1M input")
    p.add_argument("--price-out", type=float, default=PRICE_OUT_PER_MTOK, help="USD per 1M output")
    p.add_argument("--max-tokens", type=int, default=350)
    p.add_argument("--max-level", type=int, default=MAX_TOP_LEVEL, help="heaviest level (10)")
    p.add_argument("--endpoint-url")
    p.add_argument("--region")
    p.add_argument("--aws-profile")
    p.add_argument("--model-id", default="us.meta.llama3-3-70b-instruct-v1:0")
    p.add_argument("--emulator-profile", help="profile of the built-in emulator")
    p.add_argument(
        "--drain-s",
        type=float,
        help="pause between levels (default 60 s on a real endpoint, so levels never share a "
        "quota minute; 0 on the emulator)",
    )
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--twin", type=Path, help="also calibrate and write the twin here")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_probe)


def _one_line_error(parser: argparse.ArgumentParser) -> Any:
    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    return error


def cmd_probe(args: argparse.Namespace) -> int:
    """Plan (and run, and fit) the probe; one-line error and exit 2 on bad input."""
    try:
        if args.budget_tpm is None and args.budget_usd is None:
            raise ProbeBudgetError("give --budget-tpm (your quota) and/or --budget-usd")
        for flag, value in (("--budget-tpm", args.budget_tpm), ("--budget-usd", args.budget_usd)):
            if value is not None and value <= 0:
                raise ProbeBudgetError(f"{flag} must be above 0")
        if args.max_tokens < 2 or args.max_level < 2:
            raise ProbeBudgetError("--max-tokens and --max-level must be ≥ 2")
        plan, notes = plan_probe(
            args.budget_tpm, args.budget_usd, max_tokens=args.max_tokens,
            price_in=args.price_in, price_out=args.price_out, max_level=args.max_level,
        )  # fmt: skip
    except ProbeBudgetError as exc:
        print(f"llmcap probe: error: {exc}", file=sys.stderr)
        return 2
    tokens = sum(p.tokens for p in plan)
    usd = sum(p.usd(args.price_in, args.price_out) for p in plan)
    if args.json:
        doc = {"levels": [asdict(p) | {"tokens": p.tokens} for p in plan], "tokens": tokens,
               "usd": round(usd, 4), "notes": notes}  # fmt: skip
        print(json.dumps(doc, indent=1))
    else:
        print("Probe plan (interval mode, a batch of `level` requests every 1 s):")
        for p in plan:
            print(f"  {p.prompt:<6} level {p.level:>3}  {p.batches} batches  {p.requests:>4} "
                  f"requests  {p.tokens:>9,} tokens")  # fmt: skip
        print(f"Cost: {tokens:,} tokens reserved (input + max_tokens), about ${usd:.2f} at "
              f"${args.price_in}/${args.price_out} per 1M input/output tokens")  # fmt: skip
        if args.budget_tpm is not None:
            worst = max(p.tokens for p in plan)
            print(f"Heaviest level: {worst:,} tokens in one minute, {worst / args.budget_tpm:.0%} "
                  f"of the {args.budget_tpm:,.0f} TPM budget")  # fmt: skip
        for note in notes:
            print(f"note: {note}")
    if args.dry_run:
        return 0
    return _run(args, plan)


def _run(args: argparse.Namespace, plan: list[ProbeLevel]) -> int:
    from bench.config import SweepConfig, SweepError
    from bench.prompts import PromptError
    from bench.providers.base import Endpoint
    from capacity.serving._profile import DEFAULT_PROFILE
    from llmcap.embedded import run_sweep_embedded

    live = args.endpoint_url is not None or args.region is not None
    drain = args.drain_s if args.drain_s is not None else (60.0 if live else 0.0)
    endpoint = Endpoint(
        model_id=args.model_id, endpoint_url=args.endpoint_url, region=args.region,
        aws_profile=args.aws_profile,
    )  # fmt: skip
    runs: list[Path] = []
    try:
        for prompt in dict.fromkeys(p.prompt for p in plan):
            levels = tuple(float(p.level) for p in plan if p.prompt == prompt)
            config = SweepConfig(
                endpoint=endpoint, prompt=prompt, mode="interval", levels=levels,
                batches=MIN_BATCHES, max_tokens=args.max_tokens, drain_s=drain, out=args.out,
                progress=not args.quiet,
                emulator_profile=None if live else (args.emulator_profile or DEFAULT_PROFILE),
            )  # fmt: skip
            runs.append(run_sweep_embedded(config))
    except (SweepError, PromptError, ValueError, OSError) as exc:
        print(f"llmcap probe: error: {exc}", file=sys.stderr)
        return 2
    for run in runs:
        print(f"records: {run}/records.jsonl")
    if args.twin is None:
        print(f"next: llmcap twin fit {' '.join(map(str, runs))} -o twin.json")
        return 0
    from llmcap.commands.twin import cmd_fit

    fit_args = argparse.Namespace(
        paths=[str(r) for r in runs], output=args.twin, replicas=None, workers=2, seed=0,
        json=False,
    )  # fmt: skip
    return cmd_fit(fit_args)
