"""Fault tolerance, measured: does every request the endpoint received get exactly one row?

For each fault the emulator injects (``llmcap emulate --fault KIND=RATE``: 5xx, mid-stream
exception, dropped connection, stalled stream, 429 storm, slow headers) at 1 %, 10 % and 50 %,
runs ``llmcap bench`` in its own process against the emulator (its own process too, with a
truth log), then compares:

- requests sent: the emulator's truth log (one line per request it received);
- rows written: ``records.jsonl`` (+ ``records.partial.jsonl`` after a resume), each with a
  status and, when not ok, an error code; matched to the truth log by the server's request id;
- duplicates: rows sharing a request id or a server request id;
- the reaction: the exit code of ``llmcap bench``, its failures-by-code summary, and the
  summary's p95 TTFT of ok requests at the top level.

Plus the client killed with SIGKILL mid-level and ``llmcap bench --resume``. The table is the
one in docs/reliability.md.

    python benchmarks/faults.py                      # every fault at 1 %, 10 %, 50 % + SIGKILL
    python benchmarks/faults.py --kinds drop,stall --rates 0.1
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from capacity.errors import CapacityError
from capacity.records import load_records, summarize
from emulator.runner import EmulatorProcess

KINDS = {  # --fault kind → what it does (docs/emulator.md)
    "500": "HTTP 500 InternalServerException before the stream",
    "midstream": "modelStreamErrorException mid-stream",
    "drop": "connection cut mid-stream",
    "stall": "stream silent for --stall-s mid-stream",
    "throttle": "429 ThrottlingException storm",
    "slow-headers": "response headers held for --slow-headers-s",
}
READ_TIMEOUT_S = 1.0
STALL_S = 2.0  # > READ_TIMEOUT_S: a stalled stream times out in the client
SLOW_HEADERS_S = 0.5  # < READ_TIMEOUT_S: slow headers delay the first token, nothing fails
LEVELS, BATCHES, INTERVAL_S, MAX_TOKENS = "10,20", 10, 0.1, 100


@dataclass
class Outcome:
    """One scenario's accounting."""

    scenario: str
    sent: int
    rows: int
    matched: int
    duplicates: int
    statuses: Counter[str]
    codes: Counter[str]
    exit_code: int
    reaction: str
    ttft_p95_s: float


def bench_args(url: str, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "llmcap", "bench", "--quiet", "--endpoint-url", url,
        "--prompt", "small", "--mode", "interval", "--levels", LEVELS,
        "--batches", str(BATCHES), "--interval-s", str(INTERVAL_S),
        "--max-tokens", str(MAX_TOKENS), "--read-timeout-s", str(READ_TIMEOUT_S),
        "--out", str(out), "--run-id", "r",
    ]  # fmt: skip


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def settle(log: Path, at_least: int, timeout_s: float = STALL_S + 3) -> None:
    """Wait until the truth log has ``at_least`` lines (the emulator logs a request when it
    ends, which for a stalled or abandoned stream is after the client has gone)."""
    deadline = time.monotonic() + timeout_s
    while len(lines(log)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)


def account(scenario: str, run: Path, log: Path, exit_code: int, stderr: str) -> Outcome:
    rows = [
        json.loads(line)
        for name in ("records.jsonl", "records.partial.jsonl")
        for line in lines(run / name)
    ]
    settle(log, len(rows))
    truth = [json.loads(line) for line in lines(log)]
    truth_ids = {t["request_id"] for t in truth}
    server_ids = [r["server_request_id"] for r in rows if r["server_request_id"]]
    duplicates = (len(rows) - len({r["request_id"] for r in rows})) + (
        len(server_ids) - len(set(server_ids))
    )
    failures = [ln.strip() for ln in stderr.splitlines() if ln.startswith("  ")]
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    reaction = failures[0] if failures else "no failures reported"
    if last.startswith("error: "):
        reaction = last.split(" — ")[0]
    return Outcome(
        scenario=scenario,
        sent=len(truth),
        rows=len(rows),
        matched=len(set(server_ids) & truth_ids),
        duplicates=duplicates,
        statuses=Counter(r["status"] for r in rows),
        codes=Counter(r["error_code"] for r in rows if r["status"] != "ok"),
        exit_code=exit_code,
        reaction=reaction,
        ttft_p95_s=top_level_ttft_p95(run),
    )


