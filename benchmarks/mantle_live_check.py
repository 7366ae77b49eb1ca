"""Live check of bedrock-mantle's quota rule and of the service tiers on the running emulator.

1. **Quotas.** The emulator (``fast`` profile, lognormal outputs of mean ``--output-mean``
   tokens, far below ``max_tokens``) runs in its own process as bedrock-mantle (``--endpoint
   mantle``). A short probe without quotas measures the request shape (input tokens as the
   emulator counts them, mean output, mean latency) through the OpenAI Chat Completions API;
   ``plan_capacity`` turns ``--input-tpm`` and ``--output-tpm`` into the busiest minute's rate;
   then two open-loop (Poisson) runs of ``--minutes`` each stream requests against the quota'd
   emulator: at 0.85× the planned rate (the promise: fewer than 1 % throttled) and at 2× (once
   the buckets drain, a clear share is throttled, by the quota the plan says binds).
2. **Tiers.** The emulator without quotas but with a small batch (``max_running``
   ``--max-running``) is overloaded with Standard requests, one in ten of them Priority, for
   ``--tier-seconds``: Priority keeps its time to first token while Standard queues behind it.

Every request is a real streamed HTTP exchange over 127.0.0.1 (httpx, one asyncio client).
Prints the plan, the throttle share of each run with the quota that refused, the admitted rate
after the first minute, and TTFT by tier, with the load average.

    python benchmarks/mantle_live_check.py                 # 3 minutes per quota run (~8 min)
    python benchmarks/mantle_live_check.py --minutes 1 --tier-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from capacity.planning import Quota, Workload, plan_capacity
from capacity.serving import load_profile
from emulator.runner import EmulatorProcess

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"
PROMPT = "What is the meaning of life? Answer in a few sentences."


@dataclass(frozen=True)
class Outcome:
    """One streamed request as the client saw it."""

    sent_s: float
    status: int
    ttft_s: float
    latency_s: float
    input_tokens: int
    output_tokens: int
    tier: str
    message: str


def profile_file(
    folder: Path, output_mean: float, max_running: int | None = None, tokens_per_event: int = 1
) -> Path:
    """The ``fast`` profile with lognormal outputs (and optionally a smaller batch, and fewer
    stream events for the client to read)."""
    p = load_profile("fast")
    names = ("t_w_s", "c_b_s", "c_a_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s")
    serving = {f: getattr(p.serving, f) for f in names}
    if max_running is not None:
        serving["max_running"] = max_running
    raw = {
        "name": "fast-mantle-check",
        "models": [{"model_id": m.model_id} for m in p.models],
        "prompt_overhead_tokens": p.prompt_overhead_tokens,
        "tokens_per_event": tokens_per_event,
        "serving": serving,
        "output": {"kind": "lognormal", "mean_tokens": output_mean, "sigma": 0.5},
    }
    path = folder / f"profile-{max_running}.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


async def one(client: httpx.AsyncClient, t0: float, max_tokens: int, tier: str) -> Outcome:
    """A streamed Chat Completions request with usage; times from ``t0``."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens, "stream": True, "service_tier": tier,
            "stream_options": {"include_usage": True}}  # fmt: skip
    sent = time.perf_counter()
    first = float("nan")
    usage: dict[str, int] = {}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            text = (await r.aread()).decode()
            message = json.loads(text).get("error", {}).get("message", text)
            return Outcome(sent - t0, r.status_code, float("nan"), float("nan"), 0, 0, tier,
                           message)  # fmt: skip
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]
            elif (
                first != first and event["choices"] and event["choices"][0]["delta"].get("content")
            ):
                first = time.perf_counter()
    end = time.perf_counter()
    return Outcome(sent - t0, 200, first - sent, end - sent, usage.get("prompt_tokens", 0),
                   usage.get("completion_tokens", 0), tier, "")  # fmt: skip


