"""The ``llmcap`` console script: ``emulate`` in a subprocess (Ctrl-C stops it) and ``demo``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emulator.runner import free_port
from llmcap.cli import main
from tests.conftest import LLAMA, QUESTION, bedrock_client


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                assert json.loads(r.read())["status"] == "ok"
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("emulator never became healthy")


def test_emulate_serves_logs_truth_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "truth.jsonl"
    cmd = [sys.executable, "-m", "llmcap", "emulate", "--profile", "fast", "--port", str(port),
           "--tpm", "100000", "--truth-log", str(log)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        client = bedrock_client(url)
        r = client.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 5})
        assert r["usage"]["outputTokens"] == 5
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "profile fast" in out and "TPM 100,000" in out and "emulator stopped" in out
    assert "Traceback" not in err
    (row,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert row["status"] == "ok" and row["output_tokens"] == 5


def test_emulate_binds_loopback_by_default() -> None:
    from llmcap.cli import build_parser

    args = build_parser().parse_args(["emulate"])
    assert args.host == "127.0.0.1" and args.port == 8787


def test_unknown_profile_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--profile", "no-such-profile"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'no-such-profile'" in err and "fast" in err


def test_quick_demo_answers_and_writes_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "small prompt (43 input tokens): 600,000 tokens per minute serve" in out
    assert "limited by" in out and "objective: p95 TTFT <=" in out  # the default is named
    assert "(the default: 2× the unloaded p95 TTFT" in out
    assert "requests per minute" not in out.split("The answer")[1]  # no RPM unless enforced
    assert "large prompt" in out and "For 2,000 users at 30 s think time request" in out
    assert "extrapolation" in out  # 2,000 users need far more in flight than the quick demo saw
    assert "Knees" in out and "System output throughput" in out
    assert (tmp_path / "model.json").is_file()
    # The account flow, offline: quotas read from the emulator, usage, the filed request.
    assert "Service Quotas API served by the emulator" in out and "filed:" in out
    assert (tmp_path / "account" / "usage.parquet").is_file()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "records.parquet").is_file()
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert len(pngs) == 8
    import matplotlib.image as mpimg

    for png in pngs:
        assert mpimg.imread(png).std() > 0.02, f"{png.name} looks blank"
