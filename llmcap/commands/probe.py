"""``llmcap probe``: the cheapest interval-mode sweep that fits inside a quota and still
identifies the digital twin (``capacity.planning.plan_probe``; docs/twin.md, "Probe design");
prints its cost in tokens and, from the price table, in USD; runs it; and with ``--twin`` fits
it. Levels are separated by a drain of a minute against a real endpoint so that no two share a
quota window.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from capacity.planning import PROBE_BATCHES, ProbeLevel, ProbePlan, plan_probe
from capacity.serving import DEFAULT_PROFILE
from llmcap.commands._args import (
    add_aws_profile,
    add_emulator_profile,
    add_out,
    nonneg_float,
    positive_float,
    positive_int,
)

MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"


def register(sub: Any) -> None:
    """Add the ``probe`` subcommand to ``sub``."""
    p = sub.add_parser(
        "probe",
        help="the cheapest sweep inside a quota that identifies the twin; run it",
        description="Plan the cheapest interval-mode probe that fits --budget-tpm (and/or "
        "--budget-usd) and identifies the digital twin, print its cost in tokens and USD, run "
        "it (against the built-in emulator unless --endpoint-url or --region is given) and, "
        "with --twin, calibrate the twin from it.",
    )
    p.add_argument("--budget-tpm", type=positive_float, help="the quota the probe stays inside")
    p.add_argument("--budget-usd", type=positive_float, help="the most the probe may cost")
    p.add_argument("--prices", type=Path, help="price table JSON (default: the shipped one)")
    p.add_argument("--price-region", help="Region to price in (default: --region, else us-east-1)")
    p.add_argument("--max-tokens", type=positive_int, default=350, help="(350)")
    p.add_argument("--max-level", type=positive_int, default=10, help="heaviest level (10)")
    p.add_argument("--endpoint-url")
    p.add_argument("--region")
    add_aws_profile(p)
    p.add_argument("--model-id", default=MODEL_ID, help=f"({MODEL_ID})")
    add_emulator_profile(p, DEFAULT_PROFILE)
    p.add_argument(
        "--drain-s",
        type=nonneg_float,
        help="pause between levels (default 60 s on a real endpoint, so levels never share a "
        "quota minute; 0 on the emulator)",
    )
    add_out(p, Path("runs"), "where run directories are written")
    p.add_argument("--twin", type=Path, help="also calibrate and write the twin here")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_probe)


def _price(args: argparse.Namespace) -> Any:
    """The model's price in the pricing Region (None, with a note, when the table has none
    and no --budget-usd needs one)."""
    from capacity.usage import PriceError, load_prices

    region = args.price_region or args.region or "us-east-1"
    try:
        return load_prices(args.prices).price(args.model_id, region)
    except PriceError:
        if args.budget_usd is not None:
            raise
        return None


def cmd_probe(args: argparse.Namespace) -> int:
    """Plan (and run, and fit) the probe; bad input raises a typed error (one line, exit 2)."""
    plan = plan_probe(
        args.budget_tpm, args.budget_usd, price=_price(args), max_tokens=args.max_tokens,
        max_level=args.max_level,
    )  # fmt: skip
    if args.json:
        doc = {"levels": [asdict(p) | {"tokens": p.tokens} for p in plan.levels],
               "tokens": plan.tokens, "usd": None if plan.usd is None else round(plan.usd, 4),
               "price": plan.price, "notes": list(plan.notes)}  # fmt: skip
        print(json.dumps(doc, indent=1))
    else:
        _print_plan(plan, args.budget_tpm)
    if args.dry_run:
        return 0
    return _run(args, plan.levels)


def _print_plan(plan: ProbePlan, budget_tpm: float | None) -> None:
    print("Probe plan (interval mode, a batch of `level` requests every 1 s):")
    for p in plan.levels:
        print(f"  {p.prompt:<6} level {p.level:>3}  {p.batches} batches  {p.requests:>4} "
              f"requests  {p.tokens:>9,} tokens")  # fmt: skip
    cost = (
        "no price for this model and Region (pass --prices)"
        if plan.usd is None
        else f"about ${plan.usd:.2f} if every request produces max_tokens ({plan.price})"
    )
    print(f"Cost: {plan.tokens:,} tokens reserved (input + max_tokens); {cost}")
    if budget_tpm is not None:
        worst = max(p.tokens for p in plan.levels)
        print(f"Heaviest level: {worst:,} tokens in one minute, {worst / budget_tpm:.0%} "
              f"of the {budget_tpm:,.0f} TPM budget")  # fmt: skip
    for note in plan.notes:
        print(f"note: {note}")


def _run(args: argparse.Namespace, plan: tuple[ProbeLevel, ...]) -> int:
    from bench.config import SweepConfig
    from bench.providers import Endpoint
    from llmcap.embedded import run_sweep_embedded

    live = args.endpoint_url is not None or args.region is not None
    drain = args.drain_s if args.drain_s is not None else (60.0 if live else 0.0)
    endpoint = Endpoint(
        model_id=args.model_id, endpoint_url=args.endpoint_url, region=args.region,
        aws_profile=args.aws_profile,
    )  # fmt: skip
    runs: list[Path] = []
    for prompt in dict.fromkeys(p.prompt for p in plan):
        levels = tuple(float(p.level) for p in plan if p.prompt == prompt)
        config = SweepConfig(
            endpoint=endpoint, prompt=prompt, mode="interval", levels=levels,
            batches=PROBE_BATCHES, max_tokens=args.max_tokens, drain_s=drain, out=args.out,
            progress=not args.quiet, emulator_profile=None if live else args.emulator_profile,
        )  # fmt: skip
        runs.append(run_sweep_embedded(config))
    for run in runs:
        print(f"records: {run}/records.jsonl")
    if args.twin is None:
        print(f"next: llmcap twin fit {' '.join(map(str, runs))} -o twin.json")
        return 0
    from llmcap.commands.twin import cmd_fit

    fit_args = argparse.Namespace(
        paths=[str(r) for r in runs], out=args.twin, replicas=None, workers=2, seed=0,
        json=False,
    )  # fmt: skip
    return cmd_fit(fit_args)
