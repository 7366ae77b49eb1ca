"""``llmcap demo``: the main job end to end against the built-in emulator.

Reproduces the seed blog's study (small and large prompt, interval mode, a batch of ``level``
requests every second, 350 output tokens) on the emulator's default profile, then summarizes,
fits, plans against Llama 3.3 70B's cross-region default quotas and answers, per prompt size,
how many users the quota serves and what quota a target needs. Everything lands in ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from bench.config import SweepConfig
from bench.providers.base import Endpoint
from capacity.fitting._fit import fit_capacity
from capacity.fitting._model import CapacityModel
from capacity.planning import DEFAULT_SLO_FACTOR, Quota, Workload, default_slo
from capacity.planning._plan import CapacityPlan, plan_capacity
from capacity.planning._request import QuotaRequest, required_quota
from capacity.records._load import load_records
from capacity.records._summary import compare_prompts, summarize
from capacity.serving._profile import DEFAULT_PROFILE, load_profile
from llmcap.commands._args import nonneg_float, positive_float, positive_int
from llmcap.commands.fit import knees_table
from llmcap.commands.report import write_demo_reports
from llmcap.commands.summarize import comparison_table, console, seed_summary_table
from llmcap.embedded import run_sweep_embedded

MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"
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
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="emulator profile")
    p.add_argument("--target-users", type=positive_int, default=2_000)
    p.add_argument("--think-time-s", type=nonneg_float, default=30.0)
    p.add_argument("--tpm", type=positive_int, default=DEFAULT_TPM)
    p.add_argument(
        "--rpm",
        type=positive_int,
        help="an RPM quota, only where still enforced (Bedrock no longer enforces Llama's)",
    )
    p.add_argument(
        "--slo-ttft-factor",
        type=positive_float,
        default=DEFAULT_SLO_FACTOR,
        help="the SLO: p95 TTFT ≤ this × the unloaded p95 TTFT (default 2)",
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
    """Sweep, summarize, fit, plan, print the answer, write everything under ``--out``."""
    # Every argument is checked before the sweep starts: a bad one fails in a second, not
    # after the study.
    load_profile(args.profile)
    Quota(tpm=args.tpm, rpm=args.rpm, model_id=MODEL_ID)
    Workload(input_tokens=43, output_tokens=350, max_tokens=350, think_time_s=args.think_time_s)
    out = console()
    levels, batches = QUICK if args.quick else FULL
    t0 = time.monotonic()
    out.rule("llmcap demo")
    out.print(
        f"Reproducing the seed blog's study on the built-in emulator (profile {args.profile}):"
        f" small and large prompt, interval mode, levels {', '.join(f'{x:g}' for x in levels)},"
        f" {batches} batches of `level` requests per level, one batch per second, "
        "350 output tokens.",
        highlight=False,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    config = SweepConfig(
        endpoint=Endpoint(model_id=MODEL_ID), prompt="small,large", mode="interval",
        levels=levels, batches=batches,
        interval_s=1.0, max_tokens=350, temperature=0.5, out=args.out / "runs",
        emulator_profile=args.profile,
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
    knees, _ = knees_table(model, None)
    out.print(knees)
    quota = Quota(tpm=args.tpm, rpm=args.rpm, model_id=MODEL_ID)
    answers = []
    cases = {}
    for pm in model.prompts:
        output_tokens = _mean_output(records, pm.prompt_label)
        workload = Workload(
            input_tokens=pm.input_tokens, output_tokens=output_tokens, max_tokens=350,
            think_time_s=args.think_time_s,
        )  # fmt: skip
        slo = default_slo(model, pm.input_tokens, args.slo_ttft_factor)
        plan = plan_capacity(quota, workload, model=model, slo=slo)
        request = required_quota(
            workload, args.target_users, model=model, slo=slo, model_id=MODEL_ID,
            rpm_enforced=True if args.rpm is not None else None,
        )  # fmt: skip
        cases[pm.prompt_label] = (workload, slo, plan, request)
        answers.append(answer(pm.prompt_label, pm.input_tokens, quota, plan, request, args))
    figures = [] if args.no_figures else write_figures(records, model, quota, args)
    if not args.no_account:
        from llmcap.account_demo import run_account_demo  # boto3 control plane: only when used

        # The account section states the answer of the largest prompt, in the reports' Region.
        _, _, plan, request = max(cases.values(), key=lambda case: case[0].input_tokens)
        run_account_demo(args.out / "account", "us-east-1", plan, request, out)
    reports = [] if args.no_report else write_demo_reports(
        records, model, quota, cases, args.out / "report"
    )  # fmt: skip
    out.rule("The answer")
    for line in answers:
        out.print(line, highlight=False, soft_wrap=True)
    out.print(
        f"\nWrote the run ({run_dir}), the fitted model ({model_path}) and "
        f"{len(figures)} figures under {args.out}/figures. ({time.monotonic() - t0:.0f} s)",
        highlight=False,
    )
    for path in reports:
        out.print(f"Quota-request report (attach to the AWS case): {path}", highlight=False)
    return 0


def _mean_output(records: Any, label: str) -> float:
    ok = records[(records["prompt_label"] == label) & (records["status"] == "ok")]
    mean = float(ok["output_tokens"].mean()) if len(ok) else math.nan
    return mean if math.isfinite(mean) and mean > 0 else 350.0


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


def answer(
    label: str,
    input_tokens: float,
    quota: Quota,
    plan: CapacityPlan,
    request: QuotaRequest,
    args: argparse.Namespace,
) -> str:
    """One paragraph per prompt size, in users, requests in flight, tokens and seconds."""
    rpm = "" if quota.rpm is None else f" and {quota.rpm:,.0f} requests per minute"
    ttft = "" if plan.ttft_p95_s is None else f" at p95 first token {plan.ttft_p95_s:.2f} s"
    slo = "" if plan.slo is None else f" (target: {plan.slo.describe()})"
    line = (
        f"{label} prompt ({input_tokens:,.0f} input tokens): {quota.tpm:,.0f} tokens per minute"
        f"{rpm} serve {plan.users_whole:,} users{ttft}{slo}, limited by {plan.binding_words} "
        f"({plan.inflight:,.0f} requests in flight)."
    )
    asks = [
        f"{line_.value:,} {line_.kind.upper()}" for line_ in request.lines if line_.kind != "tpd"
    ]
    line += (
        f" For {args.target_users:,} users at {args.think_time_s:g} s think time request "
        f"{' and '.join(asks)}"
    )
    tpm_code = next((q.code for q in request.lines if q.kind == "tpm" and q.code), None)
    if tpm_code:
        line += f" (quota {tpm_code})"
    line += "."
    k, measured = request.extrapolation_factor, request.measured_max_inflight
    if k is not None and measured is not None:
        line += (
            f" That load means {request.peak_inflight:,.0f} requests in flight, ×{k:.1f} beyond "
            f"the {measured:,.0f} measured: an extrapolation — measure closer to it or fit a "
            "twin (llmcap twin fit) before relying on its latency."
        )
    if not request.feasible and request.reason:
        line += f" The SLO cannot hold there: {request.reason}."
        if request.options:
            line += " Options: " + "; ".join(o.name for o in request.options) + "."
    return line


def write_figures(
    records: Any, model: CapacityModel, quota: Quota, args: argparse.Namespace
) -> list[Path]:
    """Every figure of the study, as PNG, under ``--out/figures``."""
    try:
        from capacity import figures as fig
    except ImportError:  # pragma: no cover - figures ship with capacity
        print("figures unavailable", file=sys.stderr)
        return []
    folder = args.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str, figure: Any) -> None:
        path = folder / f"{name}.png"
        fig.save_figure(figure, path)
        written.append(path)

    top = max(float(x) for x in records["level"].dropna().unique())
    for pm in model.prompts:
        label = pm.prompt_label
        save(f"all_metrics_{label}", fig.plot_all_metrics(records, prompt_label=label, level=top))
        save(
            f"tokens_and_calls_{label}",
            fig.plot_tokens_and_calls(records, prompt_label=label, level=top),
        )
        workload = Workload(
            input_tokens=pm.input_tokens, output_tokens=_mean_output(records, label),
            max_tokens=350, think_time_s=args.think_time_s,
        )  # fmt: skip
        save(
            f"capacity_{label}",
            fig.plot_capacity(quota, workload, model, target_users=args.target_users),
        )
    save("scaling", fig.plot_scaling(records, model))
    save("throughput", fig.plot_throughput(records, model))
    return written
