"""``llmcap emulate``: serve the built-in Bedrock/OpenAI-compatible emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.emulator.profile import DEFAULT_PROFILE, shipped_profiles
from bench.emulator.runner import resolve_profile, run, serve_forever
from bench.emulator.service import EmulatorService


def register(sub: Any) -> None:
    """Add the ``emulate`` subcommand to ``sub`` (an argparse subparsers object)."""
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

    emu.set_defaults(func=cmd_emulate)


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
