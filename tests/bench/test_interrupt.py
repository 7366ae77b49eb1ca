"""Ctrl-C in the middle of a sweep, checked against the emulator's truth log.

The first Ctrl-C stops sending and finishes the requests in flight (saying how many); a second
one cancels them now and writes ``cancelled`` rows. Either way every request the emulator
received has exactly one row.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from emulator import Emulator


class Bench:
    """``llmcap bench`` in a child process, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "llmcap", "bench", "--quiet", *args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            assert self.proc.poll() is None, "\n".join(self.lines)
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never appeared in: {self.lines}")

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(60)
        self._reader.join(10)
        return code, "\n".join(self.lines)


def wait_until(condition: Any, timeout: float = 30, what: Any = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out {what() if callable(what) else what}"
        time.sleep(0.02)


def rows_and_truth(run: Path, log: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    truth = [json.loads(line) for line in log.read_text().splitlines()]
    return rows, truth


def assert_one_row_per_request(rows: list[dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    assert len({r["request_id"] for r in rows}) == len(rows)  # no duplicates
    served = [r["server_request_id"] for r in rows if r["server_request_id"]]
    assert len(set(served)) == len(served)
    assert set(served) == {t["request_id"] for t in truth}  # nothing lost
    assert len(rows) == len(truth)  # every request the emulator received, once


def test_first_ctrl_c_finishes_the_requests_in_flight(tmp_path: Path) -> None:
    log = tmp_path / "truth.jsonl"
    with Emulator("fast", truth_log=log) as emu:
        bench = Bench(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "4", "--batches", "400", "--interval-s", "0.05", "--max-tokens", "300",
            "--out", str(tmp_path), "--run-id", "r",
        )  # fmt: skip
        wait_until(lambda: emu.service.stats.requests >= 20)
        bench.proc.send_signal(signal.SIGINT)
        line = bench.wait_for("Ctrl-C: sending stopped; finishing the ")
        code, err = bench.finish()
    assert code == 130, err
    in_flight = int(line.split("finishing the ")[1].split()[0])
    assert in_flight > 0
    assert "finishing" in err and "requests in flight (Ctrl-C again cancels them now)" in err
    assert "llmcap bench --resume" in err and "Traceback" not in err
    rows, truth = rows_and_truth(tmp_path / "r", log)
    assert {r["status"] for r in rows} == {"ok"}  # drained to completion, none cancelled
    assert {t["status"] for t in truth} == {"ok"}
    assert_one_row_per_request(rows, truth)


def test_second_ctrl_c_cancels_them_now_with_cancelled_rows(tmp_path: Path) -> None:
    log = tmp_path / "truth.jsonl"
    with Emulator("fast", truth_log=log) as emu:
        bench = Bench(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "4", "--batches", "400", "--interval-s", "0.05", "--max-tokens", "4000",
            "--out", str(tmp_path), "--run-id", "r",
        )  # fmt: skip
        wait_until(lambda: emu.service.stats.requests >= 20)
        bench.proc.send_signal(signal.SIGINT)
        bench.wait_for("finishing the ")
        bench.proc.send_signal(signal.SIGINT)
        line = bench.wait_for("Ctrl-C again: cancelling the ")
        code, err = bench.finish()
        sent = len((tmp_path / "r" / "records.jsonl").read_text().splitlines())
        # the emulator logs a cancelled request once it notices the closed connection
        wait_until(
            lambda: len(log.read_text().splitlines()) >= sent,
            timeout=10,
            what=lambda: (
                sent,
                len(log.read_text().splitlines()),
                emu.service.stats.requests,
                len(emu.service._jobs),
                err,
            ),
        )
    assert code == 130, err
    rows, truth = rows_and_truth(tmp_path / "r", log)
    statuses = [r["status"] for r in rows]
    assert statuses.count("cancelled") == int(line.split()[4]) > 0
    assert set(statuses) <= {"ok", "cancelled"}
    assert {t["status"] for t in truth} <= {"ok", "cancelled"}
    assert_one_row_per_request(rows, truth)
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "interrupted"


def test_sigkill_mid_level_then_resume_accounts_for_every_request(tmp_path: Path) -> None:
    log = tmp_path / "truth.jsonl"
    run = tmp_path / "r"
    with Emulator("fast", truth_log=log) as emu:
        bench = Bench(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "4,2", "--batches", "40", "--interval-s", "0.05", "--max-tokens", "300",
            "--out", str(tmp_path), "--run-id", "r",
        )  # fmt: skip
        wait_until(lambda: emu.service.stats.requests >= 30)
        bench.proc.kill()  # SIGKILL: no handler runs, requests in flight have no row
        code, _ = bench.finish()
        assert code == -signal.SIGKILL
        journalled = len((run / "records.sent.jsonl").read_text().splitlines())
        wait_until(lambda: len(log.read_text().splitlines()) >= journalled, timeout=10)
        resumed = subprocess.run(
            [sys.executable, "-m", "llmcap", "bench", "--quiet", "--resume", str(run)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        total = sum(len(p.read_text().splitlines()) for p in run.glob("records*.jsonl"))
        wait_until(lambda: len(log.read_text().splitlines()) >= total, timeout=10)
    rows = [
        json.loads(line)
        for name in ("records.jsonl", "records.partial.jsonl")
        for line in (run / name).read_text().splitlines()
    ]
    truth = [json.loads(line) for line in log.read_text().splitlines()]
    stopped = [r for r in rows if r["error_code"] == "ClientStopped"]
    assert stopped and all(r["status"] == "cancelled" for r in stopped)
    assert len({r["request_id"] for r in rows}) == len(rows)  # no duplicates
    assert len(rows) == len(truth)  # every request the emulator received has one row
    assert not (run / "records.sent.jsonl").exists()
    complete = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    assert len(complete) == 4 * 40 + 2 * 40 and {r["status"] for r in complete} == {"ok"}


def test_ctrl_c_in_a_terminal_does_not_stop_the_embedded_emulator(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group; the built-in emulator
    runs in its own, so the requests in flight still finish."""
    import os

    cmd = [sys.executable, "-m", "llmcap", "bench", "--quiet", "--emulator-profile", "fast",
           "--prompt", "small", "--levels", "4", "--batches", "400", "--interval-s", "0.05",
           "--max-tokens", "300", "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    records = tmp_path / "r" / "records.jsonl"
    wait_until(lambda: records.exists() and len(records.read_text().splitlines()) >= 10)
    os.killpg(proc.pid, signal.SIGINT)  # the group of this test's own child: what Ctrl-C does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the " in err and "did not succeed" not in err
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert {r["status"] for r in rows} == {"ok"}
