"""The account flow offline, as the README runs it: an emulator process (``python -m emulator``,
what ``llmcap emulate`` starts) serves real boto3 Bedrock traffic, then ``llmcap usage
--endpoint-url`` reads that traffic back through CloudWatch GetMetricData and the quota through
Service Quotas — both served by the same emulator — and prints next steps that carry the flags."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from capacity.usage import read_usage
from emulator.runner import EmulatorProcess
from llmcap.cli import build_parser, main

pytestmark = pytest.mark.timeout(120)
MODEL = "us.meta.llama3-3-70b-instruct-v1:0"


@dataclass
class Traffic:
    url: str
    ok: int
    streams: int
    throttled: int
    input_tokens: int
    output_tokens: int
    end: datetime  # the next whole minute after the traffic: the window includes all of it


@pytest.fixture(scope="module")
def traffic() -> Iterator[Traffic]:
    with EmulatorProcess("fast", extra_args=("--tpm", "3000")) as emu:
        br: Any = boto3.client(
            "bedrock-runtime", region_name="us-west-2", endpoint_url=emu.url,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
            config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        messages = [{"role": "user", "content": [{"text": "a question about quotas"}]}]
        counts = {"ok": 0, "streams": 0, "throttled": 0, "in": 0, "out": 0}
        for i in range(24):
            try:
                if i % 2:
                    usage = br.converse(modelId=MODEL, messages=messages,
                                        inferenceConfig={"maxTokens": 150})["usage"]  # fmt: skip
                else:
                    stream = br.converse_stream(
                        modelId=MODEL, messages=messages, inferenceConfig={"maxTokens": 150}
                    )["stream"]
                    usage = next(e["metadata"]["usage"] for e in stream if "metadata" in e)
                    counts["streams"] += 1
            except br.exceptions.ThrottlingException:
                counts["throttled"] += 1
                continue
            counts["ok"] += 1
            counts["in"] += usage["inputTokens"]
            counts["out"] += usage["outputTokens"]
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        yield Traffic(emu.url, counts["ok"], counts["streams"], counts["throttled"],
                      counts["in"], counts["out"], end)  # fmt: skip


def _usage(traffic: Traffic, out: Path, *extra: str) -> list[str]:
    return [
        "usage", "--region", "us-west-2", "--model-id", MODEL, "--days", "0.02",
        "--end", traffic.end.isoformat(), "--endpoint-url", traffic.url, "-o", str(out), *extra,
    ]  # fmt: skip


def test_usage_reads_the_emulators_own_traffic(
    traffic: Traffic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert traffic.ok > 0 and traffic.throttled > 0  # the 3,000-TPM quota bit
    code = main(_usage(traffic, tmp_path))
    out, err = capsys.readouterr()
    assert code == 0, err
    frame, meta = read_usage(tmp_path / "usage.parquet")
    assert (meta.quota_tpm, meta.period_s, meta.source) == (3000, 60, "cloudwatch")
    assert frame["invocations"].sum() == traffic.ok
    assert frame["throttles"].sum() == traffic.throttled
    assert frame["input_tokens"].sum() == traffic.input_tokens
    assert frame["output_tokens"].sum() == traffic.output_tokens
    assert frame["estimated_tpm_quota_usage"].sum() == traffic.input_tokens + traffic.output_tokens
    assert frame["cache_read_tokens"].sum() == 0  # the emulator has no prompt cache
    busy = frame["invocations"] > 0
    # percentiles come from the emulator (moto has none); TTFT from the streaming calls
    assert np.isfinite(frame.loc[busy, "latency_ms_p99"]).all()
    assert np.isfinite(frame.loc[busy, "ttft_ms_p50"]).any()
    assert not any("percentiles not available" in n for n in meta.notes)
    assert f"Requests: {traffic.ok} served, {traffic.throttled} throttled" in out
    ask = (
        "llmcap request-increase --quota-code L-0E7AA8B7 --desired-value N --region us-west-2 "
        f"--endpoint-url {traffic.url}"
    )
    assert ask in out
    assert f"llmcap plan --from-usage {tmp_path / 'usage.parquet'} --max-tokens N" in out


def test_next_steps_carry_the_profile_and_the_quotas_endpoint(
    traffic: Traffic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--quotas-endpoint-url is where the increase request goes; the deprecated --profile is
    written back as --aws-profile, with a warning."""
    (tmp_path / "config").write_text(
        "[profile planner]\naws_access_key_id = AKIDEXAMPLE\n"
        "aws_secret_access_key = secret-example\n"
    )
    code = main(_usage(traffic, tmp_path / "u", "--quotas-endpoint-url", traffic.url + "/",
                       "--profile", "planner"))  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning: --profile is deprecated; use --aws-profile" in err
    line = next(x for x in out.splitlines() if "llmcap request-increase" in x)
    command = [w if w != "N" else "1000000" for w in shlex.split(line[line.index("llmcap") :])]
    args = build_parser().parse_args(command[1:])  # what it prints, the parser takes
    assert (args.region, args.aws_profile, args.endpoint_url) == (
        "us-west-2", "planner", traffic.url + "/",
    )  # fmt: skip
