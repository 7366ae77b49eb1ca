"""Sweeps as a user runs them: Ctrl-C and resume, early stops, secrets, records, prompts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from bench.prompts import PromptError, load_prompt_sets, size_synthetic
from bench.records import RECORD_COLUMNS
from emulator import Emulator
from llmcap.cli import main

FAKE = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE1234",
    "AWS_SECRET_ACCESS_KEY": "fakeSecretValue/abcdefghijklmnopqrstuvwx",
    "AWS_SESSION_TOKEN": "FakeSessionTokenValue0123456789",
}


def bench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmcap", "bench", "--quiet", *args]


def test_ctrl_c_keeps_finished_requests_and_resume_completes(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        args = bench_cmd(
            "--endpoint-url", emu.url, "--prompt", "small", "--mode", "interval",
            "--levels", "2,3", "--batches", "40", "--interval-s", "0.05", "--max-tokens", "400",
            "--out", str(tmp_path), "--run-id", "r1",
        )  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        records = tmp_path / "r1" / "records.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            not records.exists() or len(records.read_text().splitlines()) < 10
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "llmcap bench --resume" in err and "Traceback" not in err
        rows = [json.loads(line) for line in records.read_text().splitlines()]  # valid JSONL
        assert len(rows) >= 10
        statuses = {r["status"] for r in rows}
        assert "ok" in statuses and statuses <= {"ok", "cancelled"}
        meta = json.loads((tmp_path / "r1" / "run.json").read_text())
        assert meta["status"] == "interrupted"

        resumed = subprocess.run(
            bench_cmd("--resume", str(tmp_path / "r1")), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
    df = read_jsonl(records)
    assert sorted(df.groupby("level").size().to_dict().items()) == [(2.0, 80), (3.0, 120)]
    assert (df.status == "ok").all()
    assert df.start_s.min() >= 0
    meta = json.loads((tmp_path / "r1" / "run.json").read_text())
    assert meta["status"] == "complete" and meta["completed_levels"] == ["small@2", "small@3"]
    partial = tmp_path / "r1" / "records.partial.jsonl"
    assert partial.exists() or len(rows) == 0  # the interrupted level's rows were kept aside
    assert (tmp_path / "r1" / "records.parquet").exists()


def test_stop_on_error_rate_ends_the_level_and_says_why(tmp_path: Path) -> None:
    with Emulator("fast", tpm=300) as emu:
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="small", mode="interval",
            levels=(10,), batches=20, interval_s=0.05, max_tokens=100, out=tmp_path,
            progress=False, stop_on_error_rate=0.5,
        )  # fmt: skip
        run_dir = run_sweep(config)
    df = read_jsonl(run_dir / "records.jsonl")
    assert len(df) < 200  # stopped early
    reason = json.loads((run_dir / "run.json").read_text())["early_stops"]["small@10"]
    assert "failure rate" in reason and "throttled" in reason


def test_no_credential_value_is_written_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    with Emulator("fast") as emu:
        for client in ("async", "boto3"):
            config = SweepConfig(
                endpoint=Endpoint(endpoint_url=emu.url, client=client), prompt="small",
                mode="sequential", levels=(1,), batches=2, max_tokens=10,
                out=tmp_path, progress=False,
            )  # fmt: skip
            run_sweep(config)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        blob = path.read_bytes()
        for value in FAKE.values():
            assert value.encode() not in blob, f"{value} leaked into {path}"


def test_every_sent_request_yields_exactly_one_row_with_all_columns(tmp_path: Path) -> None:
    with Emulator("fast", tpm=400) as emu:
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="small", mode="interval",
            levels=(5,), batches=4, interval_s=0.05, max_tokens=50, out=tmp_path,
            progress=False,
        )  # fmt: skip
        run_dir = run_sweep(config)
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    assert len(lines) == 20
    for line in lines:
        assert list(json.loads(line)) == list(RECORD_COLUMNS)
    assert len({json.loads(line)["request_id"] for line in lines}) == 20


def test_embedded_default_measures_the_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "bench", "--quiet", "--prompt", "small", "--mode", "sequential", "--levels", "1",
        "--batches", "2", "--max-tokens", "5", "--emulator-profile", "fast",
        "--out", str(tmp_path),
    ])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "built-in emulator (profile fast)" in captured.err
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["config"]["emulator_profile"] == "fast"
    assert meta["config"]["endpoint"]["endpoint_url"] is None  # the local port is not kept


def test_malformed_prompt_file_is_rejected_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "one"}\n{"prompt": "two", "max_tokens": 5}\n{oops}\n')
    with pytest.raises(PromptError, match=r"prompts.jsonl, line 3: invalid JSON"):
        load_prompt_sets(str(path))
    path.write_text('{"prompt": "one"}\n{"text": "no prompt key"}\n')
    with pytest.raises(PromptError, match="line 2"):
        load_prompt_sets(str(path))
    path.write_text('{"prompt": "one", "max_tokens": -3}\n')
    with pytest.raises(PromptError, match="line 1: max_tokens"):
        load_prompt_sets(str(path))


def test_bench_cli_reports_bad_prompt_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    code = main(["bench", "--prompt", str(bad), "--endpoint-url", "http://127.0.0.1:9"])
    assert code == 2
    assert "bad.jsonl, line 1" in capsys.readouterr().err


def test_prompt_specs() -> None:
    small, large = load_prompt_sets("small,large")
    assert small.prompts[0].text == "What is the meaning of life?"
    from emulator.tokens import count_tokens

    assert 5960 <= count_tokens(large.prompts[0].text) <= 6020  # ≈ the seed's 6,027 with template
    with pytest.raises(PromptError, match="synthetic:N"):
        load_prompt_sets("synthetic:x")
    with pytest.raises(PromptError, match="neither"):
        load_prompt_sets("no-such-file.txt")
    assert load_prompt_sets("synthetic:100")[0].synthetic_tokens == 100


def test_synthetic_prompt_is_sized_against_the_endpoints_count() -> None:
    from emulator.tokens import count_tokens

    def endpoint_count(text: str) -> int:  # what the emulator reports: counter + template
        return count_tokens(text) + 35

    prompt = size_synthetic(1000, endpoint_count)
    assert abs(endpoint_count(prompt.text) - 1000) <= 2


def test_synthetic_prompt_in_a_sweep(tmp_path: Path) -> None:
    with Emulator("fast") as emu:
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="synthetic:500",
            mode="sequential", levels=(1,), batches=2, max_tokens=5, out=tmp_path,
            progress=False,
        )  # fmt: skip
        df = read_jsonl(run_sweep(config) / "records.jsonl")
    assert (df.prompt_label == "synthetic-500").all()
    assert (df.input_tokens - 500).abs().max() <= 2
