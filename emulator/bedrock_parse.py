"""Bedrock runtime request parsing: Converse and InvokeModel (Anthropic, Meta Llama, Amazon Nova).

Validation errors imitate Bedrock's two front ends: Coral for Converse ("1 validation error
detected: Value ... at 'messages.1.member.role' ...") and a JSON schema for native bodies
("Malformed input request: #/max_tokens: ...").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.api import SERVICE_TIERS, ApiError, GenerationRequest

__all__ = ["invoke_tier", "parse_converse", "parse_invoke"]

_MALFORMED = "Malformed input request, please reformat your input and try again."
_ROLES = ("user", "assistant")
# Schema type names, for "expected type: X, found: Y"; bool first because it is an int subclass.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "Boolean"),
    (int, "Integer"),
    (float, "Number"),
    (str, "String"),
    (list, "JSONArray"),
    (dict, "JSONObject"),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ValidationException", message)


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _Validator(Protocol):
    """How one Bedrock front end names paths and words its validation errors."""

    root: str

    def key(self, path: str, key: str) -> str: ...
    def item(self, path: str, index: int) -> str: ...
    def fail(self, path: str, value: object, constraint: str) -> ApiError: ...
    def missing(self, path: str, key: str) -> ApiError: ...
    def wrong_type(self, path: str, value: object, kind: str) -> ApiError: ...
    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError: ...
    def bad_role(self, path: str, value: object) -> ApiError: ...
    def empty(self, path: str) -> ApiError: ...


class _Coral:
    """Converse's validator: dotted member paths with 1-based list indexes."""

    root = ""

    def key(self, path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def item(self, path: str, index: int) -> str:
        return f"{path}.{index + 1}.member"

    def fail(self, path: str, value: object, constraint: str) -> ApiError:
        shown = "null" if value is None else f"'{_shown(value)}'"
        return _invalid(
            f"1 validation error detected: Value {shown} at '{path}' "
            f"failed to satisfy constraint: {constraint}"
        )

    def missing(self, path: str, key: str) -> ApiError:
        return self.fail(self.key(path, key), None, "Member must not be null")

    def wrong_type(self, path: str, value: object, kind: str) -> ApiError:
        return self.fail(path, value, f"Member must be of type {kind}")

    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError:
        relation = "less than or equal to" if upper else "greater than or equal to"
        return self.fail(path, value, f"Member must have value {relation} {bound}")

    def bad_role(self, path: str, value: object) -> ApiError:
        return self.fail(path, value, "Member must satisfy enum value set: [user, assistant]")

    def empty(self, path: str) -> ApiError:
        return _invalid(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )


class _Schema:
    """The native-body validator: JSON-pointer paths, everit-style JSON-schema messages."""

    root = "#"

    def key(self, path: str, key: str) -> str:
        return f"{path}/{key}"

    def item(self, path: str, index: int) -> str:
        return f"{path}/{index}"

    def fail(self, path: str, value: object, constraint: str) -> ApiError:
        return _invalid(
            f"Malformed input request: {path}: {constraint}, please reformat your input "
            "and try again."
        )

    def missing(self, path: str, key: str) -> ApiError:
        return self.fail(path, None, f"required key [{key}] not found")

    def wrong_type(self, path: str, value: object, kind: str) -> ApiError:
        found = next((name for t, name in _KINDS if isinstance(value, t)), "Null")
        return self.fail(path, value, f"expected type: {kind}, found: {found}")

    def out_of_range(self, path: str, value: object, bound: int, *, upper: bool) -> ApiError:
        relation = "less or equal to" if upper else "greater or equal to"
        return self.fail(path, value, f"{_shown(value)} is not {relation} {bound}")

    def bad_role(self, path: str, value: object) -> ApiError:
        return self.fail(path, value, f"{_shown(value)} is not a valid enum value")

    def empty(self, path: str) -> ApiError:
        return self.fail(path, [], "expected minimum item count: 1, found: 0")


_CORAL: _Validator = _Coral()
_SCHEMA: _Validator = _Schema()


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        raise _invalid(_MALFORMED) from None
    if not isinstance(obj, dict):
        raise _invalid(_MALFORMED)
    return obj


def _max_tokens(v: _Validator, obj: Mapping[str, Any], path: str, key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise v.wrong_type(v.key(path, key), value, "Integer")
    if value < 1:
        raise v.out_of_range(v.key(path, key), value, 1, upper=False)
    return value


def _unit(v: _Validator, obj: Mapping[str, Any], path: str, key: str) -> float | None:
    """A sampling parameter (temperature, top-p) in [0, 1], or None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise v.wrong_type(v.key(path, key), value, "Number")
    # `not >=` rather than `<` so that NaN, which json.loads accepts, fails too.
    if not value >= 0:
        raise v.out_of_range(v.key(path, key), value, 0, upper=False)
    if not value <= 1:
        raise v.out_of_range(v.key(path, key), value, 1, upper=True)
    return float(value)


def _config(v: _Validator, obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise v.wrong_type(v.key(v.root, key), value, "JSONObject")
    return value


def _blocks(v: _Validator, value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise v.wrong_type(path, value, "JSONArray")
    for i, block in enumerate(value):
        if not isinstance(block, dict):
            raise v.wrong_type(v.item(path, i), block, "JSONObject")
    return value


def _block_texts(v: _Validator, value: object, path: str) -> list[str]:
    """Texts of a Converse/Nova block list; image, tool and other blocks carry no text."""
    return [b["text"] for b in _blocks(v, value, path) if isinstance(b.get("text"), str)]


def _anthropic_texts(v: _Validator, value: object, path: str) -> list[str]:
    """Texts of Anthropic content: a string, or blocks of which only type "text" has text."""
    if isinstance(value, str):
        return [value]
    texts = []
    for i, block in enumerate(_blocks(v, value, path)):
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise v.wrong_type(v.key(v.item(path, i), "text"), text, "String")
            texts.append(text)
    return texts


_TextsOf = Callable[[_Validator, object, str], list[str]]


def _system(v: _Validator, obj: Mapping[str, Any], texts_of: _TextsOf) -> list[str]:
    system = obj.get("system")
    return [] if system is None else texts_of(v, system, v.key(v.root, "system"))


def _messages(v: _Validator, obj: Mapping[str, Any], texts_of: _TextsOf) -> tuple[list[str], int]:
    """Texts of every message and the message count."""
    path = v.key(v.root, "messages")
    messages = obj.get("messages")
    if messages is None:
        raise v.missing(v.root, "messages")
    if not isinstance(messages, list):
        raise v.wrong_type(path, messages, "JSONArray")
    if not messages:
        raise v.empty(path)
    texts: list[str] = []
    for i, msg in enumerate(messages):
        item = v.item(path, i)
        if not isinstance(msg, dict):
            raise v.wrong_type(item, msg, "JSONObject")
        for key in ("role", "content"):
            if msg.get(key) is None:
                raise v.missing(item, key)
        if msg["role"] not in _ROLES:
            raise v.bad_role(v.key(item, "role"), msg["role"])
        texts.extend(texts_of(v, msg["content"], v.key(item, "content")))
    return texts, len(messages)


@dataclass(frozen=True)
class _Fields:
    """What every body shape boils down to."""

    texts: list[str]
    n_messages: int
    max_tokens: int | None
    temperature: float | None


def _block_fields(v: _Validator, obj: Mapping[str, Any], max_keys: tuple[str, ...]) -> _Fields:
    """Fields of a Converse-shaped body (Converse, Nova): text blocks and an inferenceConfig.

    The max-token limit is read from the first of `max_keys` present, else from the last.
    """
    texts, n = _messages(v, obj, _block_texts)
    config = _config(v, obj, "inferenceConfig")
    path = v.key(v.root, "inferenceConfig")
    max_key = next((key for key in max_keys if key in config), max_keys[-1])
    _unit(v, config, path, "topP")
    return _Fields(
        _system(v, obj, _block_texts) + texts,
        n,
        _max_tokens(v, config, path, max_key),
        _unit(v, config, path, "temperature"),
    )


def _anthropic_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _SCHEMA
    for key in ("anthropic_version", "max_tokens"):
        if obj.get(key) is None:
            raise v.missing(v.root, key)
    texts, n = _messages(v, obj, _anthropic_texts)
    _unit(v, obj, v.root, "top_p")
    return _Fields(
        _system(v, obj, _anthropic_texts) + texts,
        n,
        _max_tokens(v, obj, v.root, "max_tokens"),
        _unit(v, obj, v.root, "temperature"),
    )


def _meta_fields(obj: Mapping[str, Any]) -> _Fields:
    v = _SCHEMA
    prompt = obj.get("prompt")
    if prompt is None:
        raise v.missing(v.root, "prompt")
    if not isinstance(prompt, str):
        raise v.wrong_type("#/prompt", prompt, "String")
    _unit(v, obj, v.root, "top_p")
    return _Fields(
        [prompt],
        1,
        _max_tokens(v, obj, v.root, "max_gen_len"),
        _unit(v, obj, v.root, "temperature"),
    )


def _nova_fields(obj: Mapping[str, Any]) -> _Fields:
    # Nova takes its camelCase name and the older snake_case one.
    return _block_fields(_SCHEMA, obj, ("maxTokens", "max_new_tokens"))


_INVOKE_FIELDS: dict[str, Callable[[Mapping[str, Any]], _Fields]] = {
    "anthropic": _anthropic_fields,
    "meta": _meta_fields,
    "nova": _nova_fields,
}
# Substrings, so that geo/global inference profiles (us., eu., global.) and ARNs match too.
_ID_MARKERS = (("anthropic.", "anthropic"), ("meta.", "meta"), ("amazon.nova", "nova"))


def _invoke_family(model_id: str, obj: Mapping[str, Any]) -> str:
    for marker, family in _ID_MARKERS:
        if marker in model_id:
            return family
    if "anthropic_version" in obj:
        return "anthropic"
    if "prompt" in obj:
        return "meta"
    if "schemaVersion" in obj or "inferenceConfig" in obj:
        return "nova"
    raise _SCHEMA.fail(
        "#",
        None,
        f"no body format is known for model {model_id!r}; send an Anthropic "
        "(anthropic_version), Meta Llama (prompt) or Amazon Nova (schemaVersion) body",
    )


def _request(
    operation: str, family: str, model_id: str, f: _Fields, *, stream: bool
) -> GenerationRequest:
    return GenerationRequest(
        operation=f"{operation}-stream" if stream else operation,
        family=family,
        model_id=model_id,
        prompt_text="\n".join(f.texts),
        n_messages=f.n_messages,
        max_tokens=f.max_tokens,
        temperature=f.temperature,
        stream=stream,
    )


_TIER_SET = f"Member must satisfy enum value set: [{', '.join(SERVICE_TIERS)}]"


def _converse_tier(obj: Mapping[str, Any]) -> str:
    """Converse's ``serviceTier: {"type": ...}`` (absent: the Standard tier, "default")."""
    tier = obj.get("serviceTier")
    if tier is None:
        return "default"
    if not isinstance(tier, dict):
        raise _CORAL.fail("serviceTier", tier, "Member must be a structure")
    kind = tier.get("type")
    if kind is None:
        raise _CORAL.missing("serviceTier", "type")
    if kind not in SERVICE_TIERS:
        raise _CORAL.fail("serviceTier.type", kind, _TIER_SET)
    return str(kind)


def invoke_tier(header: str | None) -> str:
    """InvokeModel's ``X-Amzn-Bedrock-Service-Tier`` header (absent: "default")."""
    if header is None:
        return "default"
    if header not in SERVICE_TIERS:
        raise _CORAL.fail("serviceTier", header, _TIER_SET)
    return header


def parse_converse(model_id: str, body: bytes, *, stream: bool) -> GenerationRequest:
    """Parse a Converse/ConverseStream body; raises ApiError(400, "ValidationException")."""
    obj = _load_object(body)
    fields = _block_fields(_CORAL, obj, ("maxTokens",))
    req = _request("converse", "converse", model_id, fields, stream=stream)
    return dataclasses.replace(req, service_tier=_converse_tier(obj))


def parse_invoke(
    model_id: str, body: bytes, *, stream: bool, service_tier: str | None = None
) -> GenerationRequest:
    """Parse an InvokeModel(WithResponseStream) body: Anthropic, Meta Llama or Amazon Nova;
    ``service_tier`` is the ``X-Amzn-Bedrock-Service-Tier`` header.

    The family comes from the model id, else from the body's shape. Raises
    ApiError(400, "ValidationException") for bodies the real service rejects.
    """
    obj = _load_object(body)
    family = _invoke_family(model_id, obj)
    req = _request("invoke", family, model_id, _INVOKE_FIELDS[family](obj), stream=stream)
    return dataclasses.replace(req, service_tier=invoke_tier(service_tier))
