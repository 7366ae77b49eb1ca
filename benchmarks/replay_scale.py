"""Speed of the batch quota replay and sizing on 10 million requests (issue target: a replay of
10 M requests in <= 30 s on a 2-core machine, JIT compilation included).

Generates one model's synthetic day of bursty traffic (a per-minute rate that wanders, bursts
of 5-30 s at 8x, lognormal prompts and outputs, max_tokens logged for half the requests, latency
for 90 %, 1 % failed), then times, in this process:

1. numba compiling the rule functions, or loading them from its cache in
   ``capacity/serving/__pycache__`` (``--cold`` compiles into a temporary cache), with a replay
   of 1,000 requests;
2. one replay per rule at a quota near the traffic's need (sorting, filling in, the compiled
   loop, the per-minute series);
3. a full ``size_quota`` (TPM under both rules, TPD, the p99 max_tokens policy, today's quota).

    python benchmarks/replay_scale.py
    python benchmarks/replay_scale.py --requests 1000000 --cold
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from capacity.serving import QuotaLimits, RequestArrays, replay, size_quota

MODEL = "meta.llama3-3-70b-instruct-v1:0"


def bursty_day(n_target: int, seed: int = 1) -> tuple[RequestArrays, float]:
    """About ``n_target`` requests over 24 h (see the module docstring); returns them and the
    seconds it took to generate them."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    minutes = 1_440
    seconds = minutes * 60
    rate = n_target / seconds * np.repeat(rng.lognormal(-0.125, 0.5, minutes), 60)
    for start in rng.choice(seconds, size=minutes // 3, replace=False):
        rate[start : start + rng.integers(5, 31)] *= 8.0
    counts = rng.poisson(rate * n_target / rate.sum())
    n = int(counts.sum())
    arrival = np.repeat(np.arange(seconds, dtype=np.float64), counts) + rng.random(n)
    rng.shuffle(arrival)  # logs are not sorted: the replay sorts
    prompt = np.minimum(rng.lognormal(np.log(1_200), 0.9, n), 60_000).astype(np.int64)
    cached = np.where(rng.random(n) < 0.3, prompt // 2, 0)
    output = np.minimum(rng.lognormal(np.log(250), 0.8, n), 4_000).astype(np.int64)
    max_tokens = np.where(rng.random(n) < 0.5, rng.choice([1_000, 2_000, 4_096], n), -1)
    output = np.where(max_tokens >= 0, np.minimum(output, np.maximum(max_tokens, 0)), output)
    latency = np.where(rng.random(n) < 0.9, 0.4 + output * 0.02 * rng.uniform(0.8, 1.5, n), np.nan)
    requests = RequestArrays(
        arrival_s=arrival, input_tokens=prompt - cached, cache_read_tokens=cached,
        cache_write_tokens=np.zeros(n, np.int64), output_tokens=output, max_tokens=max_tokens,
        latency_s=latency, ok=rng.random(n) >= 0.01,
    )  # fmt: skip
    return requests, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--cold", action="store_true", help="compile into a fresh numba cache")
    parser.add_argument("--no-sizing", action="store_true", help="time the replays only")
    args = parser.parse_args()
    if args.cold:  # read when numba is first imported, by the first replay
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="llmcap-numba-")
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    requests, gen_s = bursty_day(args.requests)
    n = len(requests)
    print(f"generated {n:,} requests over 24 h in {gen_s:.1f} s", flush=True)
    # Quotas near what this traffic needs (about 320 M TPM under rule "bucket"): few throttles,
    # so nearly every request also settles — the slow path of the loop.
    limits = {
        "bucket": QuotaLimits(tpm=300_000_000),
        "window": QuotaLimits(tpm=550_000_000, rule="window"),
    }
    today = QuotaLimits(tpm=200_000_000, tpd=8_000_000_000)

    t0 = time.perf_counter()
    replay(requests.take(np.arange(1_000)), MODEL, limits["bucket"])
    print(f"numba compile (or cache load) and a 1,000-request replay: "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    for rule, quota in limits.items():
        t0 = time.perf_counter()
        got = replay(requests, MODEL, quota)
        took = time.perf_counter() - t0
        print(f"replay, rule {rule}, TPM {quota.tpm:,}: {took:.1f} s for {n:,} requests "
              f"({n / took / 1e6:.2f} M/s), {100 * got.throttled_share:.2f} % throttled, "
              f"{got.throttled_minutes} throttled minutes", flush=True)  # fmt: skip
    if not args.no_sizing:
        t0 = time.perf_counter()
        s = size_quota(requests, MODEL, current=today)
        took = time.perf_counter() - t0
        saving = s.max_tokens
        print(f"size_quota: {took:.1f} s, {s.replays} replays: TPM {s.tpm:,} (rule bucket; "
              f"window {s.tpm_other_rule:,}), TPD {s.tpd:,}; max_tokens capped at "
              f"{saving.max_tokens if saving else '-'}: TPM "
              f"{saving.tpm if saving else '-':,}; today's quota throttles "
              f"{100 * s.current.throttled_share if s.current else 0:.2f} %")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
