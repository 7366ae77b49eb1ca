"""``llmcap``: the one console script; the composition root over ``bench`` and ``capacity``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.emulator.profile import DEFAULT_PROFILE, ProfileError, shipped_profiles
from bench.emulator.runner import Emulator, resolve_profile, run, serve_forever
from bench.emulator.service import EmulatorService


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="llmcap",
        description="Capacity planning and quota modelling for LLM endpoints.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    emu = sub.add_parser("emulate", help="serve the built-in Bedrock/OpenAI-compatible emulator")
    emu.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"shipped name ({', '.join(shipped_profiles())}) or a JSON file",
    )
    emu.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=8787)
    emu.add_argument("--tpm", type=int, help="tokens-per-minute quota per model")
    emu.add_argument("--rpm", type=int, help="requests-per-minute quota per model")
    emu.add_argument("--tpd", type=int, help="tokens-per-day quota per model")
    emu.add_argument(
        "--throttle",
        choices=("http", "mid-stream"),
        help="deliver throttles as HTTP 429 (default) or as a mid-stream throttlingException",
    )
    emu.add_argument("--truth-log", type=Path, help="write the server's own timings (JSONL)")
    emu.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser("demo", help="run the main job against the built-in emulator")
    demo.add_argument("--profile", default=DEFAULT_PROFILE)
    demo.add_argument("--max-tokens", type=int, default=350)
    return parser


def cmd_emulate(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    profile = resolve_profile(
        args.profile, tpm=args.tpm, rpm=args.rpm, tpd=args.tpd, throttle=args.throttle
    )
    service = EmulatorService(profile, seed=args.seed, truth_log=args.truth_log)
    q = profile.quotas
    quotas = ", ".join(
        f"{k} {v:,}" for k, v in (("TPM", q.tpm), ("RPM", q.rpm), ("TPD", q.tpd)) if v
    )
    print(f"llmcap emulator: profile {profile.name} on http://{args.host}:{args.port}")
    print(f"  models: {', '.join(m.model_id for m in profile.models)}")
    print(f"  quotas: {quotas or 'none'} (throttle: {q.throttle})")
    if args.truth_log:
        print(f"  truth log: {args.truth_log}")
    print("  Ctrl-C stops it.", flush=True)
    try:
        run(serve_forever(service, args.host, args.port))
    except KeyboardInterrupt:
        print("\nemulator stopped")
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc}; pick --port", file=sys.stderr
        )
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """One streamed ConverseStream request through real boto3 against the in-process emulator."""
    import boto3
    from botocore.config import Config

    with Emulator(args.profile) as emu:
        model_id = emu.profile.default_model_id
        print(f"started the built-in emulator (profile {emu.profile.name}) at {emu.url}")
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=emu.url,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
        )
        t0 = time.perf_counter()
        response = client.converse_stream(
            modelId=model_id,
            messages=[{"role": "user", "content": [{"text": "What is the meaning of life?"}]}],
            inferenceConfig={"maxTokens": args.max_tokens, "temperature": 0.5},
        )
        first = last = None
        n_in = n = 0
        for event in response["stream"]:
            if "contentBlockDelta" in event:
                last = time.perf_counter()
                first = first or last
            elif "metadata" in event:
                n_in = event["metadata"]["usage"]["inputTokens"]
                n = event["metadata"]["usage"]["outputTokens"]
        assert first is not None and last is not None, "the stream carried no text"
        ttft, ttlt = first - t0, last - t0
        tpot = (ttlt - ttft) / (n - 1) if n > 1 else float("nan")
        print(f"ConverseStream {model_id} via boto3:")
        print(f"  TTFT {ttft:.3f} s, TTLT {ttlt:.3f} s, TPOT {tpot * 1000:.2f} ms "
              f"({1 / tpot:.0f} tokens/s)")  # fmt: skip
        print(f"  tokens: {n_in} in, {n} out")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmcap`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "emulate":
            return cmd_emulate(args)
        return cmd_demo(args)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
