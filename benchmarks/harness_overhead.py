"""Does the load generator distort what it measures? Client timings against server ground truth.

Sections (``--sections``, default ``table,scale,burst``):

- ``table``: the comparison table — closed loop, 200 streams, 3,000 requests, ``fast`` profile,
  200 output tokens, one emulator with a truth log — for llmcap ``bedrock-converse``, llmcap
  ``openai`` (lean client), llmcap ``openai --client httpx``, NVIDIA AIPerf 0.13
  (``/work/shared/peers/aiperf.sh``, or ``--aiperf SCRIPT``) and the seed-style boto3 threads, all
  with default settings (no ``--warmup``: the first wave is measured too). Columns: client TTFT
  p50 − server TTFT p50 and p99 − p99 over the same window, the first wave's worst
  client-minus-server TTFT (joined on the request id), and client CPU seconds per 1,000 requests.
- ``scale``: 1,000 and 2,000 streams with 1, 2 and 4 worker processes (``--workers``), openai:
  client-minus-server TTFT p50/p99 and achieved stream events/s.
- ``burst``: interval batches of 500 requests; each batch's spread of actual send times after
  its scheduled instant (``start_s − scheduled_s``).
- ``overhead``: the older per-concurrency table (default profile, 350 tokens; below).
- ``monitor``: what the client's measure of itself (``bench.monitor``) costs: the table's closed
  loop (lean ``openai``) with the monitor's timer callback and per-row ``observe`` charged by
  their own thread CPU time, against the client's whole CPU time.

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

    python benchmarks/harness_overhead.py                      # table, scale, burst
    python benchmarks/harness_overhead.py --sections overhead --levels 1,100 --duration-s 5
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import resource
import subprocess
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
AIPERF = Path("/work/shared/peers/aiperf.sh")


def seed_baseline(
    url: str,
    level: int,
    duration_s: float,
    prompt: str,
    n_requests: float = math.inf,
    max_tokens: int = 350,
) -> pd.DataFrame:
    """The seed's harness, reconstructed: N coroutines, each ``await asyncio.to_thread(call)``
    on a default executor of 20,000 threads; the call streams with boto3 and stamps inside.
    Runs for ``duration_s`` or until ``n_requests`` have been sent."""
    client = bedrock_client(Endpoint(endpoint_url=url), pool_size=20_000)
    rows: list[dict[str, object]] = []

    def call_chat() -> dict[str, object]:
        start = time.perf_counter()
        resp = client.converse_stream(
            modelId=MODEL,
            messages=[{"role": "user", "content": [{"text": prompt}]}],
            inferenceConfig={"maxTokens": max_tokens, "temperature": 0.5},
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
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < stop and sent < n_requests:
                sent += 1
                rows.append(await asyncio.to_thread(call_chat))

        await asyncio.gather(*(worker() for _ in range(level)))

    asyncio.run(main())
    df = pd.DataFrame(rows)
    df["ttft_s"] = df.first_token_s - df.start_s
    df["tpot_s"] = (df.last_token_s - df.first_token_s) / (df.output_tokens - 1)
    return df


def sweep_records(run_dir: Path) -> pd.DataFrame:
    """A run's raw records with the client's TTFT and TPOT beside them (bench writes raw
    stamps only; these are capacity.records' definitions)."""
    df = read_jsonl(run_dir / "records.jsonl")
    df["ttft_s"] = df.first_token_s - df.start_s
    df["tpot_s"] = (df.last_token_s - df.first_token_s) / (df.output_tokens - 1)
    return df


def llmcap_run(url: str, client: str, level: int, duration_s: float, out: Path) -> pd.DataFrame:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url, client=client), prompt="small", mode="concurrency",
        levels=(level,), duration_s=duration_s, max_tokens=350, out=out, progress=False,
        warmup=level,
    )  # fmt: skip
    df = sweep_records(run_sweep(config))
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
    df = sweep_records(run_sweep(config))
    per_batch = (df.start_s - df.scheduled_s).groupby(df.batch).max() * 1e3
    return {
        "batches": float(len(per_batch)),
        "p50_ms": float(per_batch.median()),
        "p99_ms": float(np.percentile(per_batch, 99)),
        "max_ms": float(per_batch.max()),
        "within_10ms": float((per_batch <= 10).mean()),
        "ok": float((df.status == "ok").mean()),
    }


