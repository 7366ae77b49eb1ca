"""Serving app/Home.py as ``make app`` does (``streamlit run``, the repository's
.streamlit/config.toml) on a free loopback port, without a terminal, for the tests that need a
real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running app: its URL, and its console output once it has stopped."""

    url: str
    output: list[str] = field(default_factory=list)


@contextmanager
def serve(home: Path, env: dict[str, str] | None = None, timeout_s: float = 60) -> Iterator[Server]:
    """``streamlit run app/Home.py`` from the repository root with only the port given, stdin
    closed and no controlling terminal, ``home`` as HOME (Streamlit's per-user files go there);
    waits for its health check, stops it afterwards (``Server.output`` then holds what it
    printed). Fails with that output when it does not come up within ``timeout_s``."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "Home.py"),
           f"--server.port={port}", "--server.fileWatcherType=none"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "HOME": str(home), **(env or {})},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # no controlling terminal, as under CI or a service
    )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{server.url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = _stop(proc)
                raise RuntimeError(f"streamlit did not come up on {server.url}:\n{out[-2000:]}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.returncode is None:
            server.output.append(_stop(proc))


def _stop(proc: subprocess.Popen[bytes]) -> str:
    """Stop ``proc`` (terminate, then kill after 10 s) and return what it printed."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return (out or b"").decode(errors="replace")
