"""``llmcap demo``: the main job end to end against the built-in emulator.

Reproduces the seed blog's study (small and large prompt, interval mode, a batch of ``level``
requests every second, 350 output tokens) on the emulator's default profile, then summarizes,
fits, plans against Llama 3.3 70B's cross-region default quotas and answers, per prompt size,
how many users the quota serves and what quota a target needs. Everything lands in ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.config import SweepConfig
from bench.providers.base import Endpoint
from capacity import answer, fit_capacity, load_records, objective, summarize
from capacity.fitting import CapacityModel
from capacity.planning import (
    DEFAULT_SLO_FACTOR,
    SEED_PROMPT,
    CapacityAnswer,
    Quota,
    pick_prompt,
)
from capacity.records import compare_prompts, prompt_sizes
from capacity.serving import DEFAULT_PROFILE, load_profile
from llmcap.commands._args import (
    add_emulator_profile,
    add_out,
    nonneg_float,
    positive_float,
    positive_int,
)
from llmcap.commands.fit import knees_table
from llmcap.commands.report import evidence_context, write_demo_reports
from llmcap.commands.summarize import comparison_table, console, seed_summary_table
from llmcap.embedded import run_sweep_embedded

MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"
REGION = "us-east-1"  # the Region the demo's quota, reports and account flow are about
DEFAULT_TPM = 600_000  # L-0E7AA8B7, the cross-region default (RPM is no longer enforced)
# Levels and batches per level: 24 one-second batches let the in-flight count settle (the large
# prompt at level 50 takes about 7 s to ramp up), so every level has a steady plateau.
FULL: tuple[tuple[float, ...], int] = ((1, 10, 30, 50), 24)
QUICK: tuple[tuple[float, ...], int] = ((1, 10, 30), 2)


def register(sub: Any) -> None:
    """Add the ``demo`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "demo",
        help="the main job end to end against the built-in emulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a smaller study (under a minute)")
    add_out(p, Path("out/demo"), "where to write")
    add_emulator_profile(p, DEFAULT_PROFILE, alias=True)
    p.add_argument("--target-users", type=positive_int, default=2_000, help="(2,000)")
    p.add_argument("--think-time-s", type=nonneg_float, default=30.0, help="(30)")
    p.add_argument("--tpm", type=positive_int, default=DEFAULT_TPM, help="(600,000)")
    p.add_argument(
        "--rpm",
        type=positive_int,
        help="an RPM quota, only where still enforced (Bedrock no longer enforces Llama's)",
    )
    p.add_argument(
        "--slo-ttft-factor",
        type=positive_float,
        default=DEFAULT_SLO_FACTOR,
        help="the objective: p95 TTFT ≤ this × the unloaded p95 TTFT (default 2)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument(
        "--no-account",
        action="store_true",
        help="skip the offline account flow (quotas read from the emulator, usage, the request)",
    )
    p.add_argument("--no-report", action="store_true", help="skip the quota-request report")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Sweep, summarize, fit, answer, print, write everything under ``--out``."""
    # Every argument is checked before the sweep starts: a bad one fails in a second, not
    # after the study.
    load_profile(args.emulator_profile)
    quota = Quota(tpm=args.tpm, rpm=args.rpm, model_id=MODEL_ID)
    SEED_PROMPT.workload(think_time_s=args.think_time_s)
    out = console()
    levels, batches = QUICK if args.quick else FULL
    t0 = time.monotonic()
    out.rule("llmcap demo")
    out.print(
        "Reproducing the seed blog's study on the built-in emulator (serving profile "
        f"{args.emulator_profile}): small and large prompt, interval mode, levels "
        f"{', '.join(f'{x:g}' for x in levels)}, {batches} batches of `level` requests per "
        "level, one batch per second, 350 output tokens.",
        highlight=False,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    config = SweepConfig(
        endpoint=Endpoint(model_id=MODEL_ID), prompt="small,large", mode="interval",
        levels=levels, batches=batches,
        interval_s=1.0, max_tokens=350, temperature=0.5, out=args.out / "runs",
        emulator_profile=args.emulator_profile,
    )  # fmt: skip
    run_dir = run_sweep_embedded(config)
    records = load_records(run_dir)
    summary = summarize(records)
    out.print(seed_summary_table(summary))
    out.print(plateau_line(summary), highlight=False, soft_wrap=True)
    comparison = compare_prompts(summary)
    if comparison is not None and not comparison.empty:
        out.print(comparison_table(comparison))
    model = fit_capacity(records)
    model_path = model.save(args.out / "model.json")
    answers = demo_answers(records, model, quota, args)
    knees, _ = knees_table(model, {label: a.objective for label, a in answers.items()})
    out.print(knees)
    figures = [] if args.no_figures else write_figures(records, model, answers, args)
    if not args.no_account:
        from llmcap.account_demo import run_account_demo  # boto3 control plane: only when used

        # The account section states the answer of the largest prompt, in the demo's Region.
        big = max(answers.values(), key=lambda a: a.workload.input_tokens)
        assert big.request is not None
        run_account_demo(args.out / "account", REGION, big.plan, big.request, out)
    context = evidence_context([run_dir])
    reports = [] if args.no_report else write_demo_reports(
        records, model, answers, args.out / "report", REGION, context
    )  # fmt: skip
    out.rule("The answer")
    for label, result in answers.items():
        line = f"{label} prompt ({result.workload.input_tokens:,.0f} input tokens): "
        out.print(line + result.headline(), highlight=False, soft_wrap=True)
    out.print(
        f"\nWrote the run ({run_dir}), the fitted model ({model_path}) and "
        f"{len(figures)} figures under {args.out}/figures. ({time.monotonic() - t0:.0f} s)",
        highlight=False,
    )
    for path in reports:
        out.print(f"Quota-request report (attach to the AWS case): {path}", highlight=False)
    return 0


def demo_answers(
    records: Any, model: CapacityModel, quota: Quota, args: argparse.Namespace
) -> dict[str, CapacityAnswer]:
    """One answer per measured prompt size (in the model's order), each under the default
    objective at its own prompt size: what the demo prints, draws and reports."""
    sizes = prompt_sizes(records)
    answers = {}
    for pm in model.prompts:
        workload = pick_prompt(sizes, pm.prompt_label).workload(think_time_s=args.think_time_s)
        goal = objective(model, workload.prompt_tokens, factor=args.slo_ttft_factor)
        answers[pm.prompt_label] = answer(quota, workload, model, goal, args.target_users)
    return answers


def plateau_line(summary: Any) -> str:
    """How much of each level ran in steady state (capacity.summarize's ``plateau_share``)."""
    parts = [
        f"{row.prompt_label} L{row.level:g} {100 * row.plateau_share:.0f} %"
        f" (~{row.concurrency_plateau_mean:.0f} in flight)"
        if row.plateau_share > 0
        else f"{row.prompt_label} L{row.level:g} none"
        for row in summary.itertuples()
    ]
    return (
        "Steady state — share of requests sent on each level's plateau (one mean latency after "
        "the first send until one before the last): " + "; ".join(parts)
    )


def write_figures(
    records: Any, model: CapacityModel, answers: dict[str, CapacityAnswer], args: argparse.Namespace
) -> list[Path]:
    """Every figure of the study, as PNG, under ``--out/figures``; the capacity figures under
    the same objective and target as the answers."""
    from capacity import figures as fig

    folder = args.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str, figure: Any) -> None:
        path = folder / f"{name}.png"
        fig.save_figure(figure, path)
        written.append(path)

    top = max(float(x) for x in records["level"].dropna().unique())
    for label, result in answers.items():
        save(f"all_metrics_{label}", fig.plot_all_metrics(records, prompt_label=label, level=top))
        save(
            f"tokens_and_calls_{label}",
            fig.plot_tokens_and_calls(records, prompt_label=label, level=top),
        )
        save(
            f"capacity_{label}",
            fig.plot_capacity(
                result.quota, result.workload, model, result.objective.slo,
                request=result.request,
            ),
        )  # fmt: skip
    save("scaling", fig.plot_scaling(records, model))
    save("throughput", fig.plot_throughput(records, model))
    return written
