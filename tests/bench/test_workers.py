"""Worker processes: the schedule split across processes, one merged file, Ctrl-C, resume, and a
dead worker (emulator over loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import Endpoint, SweepConfig, SweepError, read_jsonl, run_sweep
from bench.strategies import LevelPlan, arrival_offsets
from emulator import Emulator
from llmcap.cli import main


def shards(plan: LevelPlan, n: int) -> list[LevelPlan]:
    return [LevelPlan(**{**plan.__dict__, "shard": i, "shards": n}) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_shards_partition_every_schedule(n: int) -> None:
    interval = LevelPlan("interval", 7, batches=5)
    for batch in range(5):
        assert sum(p.batch_share(batch) for p in shards(interval, n)) == 7
    rate = LevelPlan("rate", 20, n_requests=50)
    owners = [[p.mine(i) for p in shards(rate, n)] for i in range(len(arrival_offsets(rate)))]
    assert all(sum(o) == 1 for o in owners)  # each arrival belongs to exactly one worker
    assert all(owners[i][i % n] for i in range(len(owners)))  # entry i → worker i mod N
    closed = LevelPlan("concurrency", 10, n_requests=33)
    slots = [s for p in shards(closed, n) for s in p.slots()]
    assert sorted(slots) == list(range(10))
    assert sum(p.request_budget() for p in shards(closed, n)) == 33
    assert sum(p.connections() for p in shards(closed, n)) == 10


def test_default_workers_follow_streams_and_cores() -> None:
    def workers(mode: str, level: float, here: bool, cores: int) -> int:
        cfg = SweepConfig(mode=mode, levels=(level,), n_requests=10)
        return cfg.default_workers(endpoint_on_this_host=here, cores=cores)

    assert workers("concurrency", 200, True, 2) == 1
    assert workers("concurrency", 2000, True, 2) == 1  # one core left to the local server
    assert workers("concurrency", 2000, False, 2) == 2
    assert workers("concurrency", 2000, True, 8) == 4
    assert workers("concurrency", 2, False, 8) == 1
    assert workers("sequential", 2000, False, 8) == 1


def test_sequential_mode_refuses_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SweepError, match="sequential"):
        SweepConfig(mode="sequential", workers=2).validate()
    code = main(["bench", "--quiet", "--mode", "sequential", "--workers", "2", "--out",
                 str(tmp_path)])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line naming the input and the fix


def test_interval_schedule_split_across_two_workers(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        config = SweepConfig(
            endpoint=Endpoint(provider="openai", endpoint_url=emu.url), prompt="small",
            mode="interval", levels=(5,), batches=4, interval_s=0.1, max_tokens=20,
            out=tmp_path, progress=False, workers=2,
        )  # fmt: skip
        run_dir = run_sweep(config)
    df = read_jsonl(run_dir / "records.jsonl")
    assert len(df) == 20 and (df.status == "ok").all(), df.error_message.tolist()
    # entry i of batch b is b·5 + j; worker i mod 2: batches alternate 3/2 and 2/3
    per = df.groupby(["batch", "worker"]).size().unstack()
    assert per.to_dict("list") == {0: [3, 2, 3, 2], 1: [2, 3, 2, 3]}
    # one schedule on one clock: a batch has one scheduled instant, whoever sent it
    assert (df.groupby("batch").scheduled_s.nunique() == 1).all()
    # each worker measured its own loop and CPU while its requests were in flight
    assert df.loop_lag_s.notna().all() and df.client_cpu_share.notna().all()
    assert (df.groupby("batch").scheduled_s.first().diff().dropna().round(6) == 0.1).all()
    assert (df.start_s >= df.scheduled_s).all()  # never sent before its instant
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["workers"]["kind"] == "processes" and meta["workers"]["count"] == 2
    assert meta["status"] == "complete" and (run_dir / "records.parquet").exists()


def test_closed_loop_slots_and_budget_split(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="small", mode="concurrency",
            levels=(4,), n_requests=30, max_tokens=10, out=tmp_path, progress=False,
            workers=2,
        )  # fmt: skip
        df = read_jsonl(run_sweep(config) / "records.jsonl")
    assert len(df) == 30 and (df.status == "ok").all()
    assert df.groupby("worker").size().to_dict() == {0: 15, 1: 15}
    assert df.groupby("worker").batch.unique().map(sorted).to_dict() == {0: [0, 2], 1: [1, 3]}
    assert df.scheduled_s.isna().all()  # a closed loop has no schedule


def wait_for(cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_dead_worker_marks_the_run_incomplete_and_resume_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "r1"
    with Emulator("fast") as emu:
        args = [
            sys.executable, "-m", "llmcap", "bench", "--quiet", "--endpoint-url", emu.url,
            "--prompt", "small", "--mode", "interval", "--levels", "4", "--batches", "40",
            "--interval-s", "0.05", "--max-tokens", "50", "--workers", "2",
            "--out", str(tmp_path), "--run-id", "r1",
        ]  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        records = run_dir / "records.jsonl"
        wait_for(lambda: records.exists() and len(records.read_text().splitlines()) >= 8)
        pids = json.loads((run_dir / "run.json").read_text())["workers"]["pids"]
        os.kill(pids[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)  # no hang
        assert proc.returncode == 1, err
        assert "worker 1" in err and "llmcap bench --resume" in err and "Traceback" not in err
        meta = json.loads((run_dir / "run.json").read_text())
        assert meta["status"] == "incomplete" and "worker 1" in meta["incomplete_reason"]
        assert meta["completed_levels"] == []
        run_sweep(resume=run_dir)
    df = read_jsonl(records)
    assert len(df) == 160 and (df.status == "ok").all()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


def test_ctrl_c_with_workers_keeps_rows_and_resume_completes(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        args = [
            sys.executable, "-m", "llmcap", "bench", "--quiet", "--endpoint-url", emu.url,
            "--prompt", "small", "--mode", "interval", "--levels", "4", "--batches", "60",
            "--interval-s", "0.05", "--max-tokens", "400", "--workers", "2",
            "--out", str(tmp_path), "--run-id", "r1",
        ]  # fmt: skip
        # A terminal's Ctrl-C reaches the whole process group: start one and signal it.
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        records = tmp_path / "r1" / "records.jsonl"
        wait_for(lambda: records.exists() and len(records.read_text().splitlines()) >= 10)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "llmcap bench --resume" in err and "Traceback" not in err
        rows = [json.loads(line) for line in records.read_text().splitlines()]
        assert {r["status"] for r in rows} <= {"ok", "cancelled"}
        assert {r["worker"] for r in rows} == {0, 1}
        assert json.loads((tmp_path / "r1" / "run.json").read_text())["status"] == "interrupted"
        resumed = subprocess.run(
            [sys.executable, "-m", "llmcap", "bench", "--quiet", "--resume",
             str(tmp_path / "r1")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
    df = read_jsonl(records)
    assert len(df) == 240 and (df.status == "ok").all()


def test_ray_without_a_cluster_fails_fast_before_a_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "bench", "--quiet", "--ray", "127.0.0.1:1", "--provider", "openai",
        "--endpoint-url", "http://127.0.0.1:9", "--out", str(tmp_path),
    ])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --ray") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_rate_arrivals_go_to_worker_i_mod_n_and_warmup_is_unrecorded(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="small", mode="rate",
            levels=(80,), n_requests=24, max_tokens=10, out=tmp_path, progress=False,
            workers=2, warmup=4,
        )  # fmt: skip
        df = read_jsonl(run_sweep(config) / "records.jsonl")
    assert len(df) == 24 and (df.status == "ok").all()
    assert sorted(df.batch) == list(range(24))  # the arrival index
    assert (df.worker == df.batch % 2).all()
    offsets = arrival_offsets(LevelPlan("rate", 80, n_requests=24))
    scheduled = df.sort_values("batch").scheduled_s.to_numpy()
    expected = [o - offsets[0] for o in offsets]
    assert abs((scheduled - scheduled[0]) - expected).max() < 1e-6  # one schedule, split


def bench_in_group(*args: str) -> subprocess.Popen[str]:
    """``llmcap bench`` in its own process group (a terminal's Ctrl-C signals the group)."""
    cmd = [sys.executable, "-m", "llmcap", "bench", "--quiet", *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def one_row_per_request(rows: list[dict[str, object]], truth: Path) -> None:
    served = [r["server_request_id"] for r in rows if r["server_request_id"]]
    logged = [json.loads(line)["request_id"] for line in truth.read_text().splitlines()]
    assert len({r["request_id"] for r in rows}) == len(rows)  # no duplicates
    assert len(set(served)) == len(served) and set(served) == set(logged)  # nothing lost
    assert len(rows) == len(logged)  # every request the emulator received, once


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_with_workers_finishes_in_flight_then_cancels(tmp_path: Path, presses: int) -> None:
    """Once: the workers launch nothing more and finish what is in flight; twice: they cancel
    it now. Either way every request the emulator received has exactly one row."""
    log, run = tmp_path / "truth.jsonl", tmp_path / "r"
    with Emulator("fast", truth_log=log) as emu:
        proc = bench_in_group(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "4", "--batches", "400", "--interval-s", "0.05",
            "--max-tokens", "300" if presses == 1 else "4000", "--workers", "2",
            "--out", str(tmp_path), "--run-id", "r",
        )  # fmt: skip
        wait_for(lambda: emu.service.stats.requests >= 20)
        os.killpg(proc.pid, signal.SIGINT)
        if presses == 2:
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        rows = [json.loads(line) for line in (run / "records.jsonl").open()]
        wait_for(lambda: len(log.read_text().splitlines()) >= len(rows), timeout=10)
    assert proc.returncode == 130, err
    assert "Ctrl-C: sending stopped; finishing the " in err and "Traceback" not in err
    statuses = [r["status"] for r in rows]
    if presses == 1:
        assert set(statuses) == {"ok"}  # drained to completion, none cancelled
    else:
        assert "Ctrl-C again: cancelling the " in err
        assert statuses.count("cancelled") > 0 and set(statuses) <= {"ok", "cancelled"}
    assert {r["worker"] for r in rows} == {0, 1}
    one_row_per_request(rows, log)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not list(run.glob("records.sent*.jsonl"))  # every sent request has its row


def test_sigkill_with_workers_then_resume_accounts_for_every_request(tmp_path: Path) -> None:
    log, run = tmp_path / "truth.jsonl", tmp_path / "r"
    with Emulator("fast", truth_log=log) as emu:
        proc = bench_in_group(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "4,2", "--batches", "40", "--interval-s", "0.05", "--max-tokens", "300",
            "--workers", "2", "--out", str(tmp_path), "--run-id", "r",
        )  # fmt: skip
        wait_for(lambda: emu.service.stats.requests >= 30)
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers: no handler runs
        proc.communicate(timeout=30)
        journals = {p.name for p in run.glob("records.sent*.jsonl")}
        assert {"records.sent.w0.jsonl", "records.sent.w1.jsonl"} <= journals
        journalled = sum(len(p.read_text().splitlines()) for p in run.glob("records.sent*.jsonl"))
        wait_for(lambda: len(log.read_text().splitlines()) >= journalled, timeout=10)
        resumed = subprocess.run(
            [sys.executable, "-m", "llmcap", "bench", "--quiet", "--resume", str(run)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        total = sum(len(p.read_text().splitlines()) for p in run.glob("records*.jsonl"))
        wait_for(lambda: len(log.read_text().splitlines()) >= total, timeout=10)
    rows = [
        json.loads(line)
        for name in ("records.jsonl", "records.partial.jsonl")
        for line in (run / name).read_text().splitlines()
    ]
    stopped = [r for r in rows if r["error_code"] == "ClientStopped"]
    assert stopped and all(r["status"] == "cancelled" for r in stopped)
    assert {r["worker"] for r in stopped} <= {0, 1}
    assert len({r["request_id"] for r in rows}) == len(rows)  # no duplicates
    assert len(rows) == len(log.read_text().splitlines())  # every request received has a row
    assert not list(run.glob("records.sent*.jsonl"))
    complete = read_jsonl(run / "records.jsonl")
    assert len(complete) == 4 * 40 + 2 * 40 and (complete.status == "ok").all()


def test_a_failed_first_batch_stops_a_run_with_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator("fast") as emu:
        argv = ["bench", "--endpoint-url", emu.url, "--model-id", "no-such-model",
                "--prompt", "small", "--levels", "4", "--batches", "40", "--interval-s", "0.05",
                "--workers", "2", "--out", str(tmp_path), "--run-id", "r"]  # fmt: skip
        assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: stopped: all 4 requests of the first batch failed")
    assert "ValidationException" in last and "Traceback" not in err
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and meta["workers"]["count"] == 2
    rows = read_jsonl(tmp_path / "r" / "records.jsonl")
    assert set(rows.worker) == {0, 1} and len(rows) < 160  # stopped long before the end
