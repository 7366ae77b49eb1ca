"""A bounded live check of bedrock-mantle's quota rule (benchmarks/mantle_live_check.py runs the
full one): the emulator in mantle mode, streamed Chat Completions over 127.0.0.1 with Poisson
arrivals — below the planned rate nothing is throttled, far above it the output TPM throttles.

About 20 seconds: a bucket holds a minute of quota, so an overload of k× drains it after
60 / (k − 1) seconds; at 10× it throttles from the 7th second on."""

from __future__ import annotations

import asyncio
import json
import random
import time

import httpx

from capacity.planning import Quota, Workload, plan_capacity
from emulator import Emulator
from tests.conftest import LLAMA

BODY = {"model": LLAMA, "messages": [{"role": "user", "content": "What is the meaning of life?"}],
        "max_tokens": 40, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip


async def send(client: httpx.AsyncClient) -> tuple[int, str, dict[str, int], float]:
    t0 = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=BODY) as r:
        if r.status_code != 200:
            return r.status_code, json.loads(await r.aread())["error"]["message"], {}, 0.0
        usage: dict[str, int] = {}
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"usage":{' in line:
                usage = json.loads(line[6:])["usage"]
    return 200, "", usage, time.perf_counter() - t0


async def poisson(
    url: str, rate_per_min: float, seconds: float, seed: int
) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        start, t, tasks = time.perf_counter(), 0.0, []
        while (t := t + rng.expovariate(rate_per_min / 60)) < seconds:
            await asyncio.sleep(max(0.0, start + t - time.perf_counter()))
            tasks.append(asyncio.create_task(send(client)))
        return [(s, m) for s, m, _, _ in await asyncio.gather(*tasks)]


def test_below_the_plan_nothing_is_throttled_and_far_above_it_the_output_tpm_throttles() -> None:
    with Emulator("fast", endpoint="mantle") as emu:
        probe = asyncio.run(asyncio.wait_for(_probe(emu.url), 30))
    usage = probe[0][2]
    shape = Workload(usage["prompt_tokens"], usage["completion_tokens"], 40,
                     latency_s=sum(p[3] for p in probe) / len(probe))  # fmt: skip
    quota = Quota(endpoint="mantle", input_tpm=60_000, output_tpm=12_000)
    plan = plan_capacity(quota, shape)
    assert plan.binding == "output_tpm"  # 12,000 / 40 = 300 req/min
    rate = plan.peak_requests_per_min
    with Emulator("fast", endpoint="mantle", input_tpm=60_000, output_tpm=12_000) as emu:
        below = asyncio.run(poisson(emu.url, 0.85 * rate, 10, seed=1))
    with Emulator("fast", endpoint="mantle", input_tpm=60_000, output_tpm=12_000) as emu:
        above = asyncio.run(poisson(emu.url, 10 * rate, 10, seed=2))
    assert len(below) > 25 and all(s == 200 for s, _ in below)
    throttled = [m for s, m in above if s == 429]
    assert len(throttled) > 0.15 * len(above)
    assert all(m.startswith("Too many output tokens") for m in throttled)


async def _probe(url: str) -> list[tuple[int, str, dict[str, int], float]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return [await send(client) for _ in range(5)]
