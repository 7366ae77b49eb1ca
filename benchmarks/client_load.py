"""Does a probe taken on a busy machine mislead? A quiet probe and a loaded one of the same
endpoint, what the client measured about itself, and what calibration makes of each.

The endpoint is the built-in emulator (its own process, on a core of its own, as ``llmcap
probe`` runs it) with a shape the twin has not seen: the default profile with 8 replicas and
2.5× the prefill cost (``benchmarks/twin_accuracy.py``, section c), whose forecasts hang on the
longest inter-token gaps. Each probe is interval mode, levels 1, 5, 10 of the small and the
large prompt. The loaded one runs with ``--hogs`` CPU burners (``nice -n -5 python -c 'while 1:
pass'``) for its duration only; they are killed afterwards. Printed per probe: load averages,
the client's measure of itself per level (``capacity.serving.client_load``), the calibration's
verdict (accepted, or its one-line refusal), and the twin's forecast at levels 30 and 50 against
the profile itself. A refused probe is also calibrated with the client's measure removed, to show
the forecast the refusal prevents.

    python benchmarks/client_load.py                    # 10 batches a level, 3 hogs (~5 min)
    python benchmarks/client_load.py --batches 20 --hogs 3
    python benchmarks/client_load.py --runs QUIET_DIR LOADED_DIR   # judge runs made before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench import Endpoint, SweepConfig
from capacity.records import load_records, validate_records
from capacity.serving import (
    ClientOverloadError,
    calibrate,
    check_client_load,
    client_load,
    load_profile,
)
from llmcap.embedded import run_sweep_embedded

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twin_accuracy import describe, held_out

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "capacity" / "serving" / "profiles" / "llama3.3-70b-bedrock.json"


def shape(folder: Path) -> Path:
    """The 8-replica, 2.5× prefill profile of twin_accuracy's section (c), as a JSON file."""
    raw = json.loads(DEFAULT.read_text(encoding="utf-8"))
    raw["name"] = "replicas-8"
    raw["serving"]["replicas"] = 8
    raw["serving"]["c_f_s"] *= 2.5
    path = folder / "replicas-8.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def run_probe(profile: Path, out: Path, batches: int, hogs: int) -> list[Path]:
    """The probe (both prompts, levels 1, 5, 10), with ``hogs`` CPU burners while it runs."""
    burners = [
        subprocess.Popen(["nice", "-n", "-5", sys.executable, "-c", "while 1: pass"])
        for _ in range(hogs)
    ]
    try:
        if burners:
            time.sleep(2.0)  # let them take their share first
        print(f"  load average before: {fmt_load()}", flush=True)
        runs = []
        for prompt in ("small", "large"):
            config = SweepConfig(
                endpoint=Endpoint(), prompt=prompt, mode="interval", levels=(1, 5, 10),
                batches=batches, max_tokens=350, out=out, progress=False, drain_s=0,
                emulator_profile=str(profile),
            )  # fmt: skip
            runs.append(run_sweep_embedded(config))
        print(f"  load average after:  {fmt_load()}", flush=True)
        return runs
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def fmt_load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def judge(title: str, runs: list[Path], profile: Path) -> None:
    """The client's measure per level, the verdict, and the forecast (forced when refused)."""
    records = load_records(runs)
    print(f"\n{title}: {len(records)} requests ({', '.join(r.name for r in runs)})")
    print(f"  {'level':<16}{'loop lag p50':>13}{'p95':>8}{'x TPOT':>8}{'TTFT p50':>10}"
          f"{'gap p50':>9}{'CPU':>6}  verdict")  # fmt: skip
    gaps = records[records.status == "ok"].groupby(["prompt_label", "level"]).max_gap_s.median()
    for load in client_load(records):
        gap = gaps.get((load.prompt, load.level), float("nan"))
        print(f"  {load.name:<16}{load.lag_p50_s * 1e3:>10.1f} ms{load.lag_p95_s * 1e3:>8.1f}"
              f"{load.lag_per_token_time:>8.1f}{load.ttft_p50_s:>9.3f}s{gap * 1e3:>7.1f}ms"
              f"{load.cpu_share_p50:>6.0%}  {'DISTORTED' if load.distorted else 'ok'}")  # fmt: skip
    truth = load_profile(profile)
    try:
        check_client_load(records)
    except ClientOverloadError as exc:
        print(f"  calibration refuses: {exc}")
        blind = records.assign(loop_lag_s=float("nan"), client_cpu_share=float("nan"))
        forced = validate_records(pd.DataFrame(blind), source="the probe without the measure")
        twin = calibrate(forced)
        describe(twin, truth)
        held_out(twin, truth, "  what it would have forecast (the client's measure removed)", 0.10)
        return
    print("  calibration accepts it")
    twin = calibrate(records)
    describe(twin, truth)
    held_out(twin, truth, "  forecast", 0.10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="batches per level (1 s apart)")
    parser.add_argument("--hogs", type=int, default=3, help="CPU burners during the loaded probe")
    parser.add_argument("--out", type=Path, default=Path("/tmp/llmcap-client-load"))
    parser.add_argument(
        "--runs", nargs=2, metavar="DIR", type=Path,
        help="judge earlier probes: a folder of quiet runs, one of loaded runs",
    )  # fmt: skip
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    profile = shape(args.out)
    if args.runs:
        quiet = sorted(p for p in args.runs[0].iterdir() if p.is_dir())
        loaded = sorted(p for p in args.runs[1].iterdir() if p.is_dir())
    else:
        print(f"quiet probe ({args.batches} batches a level):", flush=True)
        quiet = run_probe(profile, args.out / "quiet", args.batches, 0)
        print(f"loaded probe ({args.hogs} CPU burners at nice -5):", flush=True)
        loaded = run_probe(profile, args.out / "loaded", args.batches, args.hogs)
    judge("quiet probe", quiet, profile)
    judge("loaded probe", loaded, profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
