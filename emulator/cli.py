"""Command line of the emulator, shared by ``llmcap emulate`` and ``python -m emulator``."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from capacity.serving import (
    DEFAULT_PROFILE,
    ENDPOINTS,
    FaultConfig,
    Profile,
    shipped_profiles,
)
from emulator.loop import run
from emulator.runner import resolve_profile, serve_forever
from emulator.service import EmulatorService

# --fault KIND=RATE: the fault kinds of docs/emulator.md and the FaultConfig field each sets.
FAULT_KINDS = {
    "500": "error_rate",
    "503": "error_rate",
    "424": "error_rate",
    "midstream": "midstream_error_rate",
    "drop": "drop_rate",
    "stall": "stall_rate",
    "throttle": "throttle_rate",
    "slow-headers": "slow_headers_rate",
}


def port_number(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 1-65535, or 0 for any")
    return port


def positive_int(text: str) -> int:
    """A whole number above 0."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number above 0, e.g. 600000")
    return value


def positive_seconds(text: str) -> float:
    """A duration in seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds above 0, e.g. 5")
    return value


def fault(text: str) -> tuple[str, float]:
    """``KIND=RATE``, e.g. ``500=0.1`` or ``slow-headers=0.01``."""
    kind, _, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if kind not in FAULT_KINDS or not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write KIND=RATE with RATE in [0, 1] and KIND one of "
            f"{', '.join(FAULT_KINDS)}"
        )
    return kind, rate


def add_arguments(parser: argparse.ArgumentParser, profile_flag: str = "--profile") -> None:
    """The emulator's options; the serving profile is ``profile_flag`` (``llmcap emulate``
    spells it ``--emulator-profile``), stored as ``profile``."""
    parser.add_argument(
        profile_flag,
        dest="profile",
        default=DEFAULT_PROFILE,
        help=f"serving profile: a shipped name ({', '.join(shipped_profiles())}) or a JSON file "
        f"(default: {DEFAULT_PROFILE})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8787, help="TCP port (default 8787; 0: any free port)"
    )
    parser.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        help="the endpoint emulated: runtime (bedrock-runtime: Converse, InvokeModel and the "
        "OpenAI-compatible APIs under --tpm/--rpm/--tpd; the profile's, runtime unless it says) "
        "or mantle (bedrock-mantle: /v1/responses and /v1/chat/completions under --input-tpm "
        "and --output-tpm)",
    )
    parser.add_argument("--tpm", type=positive_int, help="tokens-per-minute quota per model")
    parser.add_argument(
        "--input-tpm", type=positive_int, help="bedrock-mantle's input tokens per minute per model"
    )
    parser.add_argument(
        "--output-tpm",
        type=positive_int,
        help="bedrock-mantle's output tokens per minute per model",
    )
    parser.add_argument(
        "--reserved-input-tpm",
        type=positive_int,
        help="Reserved capacity's input tokens per minute (at least 100,000): requests with "
        "service tier 'reserved' use it first and overflow to the on-demand quota",
    )
    parser.add_argument(
        "--reserved-output-tpm",
        type=positive_int,
        help="Reserved capacity's output tokens per minute (at least 10,000)",
    )
    parser.add_argument("--rpm", type=positive_int, help="requests-per-minute quota per model")
    parser.add_argument("--tpd", type=positive_int, help="tokens-per-day quota per model")
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
    parser.add_argument(
        "--fault",
        type=fault,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject a fault into this share of requests, repeatable; KIND: "
        + ", ".join(FAULT_KINDS),
    )
    parser.add_argument(
        "--stall-s", type=positive_seconds, help="how long a stalled stream stays silent"
    )
    parser.add_argument(
        "--slow-headers-s", type=positive_seconds, help="how long slow headers are held back"
    )
    parser.add_argument("--truth-log", type=Path, help="write the server's own timings (JSONL)")
    parser.add_argument("--seed", type=int, default=0)


def with_faults(
    profile: Profile,
    faults: list[tuple[str, float]],
    *,
    stall_s: float | None = None,
    slow_headers_s: float | None = None,
) -> Profile:
    """``profile`` with the ``--fault``, ``--stall-s`` and ``--slow-headers-s`` overrides."""
    if not faults and stall_s is None and slow_headers_s is None:
        return profile
    f = profile.faults
    changes: dict[str, object] = {}
    error_rate = dict(f.error_rate)
    for kind, rate in faults:
        if FAULT_KINDS[kind] == "error_rate":
            error_rate[kind] = rate
        else:
            changes[FAULT_KINDS[kind]] = rate
    if stall_s is not None:
        changes["stall_s"] = stall_s
    if slow_headers_s is not None:
        changes["slow_headers_s"] = slow_headers_s
    fields = {**dataclasses.asdict(f), **changes, "error_rate": error_rate}
    return profile.with_overrides(faults=FaultConfig(**fields))


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM; returns the exit code. Quotas that cannot be
    enforced together raise ``QuotaError`` (one line) before anything listens."""
    profile = resolve_profile(
        args.profile, tpm=args.tpm, rpm=args.rpm, tpd=args.tpd, throttle=args.throttle,
        quota_rule=args.quota_rule, endpoint=args.endpoint, input_tpm=args.input_tpm,
        output_tpm=args.output_tpm, reserved_input_tpm=args.reserved_input_tpm,
        reserved_output_tpm=args.reserved_output_tpm,
    )  # fmt: skip
    profile = with_faults(
        profile, args.fault, stall_s=args.stall_s, slow_headers_s=args.slow_headers_s
    )
    service = EmulatorService(profile, seed=args.seed, truth_log=args.truth_log)
    q = profile.quotas
    quotas = profile.quotas.limits().describe()

    def banner(port: int) -> None:  # the port actually bound (--port 0 picks one)
        print(f"llmcap emulator: profile {profile.name} on http://{args.host}:{port}")
        print(f"  models: {', '.join(m.model_id for m in profile.models)}")
        print(f"  quotas: {quotas} (throttle: {q.throttle})")
        if args.fault:
            print(f"  faults: {', '.join(f'{k} {r:.0%}' for k, r in args.fault)}")
        if args.truth_log:
            print(f"  truth log: {args.truth_log}")
        print("  Ctrl-C stops it.", flush=True)

    # SIGTERM (how a parent process stops us) ends as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run(serve_forever(service, args.host, args.port, on_ready=banner))
    except KeyboardInterrupt:
        print("\nemulator stopped")
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} — pick "
            "another --port (0: any free port)",
            file=sys.stderr,
        )
        return 2
    return 0