def truth_frame(truth: Path) -> pd.DataFrame:
    """The server's own rows (ok only), with its TTFT."""
    rows = [json.loads(line) for line in truth.read_text().splitlines() if line]
    t = pd.DataFrame(rows)
    t = t[t.status == "ok"].copy()
    t["server_ttft_s"] = t.first_token_sent_s - t.received_s
    return t


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compare(
    name: str, client_ttft_s: pd.Series, truth: pd.DataFrame, n: int, cpu_s: float
) -> dict[str, object]:
    """Client TTFT percentiles minus the server's for the same window (the rows the server
    logged while this client ran)."""
    c, srv = client_ttft_s.dropna() * 1e3, truth.server_ttft_s * 1e3
    return {
        "client": name, "requests": n, "server_rows": len(truth),
        "ttft_p50_minus_server_ms": float(np.percentile(c, 50) - np.percentile(srv, 50)),
        "ttft_p99_minus_server_ms": float(np.percentile(c, 99) - np.percentile(srv, 99)),
        "cpu_s_per_1k": cpu_s / n * 1000 if n else math.nan,
    }  # fmt: skip


def first_wave_p99_ms(df: pd.DataFrame, truth: pd.DataFrame, streams: int) -> float:
    """Worst-case (p99) client-minus-server TTFT of the first ``streams`` requests sent."""
    first = df.sort_values("start_s").iloc[:streams]
    t = truth.rename(columns={"request_id": "server_request_id"})
    j = first.merge(t[["server_request_id", "server_ttft_s"]], on="server_request_id")
    return float(np.percentile((j.ttft_s - j.server_ttft_s) * 1e3, 99)) if len(j) else math.nan


def llmcap_closed(
    url: str,
    provider: str,
    client: str,
    streams: int,
    n: int,
    tokens: int,
    out: Path,
    workers: int | None = None,
) -> tuple[pd.DataFrame, float]:
    """A default-settings closed-loop run; returns its ok rows and the CPU it cost (this
    process and its worker processes)."""
    df, parent_cpu, workers_cpu = llmcap_closed_split(
        url, provider, client, streams, n, tokens, out, workers
    )
    return df, parent_cpu + workers_cpu


def llmcap_closed_split(
    url: str,
    provider: str,
    client: str,
    streams: int,
    n: int,
    tokens: int,
    out: Path,
    workers: int | None = None,
) -> tuple[pd.DataFrame, float, float]:
    """``llmcap_closed`` with its CPU split: this process (the sweep: with workers, the parent
    that merges and writes their rows) and its worker processes."""
    config = SweepConfig(
        endpoint=Endpoint(provider=provider, client=client, endpoint_url=url),
        prompt="small", mode="concurrency", levels=(streams,), n_requests=n,
        max_tokens=tokens, out=out, progress=False, workers=workers,
    )  # fmt: skip
    cpu0, child0 = time.process_time(), children_cpu_s()
    df = sweep_records(run_sweep(config))
    parent, worker_cpu = time.process_time() - cpu0, children_cpu_s() - child0
    return df[df.status == "ok"], parent, worker_cpu


