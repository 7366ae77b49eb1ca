"""The emulator's CloudWatch GetMetricData: the per-minute store against numpy, and the API driven
by real boto3 over 127.0.0.1 — JSON 1.0 (what botocore uses now) and the query protocol (what
older botocore used) — against the traffic the emulator itself served."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore
import httpx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from emulator import Emulator
from emulator.cloudwatch import SAMPLE_CAP, BedrockMetrics, CloudWatch

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"
T0 = 1_800_000_000.0  # a whole minute (and hour) since the epoch


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _query(
    qid: str, metric: str, stat: str, period: int = 60, model: str = MODEL
) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Bedrock",
                "MetricName": metric,
                "Dimensions": [{"Name": "ModelId", "Value": model}],
            },
            "Period": period,
            "Stat": stat,
        },
    }


# -- the store ---------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 599.99), st.floats(0, 1e5, allow_nan=False)), min_size=1,
        max_size=80,
    ),
    st.sampled_from([60, 120, 300]),
    st.sampled_from(["Sum", "SampleCount", "Average", "Minimum", "Maximum", "p50", "p90", "p99.5"]),
)  # fmt: skip
def test_series_match_numpy_per_period(
    samples: list[tuple[float, float]], period: int, stat: str
) -> None:
    metrics = BedrockMetrics(Clock(T0))
    for dt, value in samples:
        metrics.add(MODEL, "InvocationLatency", value, T0 + dt)
    got = dict(metrics.series(MODEL, "InvocationLatency", period, stat, T0, T0 + 600))
    want: dict[int, float] = {}
    for start in range(int(T0), int(T0) + 600, period):
        values = np.array([v for dt, v in samples if start <= T0 + dt < start + period])
        if not len(values):
            continue
        if stat.startswith("p"):
            want[start] = float(np.percentile(values, float(stat[1:])))
        else:
            fn: dict[str, Any] = {"Sum": np.sum, "SampleCount": len, "Average": np.mean,
                                  "Minimum": np.min, "Maximum": np.max}  # fmt: skip
            want[start] = float(fn[stat](values))
    assert got.keys() == want.keys()
    for ts, value in want.items():
        assert got[ts] == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_window_retention_and_reservoir() -> None:
    clock = Clock(T0 + 30)
    metrics = BedrockMetrics(clock)
    for i in range(3 * SAMPLE_CAP):  # beyond the cap: counts and sums stay exact
        metrics.add(MODEL, "InvocationLatency", float(i))
    series = metrics.series(MODEL, "InvocationLatency", 60, "SampleCount", T0, T0 + 60)
    assert series == [(int(T0), 3.0 * SAMPLE_CAP)]
    p50 = metrics.series(MODEL, "InvocationLatency", 60, "p50", T0, T0 + 60)[0][1]
    assert abs(p50 - 1.5 * SAMPLE_CAP) < 0.1 * 1.5 * SAMPLE_CAP  # a sample of a uniform spread
    # [start, end): the minute that starts at the end is left out; start is floored to a minute
    assert metrics.series(MODEL, "InvocationLatency", 60, "Sum", T0 + 59, T0 + 60) != []
    assert metrics.series(MODEL, "InvocationLatency", 60, "Sum", T0 - 60, T0) == []
    clock.t = T0 + 86_400 + 120  # a day later the old minute is dropped
    metrics.add(MODEL, "InvocationLatency", 1.0)
    assert metrics.series(MODEL, "InvocationLatency", 60, "Sum", T0 - 60, T0 + 60) == []


def test_observe_maps_outcomes_to_bedrock_metrics() -> None:
    metrics = BedrockMetrics(Clock(T0))
    metrics.observe(MODEL, "served", input_tokens=40, output_tokens=300, quota_tokens=340,
                    latency_ms=900, ttft_ms=120)  # fmt: skip
    metrics.observe(MODEL, "served", input_tokens=60, output_tokens=0, quota_tokens=60)
    metrics.observe(MODEL, "throttled")
    metrics.observe(MODEL, "server_error", quota_tokens=1040)

    def total(metric: str) -> float | None:
        series = metrics.series(MODEL, metric, 60, "Sum", T0, T0 + 60)
        return series[0][1] if series else None

    assert [total(m) for m in ("Invocations", "InputTokenCount", "OutputTokenCount")] == [
        2, 100, 300,
    ]  # fmt: skip
    assert total("EstimatedTPMQuotaUsage") == 340 + 60 + 1040
    assert (total("InvocationThrottles"), total("InvocationServerErrors")) == (1, 1)
    assert total("InvocationClientErrors") is None and total("CacheReadInputTokenCount") is None
    assert metrics.series(MODEL, "TimeToFirstToken", 60, "SampleCount", T0, T0 + 60) == [
        (int(T0), 1.0)
    ]


def test_pages_split_the_datapoints_and_resume() -> None:
    metrics = BedrockMetrics(Clock(T0))
    for minute in range(5):
        metrics.add(MODEL, "Invocations", 1.0, T0 + 60 * minute)
        metrics.add(MODEL, "InputTokenCount", 10.0 * minute, T0 + 60 * minute)
    api = CloudWatch(metrics)
    queries = [_query("a", "Invocations", "Sum"), _query("e", "NoSuchMetric", "Sum"),
               _query("b", "InputTokenCount", "Sum")]  # fmt: skip
    merged: dict[str, list[float]] = {}
    token = None
    pages = 0
    while True:
        page = api.get_metric_data(queries, T0, T0 + 300, "TimestampAscending", 3, token)
        pages += 1
        for r in page["MetricDataResults"]:
            merged.setdefault(r["Id"], []).extend(r["Values"])
        token = page.get("NextToken")
        if token is None:
            break
    assert pages == 4  # 10 datapoints, 3 a page
    assert merged == {"a": [1.0] * 5, "e": [], "b": [0.0, 10.0, 20.0, 30.0, 40.0]}
    desc = api.get_metric_data(queries[:1], T0, T0 + 300)["MetricDataResults"][0]["Timestamps"]
    assert desc == sorted(desc, reverse=True)  # CloudWatch's default order


# -- the API with real boto3 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, dict[str, int]]]:
    """An emulator (fast profile, a 3,000-TPM quota) after real boto3 traffic: converse and
    converse-stream calls until some are throttled, and OpenAI calls (not Bedrock metrics)."""
    seen = {"ok": 0, "streams": 0, "throttled": 0, "input": 0, "output": 0}
    with Emulator("fast", tpm=3_000) as emu:
        br: Any = boto3.client(
            "bedrock-runtime", region_name="us-west-2", endpoint_url=emu.url,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        messages = [{"role": "user", "content": [{"text": "how many users fit a quota?"}]}]
        for i in range(30):
            try:
                if i % 3:
                    r = br.converse(modelId=MODEL, messages=messages,
                                    inferenceConfig={"maxTokens": 200})  # fmt: skip
                    usage = r["usage"]
                else:
                    events = br.converse_stream(modelId=MODEL, messages=messages,
                                                inferenceConfig={"maxTokens": 200})  # fmt: skip
                    usage = next(e["metadata"]["usage"] for e in events["stream"]
                                 if "metadata" in e)  # fmt: skip
                    seen["streams"] += 1
            except br.exceptions.ThrottlingException:
                seen["throttled"] += 1
                continue
            seen["ok"] += 1
            seen["input"] += usage["inputTokens"]
            seen["output"] += usage["outputTokens"]
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        httpx.post(f"{emu.url}/v1/chat/completions", json=body, timeout=30)
        yield emu, seen


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=10), now + timedelta(minutes=2)


def _client(url: str) -> Any:
    return boto3.client(
        "cloudwatch", region_name="us-west-2", endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
    )  # fmt: skip


def _sums(cw: Any) -> dict[str, float]:
    start, end = _window()
    names = ["Invocations", "InvocationThrottles", "InputTokenCount", "OutputTokenCount",
             "CacheReadInputTokenCount", "EstimatedTPMQuotaUsage"]  # fmt: skip
    queries = [_query(f"q{i}", name, "Sum") for i, name in enumerate(names)]
    queries.append(_query("ttft", "TimeToFirstToken", "SampleCount"))
    queries.append(_query("other", "Invocations", "Sum", model="amazon.nova-lite-v1:0"))
    answer = cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert all(r["StatusCode"] == "Complete" for r in results.values())
    out = {name: sum(results[f"q{i}"]["Values"]) for i, name in enumerate(names)}
    out["ttft_samples"] = sum(results["ttft"]["Values"])
    out["other_points"] = len(results["other"]["Values"])
    return out


def _check(sums: dict[str, float], seen: dict[str, int]) -> None:
    assert seen["ok"] > 0 and seen["throttled"] > 0
    assert sums["Invocations"] == seen["ok"]  # the OpenAI call is not a Bedrock invocation
    assert sums["InvocationThrottles"] == seen["throttled"]
    assert sums["InputTokenCount"] == seen["input"]
    assert sums["OutputTokenCount"] == seen["output"]
    assert sums["EstimatedTPMQuotaUsage"] == seen["input"] + seen["output"]  # burndown 1
    assert sums["ttft_samples"] == seen["streams"]
    assert sums["CacheReadInputTokenCount"] == 0 and sums["other_points"] == 0  # no data


def test_get_metric_data_json_protocol(served: tuple[Emulator, dict[str, int]]) -> None:
    emu, seen = served
    cw = _client(emu.url)
    assert cw.meta.service_model.resolved_protocol == "json"  # what this botocore speaks
    _check(_sums(cw), seen)
    start, end = _window()
    with pytest.raises(cw.exceptions.InvalidParameterValueException, match="metric math"):
        cw.get_metric_data(
            MetricDataQueries=[{"Id": "m", "Expression": "SUM(METRICS())"}],
            StartTime=start, EndTime=end,
        )  # fmt: skip
    with pytest.raises(cw.exceptions.InvalidParameterValueException, match="multiple of 60"):
        cw.get_metric_data(MetricDataQueries=[_query("a", "Invocations", "Sum", period=30)],
                           StartTime=start, EndTime=end)  # fmt: skip


def test_get_metric_data_query_protocol(
    served: tuple[Emulator, dict[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore with CloudWatch's model pinned to the query protocol (as older versions shipped
    it): form-encoded request, XML answer."""
    emu, seen = served
    model_path = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
    model = json.loads(gzip.decompress((model_path / "service-2.json.gz").read_bytes()))
    model["metadata"]["protocol"] = "query"
    model["metadata"]["protocols"] = ["query"]
    target = tmp_path / "cloudwatch" / "2010-08-01"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    cw = boto3.session.Session().client(
        "cloudwatch", region_name="us-west-2", endpoint_url=emu.url,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
    )  # fmt: skip
    assert cw.meta.service_model.resolved_protocol == "query"
    _check(_sums(cw), seen)
    start, end = _window()
    with pytest.raises(cw.exceptions.ClientError, match="InvalidParameterValue"):
        cw.get_metric_data(MetricDataQueries=[_query("a", "Invocations", "tm99")],
                           StartTime=start, EndTime=end)  # fmt: skip
