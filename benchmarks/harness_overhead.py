"""Does the load generator distort what it measures? Client timings against server ground truth.

The emulator (default profile, its own process) writes a truth log: when it received each
request and when it wrote the first and last token to the socket. Closed-loop runs at several
concurrencies are then joined to it on the request id, for three clients:

- ``llmcap async``: llmcap's default Bedrock client (one event loop, httptools parser);
- ``llmcap boto3``: llmcap's boto3 client (a sized thread pool, stamps taken in the thread);
- ``seed baseline``: a reconstruction of the seed blog's approach — ``asyncio.to_thread`` per
  call on a huge default executor, boto3 ``converse_stream`` inside.

Each client's first wave of ``level`` requests is left out (it also opens the connections;
llmcap's ``--warmup`` does that before recording). Printed per client and concurrency:
client-minus-server TTFT (p50/p99, ms), TPOT error (p50/p99
of |client − server|, µs), stream events ingested per second, and client CPU. Then the seed
blog's heaviest level — interval mode, 50 large-prompt requests every second — with each
batch's launch lateness (the latest request of the batch vs its schedule).

    python benchmarks/harness_overhead.py                      # 1, 100, 500, 1000 streams
    python benchmarks/harness_overhead.py --levels 1,100 --duration-s 5 --clients async
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from bench.prompts import load_prompt_sets
from bench.providers.bedrock import bedrock_client
from emulator.runner import EmulatorProcess

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"


def seed_baseline(url: str, level: int, duration_s: float, prompt: str) -> pd.DataFrame:
    """The seed's harness, reconstructed: N coroutines, each ``await asyncio.to_thread(call)``
    on a default executor of 20,000 threads; the call streams with boto3 and stamps inside."""
    client = bedrock_client(Endpoint(endpoint_url=url), pool_size=20_000)
    rows: list[dict[str, object]] = []

    def call_chat() -> dict[str, object]:
        start = time.perf_counter()
        resp = client.converse_stream(
            modelId=MODEL,
            messages=[{"role": "user", "content": [{"text": prompt}]}],
            inferenceConfig={"maxTokens": 350, "temperature": 0.5},
        )
        first = last = math.nan
        chunks, n = 0, 0
        for event in resp["stream"]:
            now = time.perf_counter()
            if "contentBlockDelta" in event:
                first = now if chunks == 0 else first
                last = now
                chunks += 1
            elif "metadata" in event:
                n = event["metadata"]["usage"]["outputTokens"]
        return {
            "server_request_id": resp["ResponseMetadata"]["RequestId"], "start_s": start,
            "first_token_s": first, "last_token_s": last, "output_tokens": n, "chunks": chunks,
        }  # fmt: skip

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(20_000))
        stop = time.perf_counter() + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop:
                rows.append(await asyncio.to_thread(call_chat))

        await asyncio.gather(*(worker() for _ in range(level)))

    asyncio.run(main())
    df = pd.DataFrame(rows)
    df["ttft_s"] = df.first_token_s - df.start_s
    df["tpot_s"] = (df.last_token_s - df.first_token_s) / (df.output_tokens - 1)
    return df


def llmcap_run(url: str, client: str, level: int, duration_s: float, out: Path) -> pd.DataFrame:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url, client=client), prompt="small", mode="concurrency",
        levels=(level,), duration_s=duration_s, max_tokens=350, out=out, progress=False,
        warmup=level,
    )  # fmt: skip
    df = read_jsonl(run_sweep(config) / "records.jsonl")
    df["chunks"] = df.output_tokens  # one token per event in the default profile
    return df[df.status == "ok"]


def join_truth(df: pd.DataFrame, truth: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    t = pd.DataFrame(rows)
    t = t[t.status == "ok"].rename(columns={"request_id": "server_request_id"})
    t["server_ttft_s"] = t.first_token_sent_s - t.received_s
    t["server_tpot_s"] = (t.last_token_sent_s - t.first_token_sent_s) / (t.output_tokens - 1)
    cols = ["server_request_id", "server_ttft_s", "server_tpot_s"]
    return df.merge(t[cols], on="server_request_id", how="inner")


def measure(
    name: str, run: object, truth: Path, level: int, duration_s: float
) -> dict[str, object]:
    truth.write_text("")
    cpu0, t0 = time.process_time(), time.perf_counter()
    df = run()  # type: ignore[operator]
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
    time.sleep(0.5)  # let the server flush its last truth lines
    # Steady state: the first wave of a closed loop also pays for opening its connections.
    df = df.sort_values("start_s").iloc[level:] if len(df) > 2 * level else df
    j = join_truth(df, truth)
    err = (j.ttft_s - j.server_ttft_s) * 1e3
    tpot_err = (j.tpot_s - j.server_tpot_s).abs() * 1e6
    return {
        "client": name, "streams": level, "requests": len(j),
        "ttft_err_p50_ms": float(np.percentile(err, 50)),
        "ttft_err_p99_ms": float(np.percentile(err, 99)),
        "tpot_err_p50_us": float(np.percentile(tpot_err, 50)),
        "tpot_err_p99_us": float(np.percentile(tpot_err, 99)),
        "events_per_s": float(df.chunks.sum() / duration_s),
        "client_cpu": cpu,
    }  # fmt: skip


def heaviest_level(url: str, out: Path, batches: int) -> dict[str, float]:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url), prompt="large", mode="interval", levels=(50,),
        batches=batches, interval_s=1.0, max_tokens=350, out=out, progress=False,
    )  # fmt: skip
    df = read_jsonl(run_sweep(config) / "records.jsonl")
    per_batch = (df.start_s - df.scheduled_s).groupby(df.batch).max() * 1e3
    return {
        "batches": float(len(per_batch)),
        "p50_ms": float(per_batch.median()),
        "p99_ms": float(np.percentile(per_batch, 99)),
        "max_ms": float(per_batch.max()),
        "within_10ms": float((per_batch <= 10).mean()),
        "ok": float((df.status == "ok").mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,100,500,1000")
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--clients", default="async,boto3,seed")
    parser.add_argument("--heaviest-batches", type=int, default=60)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    clients = args.clients.split(",")
    small = load_prompt_sets("small")[0].prompts[0].text
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out, truth = Path(tmp), Path(tmp) / "truth.jsonl"
        with EmulatorProcess("llama3.3-70b-bedrock", truth_log=truth) as emu:
            for level in levels:
                for client in clients:
                    call = (
                        (seed_baseline, emu.url, level, args.duration_s, small)
                        if client == "seed"
                        else (llmcap_run, emu.url, client, level, args.duration_s, out)
                    )
                    run = functools.partial(*call)
                    name = "seed baseline" if client == "seed" else f"llmcap {client}"
                    r = measure(name, run, truth, level, args.duration_s)
                    results.append(r)
                    print(
                        f"{name:<14} {level:>5} streams: TTFT error p50 {r['ttft_err_p50_ms']:7.2f}"
                        f" ms, p99 {r['ttft_err_p99_ms']:8.2f} ms | TPOT error p50 "
                        f"{r['tpot_err_p50_us']:7.1f} µs, p99 {r['tpot_err_p99_us']:8.1f} µs | "
                        f"{r['events_per_s']:8,.0f} events/s | client CPU {r['client_cpu']:.0%}"
                        f" | n={r['requests']}",
                        flush=True,
                    )
            if args.heaviest_batches:
                h = heaviest_level(emu.url, out, args.heaviest_batches)
                print(
                    f"seed's heaviest level (interval, 50 large-prompt requests/s, "
                    f"{h['batches']:.0f} batches): batch launch lateness p50 {h['p50_ms']:.1f} ms, "
                    f"p99 {h['p99_ms']:.1f} ms, max {h['max_ms']:.1f} ms; "
                    f"{h['within_10ms']:.0%} of batches within 10 ms; ok {h['ok']:.0%}"
                )
    print(pd.DataFrame(results).round(2).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
