"""Parsing the Responses API and the service tier of every API (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.api import ApiError, Completion
from emulator.bedrock_parse import parse_converse, parse_invoke
from emulator.openai_responses import full_response, parse_responses, stream_formatter
from emulator.openai_wire import parse_chat

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_responses_input_forms_and_fields() -> None:
    req = parse_responses(body(model=MODEL, input="Hello there", max_output_tokens=40))
    assert (req.prompt_text, req.n_messages, req.max_tokens) == ("Hello there", 1, 40)
    assert (req.operation, req.family, req.stream, req.service_tier) == (
        "responses", "openai-responses", False, "default"
    )  # fmt: skip
    parts = [{"role": "user", "content": [{"type": "input_text", "text": "a"}]},
             {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
             {"role": "user", "content": "c"}]  # fmt: skip
    req = parse_responses(body(model=MODEL, input=parts, instructions="sys", stream=True,
                               service_tier="reserved", reasoning={"effort": "low"}))  # fmt: skip
    assert (req.prompt_text, req.n_messages, req.stream) == ("sys\na\nb\nc", 3, True)
    assert req.service_tier == "reserved"
    assert parse_responses(body(model=MODEL, input="x", service_tier="auto")).service_tier == (
        "default"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": "x"}, "you must provide a model parameter"),
        ({"model": MODEL}, "Missing required parameter: 'input'."),
        ({"model": MODEL, "input": 3}, "Invalid type for 'input'"),
        ({"model": MODEL, "input": "x", "max_output_tokens": 0}, "'max_output_tokens'"),
        ({"model": MODEL, "input": "x", "service_tier": "scale"}, "'service_tier': 'scale'"),
        ({"model": MODEL, "input": "x", "instructions": 1}, "'instructions'"),
    ],
)
def test_bad_responses_bodies_are_400s(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_responses(body(**fields))
    assert info.value.status == 400 and message in info.value.message


def test_a_response_object_and_its_stream() -> None:
    req = parse_responses(body(model=MODEL, input="x", max_output_tokens=3, stream=True))
    done = Completion("id1", MODEL, 12, 2, "end_turn", 100, 10, 1_700_000_000)
    full = json.loads(full_response(req, "ab", done))
    assert (full["id"], full["status"], full["incomplete_details"]) == ("resp_id1", "completed",
                                                                        None)  # fmt: skip
    assert full["usage"] == {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                             "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 14}  # fmt: skip
    fmt = stream_formatter(req, "id1", 1_700_000_000)
    raw = fmt.start() + fmt.start() + fmt.delta("a") + fmt.delta("b") + fmt.finish(done)
    data = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data")]
    assert [d["sequence_number"] for d in data] == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert data[-1]["type"] == "response.completed"
    assert data[-1]["response"]["output"][0]["content"][0]["text"] == "ab"


def test_converse_invoke_and_chat_take_the_service_tier() -> None:
    msg = [{"role": "user", "content": [{"text": "hi"}]}]
    assert parse_converse(MODEL, body(messages=msg), stream=False).service_tier == "default"
    req = parse_converse(MODEL, body(messages=msg, serviceTier={"type": "flex"}), stream=True)
    assert req.service_tier == "flex"
    with pytest.raises(ApiError, match=r"at 'serviceTier\.type' failed to satisfy constraint"):
        parse_converse(MODEL, body(messages=msg, serviceTier={"type": "gold"}), stream=False)
    with pytest.raises(ApiError, match=r"serviceTier\.type"):
        parse_converse(MODEL, body(messages=msg, serviceTier={}), stream=False)
    native = body(prompt="hi", max_gen_len=5)
    assert parse_invoke(MODEL, native, stream=False).service_tier == "default"
    assert parse_invoke(MODEL, native, stream=False, service_tier="priority").service_tier == (
        "priority"
    )
    with pytest.raises(ApiError, match="enum value set: \\[priority, default, flex, reserved\\]"):
        parse_invoke(MODEL, native, stream=False, service_tier="fast")
    chat = body(model=MODEL, messages=[{"role": "user", "content": "hi"}], service_tier="priority")
    assert parse_chat(chat).service_tier == "priority"