def top_level_ttft_p95(run: Path) -> float:
    """The summary's p95 TTFT (ok requests) at the top level, NaN without ok requests."""
    try:
        summary = summarize(load_records(run))
    except CapacityError:  # a run without ok rows has no summary to report
        return float("nan")
    top = summary[summary["level"] == summary["level"].max()]
    return float(top["ttft_p95_s"].iloc[0]) if len(top) else float("nan")


def emulator(tmp: Path, *faults: str) -> EmulatorProcess:
    extra = ["--stall-s", str(STALL_S), "--slow-headers-s", str(SLOW_HEADERS_S)]
    for fault in faults:
        extra += ["--fault", fault]
    return EmulatorProcess("fast", extra_args=tuple(extra), truth_log=tmp / "truth.jsonl")


def fault_run(kind: str | None, rate: float) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="llmcap-faults-") as name:
        tmp = Path(name)
        faults = (f"{kind}={rate}",) if kind else ()
        with emulator(tmp, *faults) as emu:
            done = subprocess.run(bench_args(emu.url, tmp), capture_output=True, text=True)
            label = f"{kind} {rate:.0%}" if kind else "no fault"
            return account(label, tmp / "r", tmp / "truth.jsonl", done.returncode, done.stderr)


def sigkill_run(after_requests: int = 60) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="llmcap-faults-") as name:
        tmp = Path(name)
        log = tmp / "truth.jsonl"
        with emulator(tmp) as emu:
            proc = subprocess.Popen(
                bench_args(emu.url, tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for(lambda: len(lines(tmp / "r" / "records.sent.jsonl")) >= after_requests)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            settle(log, len(lines(tmp / "r" / "records.sent.jsonl")))
            args = [sys.executable, "-m", "llmcap", "bench", "--quiet", "--resume", str(tmp / "r")]
            done = subprocess.run(args, capture_output=True, text=True)
            return account(
                f"SIGKILL after {after_requests} sent, then --resume",
                tmp / "r", log, done.returncode, done.stderr,
            )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the sweep did not get that far")
        time.sleep(0.01)


def table(outcomes: list[Outcome]) -> str:
    head = (
        "| scenario | sent (truth log) | rows | matched | duplicates | rows by status | "
        "codes | `bench` exit | reaction | TTFT p95 top level (s) |\n"
        "|---|--:|--:|--:|--:|---|---|--:|---|--:|"
    )
    out = [head]
    for o in outcomes:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(o.statuses.items()))
        codes = ", ".join(f"{k} {v}" for k, v in o.codes.most_common()) or "–"
        ttft = f"{o.ttft_p95_s:.3f}" if o.ttft_p95_s == o.ttft_p95_s else "–"
        out.append(
            f"| {o.scenario} | {o.sent} | {o.rows} | {o.matched} | {o.duplicates} | {statuses} "
            f"| {codes} | {o.exit_code} | {o.reaction} | {ttft} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds")
    parser.add_argument("--rates", default="0.01,0.1,0.5", help="comma-separated rates")
    parser.add_argument("--no-kill", action="store_true", help="skip the SIGKILL scenario")
    args = parser.parse_args()
    outcomes = [fault_run(None, 0.0)]
    for kind in args.kinds.split(","):
        for rate in map(float, args.rates.split(",")):
            outcomes.append(fault_run(kind, rate))
            print(f"done: {outcomes[-1].scenario}", file=sys.stderr, flush=True)
    if not args.no_kill:
        outcomes.append(sigkill_run())
    print(
        f"llmcap bench: interval mode, levels {LEVELS}, {BATCHES} batches every {INTERVAL_S} s, "
        f"{MAX_TOKENS} output tokens, --read-timeout-s {READ_TIMEOUT_S}; emulator profile fast, "
        f"--stall-s {STALL_S}, --slow-headers-s {SLOW_HEADERS_S}\n"
    )
    print(table(outcomes))
    lost = [o.scenario for o in outcomes if o.sent != o.rows or o.duplicates]
    print(f"\nscenarios with a lost or duplicated row: {', '.join(lost) or 'none'}")


if __name__ == "__main__":
    main()