async def open_loop(
    url: str, rate_per_min: float, seconds: float, max_tokens: int, tiers: list[str], seed: int
) -> list[Outcome]:
    """Poisson arrivals at ``rate_per_min`` for ``seconds``; request i has ``tiers[i % n]``."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=2_000, max_keepalive_connections=2_000)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        t0 = time.perf_counter()
        tasks: list[asyncio.Task[Outcome]] = []
        t, i = 0.0, 0
        while True:
            t += rng.expovariate(rate_per_min / 60.0)
            if t >= seconds:
                break
            await asyncio.sleep(max(0.0, t0 + t - time.perf_counter()))
            tier = tiers[i % len(tiers)]
            tasks.append(asyncio.create_task(one(client, t0, max_tokens, tier)))
            i += 1
        return list(await asyncio.gather(*tasks))


def quota_runs(args: argparse.Namespace, folder: Path) -> None:
    profile = profile_file(folder, args.output_mean)
    mantle = ("--endpoint", "mantle")
    with EmulatorProcess(profile, extra_args=mantle) as emu:
        # ~300 requests: the mean of lognormal outputs to about 3 % (the plan divides by it)
        probe = asyncio.run(open_loop(emu.url, 600, 30, args.max_tokens, ["default"], 0))
    ok = [o for o in probe if o.status == 200]
    shape = Workload(
        input_tokens=statistics.fmean(o.input_tokens for o in ok),
        output_tokens=statistics.fmean(o.output_tokens for o in ok),
        max_tokens=args.max_tokens,
        latency_s=statistics.fmean(o.latency_s for o in ok),
        think_time_s=30,
    )
    quota = Quota(endpoint="mantle", input_tpm=args.input_tpm, output_tpm=args.output_tpm)
    plan = plan_capacity(quota, shape, verify=True, verify_minutes=30)
    print(
        f"probe: {len(ok)} requests, {shape.input_tokens:.1f} input / {shape.output_tokens:.1f} "
        f"output tokens (max_tokens {args.max_tokens}), {shape.latency_s:.3f} s mean latency"
    )
    print(f"plan (bedrock-mantle, {quota.describe()}): {plan.answer()}")
    for c in plan.requests_per_min_by_constraint:
        print(f"  {plan.formulas[f'requests_per_min_by_constraint.{c}']}")
    assert plan.verification is not None
    print(f"  virtual time: {plan.verification.describe()}")
    extra = (*mantle, "--input-tpm", str(args.input_tpm), "--output-tpm", str(args.output_tpm))
    for factor in (0.85, 2.0):
        rate = factor * plan.peak_requests_per_min
        with EmulatorProcess(profile, extra_args=extra, seed=1) as emu:
            runs = asyncio.run(open_loop(emu.url, rate, 60 * args.minutes, args.max_tokens,
                                         ["default"], 1))  # fmt: skip
        throttled = [o for o in runs if o.status == 429]
        kinds = {m.split(",")[0] for m in (o.message for o in throttled)}
        after = [o for o in runs if o.sent_s >= 60.0]
        line = (
            f"{factor:.2f}× the plan ({rate:,.0f} req/min offered, {len(runs):,} requests, "
            f"{args.minutes:g} min): {100 * len(throttled) / len(runs):.2f} % throttled"
            + (f" ({'; '.join(sorted(kinds))})" if kinds else "")
        )
        if after:
            span_min = max((max(o.sent_s for o in runs) - 60.0) / 60.0, 1e-9)
            admitted = sum(o.status == 200 for o in after) / span_min
            line += (
                f"; after the first minute {admitted:,.0f} req/min admitted vs "
                f"{plan.peak_requests_per_min:,.0f} planned"
            )
        print(line)


def tier_run(args: argparse.Namespace, folder: Path) -> None:
    profile = profile_file(folder, 200.0, max_running=args.max_running, tokens_per_event=8)
    tiers = ["priority"] + ["default"] * 9
    with EmulatorProcess(profile, extra_args=("--endpoint", "mantle")) as emu:
        alone = asyncio.run(open_loop(emu.url, 30, 10, 200, ["priority"], 2))
        runs = asyncio.run(open_loop(emu.url, args.tier_rate, args.tier_seconds, 200, tiers, 3))
    base = statistics.median(o.ttft_s for o in alone if o.status == 200)
    print(
        f"tiers: {len(runs):,} requests at {args.tier_rate:,.0f} req/min for "
        f"{args.tier_seconds:g} s, batch of {args.max_running} (overloaded), one in ten "
        f"Priority; unloaded TTFT p50 {base:.3f} s"
    )
    for tier in ("priority", "default"):
        ttft = sorted(o.ttft_s for o in runs if o.status == 200 and o.tier == tier)
        p95 = ttft[int(0.95 * (len(ttft) - 1))]
        print(f"  {tier:9s}: {len(ttft):,} requests, TTFT p50 {statistics.median(ttft):.3f} s, "
              f"p95 {p95:.3f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input-tpm", type=int, default=60_000)
    ap.add_argument("--output-tpm", type=int, default=12_000)
    ap.add_argument("--output-mean", type=float, default=60.0)
    ap.add_argument("--max-tokens", type=int, default=1_000)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--max-running", type=int, default=4)
    ap.add_argument("--tier-rate", type=float, default=1_200.0)
    ap.add_argument("--tier-seconds", type=float, default=40.0)
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        quota_runs(args, Path(tmp))
        tier_run(args, Path(tmp))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
