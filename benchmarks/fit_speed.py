"""Speed of the modelling core: load, summarize and fit 1,000,000 request records.

Writes a synthetic closed-loop sweep (two prompt sizes × 7 levels, 2 % throttled; see
``capacity.records._synthetic``) as a run directory with ``records.parquet``, then times
``load_records`` (with full validation), ``summarize`` and ``fit_capacity`` (USL fits, quantile
regressions on ≤ 1,000 rows per level, 200 bootstrap replicates). Target: under 5 s in total.

    python benchmarks/fit_speed.py
    python benchmarks/fit_speed.py --rows 200000 --repeat 5 --jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from capacity.fitting import fit_capacity
from capacity.records import SyntheticPrompt, load_records, summarize, synthetic_records

PROMPTS = (
    SyntheticPrompt("small", 43),
    SyntheticPrompt("large", 6027, lam=126.0, sigma=0.002, kappa=4.6e-4, ttft_s=0.8),
)
LEVELS = (1, 5, 10, 20, 30, 40, 50)
TARGET_S = 5.0


def timed(run_dir: Path) -> tuple[float, float, float, int]:
    """Seconds to load, summarize and fit; and the number of rows."""
    t0 = time.perf_counter()
    records = load_records(run_dir)
    t1 = time.perf_counter()
    summarize(records)
    t2 = time.perf_counter()
    fit_capacity(records)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jsonl", action="store_true", help="also time loading records.jsonl")
    args = parser.parse_args()
    per_level = -(-args.rows // (len(PROMPTS) * len(LEVELS)))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        frame = synthetic_records(
            PROMPTS, levels=LEVELS, requests_per_level=per_level, throttle_rate=0.02, seed=1
        )
        frame.to_parquet(run_dir / "records.parquet", index=False)
        results = [timed(run_dir) for _ in range(args.repeat)]
        totals = [sum(r[:3]) for r in results]
        best = results[totals.index(min(totals))]
        print(f"{best[3]:,} records (records.parquet), best of {args.repeat}:")
        print(
            f"  load + validate {best[0]:.2f} s, summarize {best[1]:.2f} s, "
            f"fit {best[2]:.2f} s: total {sum(best[:3]):.2f} s "
            f"(median total {statistics.median(totals):.2f} s)"
        )
        if args.jsonl:
            jsonl = Path(tmp) / "records.jsonl"
            with jsonl.open("w") as fh:
                for row in frame.to_dict(orient="records"):
                    fh.write(
                        json.dumps(
                            {k: (None if v != v else v) for k, v in row.items()}, default=str
                        )
                        + "\n"
                    )
            t0 = time.perf_counter()
            load_records(jsonl)
            print(f"  load + validate records.jsonl: {time.perf_counter() - t0:.2f} s")
    verdict = "within" if min(totals) < TARGET_S else "OVER"
    print(f"{verdict} the {TARGET_S:g} s target")
    return 0 if min(totals) < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
