"""Bedrock request parsing and validation, with the real service's error wording."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import bedrock_parse as bp
from emulator.api import ApiError, GenerationRequest

CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- parsing -----------------------------------------------------------------------------------
def test_parse_converse() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}, {"image": {"format": "png"}}]},
            {"role": "assistant", "content": [{"text": "Hello"}]},
            {"role": "user", "content": [{"text": "Bye"}]},
        ],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9},
        "performanceConfig": {"latency": "standard"},  # accepted and ignored
    }
    req = bp.parse_converse(CLAUDE, _body(body), stream=True)
    assert req == GenerationRequest(
        operation="converse-stream",
        family="converse",
        model_id=CLAUDE,
        prompt_text="Be brief.\nHi\nHello\nBye",
        n_messages=3,
        max_tokens=100,
        temperature=0.5,
        stream=True,
    )
    minimal = bp.parse_converse(CLAUDE, _body({"messages": body["messages"][:1]}), stream=False)
    assert (minimal.operation, minimal.max_tokens, minimal.temperature) == ("converse", None, None)


def test_parse_invoke_anthropic() -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 350,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "image"}]},
        ],
        "temperature": 1,
    }
    req = bp.parse_invoke(CLAUDE, _body(body), stream=True)
    assert (req.operation, req.family, req.max_tokens, req.temperature) == (
        "invoke-stream",
        "anthropic",
        350,
        1.0,
    )
    assert (req.prompt_text, req.n_messages) == ("Be brief.\nHi\nthere", 2)
    listed = {**body, "system": [{"type": "text", "text": "S"}]}
    assert bp.parse_invoke(CLAUDE, _body(listed), stream=False).prompt_text == "S\nHi\nthere"


def test_parse_invoke_meta_and_nova() -> None:
    meta = bp.parse_invoke(LLAMA, _body({"prompt": "Hi", "max_gen_len": 512}), stream=False)
    assert (meta.family, meta.operation, meta.prompt_text, meta.max_tokens) == (
        "meta",
        "invoke",
        "Hi",
        512,
    )
    nova_body = {
        "schemaVersion": "messages-v1",
        "system": [{"text": "S"}],
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"max_new_tokens": 64, "temperature": 0.2},
    }
    nova = bp.parse_invoke(NOVA, _body(nova_body), stream=True)
    assert (nova.family, nova.prompt_text, nova.max_tokens, nova.temperature) == (
        "nova",
        "S\nHi",
        64,
        0.2,
    )
    camel = {**nova_body, "inferenceConfig": {"maxTokens": 8}}
    assert bp.parse_invoke(NOVA, _body(camel), stream=True).max_tokens == 8


@pytest.mark.parametrize(
    ("model_id", "body", "family"),
    [
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2", {}, "anthropic"),
        ("global.anthropic.claude-sonnet-4-v1:0", {}, "anthropic"),
        ("custom-model", {"anthropic_version": "x"}, "anthropic"),
        ("custom-model", {"prompt": "x"}, "meta"),
        ("custom-model", {"schemaVersion": "messages-v1"}, "nova"),
        ("custom-model", {"inferenceConfig": {}}, "nova"),
    ],
)
def test_invoke_family_from_id_or_body(model_id: str, body: dict[str, Any], family: str) -> None:
    families: dict[str, dict[str, Any]] = {
        "anthropic": {
            "anthropic_version": "v",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
        "meta": {"prompt": "x"},
        "nova": {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
    }
    full = families[family]
    assert bp.parse_invoke(model_id, _body({**full, **body}), stream=False).family == family


MALFORMED = "Malformed input request, please reformat your input and try again."
USER = {"role": "user", "content": [{"text": "x"}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", MALFORMED),
        (b"[1, 2]", MALFORMED),
        (b"\xff\xfe", MALFORMED),
        (
            _body({}),
            "1 validation error detected: Value null at 'messages' failed to satisfy "
            "constraint: Member must not be null",
        ),
        (_body({"messages": []}), "A conversation must start with a user message."),
        (
            _body({"messages": [USER, {"content": []}]}),
            "1 validation error detected: Value null at 'messages.2.member.role' failed to "
            "satisfy constraint: Member must not be null",
        ),
        (
            _body({"messages": [{"role": "user"}]}),
            "Value null at 'messages.1.member.content'",
        ),
        (
            _body({"messages": [{"role": "bot", "content": []}]}),
            "Value 'bot' at 'messages.1.member.role' failed to satisfy constraint: "
            "Member must satisfy enum value set: [user, assistant]",
        ),
        (
            _body({"messages": [USER], "inferenceConfig": {"maxTokens": 0}}),
            "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to "
            "satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            _body({"messages": [USER], "inferenceConfig": {"maxTokens": "10"}}),
            "Value '10' at 'inferenceConfig.maxTokens' failed to satisfy constraint: "
            "Member must be of type Integer",
        ),
        (
            _body({"messages": [USER], "inferenceConfig": {"maxTokens": 1.5}}),
            "at 'inferenceConfig.maxTokens'",
        ),
        (
            _body({"messages": [USER], "inferenceConfig": {"temperature": 1.5}}),
            "Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: "
            "Member must have value less than or equal to 1",
        ),
        (
            _body({"messages": [USER], "inferenceConfig": {"temperature": -0.1}}),
            "Member must have value greater than or equal to 0",
        ),
        (
            b'{"messages": [{"role": "user", "content": []}],'
            b' "inferenceConfig": {"temperature": NaN}}',
            "at 'inferenceConfig.temperature'",
        ),
        (_body({"messages": [{"role": "user", "content": "x"}]}), "messages.1.member.content"),
    ],
)
def test_converse_validation_errors(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        bp.parse_converse(CLAUDE, body, stream=True)
    assert (caught.value.status, caught.value.error_type) == (400, "ValidationException")
    assert message in caught.value.message


def _schema_error(problem: str) -> str:
    return f"Malformed input request: {problem}, please reformat your input and try again."


ANTHROPIC_OK = {
    "anthropic_version": "v",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "x"}],
}


@pytest.mark.parametrize(
    ("model_id", "body", "message"),
    [
        (CLAUDE, b"nope", MALFORMED),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "max_tokens": None},
            _schema_error("#: required key [max_tokens] not found"),
        ),
        (
            CLAUDE,
            {"max_tokens": 5, "messages": []},
            _schema_error("#: required key [anthropic_version] not found"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "max_tokens": 0},
            _schema_error("#/max_tokens: 0 is not greater or equal to 1"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "max_tokens": "5"},
            _schema_error("#/max_tokens: expected type: Integer, found: String"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "temperature": 2},
            _schema_error("#/temperature: 2 is not less or equal to 1"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "messages": []},
            _schema_error("#/messages: expected minimum item count: 1, found: 0"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "messages": [{"content": "x"}]},
            _schema_error("#/messages/0: required key [role] not found"),
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "messages": [{"role": "user", "content": 3}]},
            "#/messages/0/content: expected type: JSONArray, found: Integer",
        ),
        (
            CLAUDE,
            {**ANTHROPIC_OK, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "#/messages/0/content/0/text: expected type: String, found: Null",
        ),
        (LLAMA, {"max_gen_len": 5}, _schema_error("#: required key [prompt] not found")),
        (
            LLAMA,
            {"prompt": ["x"]},
            _schema_error("#/prompt: expected type: String, found: JSONArray"),
        ),
        (
            LLAMA,
            {"prompt": "x", "temperature": True},
            "#/temperature: expected type: Number, found: Boolean",
        ),
        (
            NOVA,
            {"messages": [USER], "inferenceConfig": {"maxTokens": 0}},
            "#/inferenceConfig/maxTokens: 0 is not greater",
        ),
        (
            NOVA,
            {"messages": [USER], "inferenceConfig": []},
            "#/inferenceConfig: expected type: JSONObject",
        ),
        (NOVA, {"inferenceConfig": {}}, _schema_error("#: required key [messages] not found")),
        ("custom-model", {"foo": 1}, "no body format is known for model 'custom-model'"),
    ],
)
def test_invoke_validation_errors(model_id: str, body: object, message: str) -> None:
    raw = body if isinstance(body, bytes) else _body(body)
    with pytest.raises(ApiError) as caught:
        bp.parse_invoke(model_id, raw, stream=False)
    assert (caught.value.status, caught.value.error_type) == (400, "ValidationException")
    assert message in caught.value.message
