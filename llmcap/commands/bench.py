"""``llmcap bench``: run a load sweep against an endpoint and record every request."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench.config import SEED_LEVELS, SweepConfig, SweepError
from bench.emulator.profile import DEFAULT_PROFILE
from bench.prompts import PromptError
from bench.providers.base import PROVIDERS, Endpoint
from bench.strategies import MODES
from bench.sweep import SweepIncomplete, SweepInterrupted, run_sweep


def _levels(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: write levels like 1,5,10") from exc


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
    where.add_argument("--aws-profile", help="AWS named profile for credentials")
    where.add_argument("--provider", choices=PROVIDERS, default="bedrock-converse")
    where.add_argument(
        "--client",
        choices=("async", "boto3", "httpx"),
        default="async",
        help="async: llmcap's lean HTTP/1.1 client on one event loop (default); boto3 in "
        "threads (Bedrock) or httpx (openai): the general-purpose clients",
    )
    where.add_argument("--model-id", default="us.meta.llama3-3-70b-instruct-v1:0")
    where.add_argument(
        "--emulator-profile",
        default=DEFAULT_PROFILE,
        help="profile of the built-in emulator when it is the target",
    )
    where.add_argument("--read-timeout-s", type=float, default=120.0)
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
    load.add_argument("--batches", type=int, default=60)
    load.add_argument("--interval-s", type=float, default=1.0)
    load.add_argument("--duration-s", type=float, help="per level (concurrency and rate modes)")
    load.add_argument(
        "--requests", type=int, dest="n_requests", help="per level (concurrency and rate modes)"
    )
    load.add_argument("--arrival", choices=("poisson", "constant"), default="poisson")
    load.add_argument("--max-inflight", type=int, help="rate mode: cap on requests in flight")
    load.add_argument("--max-tokens", type=int, default=350)
    load.add_argument("--temperature", type=float, default=0.5)
    load.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="unrecorded 1-token requests sent together first (opens connections)",
    )
    load.add_argument("--drain-s", type=float, default=0.0, help="pause between levels")
    load.add_argument(
        "--stop-on-error-rate",
        type=float,
        help="end a level early when this share of requests fails (e.g. 0.5)",
    )
    load.add_argument("--seed", type=int, default=0)
    scale = p.add_argument_group("scale-out")
    scale.add_argument(
        "--workers",
        type=int,
        help="load processes (default: one per ~500 planned streams, at most one per core, "
        "one core left to a server on this machine); the schedule is split across them",
    )
    scale.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run the workers as Ray actors across a cluster (pip install 'llmcap[distributed]')",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("runs"))
    out.add_argument("--run-id")
    out.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="finish an interrupted run (its stored settings are used)",
    )
    out.add_argument("--quiet", action="store_true", help="no progress display")
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
        out=args.out,
        run_id=args.run_id,
        seed=args.seed,
        progress=not args.quiet,
        emulator_profile=args.emulator_profile,
        workers=args.workers,
        ray=args.ray,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the sweep; exit 0 done, 1 incomplete (a worker died), 2 bad input, 130 interrupted
    (both with how to resume)."""
    try:
        if args.resume is not None:
            run_dir = run_sweep(resume=args.resume)
        else:
            run_dir = run_sweep(config_from_args(args))
    except SweepInterrupted as exc:
        print(
            f"\nInterrupted. Every finished request is in {exc.run_dir}/records.jsonl.",
            file=sys.stderr,
        )
        print(f"Resume with: llmcap bench --resume {exc.run_dir}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        # Threads blocked in an SDK read must not hold the exit; the data is already on disk.
        os._exit(130)
    except SweepIncomplete as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (SweepError, PromptError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"records: {run_dir}/records.jsonl ({run_dir}/records.parquet)")
    return 0
