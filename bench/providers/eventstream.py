"""A lean incremental decoder of the AWS event-stream framing (the client side of DESIGN §6).

botocore's decoder is general and slow per message; a load generator decodes tens of thousands
of messages a second, so this one does only what a stream reader needs: validate both CRCs,
read the headers, hand back the payload.
"""

from __future__ import annotations

import struct
import zlib

_PRELUDE = struct.Struct("!II")
# Fixed value sizes of the non-string header types (0/1 are booleans without a value).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


class EventStreamDecodeError(ValueError):
    """The byte stream is not valid event-stream framing."""


_HEADER_CACHE: dict[bytes, dict[str, str]] = {}


def parse_headers(block: bytes) -> dict[str, str]:
    """String headers of one message (other header types are skipped). A stream repeats a
    handful of header blocks, so parsed blocks are cached (callers must not mutate them)."""
    cached = _HEADER_CACHE.get(block)
    if cached is not None:
        return cached
    headers = _parse_headers(block)
    if len(_HEADER_CACHE) < 1024:
        _HEADER_CACHE[block] = headers
    return headers


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    i, n = 0, len(block)
    while i < n:
        name_len = block[i]
        name = block[i + 1 : i + 1 + name_len].decode()
        kind = block[i + 1 + name_len]
        i += 2 + name_len
        if kind in (6, 7):
            (length,) = struct.unpack_from("!H", block, i)
            if kind == 7:
                headers[name] = block[i + 2 : i + 2 + length].decode()
            i += 2 + length
        elif kind in _FIXED:
            i += _FIXED[kind]
        else:
            raise EventStreamDecodeError(f"unknown header type {kind} for {name!r}")
    return headers


class EventStreamDecoder:
    """Feed bytes as they arrive; get back complete ``(headers, payload)`` messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict[str, str], bytes]]:
        """Add ``data``; return every message it completed, in order."""
        buf = self._buf
        buf += data
        out: list[tuple[dict[str, str], bytes]] = []
        while len(buf) >= 12:
            total, headers_len = _PRELUDE.unpack_from(buf, 0)
            if total < 16 or headers_len > total - 16:
                raise EventStreamDecodeError(f"bad prelude: total {total}, headers {headers_len}")
            if len(buf) < total:
                break
            message = bytes(buf[:total])
            del buf[:total]
            (prelude_crc,) = struct.unpack_from("!I", message, 8)
            if zlib.crc32(message[:8]) != prelude_crc:
                raise EventStreamDecodeError("prelude CRC mismatch")
            (message_crc,) = struct.unpack_from("!I", message, total - 4)
            if zlib.crc32(message[:-4]) != message_crc:
                raise EventStreamDecodeError("message CRC mismatch")
            headers = parse_headers(message[12 : 12 + headers_len])
            out.append((headers, message[12 + headers_len : total - 4]))
        return out
