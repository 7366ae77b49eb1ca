"""``llmcap demo``: the main job against the built-in emulator."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.emulator.profile import DEFAULT_PROFILE
from bench.emulator.runner import Emulator


def register(sub: Any) -> None:
    """Add the ``demo`` subcommand to ``sub`` (an argparse subparsers object)."""
    demo = sub.add_parser("demo", help="run the main job against the built-in emulator")
    demo.add_argument("--profile", default=DEFAULT_PROFILE)
    demo.add_argument("--max-tokens", type=int, default=350)
    demo.set_defaults(func=cmd_demo)


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
