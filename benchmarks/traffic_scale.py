"""How fast llmcap reads and analyses invocation logs: N synthetic records in the official schema
(request and response bodies included, gzipped, in the S3 folder layout), then loading them
(DuckDB projects the fields into the request table), the analysis (per-second and per-minute
usage, distributions) and one model's arrays for the replay. Prints sizes, times, peak RSS and
the load average; results in docs/performance.md ("Reading real traffic").

    python benchmarks/traffic_scale.py --records 10000000 --dir /tmp/llmcap-traffic-10m

The logs are generated once per --dir (with --records, --body-chars and --seed recorded in
--dir/benchmark-spec) and reused by later runs; --regenerate forces a new set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.serving import QuotaLimits, replay  # noqa: E402
from capacity.usage import (  # noqa: E402
    SyntheticLogs,
    analyze_traffic,
    load_requests,
    request_arrays,
    write_invocation_logs,
)

MODELS = (
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "us.meta.llama3-3-70b-instruct-v1:0",
)
PART = 250_000  # records per generation task


def _part(args: tuple[str, int, int, int, float, int]) -> int:
    out, part, n, body_chars, rate, seed = args
    base = SyntheticLogs(requests=1, models=MODELS)
    spec = SyntheticLogs(
        requests=n,
        models=MODELS,
        rate_per_s=rate,
        records_per_file=20_000,
        body_chars=body_chars,
        seed=seed + part,
        part=part,
        start=base.start + timedelta(seconds=part * PART / rate),
    )
    write_invocation_logs(out, spec, compresslevel=1)
    return n


def generate(out: Path, records: int, body_chars: int, rate: float, seed: int, jobs: int) -> None:
    """Write the logs in parts of ``PART`` records, ``jobs`` processes at a time."""
    parts = [
        (str(out), i, min(PART, records - i * PART), body_chars, rate, seed)
        for i in range((records + PART - 1) // PART)
    ]
    with ProcessPoolExecutor(jobs) as pool:
        done = 0
        for n in pool.map(_part, parts):
            done += n
            print(f"  generated {done:,} / {records:,}", flush=True)


def sizes(out: Path) -> tuple[int, int, int]:
    """(files, compressed bytes, uncompressed bytes: each gzip member's ISIZE trailer)."""
    files = list(out.rglob("*.json.gz"))
    packed = sum(f.stat().st_size for f in files)
    raw = 0
    for f in files:
        with f.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            raw += struct.unpack("<I", fh.read(4))[0]  # < 4 GiB per file
    return len(files), packed, raw


def cpu_s() -> float:
    """CPU seconds of this process so far (every thread: DuckDB's and Arrow's too)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument(
        "--body-chars",
        type=int,
        default=1000,
        help="characters of request text per record (the response has a quarter)",
    )
    p.add_argument("--rate", type=float, default=200.0, help="mean requests per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, default=Path("/tmp/llmcap-traffic-bench"))
    p.add_argument("--jobs", type=int, default=2, help="processes generating the logs")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: every core)")
    p.add_argument("--regenerate", action="store_true")
    args = p.parse_args()
    spec = {
        "records": args.records,
        "body_chars": args.body_chars,
        "rate": args.rate,
        "seed": args.seed,
    }
    marker = args.dir / "benchmark-spec"  # no log suffix: the loader skips it
    if args.regenerate or not marker.exists() or json.loads(marker.read_text()) != spec:
        shutil.rmtree(args.dir, ignore_errors=True)
        args.dir.mkdir(parents=True)
        t = time.perf_counter()
        generate(args.dir, args.records, args.body_chars, args.rate, args.seed, args.jobs)
        marker.write_text(json.dumps(spec))
        print(f"generated in {time.perf_counter() - t:.0f} s")
    files, packed, raw = sizes(args.dir)
    print(
        f"logs: {args.records:,} records in {files:,} files, {packed / 1e9:.2f} GB gzip'd, "
        f"{raw / 1e9:.2f} GB of JSON ({raw / args.records:,.0f} bytes per record)"
    )
    print(f"cores {os.cpu_count()}, load average at start {load_avg()}")

    t0, c0 = time.perf_counter(), cpu_s()
    table = load_requests(args.dir, threads=args.threads)
    t_load, c_load = time.perf_counter() - t0, cpu_s() - c0
    print(
        f"load:     {t_load:6.1f} s ({c_load:.1f} CPU s)  {len(table):,} requests "
        f"({raw / t_load / 1e6:,.0f} MB/s of JSON), table {table.arrow.nbytes / 1e9:.2f} GB, "
        f"peak RSS {peak_rss_gib():.1f} GiB, load average {load_avg()}"
    )
    t0, c0 = time.perf_counter(), cpu_s()
    analysis = analyze_traffic(table, threads=args.threads)
    t_analysis, c_analysis = time.perf_counter() - t0, cpu_s() - c0
    print(
        f"analysis: {t_analysis:6.1f} s ({c_analysis:.1f} CPU s)  {len(analysis.models)} models, "
        f"{sum(m.per_second.periods for m in analysis.models):,} seconds analysed, "
        f"peak RSS {peak_rss_gib():.1f} GiB, load average {load_avg()}"
    )
    cpu, cores = c_load + c_analysis, os.cpu_count() or 1
    print(
        f"load + analysis: {t_load + t_analysis:.1f} s, {cpu:.1f} CPU s (on {cores} idle cores "
        f"at least {cpu / cores:.1f} s; target: 60 s for 10 M records)"
    )
    biggest = max(analysis.models, key=lambda m: m.requests)
    t0 = time.perf_counter()
    arrays = request_arrays(table, biggest.model_id)
    print(
        f"request_arrays({biggest.model_id}): {time.perf_counter() - t0:.2f} s, "
        f"{len(arrays.arrival_s):,} requests"
    )
    for m in analysis.models:
        print(
            f"  {m.model_id}: {m.requests:,} requests, 1-s peak/mean "
            f"{m.per_second.peak_to_mean_requests:.1f}, 1-min peak/mean "
            f"{m.per_minute.peak_to_mean_requests:.2f}, p99 prompt "
            f"{m.tokens['prompt_tokens'].p99:,.0f}"
        )

    # -- replay: every model's requests through the quota ledger, at a quota near their need --
    replay_s, replayed = 0.0, 0
    for m in analysis.models:
        arrays = request_arrays(table, m.model_id)
        quota = QuotaLimits(tpm=max(1, int(m.per_minute.peak_quota_tokens)))
        t0 = time.perf_counter()
        result = replay(arrays, m.model_id, quota, max_tokens=1024)
        replay_s += time.perf_counter() - t0
        replayed += result.requests
        print(
            f"  replay {m.model_id}: {result.requests:,} requests at {quota.tpm:,} TPM, "
            f"{100 * result.throttled_share:.2f} % throttled"
        )
    print(
        f"replay:   {replay_s:6.1f} s for {replayed:,} requests (numba compilation included on a "
        f"cold cache; target: 30 s for 10 M), load average {load_avg()}"
    )

    print(f"peak RSS {peak_rss_gib():.1f} GiB; load average at the end {load_avg()}")


if __name__ == "__main__":
    main()
