"""Real httpx and boto3 against the emulator in bedrock-mantle mode and with service tiers and
Reserved capacity, over 127.0.0.1: the OpenAI Responses API, input and output TPM, the tiers on
every API, Reserved overflow, and the Service Quotas listing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from emulator import Emulator
from emulator.tokens import count_tokens
from tests.conftest import LLAMA, QUESTION, bedrock_client


def sse(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``event:``/``data:`` pairs of a Responses stream."""
    events, kind = [], ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((kind, json.loads(line.removeprefix("data: "))))
    return events


def ask(text: str = "What is the meaning of life?", **extra: Any) -> dict[str, Any]:
    return {"model": LLAMA, "input": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def mantle() -> Iterator[Emulator]:
    with Emulator("fast", endpoint="mantle") as emu:
        yield emu


def test_a_streamed_response_is_the_responses_apis_event_sequence(mantle: Emulator) -> None:
    body = ask(stream=True, max_output_tokens=25, instructions="Be brief.")
    with (
        httpx.Client(base_url=mantle.url, timeout=10) as c,
        c.stream("POST", "/v1/responses", json=body) as r,
    ):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(list(r.iter_lines()))
    kinds = [k for k, _ in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.incomplete"]  # fmt: skip
    assert all(k == data["type"] for k, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = "".join(d["delta"] for k, d in events if k == "response.output_text.delta")
    assert count_tokens(deltas) == 25
    final = events[-1][1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["content"][0]["text"] == deltas
    assert final["usage"]["output_tokens"] == 25 and final["service_tier"] == "default"


def test_a_full_response_and_the_chat_api_take_service_tier(mantle: Emulator) -> None:
    with httpx.Client(base_url=mantle.url, timeout=10) as c:
        full = c.post("/v1/responses", json=ask(input="Hi", max_output_tokens=5,
                                                 service_tier="priority")).json()  # fmt: skip
        assert full["object"] == "response" and full["service_tier"] == "priority"
        assert full["usage"]["output_tokens"] == 5
        chat = c.post("/v1/chat/completions", json={
            "model": LLAMA, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5,
            "service_tier": "flex"})  # fmt: skip
        assert chat.status_code == 200
        bad = c.post("/v1/responses", json=ask(service_tier="standard"))
        assert bad.status_code == 400
        assert "Invalid value for 'service_tier': 'standard'" in bad.json()["error"]["message"]


def test_bedrock_runtime_apis_are_not_served_by_bedrock_mantle(mantle: Emulator) -> None:
    with pytest.raises(ClientError) as info:
        bedrock_client(mantle.url).converse(modelId=LLAMA, messages=QUESTION)
    assert "bedrock-mantle endpoint" in info.value.response["Error"]["Message"]


def test_input_tpm_checks_input_plus_max_tokens_at_admission() -> None:
    prompt = count_tokens("What is the meaning of life?") + 35  # the fast profile's overhead
    need = prompt + 2_000  # input + max_tokens
    with (
        Emulator("fast", endpoint="mantle", input_tpm=2 * need, output_tpm=10**6) as emu,
        httpx.Client(base_url=emu.url, timeout=30) as c,
        ExitStack() as open_streams,
    ):
        for _ in range(2):  # two long streams hold their admissions
            r = open_streams.enter_context(
                c.stream("POST", "/v1/responses", json=ask(stream=True, max_output_tokens=2_000))
            )
            assert r.status_code == 200
        third = c.post("/v1/responses", json=ask(max_output_tokens=2_000))
        assert third.status_code == 429
        assert third.json()["error"]["message"].startswith("Too many input tokens")
        # A small max_tokens does not fit either: the bucket holds less than one more prompt.
        assert c.post("/v1/responses", json=ask(max_output_tokens=1)).status_code == 429


def test_output_tpm_counts_the_generated_output() -> None:
    with (
        Emulator("fast", endpoint="mantle", input_tpm=10**6, output_tpm=100) as emu,
        httpx.Client(base_url=emu.url, timeout=30) as c,
    ):
        for _ in range(2):  # 60 + 60 output tokens: the output TPM ends 20 tokens in debt
            body = ask(max_output_tokens=60, stream=True)
            with c.stream("POST", "/v1/responses", json=body) as r:
                assert r.status_code == 200
                r.read()
        refused = c.post(
            "/v1/chat/completions",
            json={"model": LLAMA, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
        )
        assert refused.status_code == 429  # fmt: skip
        assert refused.json()["error"]["message"].startswith("Too many output tokens")


def test_service_quotas_lists_bedrock_mantles_quotas() -> None:
    with Emulator("fast", endpoint="mantle", input_tpm=100_000, output_tpm=20_000) as emu:
        sq = boto3.client(
            "service-quotas", region_name="us-east-1", endpoint_url=emu.url,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
        )  # fmt: skip
        quotas = sq.list_service_quotas(ServiceCode="bedrock")["Quotas"]
    names = {q["QuotaName"]: q["Value"] for q in quotas}
    llama = "Meta Llama 3.3 70B Instruct"
    assert names[f"Bedrock Mantle input tokens per minute for {llama}"] == 100_000
    assert names[f"Bedrock Mantle output tokens per minute for {llama}"] == 20_000
    assert not any("InvokeModel" in n or "model inference" in n for n in names)
    assert all(q["Period"]["PeriodUnit"] == "MINUTE" for q in quotas)


def test_reserved_tier_requests_use_reserved_capacity_on_every_runtime_api() -> None:
    """Reserved capacity serves requests of the Reserved tier only; a Standard request finds
    the small on-demand quota full, a Reserved one fits Reserved capacity."""
    with Emulator("fast", tpm=1_000, reserved_input_tpm=100_000,
                  reserved_output_tpm=10_000) as emu:  # fmt: skip
        client = bedrock_client(emu.url)
        config = {"maxTokens": 2_000}
        with pytest.raises(ClientError) as info:
            client.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig=config)
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        ok = client.converse(modelId=LLAMA, messages=QUESTION, inferenceConfig=config,
                             serviceTier={"type": "reserved"})  # fmt: skip
        assert ok["usage"]["outputTokens"] == 2_000
        body = json.dumps({"prompt": "Hi", "max_gen_len": 2_000})
        out = client.invoke_model(modelId=LLAMA, body=body, serviceTier="reserved")
        assert json.loads(out["body"].read())["generation_token_count"] == 2_000
        with pytest.raises(ClientError):
            client.invoke_model(modelId=LLAMA, body=body, serviceTier="priority")  # on-demand
        with pytest.raises(ClientError) as info:
            client.converse(modelId=LLAMA, messages=QUESTION, serviceTier={"type": "gold"})
        assert info.value.response["Error"]["Code"] == "ValidationException"
