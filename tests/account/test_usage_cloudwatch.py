"""``llmcap usage`` end to end: two weeks of synthetic per-minute AWS/Bedrock metrics in moto's
CloudWatch server (127.0.0.1), the TPM quota read from the emulator's Service Quotas API, real
boto3 for both; then ``llmcap plan --from-usage`` on the written usage.parquet."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from capacity.usage import SyntheticTraffic, read_usage, synthetic_usage
from emulator import Emulator
from llmcap.cli import main

pytestmark = pytest.mark.timeout(300)
MODEL = "us.meta.llama3-3-70b-instruct-v1:0"
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
TRUTH = SyntheticTraffic(growth_per_day=0.03, quota_tpm=300_000, seed=12)
SEEDED = {
    "invocations": "Invocations",
    "throttles": "InvocationThrottles",
    "input_tokens": "InputTokenCount",
    "output_tokens": "OutputTokenCount",
    "cache_read_tokens": "CacheReadInputTokenCount",
    "cache_write_tokens": "CacheWriteInputTokenCount",
    "ttft_ms_avg": "TimeToFirstToken",
    "latency_ms_avg": "InvocationLatency",
}


@dataclass
class Run:
    truth: pd.DataFrame
    out: Path
    code: int
    stdout: str
    stderr: str


def _seed(url: str, frame: pd.DataFrame) -> None:
    # botocore gzips large PutMetricData bodies; moto's server cannot read them.
    cw: Any = boto3.client(
        "cloudwatch", region_name="us-west-2", endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
        config=Config(disable_request_compression=True),
    )  # fmt: skip
    dims = [{"Name": "ModelId", "Value": MODEL}]
    items = [
        {"MetricName": metric, "Dimensions": dims, "Timestamp": ts.to_pydatetime(), "Value": v}
        for col, metric in SEEDED.items()
        for ts, v in zip(frame["timestamp"], frame[col].astype(float), strict=True)
        if v == v and v > 0
    ]
    for i in range(0, len(items), 1000):
        cw.put_metric_data(Namespace="AWS/Bedrock", MetricData=items[i : i + 1000])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("usage")
    mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    mp.setenv("AWS_CONFIG_FILE", str(tmp / "config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "credentials"))
    mp.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    truth = synthetic_usage(TRUTH, END)
    try:
        _seed(url, truth)
        with Emulator(tpm=300_000) as emu:
            out = tmp / "usage"
            so, se = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
                code = main([
                    "usage", "--region", "us-west-2", "--model-id", MODEL, "--days", "14",
                    "--end", END.isoformat(), "--endpoint-url", url,
                    "--quotas-endpoint-url", emu.url, "--out", str(out), "--chunk-hours", "4",
                ])  # fmt: skip
        yield Run(truth, out, code, so.getvalue(), se.getvalue())
    finally:
        server.stop()
        mp.undo()


def test_usage_round_trips_the_seeded_minutes(run: Run) -> None:
    assert run.code == 0, run.stderr
    frame, meta = read_usage(run.out / "usage.parquet")
    assert (meta.model_id, meta.period_s, meta.quota_tpm) == (MODEL, 60, 300_000)
    assert len(frame) == 14 * 1440
    for col in SEEDED:
        assert frame[col].fillna(0).sum() == pytest.approx(run.truth[col].fillna(0).sum())
    # moto cannot compute percentiles: the columns stay empty and the notes say so
    assert frame["ttft_ms_p99"].isna().all()
    assert any("percentiles not available" in n for n in meta.notes)
    assert any("read live" in n for n in meta.notes)


def test_usage_summary_forecast_and_figures(run: Run) -> None:
    doc = json.loads((run.out / "usage_summary.json").read_text())
    fc = doc["forecast"]
    lo, hi = fc["growth_ci"]
    assert lo <= TRUTH.growth_per_day <= hi
    assert doc["throttled_minutes"] == int((run.truth["throttles"] > 0).sum()) > 0
    assert doc["mean_input_tokens"] == pytest.approx(TRUTH.input_tokens, rel=0.02)
    assert fc["crossing"] is not None and "reaches 80% of the quota" in fc["statement"]
    assert "## Historical usage" in run.stdout
    for name in ("usage_vs_quota.png", "daily_profile.png", "forecast.png", "summary.md"):
        assert (run.out / name).stat().st_size > 0


def test_plan_from_usage(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--from-usage", str(run.out / "usage.parquet"), "--max-tokens", "1000",
                 "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    w = doc["plan"]["workload"]
    assert w["input_tokens"] == pytest.approx(TRUTH.input_tokens, rel=0.02)
    assert w["peak_to_average"] > 1.5
    assert doc["plan"]["quota"]["tpm"] == 300_000
    assert doc["monthly_cost"]["monthly_usd"] > 0
    assert doc["from_usage"].startswith("workload from ")


def test_usage_without_quota_access_warns_and_still_writes(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An unreachable Service Quotas endpoint: a warning naming --tpm, and a CloudWatch error
    (unreachable endpoint) is one line with exit 2."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    code = main(["usage", "--region", "us-west-2", "--model-id", MODEL, "--days", "1",
                 "--endpoint-url", "http://127.0.0.1:9", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "warning: quota not read" in err and "pass --tpm" in err
    assert err.splitlines()[-1].startswith("error: cannot reach --endpoint-url")
