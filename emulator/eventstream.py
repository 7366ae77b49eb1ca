"""AWS event-stream encoder (``application/vnd.amazon.eventstream``).

botocore ships only the decoder (`botocore.eventstream.EventStreamBuffer`); this is the other
half. A message is ``[total u32][headers_len u32][prelude crc32][headers][payload][crc32]``,
big-endian, where the message CRC covers everything before it. Every header here is a string
(type 7): ``[name_len u8][name][7][value_len u16][value]``.

The emulator sends tens of thousands of events per second, so the header block of each event
type is encoded once and cached, and the JSON for the payload is the only per-event work
besides two CRCs.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_message", "event_frame", "event_frame_raw", "exception_frame"]

_PRELUDE = struct.Struct("!II")
_U32 = struct.Struct("!I")
_NAME_LEN = struct.Struct("!B")
_STRING_VALUE = struct.Struct("!BH")  # header value type (7 = string) + value length

_STRING_TYPE = 7
_MAX_NAME_BYTES = 255
_MAX_VALUE_BYTES = 65535
# Limits botocore's decoder enforces; an encoder that exceeded them would only produce
# messages the client rejects, so fail loudly on this side instead.
_MAX_HEADERS_BYTES = 128 * 1024
_MAX_PAYLOAD_BYTES = 24 * 1024 * 1024
# prelude (8) + prelude crc (4) + message crc (4)
_OVERHEAD = 16


def _encode_header(name: str, value: str) -> bytes:
    name_b = name.encode("utf-8")
    value_b = value.encode("utf-8")
    if len(name_b) > _MAX_NAME_BYTES:
        raise ValueError(
            f"event-stream header name is {len(name_b)} bytes; the limit is {_MAX_NAME_BYTES}"
        )
    if len(value_b) > _MAX_VALUE_BYTES:
        raise ValueError(
            f"event-stream header {name!r} value is {len(value_b)} bytes; "
            f"the limit is {_MAX_VALUE_BYTES}"
        )
    return b"".join(
        (
            _NAME_LEN.pack(len(name_b)),
            name_b,
            _STRING_VALUE.pack(_STRING_TYPE, len(value_b)),
            value_b,
        )
    )


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    block = b"".join(_encode_header(name, value) for name, value in headers.items())
    if len(block) > _MAX_HEADERS_BYTES:
        raise ValueError(
            f"event-stream headers are {len(block)} bytes; the limit is {_MAX_HEADERS_BYTES}"
        )
    return block


def _frame(header_block: bytes, payload: bytes) -> bytes:
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"event-stream payload is {len(payload)} bytes; the limit is {_MAX_PAYLOAD_BYTES}"
        )
    prelude = _PRELUDE.pack(_OVERHEAD + len(header_block) + len(payload), len(header_block))
    head = prelude + _U32.pack(zlib.crc32(prelude))
    # Chain the CRC over the parts rather than concatenating first: one copy fewer.
    crc = zlib.crc32(payload, zlib.crc32(header_block, zlib.crc32(head)))
    return b"".join((head, header_block, payload, _U32.pack(crc)))


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one event-stream message with string `headers` and a raw `payload`.

    Raises ValueError when a header name exceeds 255 UTF-8 bytes, a value exceeds 65535 bytes,
    or the headers/payload exceed the sizes botocore's decoder accepts (128 KiB / 24 MiB).
    """
    return _frame(_encode_headers(headers), payload)


@functools.lru_cache(maxsize=256)
def _event_headers(event_type: str) -> bytes:
    # Header order matches what Bedrock sends; the decoder does not care.
    return _encode_headers(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        }
    )


@functools.lru_cache(maxsize=64)
def _exception_headers(exception_type: str) -> bytes:
    return _encode_headers(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        }
    )


def _compact_json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """Encode an ``event`` message whose ``:event-type`` is `event_type` and body is JSON."""
    return _frame(_event_headers(event_type), _compact_json(payload))


def event_frame_raw(event_type: str, payload_json: bytes) -> bytes:
    """Like `event_frame`, for a payload that is already serialized JSON (hot-path callers)."""
    return _frame(_event_headers(event_type), payload_json)


def exception_frame(exception_type: str, message: str) -> bytes:
    """Encode an ``exception`` message (``{"message": ...}``) that botocore raises as an error.

    `exception_type` is the stream member name in lowerCamel case, e.g. ``throttlingException``.
    """
    return _frame(_exception_headers(exception_type), _compact_json({"message": message}))
