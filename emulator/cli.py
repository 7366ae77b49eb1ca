"""Command line of the emulator, shared by ``llmcap emulate`` and ``python -m emulator``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from capacity.serving._profile import DEFAULT_PROFILE, shipped_profiles
from emulator.loop import run
from emulator.runner import resolve_profile, serve_forever
from emulator.service import EmulatorService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options."""
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"shipped name ({', '.join(shipped_profiles())}) or a JSON file",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--tpm", type=int, help="tokens-per-minute quota per model")
    parser.add_argument("--rpm", type=int, help="requests-per-minute quota per model")
    parser.add_argument("--tpd", type=int, help="tokens-per-day quota per model")
    parser.add_argument(
        "--throttle",
        choices=("http", "mid-stream"),
        help="deliver throttles as HTTP 429 (default) or as a mid-stream throttlingException",
    )
    parser.add_argument(
        "--quota-rule",
        choices=("bucket", "window"),
        help="how TPM/RPM are enforced: a refilling bucket with refunds (default) or per-minute "
        "windows without early refunds (docs/architecture.md, 'Quota rules')",
    )
    parser.add_argument("--truth-log", type=Path, help="write the server's own timings (JSONL)")
    parser.add_argument("--seed", type=int, default=0)


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM; returns the exit code."""
    profile = resolve_profile(
        args.profile,
        tpm=args.tpm,
        rpm=args.rpm,
        tpd=args.tpd,
        throttle=args.throttle,
        quota_rule=args.quota_rule,
    )
    service = EmulatorService(profile, seed=args.seed, truth_log=args.truth_log)
    q = profile.quotas
    quotas = ", ".join(
        f"{k} {v:,}" for k, v in (("TPM", q.tpm), ("RPM", q.rpm), ("TPD", q.tpd)) if v
    )
    print(f"llmcap emulator: profile {profile.name} on http://{args.host}:{args.port}")
    print(f"  models: {', '.join(m.model_id for m in profile.models)}")
    print(f"  quotas: {quotas or 'none'} (throttle: {q.throttle}, rule: {q.rule})")
    if args.truth_log:
        print(f"  truth log: {args.truth_log}")
    print("  Ctrl-C stops it.", flush=True)
    # SIGTERM (how a parent process stops us) ends as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
