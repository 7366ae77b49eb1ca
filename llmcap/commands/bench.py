"""``llmcap bench``: run a load sweep against an endpoint and record every request."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench.config import SEED_LEVELS, SweepConfig
from bench.prompts import load_prompt_sets
from bench.providers.base import PROVIDERS, Endpoint
from bench.records import read_jsonl
from bench.rundir import read_config
from bench.strategies import MODES
from bench.sweep import SweepFailed, SweepIncomplete, SweepInterrupted
from capacity.serving import DEFAULT_PROFILE, load_profile
from llmcap.commands._args import (
    add_aws_profile,
    add_emulator_profile,
    add_out,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    share,
)
from llmcap.embedded import run_sweep_embedded
from llmcap.errors import UserError, fix_for_failed_batch


def _levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or not all(0 < x < float("inf") for x in levels):
        raise argparse.ArgumentTypeError(f"{text!r}: write positive levels like 1,5,10")
    return levels


def register(sub: Any) -> None:
    """Add the ``bench`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "bench",
        help="run a load sweep and record every request",
        description="Run a load sweep. With neither --endpoint-url nor --region it measures the "
        "built-in emulator (the embedded default). Defaults reproduce the seed blog's sweep.",
    )
    where = p.add_argument_group("endpoint")
    where.add_argument(
        "--endpoint-url", help="endpoint base URL (a Bedrock runtime or OpenAI-compatible server)"
    )
    where.add_argument("--region", help="AWS Region of Amazon Bedrock (e.g. us-west-2)")
    add_aws_profile(where)
    where.add_argument("--provider", choices=PROVIDERS, default="bedrock-converse")
    where.add_argument(
        "--client",
        choices=("async", "boto3", "httpx"),
        default="async",
        help="async: llmcap's lean HTTP/1.1 client on one event loop (default); boto3 in "
        "threads (Bedrock) or httpx (openai): the general-purpose clients",
    )
    where.add_argument("--model-id", default="us.meta.llama3-3-70b-instruct-v1:0")
    add_emulator_profile(where, DEFAULT_PROFILE)
    where.add_argument("--read-timeout-s", type=positive_float, default=120.0)
    load = p.add_argument_group("load")
    load.add_argument(
        "--prompt",
        default="small,large",
        help="small, large, a .txt/.jsonl file, synthetic:N; comma-separated",
    )
    load.add_argument("--mode", choices=MODES, default="interval")
    load.add_argument(
        "--levels",
        type=_levels,
        default=SEED_LEVELS,
        help="batch sizes, concurrencies or rates (req/s); default 1,5,...,50",
    )
    load.add_argument("--batches", type=positive_int, default=60)
    load.add_argument("--interval-s", type=positive_float, default=1.0)
    load.add_argument(
        "--duration-s", type=positive_float, help="per level (concurrency and rate modes)"
    )
    load.add_argument(
        "--requests",
        type=positive_int,
        dest="n_requests",
        help="per level (concurrency and rate modes)",
    )
    load.add_argument("--arrival", choices=("poisson", "constant"), default="poisson")
    load.add_argument(
        "--max-inflight", type=positive_int, help="rate mode: cap on requests in flight"
    )
    load.add_argument("--max-tokens", type=positive_int, default=350)
    load.add_argument("--temperature", type=float, default=0.5)
    load.add_argument(
        "--warmup",
        type=nonneg_int,
        default=0,
        help="unrecorded 1-token requests sent together first (opens connections)",
    )
    load.add_argument("--drain-s", type=nonneg_float, default=0.0, help="pause between levels")
    load.add_argument(
        "--stop-on-error-rate",
        type=share,
        help="end a level early when this share of requests fails (e.g. 0.5)",
    )
    load.add_argument(
        "--keep-going",
        action="store_true",
        help="do not stop when every request of the first batch fails (stopping is the default)",
    )
    load.add_argument("--seed", type=int, default=0)
    scale = p.add_argument_group("scale-out")
    scale.add_argument(
        "--workers",
        type=positive_int,
        help="load processes (default: one per ~500 planned streams, at most one per core, "
        "one core left to a server on this machine); the schedule is split across them",
    )
    scale.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run the workers as Ray actors across a cluster (pip install 'llmcap[distributed]')",
    )
    out = p.add_argument_group("output")
    add_out(out, Path("runs"), "where run directories are written")
    out.add_argument("--run-id")
    out.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="finish an interrupted run (its stored settings are used)",
    )
    out.add_argument("--quiet", action="store_true", help="no progress display")
    cost = p.add_argument_group("preflight (nothing is sent)")
    cost.add_argument(
        "--dry-run",
        action="store_true",
        help="print requests, tokens, peak TPM and cost per level, and quota warnings; exit",
    )
    cost.add_argument("--budget-usd", type=float, help="refuse to start above this cost")
    cost.add_argument("--prices", type=Path, help="price table JSON (default: shipped)")
    cost.add_argument("--price-region", help="Region to price in (default: --region)")
    p.set_defaults(func=cmd_bench)


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The sweep configuration the flags describe."""
    endpoint = Endpoint(
        provider=args.provider,
        model_id=args.model_id,
        endpoint_url=args.endpoint_url,
        region=args.region,
        aws_profile=args.aws_profile,
        read_timeout_s=args.read_timeout_s,
        client=args.client,
    )
    return SweepConfig(
        endpoint=endpoint,
        prompt=args.prompt,
        mode=args.mode,
        levels=args.levels,
        batches=args.batches,
        interval_s=args.interval_s,
        duration_s=args.duration_s,
        n_requests=args.n_requests,
        arrival=args.arrival,
        max_inflight=args.max_inflight,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        warmup=args.warmup,
        drain_s=args.drain_s,
        stop_on_error_rate=args.stop_on_error_rate,
        stop_on_first_batch_failure=not args.keep_going,
        out=args.out,
        run_id=args.run_id,
        seed=args.seed,
        progress=not args.quiet,
        emulator_profile=args.emulator_profile,
        workers=args.workers,
        ray=args.ray,
    )


def _cost_preflight(args: argparse.Namespace, config: SweepConfig) -> int | None:
    """--dry-run: print the estimate, return 0. --budget-usd: return 2 when the sweep may cost
    more (or its cost is unknown). Otherwise warn about the levels the TPM quota (read live when
    credentials exist) will throttle and return None: run."""
    from llmcap.preflight import estimate_sweep, render

    est = estimate_sweep(
        config, prices=args.prices, price_region=args.price_region, aws_profile=args.aws_profile
    )
    if args.dry_run:
        print(render(est))
        return 0
    total = est.total_cost_usd
    if args.budget_usd is not None and (total is None or total > args.budget_usd):
        cost = "cannot be bounded (see --dry-run)" if total is None else f"may cost ${total:,.2f}"
        raise UserError(
            f"the sweep {cost}, above --budget-usd {args.budget_usd:g}",
            "lower --levels/--batches/--max-tokens or raise the budget",
        )
    for lv in est.throttled_levels():
        print(
            f"warning: {lv.prompt} level {lv.level:g} reserves {lv.peak_tpm:,.0f} tokens/min, "
            f"above the TPM quota {est.quota_tpm:,.0f}: expect throttling",
            file=sys.stderr,
        )
    return None


def preflight(config: SweepConfig) -> None:
    """Check everything that can be checked before a run directory or the emulator exists:
    the options, the prompts, the emulator profile, the Ray cluster and the AWS profile and
    credentials."""
    config.validate()
    load_prompt_sets(config.prompt)
    if config.ray is not None:
        from bench.distributed import check_cluster

        check_cluster(config.ray)
    endpoint = config.endpoint
    local = endpoint.endpoint_url is None and endpoint.region is None
    if local:
        load_profile(config.emulator_profile or DEFAULT_PROFILE)
    if endpoint.provider.startswith("bedrock") and (endpoint.aws_profile or not local):
        import boto3
        from botocore.exceptions import NoCredentialsError

        # Raises botocore's ProfileNotFound, or its SSO errors when a token has expired;
        # llmcap.errors turns them into one line with the fix.
        session = boto3.session.Session(profile_name=endpoint.aws_profile)
        credentials = session.get_credentials()
        if credentials is None and endpoint.endpoint_url is None:
            raise NoCredentialsError()
        if credentials is not None:
            credentials.get_frozen_credentials()


def failure_summary(run_dir: Path) -> str | None:
    """``N of M requests failed: code ×n (first message), ...`` from the run's records."""
    path = run_dir / "records.jsonl"
    if not path.is_file() or path.stat().st_size == 0:
        return None
    df = read_jsonl(path)
    bad = df[df.status != "ok"]
    if bad.empty:
        return None
    parts = []
    for (status, code), group in bad.groupby(["status", "error_code"], dropna=False, sort=False):
        label = code if isinstance(code, str) and code else status
        message = (
            str(group.error_message.dropna().iloc[0]) if group.error_message.notna().any() else ""
        )
        parts.append(
            f"  {status} {label} ×{len(group)}"
            + (f' (first: "{message[:160]}")' if message else "")
        )
    parts.sort(key=lambda line: -int(line.rsplit("×", 1)[1].split()[0]))
    return f"{len(bad)} of {len(df)} requests did not succeed:\n" + "\n".join(parts)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the sweep; exit 0 done, 1 incomplete (a worker died; with how to resume), 2 bad input
    or a first batch that all failed, 130 interrupted (with how to resume)."""
    resume: Path | None = args.resume
    config = read_config(resume) if resume is not None else config_from_args(args)
    preflight(config)
    if resume is None:
        refused = _cost_preflight(args, config)
        if refused is not None:
            return refused
    try:
        if resume is not None:
            run_dir = run_sweep_embedded(resume=resume)
        else:
            run_dir = run_sweep_embedded(config)
    except SweepInterrupted as exc:
        _print_failures(exc.run_dir)
        print(
            f"\nInterrupted. Every sent request has its row in {exc.run_dir}/records.jsonl.",
            file=sys.stderr,
        )
        print(f"Resume with: llmcap bench --resume {exc.run_dir}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        # Threads blocked in an SDK read must not hold the exit; the data is already on disk.
        os._exit(130)
    except SweepIncomplete as exc:
        _print_failures(exc.run_dir)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SweepFailed as exc:
        _print_failures(exc.run_dir)
        raise UserError(
            f"stopped: {exc.reason}",
            f"{fix_for_failed_batch(exc.reason, config.endpoint.aws_profile)} "
            f"(rows in {exc.run_dir}/records.jsonl; --keep-going measures anyway)",
        ) from exc
    _print_failures(run_dir)
    print(f"records: {run_dir}/records.jsonl ({run_dir}/records.parquet)")
    return 0


def _print_failures(run_dir: Path) -> None:
    summary = failure_summary(run_dir)
    if summary:
        print(summary, file=sys.stderr)
