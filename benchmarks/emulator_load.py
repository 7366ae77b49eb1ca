"""Can the emulator serve 500 concurrent streams on this machine without falling behind its model?

Starts ``llmcap emulate`` (default profile) in its own process, then holds N ConverseStream
requests in flight from this process (closed loop, raw asyncio sockets so the load generator
stays cheap) for a fixed time. Reports, from the emulator's own counters:

- event-loop lag: how late a 10 ms sleep in the emulator's loop wakes (p50/p99);
- token emission lateness: write time of a stream event minus the time the serving model
  scheduled its token (p50/p99) — the emulator's promise is p99 < 10 ms;
- the emulator process's CPU use (fraction of one core) and events written per second.

    python benchmarks/emulator_load.py                   # 500 streams, 30 s
    python benchmarks/emulator_load.py --streams 100 --duration-s 10 --prompt large
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from emulator.runner import free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = "us.meta.llama3-3-70b-instruct-v1%3A0"
SMALL = "What is the meaning of life?"


def request_bytes(host: str, port: int, prompt: str, max_tokens: int) -> bytes:
    """One raw HTTP/1.1 ConverseStream request (keep-alive)."""
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.5},
        }
    ).encode()
    head = (
        f"POST /model/{MODEL}/converse-stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one chunked response; returns the number of chunks (stream events) received."""
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"unexpected status line {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    chunks = 0
    while True:
        size = int((await reader.readline()).strip(), 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return chunks
        chunks += 1


async def worker(host: str, port: int, payload: bytes, stop_at: float, counts: list[int]) -> None:
    """Closed loop on one keep-alive connection until ``stop_at``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            writer.write(payload)
            events = await read_response(reader)  # read first: `+= await` would lose updates
            counts[0] += events
            counts[1] += 1
    finally:
        writer.close()


def http_json(url: str, method: str = "GET") -> dict[str, object]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read()))


def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError("the emulator exited during start-up")
        try:
            http_json(f"{base}/health")
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the emulator did not become healthy")


async def drive(args: argparse.Namespace, host: str, port: int) -> tuple[list[int], float]:
    prompt = SMALL if args.prompt == "small" else ("lorem ipsum dolor sit amet " * 1200)
    payload = request_bytes(host, port, prompt, args.max_tokens)
    base = f"http://{host}:{port}"
    counts = [0, 0]
    t0 = time.monotonic()
    warm_until = t0 + args.warmup_s
    stop_at = warm_until + args.duration_s
    tasks = [
        asyncio.create_task(worker(host, port, payload, stop_at, counts))
        for _ in range(args.streams)
    ]
    await asyncio.sleep(args.warmup_s)
    await asyncio.to_thread(http_json, f"{base}/emulator/stats/reset", "POST")
    start_counts = list(counts)
    await asyncio.sleep(args.duration_s)
    measured = [counts[0] - start_counts[0], counts[1] - start_counts[1]]
    await asyncio.gather(*tasks)
    return measured, args.duration_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--prompt", choices=("small", "large"), default="small")
    parser.add_argument("--max-tokens", type=int, default=350)
    parser.add_argument("--profile", default="llama3.3-70b-bedrock")
    args = parser.parse_args()
    host, port = "127.0.0.1", free_port()
    cmd = [
        sys.executable,
        "-m",
        "llmcap",
        "emulate",
        "--profile",
        args.profile,
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://{host}:{port}", proc)
        (events, requests), wall = asyncio.run(drive(args, host, port))
        stats = http_json(f"http://{host}:{port}/emulator/stats")
    finally:
        proc.terminate()
        proc.wait(10)
    lag = stats["loop_lag_s"]
    late = stats["emission_lateness_s"]
    assert isinstance(lag, dict) and isinstance(late, dict)
    what = f"{args.streams} concurrent ConverseStream streams"
    size = f"{args.prompt} prompt, {args.max_tokens} tokens"
    print(f"emulator load: profile {args.profile}, {what} ({size}), {wall:.0f} s measured")
    print(f"  requests completed      {requests:>10,}   ({requests / wall:,.1f}/s)")
    print(f"  stream events received  {events:>10,}   ({events / wall:,.0f}/s)")
    for name, q in (("event-loop lag", lag), ("emission lateness", late)):
        print(f"  {name:<23} p50 {q['p50'] * 1e3:7.2f} ms   p99 {q['p99'] * 1e3:7.2f} ms"
              f"   max {q['max'] * 1e3:7.2f} ms   (n={q['n']:,})")  # fmt: skip
    print(f"  emulator CPU            {float(str(stats['cpu_fraction'])) * 100:.0f}% of one core")
    ok = late["p99"] < 0.010
    print(f"  target lateness p99 < 10 ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