def aiperf_closed(
    script: Path, url: str, streams: int, n: int, tokens: int, out: Path
) -> tuple[pd.Series, float]:
    """AIPerf against the same endpoint and load; its per-request TTFT and its CPU (all of its
    processes, reaped)."""
    isl = count_input_words()
    child0 = children_cpu_s()
    subprocess.run(
        ["bash", str(script), url, str(streams), str(n), str(isl), str(tokens), str(out), MODEL],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    cpu = children_cpu_s() - child0
    rows = [json.loads(x) for x in (out / "profile_export.jsonl").read_text().splitlines() if x]
    ttft = [
        r["metrics"]["time_to_first_token"]["value"] / 1e3  # ms → s
        for r in rows
        if "time_to_first_token" in r.get("metrics", {})
    ]
    return pd.Series(ttft, dtype="float64"), cpu


def count_input_words() -> int:
    return len(load_prompt_sets("small")[0].prompts[0].text.split())


def table_section(args: argparse.Namespace, tmp: Path) -> pd.DataFrame:
    streams, n, tokens = args.table_streams, args.table_requests, args.table_tokens
    small = load_prompt_sets("small")[0].prompts[0].text
    truth_path = tmp / "truth-table.jsonl"
    rows = []
    with EmulatorProcess("fast", truth_log=truth_path, own_core=not args.shared_cores) as emu:
        clients = args.table_clients.split(",")
        for name in clients:
            truth_path.write_text("")
            out = tmp / f"table-{name}"
            out.mkdir()
            wave = math.nan
            if name == "aiperf":
                script = Path(args.aiperf)
                if not script.exists():
                    print(f"skipping AIPerf: {script} not found", flush=True)
                    continue
                ttft, cpu = aiperf_closed(script, emu.url, streams, n, tokens, out)
                count = len(ttft)
                label = "NVIDIA AIPerf 0.13"
            elif name == "seed":
                cpu0 = time.process_time()
                df = seed_baseline(emu.url, streams, 3600.0, small, n, tokens)
                cpu = time.process_time() - cpu0
                ttft, count, label = df.ttft_s, len(df), "seed-style threads (boto3)"
            else:
                provider, _, client = name.partition(":")
                df, cpu = llmcap_closed(
                    emu.url, provider, client or "async", streams, n, tokens, out
                )
                ttft, count = df.ttft_s, len(df)
                label = f"llmcap {provider}" + (f" --client {client}" if client else "")
            time.sleep(0.5)  # let the server flush its last truth lines
            truth = truth_frame(truth_path)
            if name not in ("aiperf",):
                wave = first_wave_p99_ms(df, truth, streams)
            row = compare(label, ttft, truth, count, cpu)
            row["first_wave_p99_minus_server_ms"] = wave
            row["load_avg_1m"] = os.getloadavg()[0]
            rows.append(row)
            print(
                f"{label:<34} TTFT − server p50 {row['ttft_p50_minus_server_ms']:7.2f} ms, "
                f"p99 {row['ttft_p99_minus_server_ms']:7.2f} ms | first wave p99 "
                f"{wave:7.2f} ms | CPU {row['cpu_s_per_1k']:.2f} s/1k | n={count} | "
                f"load {row['load_avg_1m']:.2f}",
                flush=True,
            )
    return pd.DataFrame(rows)


def scale_section(args: argparse.Namespace, tmp: Path) -> pd.DataFrame:
    rows = []
    truth_path = tmp / "truth-scale.jsonl"
    with EmulatorProcess("fast", truth_log=truth_path, own_core=not args.shared_cores) as emu:
        for streams in [int(x) for x in args.scale_streams.split(",")]:
            for workers in [int(x) for x in args.scale_workers.split(",")]:
                truth_path.write_text("")
                out = tmp / f"scale-{streams}-{workers}"
                out.mkdir()
                n = streams * args.scale_rounds
                t0 = time.perf_counter()
                df, parent_cpu, workers_cpu = llmcap_closed_split(
                    emu.url, "openai", "async", streams, n, args.table_tokens, out, workers
                )
                cpu = parent_cpu + workers_cpu
                wall = time.perf_counter() - t0
                time.sleep(0.5)
                truth = truth_frame(truth_path)
                span = float(df.end_s.max() - df.start_s.min())
                row = compare(f"openai x{workers}", df.ttft_s, truth, len(df), cpu)
                # At these loads TTFT spreads widely (the server's batch grows), so a
                # difference of percentiles is unstable: also join each request to its own
                # server row.
                t = truth.rename(columns={"request_id": "server_request_id"})
                j = df.merge(t[["server_request_id", "server_ttft_s"]], on="server_request_id")
                err = (j.ttft_s - j.server_ttft_s) * 1e3
                row.update(
                    joined_p50_ms=float(np.percentile(err, 50)),
                    joined_p99_ms=float(np.percentile(err, 99)),
                )
                row.update(
                    streams=streams, workers=workers,
                    events_per_s=float(df.output_tokens.sum() / span),
                    client_cpu_cores=cpu / wall, load_avg_1m=os.getloadavg()[0],
                    # the per-core ceiling: stream events one client CPU-second reads
                    events_per_client_cpu_s=float(df.output_tokens.sum() / cpu),
                    # the serial part: with workers, the parent merges and writes every row
                    parent_cpu_s_per_1k=1e3 * parent_cpu / len(df),
                    workers_cpu_s_per_1k=1e3 * workers_cpu / len(df),
                )  # fmt: skip
                rows.append(row)
                print(
                    f"{streams:>5} streams, {workers} worker(s): TTFT − server p50 "
                    f"{row['ttft_p50_minus_server_ms']:8.2f} ms, p99 "
                    f"{row['ttft_p99_minus_server_ms']:8.2f} ms | per request p50 "
                    f"{row['joined_p50_ms']:7.2f} ms, p99 {row['joined_p99_ms']:7.2f} ms | "
                    f"{row['events_per_s']:9,.0f} "
                    f"events/s | client {row['client_cpu_cores']:.2f} cores, "
                    f"{row['events_per_client_cpu_s']:,.0f} events per CPU-s (parent "
                    f"{row['parent_cpu_s_per_1k']:.2f}, workers {row['workers_cpu_s_per_1k']:.2f}"
                    f" CPU-s per 1k requests) | n={len(df)} | load {row['load_avg_1m']:.2f}",
                    flush=True,
                )
    return pd.DataFrame(rows)


def burst_section(args: argparse.Namespace, tmp: Path) -> pd.DataFrame:
    rows = []
    with EmulatorProcess("fast", own_core=not args.shared_cores) as emu:
        for provider in ("bedrock-converse", "openai"):
            out = tmp / f"burst-{provider}"
            out.mkdir()
            config = SweepConfig(
                endpoint=Endpoint(provider=provider, endpoint_url=emu.url), prompt="small",
                mode="interval", levels=(args.burst_size,), batches=args.burst_batches,
                interval_s=args.burst_interval_s, max_tokens=20, out=out, progress=False,
            )  # fmt: skip
            df = sweep_records(run_sweep(config))
            late = (df.start_s - df.scheduled_s) * 1e3
            spread = late.groupby(df.batch).max()
            row = {
                "provider": provider, "batch_size": args.burst_size, "batches": len(spread),
                "last_send_after_instant_p50_ms": float(spread.median()),
                "last_send_after_instant_max_ms": float(spread.max()),
                "first_send_after_instant_min_ms": float(late.min()),
                "within_10ms": float((spread <= 10).mean()),
                "ok": float((df.status == "ok").mean()), "load_avg_1m": os.getloadavg()[0],
            }  # fmt: skip
            rows.append(row)
            print(
                f"burst {provider:<17} {args.burst_size} per batch: last send after the instant "
                f"p50 {row['last_send_after_instant_p50_ms']:.2f} ms, max "
                f"{row['last_send_after_instant_max_ms']:.2f} ms; "
                f"{row['within_10ms']:.0%} of {len(spread)} batches within 10 ms; ok "
                f"{row['ok']:.0%} | load {row['load_avg_1m']:.2f}",
                flush=True,
            )
    return pd.DataFrame(rows)


def monitor_section(args: argparse.Namespace, tmp: Path) -> pd.DataFrame:
    """The loop monitor's CPU: each tick and each ``observe`` timed by ``time.thread_time``
    (the CPU of the thread running it; the two clock reads themselves, ~1 µs, included)."""
    import bench.monitor

    spent = {"tick": [0.0, 0], "observe": [0.0, 0]}
    tick, observe = bench.monitor.LoopMonitor._tick, bench.monitor.LoopMonitor.observe

    def timed_tick(self: bench.monitor.LoopMonitor) -> None:
        t = time.thread_time()
        tick(self)
        spent["tick"][0] += time.thread_time() - t
        spent["tick"][1] += 1

    def timed_observe(
        self: bench.monitor.LoopMonitor, start_pc: float, end_pc: float
    ) -> tuple[float, float]:
        t = time.thread_time()
        out = observe(self, start_pc, end_pc)
        spent["observe"][0] += time.thread_time() - t
        spent["observe"][1] += 1
        return out

    bench.monitor.LoopMonitor._tick = timed_tick  # type: ignore[method-assign]
    bench.monitor.LoopMonitor.observe = timed_observe  # type: ignore[method-assign]
    try:
        with EmulatorProcess("fast", own_core=not args.shared_cores) as emu:
            out = tmp / "monitor"
            out.mkdir()
            df, cpu = llmcap_closed(
                emu.url, "openai", "async", args.table_streams, args.table_requests,
                args.table_tokens, out,
            )  # fmt: skip
    finally:
        bench.monitor.LoopMonitor._tick = tick  # type: ignore[method-assign]
        bench.monitor.LoopMonitor.observe = observe  # type: ignore[method-assign]
    (tick_s, ticks), (observe_s, rows) = spent["tick"], spent["observe"]
    row = {
        "requests": len(df), "client_cpu_s": cpu, "ticks": ticks,
        "tick_us": 1e6 * tick_s / max(ticks, 1), "rows": rows,
        "observe_us": 1e6 * observe_s / max(rows, 1),
        "monitor_share_of_client_cpu": (tick_s + observe_s) / cpu,
        "monitor_cpu_s_per_1k": 1e3 * (tick_s + observe_s) / len(df),
        "load_avg_1m": os.getloadavg()[0],
    }  # fmt: skip
    print(
        f"monitor: {ticks} ticks at {row['tick_us']:.1f} µs, {rows} rows at "
        f"{row['observe_us']:.1f} µs: {row['monitor_cpu_s_per_1k']:.3f} CPU-s per 1k requests, "
        f"{row['monitor_share_of_client_cpu']:.1%} of the client's {cpu:.2f} CPU-s | load "
        f"{row['load_avg_1m']:.2f}",
        flush=True,
    )
    return pd.DataFrame([row])


def overhead_section(args: argparse.Namespace, tmp: Path) -> pd.DataFrame:
    levels = [int(x) for x in args.levels.split(",")]
    clients = args.clients.split(",")
    small = load_prompt_sets("small")[0].prompts[0].text
    results = []
    out, truth = tmp / "overhead", tmp / "truth.jsonl"
    out.mkdir()
    own_core = not args.shared_cores
    with EmulatorProcess("llama3.3-70b-bedrock", truth_log=truth, own_core=own_core) as emu:
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
    return pd.DataFrame(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="table,scale,burst")
    parser.add_argument(
        "--shared-cores", action="store_true",
        help="let the emulator and the clients share every core (default: the emulator on a "
        "core of its own, as `llmcap bench` runs the built-in emulator)",
    )  # fmt: skip
    parser.add_argument(
        "--table-clients", default="bedrock-converse,openai,openai:httpx,aiperf,seed"
    )
    parser.add_argument("--table-streams", type=int, default=200)
    parser.add_argument("--table-requests", type=int, default=3000)
    parser.add_argument("--table-tokens", type=int, default=200)
    parser.add_argument("--aiperf", default=str(AIPERF), help="the AIPerf runner script")
    parser.add_argument("--scale-streams", default="1000,2000")
    parser.add_argument("--scale-workers", default="1,2,4")
    parser.add_argument("--scale-rounds", type=int, default=3, help="requests per stream")
    parser.add_argument("--burst-size", type=int, default=500)
    parser.add_argument("--burst-batches", type=int, default=6)
    parser.add_argument("--burst-interval-s", type=float, default=2.0)
    parser.add_argument("--levels", default="1,100,500,1000", help="overhead section")
    parser.add_argument("--duration-s", type=float, default=15.0, help="overhead section")
    parser.add_argument("--clients", default="async,boto3,seed", help="overhead section")
    parser.add_argument("--heaviest-batches", type=int, default=60, help="overhead section")
    args = parser.parse_args()
    sections = {
        "table": table_section, "scale": scale_section, "burst": burst_section,
        "overhead": overhead_section, "monitor": monitor_section,
    }  # fmt: skip
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sections.split(","):
            frame = sections[name](args, Path(tmp))
            print(frame.round(2).to_string(index=False), flush=True)
    print(f"load average at end: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
