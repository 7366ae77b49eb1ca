"""The event-stream encoder against botocore's decoder (the one boto3 uses)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from hypothesis import given, strategies as st

from emulator.eventstream import encode_message, event_frame, exception_frame

header_names = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=50)
headers_st = st.dictionaries(header_names, st.text(max_size=200), max_size=8)
payloads = st.binary(max_size=2000)


def _decode(*pieces: bytes) -> list[Any]:  # botocore-stubs mistype headers as int
    buffer = EventStreamBuffer()
    messages: list[EventStreamMessage] = []
    for piece in pieces:
        buffer.add_data(piece)
        messages.extend(buffer)
    return messages


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(headers=headers_st, payload=payloads)
def test_round_trip_through_botocore(headers: dict[str, str], payload: bytes) -> None:
    [message] = _decode(encode_message(headers, payload))
    assert message.headers == headers
    assert message.payload == payload


@given(
    frames=st.lists(st.tuples(headers_st, payloads), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=30),
)
def test_round_trip_in_random_pieces(
    frames: list[tuple[dict[str, str], bytes]], cuts: list[int]
) -> None:
    data = b"".join(encode_message(h, p) for h, p in frames)
    messages = _decode(*_split(data, cuts))
    assert [(m.headers, m.payload) for m in messages] == frames


def test_event_frame_headers_and_compact_json() -> None:
    frame = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    [message] = _decode(frame)
    assert message.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}'
    assert message.to_response_dict()["status_code"] == 200
    # The cached header block must not leak between event types.
    [other] = _decode(event_frame("messageStop", {"stopReason": "end_turn"}))
    assert other.headers[":event-type"] == "messageStop"


def test_exception_frame_is_a_400_for_botocore() -> None:
    [message] = _decode(exception_frame("throttlingException", "Too many tokens"))
    assert message.headers[":exception-type"] == "throttlingException"
    assert message.headers[":message-type"] == "exception"
    assert json.loads(message.payload) == {"message": "Too many tokens"}
    assert message.to_response_dict()["status_code"] == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"n" * 256: "v"},
        {"é" * 128: "v"},  # 128 characters but 256 UTF-8 bytes
        {"name": "v" * 65536},
    ],
)
def test_oversize_header_raises(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="limit"):
        encode_message(headers, b"")


def test_limits_are_inclusive() -> None:
    [message] = _decode(encode_message({"n" * 255: "v" * 65535}, b"x"))
    assert message.headers == {"n" * 255: "v" * 65535}
