"""Real boto3 against the emulator over 127.0.0.1: the four runtime APIs, errors and faults."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EventStreamError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError, ReadTimeoutError as Urllib3ReadTimeout

from capacity.serving import FaultConfig, load_profile
from emulator import Emulator
from emulator.tokens import count_tokens
from tests.conftest import LLAMA, QUESTION, bedrock_client

OVERHEAD = load_profile("fast").prompt_overhead_tokens
EXPECTED_INPUT = count_tokens("What is the meaning of life?") + OVERHEAD


def collect(stream: Any) -> list[dict[str, Any]]:
    return [dict(event) for event in stream]


def test_converse_stream_events_usage_and_request_id(client: Any) -> None:
    resp = client.converse_stream(
        modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 40, "temperature": 0.5}
    )
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    events = collect(resp["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart"
    assert "contentBlockStart" not in kinds  # Bedrock sends none for text blocks
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    meta = events[-1]["metadata"]
    assert meta["usage"] == {
        "inputTokens": EXPECTED_INPUT,
        "outputTokens": 40,
        "totalTokens": EXPECTED_INPUT + 40,
    }
    assert count_tokens(text) == 40
    assert meta["metrics"]["latencyMs"] >= 0
    assert events[-2]["messageStop"]["stopReason"] == "max_tokens"


def test_converse_returns_the_same_shape_without_streaming(client: Any) -> None:
    resp = client.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 25})
    assert resp["usage"]["outputTokens"] == 25
    assert count_tokens(resp["output"]["message"]["content"][0]["text"]) == 25
    assert resp["stopReason"] == "max_tokens"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_deterministic_text_for_a_seed() -> None:
    texts = []
    for _ in range(2):
        with Emulator("fast", seed=7) as emu:
            c = bedrock_client(emu.url)
            r = c.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 15})
            texts.append(r["output"]["message"]["content"][0]["text"])
    assert texts[0] == texts[1]  # same seed, same request order → same text
    assert count_tokens(texts[0]) == 15


BODIES = {
    "anthropic.claude-3-haiku-20240307-v1:0": {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 12,
        "messages": [{"role": "user", "content": "What is the meaning of life?"}],
    },
    "us.meta.llama3-3-70b-instruct-v1:0": {
        "prompt": "What is the meaning of life?",
        "max_gen_len": 12,
    },
    "us.amazon.nova-lite-v1:0": {
        "schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": "What is the meaning of life?"}]}],
        "inferenceConfig": {"maxTokens": 12},
    },
}


@pytest.mark.parametrize("model_id", list(BODIES))
def test_invoke_model_native_bodies(client: Any, model_id: str) -> None:
    resp = client.invoke_model(modelId=model_id, body=json.dumps(BODIES[model_id]))
    body = json.loads(resp["body"].read())
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-output-token-count"] == "12"
    if "anthropic" in model_id:
        assert body["usage"]["output_tokens"] == 12 and body["stop_reason"] == "max_tokens"
    elif "meta" in model_id:
        assert body["generation_token_count"] == 12 and body["stop_reason"] == "length"
        assert body["prompt_token_count"] == EXPECTED_INPUT
    else:
        assert body["usage"]["outputTokens"] == 12 and body["stopReason"] == "max_tokens"


@pytest.mark.parametrize("model_id", list(BODIES))
def test_invoke_stream_ends_with_invocation_metrics(client: Any, model_id: str) -> None:
    resp = client.invoke_model_with_response_stream(
        modelId=model_id, body=json.dumps(BODIES[model_id])
    )
    assert resp["contentType"] == "application/json"
    chunks = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == EXPECTED_INPUT
    assert metrics["outputTokenCount"] == 12
    assert 0 <= metrics["firstByteLatency"] <= metrics["invocationLatency"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"modelId": LLAMA, "messages": []}, ""),
        ({"modelId": "no.such-model-v1:0", "messages": QUESTION}, "model identifier"),
        (
            {"modelId": LLAMA, "messages": QUESTION, "inferenceConfig": {"maxTokens": 0}},
            "maxTokens",
        ),
    ],
)
def test_malformed_requests_get_validation_exception(
    fast_emulator: Emulator, kwargs: dict[str, Any], fragment: str
) -> None:
    client = bedrock_client(fast_emulator.url, parameter_validation=False)  # let the server judge
    with pytest.raises(ClientError) as info:
        client.converse_stream(**kwargs)
    err = info.value.response
    assert err["Error"]["Code"] == "ValidationException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in err["Error"]["Message"]


def test_bad_json_and_missing_messages_over_raw_http(fast_emulator: Emulator) -> None:
    import httpx

    url = f"{fast_emulator.url}/model/{LLAMA.replace(':', '%3A')}/converse-stream"
    for body in (b"{not json", b"{}", b"[1, 2]"):
        r = httpx.post(url, content=body, timeout=5)
        assert r.status_code == 400
        assert r.headers["x-amzn-ErrorType"].startswith("ValidationException")
        assert r.headers["x-amzn-RequestId"]
        assert "message" in r.json()


def test_invoke_model_without_required_anthropic_max_tokens(client: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(ClientError) as info:
        client.invoke_model(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps(body))
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_tpm_quota_throttles_with_the_exact_bedrock_429() -> None:
    # reservation per request = input + maxTokens = EXPECTED_INPUT + 400
    tpm = 6000
    per_request = EXPECTED_INPUT + 400
    with Emulator("fast", tpm=tpm) as emu:
        c = bedrock_client(emu.url, max_pool_connections=50)

        def call(_: int) -> str:
            try:
                r = c.converse_stream(
                    modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 400}
                )
                collect(r["stream"])
                return "ok"
            except ClientError as exc:
                assert exc.response["ResponseMetadata"]["RetryAttempts"] == 0
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                assert (
                    exc.response["Error"]["Message"]
                    == "Too many tokens, please wait before trying again."
                )
                return exc.response["Error"]["Code"]

        with ThreadPoolExecutor(30) as pool:
            outcomes = list(pool.map(call, range(30)))
    assert outcomes.count("ok") == tpm // per_request
    assert outcomes.count("ThrottlingException") == 30 - tpm // per_request


def test_throttle_raises_the_modelled_exception_class() -> None:
    with Emulator("fast", tpm=100) as emu:
        c = bedrock_client(emu.url)
        with pytest.raises(c.exceptions.ThrottlingException):
            c.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 400})


def test_mid_stream_throttle_raises_event_stream_error() -> None:
    with Emulator("fast", tpm=100, throttle="mid-stream") as emu:
        c = bedrock_client(emu.url)
        resp = c.converse_stream(
            modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 400}
        )
        with pytest.raises(EventStreamError) as info:
            collect(resp["stream"])
    assert info.value.response["Error"]["Code"] == "throttlingException"


def faulty(**faults: Any) -> Emulator:
    profile = load_profile("fast")
    return Emulator(profile.with_overrides(faults=FaultConfig(**faults)))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("500", "InternalServerException"),
        ("503", "ServiceUnavailableException"),
        ("424", "ModelErrorException"),
    ],
)
def test_injected_http_errors(status: str, code: str) -> None:
    with faulty(error_rate={status: 1.0}) as emu:
        c = bedrock_client(emu.url)
        with pytest.raises(ClientError) as info:
            c.converse_stream(modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 10})
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(status)


def test_injected_mid_stream_error_arrives_after_some_tokens() -> None:
    with faulty(midstream_error_rate=1.0) as emu:
        c = bedrock_client(emu.url)
        resp = c.converse_stream(
            modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 20}
        )
        seen = []
        with pytest.raises(EventStreamError) as info:
            for event in resp["stream"]:
                seen.append(event)
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert any("contentBlockDelta" in e for e in seen)


def test_injected_dropped_connection_surfaces_as_a_stream_error() -> None:
    with faulty(drop_rate=1.0) as emu:
        c = bedrock_client(emu.url)
        resp = c.converse_stream(
            modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 20}
        )
        # botocore's event stream reads urllib3 directly: a cut connection is urllib3's error
        with pytest.raises((ResponseStreamingError, ProtocolError)):
            collect(resp["stream"])


def test_injected_stall_trips_the_client_read_timeout() -> None:
    with faulty(stall_rate=1.0, stall_s=3.0) as emu:
        c = bedrock_client(emu.url, read_timeout=0.5)
        resp = c.converse_stream(
            modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 20}
        )
        with pytest.raises((ReadTimeoutError, ResponseStreamingError, Urllib3ReadTimeout)):
            collect(resp["stream"])


def test_truth_log_matches_what_the_client_saw(tmp_path: Path) -> None:
    log = tmp_path / "truth.jsonl"
    with Emulator("fast", truth_log=log) as emu:
        c = bedrock_client(emu.url)
        ids = []
        for _ in range(3):
            r = c.converse_stream(
                modelId=LLAMA, messages=QUESTION, inferenceConfig={"maxTokens": 30}
            )
            ids.append(r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
            collect(r["stream"])
        with pytest.raises(ClientError):
            c.converse_stream(modelId="nope", messages=QUESTION)
        # received_s is stamped when the request bytes reach the process, not at handler start
        assert emu._runner is not None
        assert type(emu._runner.server).__name__ == "_StampingServer"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["request_id"] for r in rows[:3]] == ids
    for row in rows[:3]:
        assert row["status"] == "ok" and row["output_tokens"] == 30
        assert row["received_s"] < row["first_token_sent_s"] <= row["last_token_sent_s"]
    assert rows[3]["status"] == "http_400"
