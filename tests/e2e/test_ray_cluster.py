"""``--ray``: a two-node Ray cluster on this machine, all on loopback, drives the emulator; the
merged records look like a single-process run's and nothing the test started listens beyond
127.0.0.1."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from bench.records import RECORD_COLUMNS
from emulator import Emulator

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install -e '.[distributed]' (or '.[test]')",
    ),
    pytest.mark.skipif(shutil.which("ss") is None, reason="needs the ss command (iproute2)"),
    pytest.mark.timeout(300),
]
NODE = Path(__file__).with_name("ray_node.py")
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::ffff:127\.\d+\.\d+\.\d+\]|\[::1\]):\d+$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def our_pids(marker: str) -> set[int]:
    """This process, and every process whose environment carries ``marker`` (the nodes, their
    agents and workers inherit it)."""
    pids = {os.getpid()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in env:
            pids.add(int(entry.name))
    return pids


def listeners(pids: set[int]) -> set[tuple[str, int]]:
    """(local address, pid) of every listening TCP socket owned by ``pids``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.add((fields[3], pid))
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str]]:
    """A head and a second node, 1 CPU each, on 127.0.0.1; torn down by pid."""
    tmp = tempfile.mkdtemp(prefix="llmcap-ray-")
    marker = f"LLMCAP_RAY_TEST={tmp}"
    env = {
        **os.environ, "LLMCAP_RAY_TEST": tmp, "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
    }  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    head = [
        "start", "--head", f"--port={address.split(':')[1]}", "--include-dashboard=false",
        f"--temp-dir={tmp}", *common,
    ]  # fmt: skip
    try:
        for args in (head, ["start", f"--address={address}", *common]):
            subprocess.run(
                [sys.executable, str(NODE), *args], env=env, check=True, capture_output=True,
                timeout=120,
            )  # fmt: skip
        yield address, marker
    finally:
        for pid in our_pids(marker) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_actors_on_two_loopback_nodes(cluster: tuple[str, str], tmp_path: Path) -> None:
    address, marker = cluster
    seen: set[tuple[str, int]] = set()
    done = threading.Event()

    def sample() -> None:  # listeners come and go (actors): look all along the run
        while not done.is_set():
            seen.update(listeners(our_pids(marker)))
            time.sleep(0.3)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with Emulator("fast") as emu:
            config = SweepConfig(
                endpoint=Endpoint(provider="openai", endpoint_url=emu.url), prompt="small",
                mode="interval", levels=(4, 6), batches=10, interval_s=0.1, max_tokens=20,
                out=tmp_path, progress=False, workers=2, ray=address,
            )  # fmt: skip
            run_dir = run_sweep(config)
        seen.update(listeners(our_pids(marker)))
    finally:
        done.set()
        sampler.join(5)
    df = read_jsonl(run_dir / "records.jsonl")
    assert len(df) == 10 * 4 + 10 * 6 and (df.status == "ok").all(), df.error_message.tolist()
    assert set(df.worker) == {0, 1}
    assert df.loop_lag_s.notna().all() and df.client_cpu_share.notna().all()  # each actor's own
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        assert list(json.loads(line)) == list(RECORD_COLUMNS)  # the single-process schema
    # one schedule on the driver's time line: each batch has one instant, sends are near it
    assert (df.groupby(["level", "batch"]).scheduled_s.nunique() == 1).all()
    assert (df.start_s - df.scheduled_s > -0.01).all()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete"
    workers = meta["workers"]
    assert workers["kind"] == "ray" and workers["count"] == 2
    clocks = workers["clocks"]
    assert [c["worker"] for c in clocks] == [0, 1]
    assert len({c["node"] for c in clocks}) == 2  # one actor per node
    for c in clocks:  # same host: the true offset is 0, within the estimate's bound
        assert 0 <= c["error_bound_s"] < 0.5 and abs(c["offset_s"]) <= c["error_bound_s"] + 1e-3
    assert seen, "found no listening socket of the cluster"
    beyond = sorted(addr for addr, _ in seen if not LOOPBACK.match(addr))
    assert not beyond, f"listening beyond 127.0.0.1: {beyond}"
