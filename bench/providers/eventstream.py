"""A lean incremental decoder of the AWS event-stream framing (the client side; see
docs/architecture.md, "Bedrock facts").

botocore's decoder is general and slow per message; a load generator decodes tens of thousands
of messages a second, so this one does only what a stream reader needs: validate both CRCs,
read the headers, hand back the payload.
"""

from __future__ import annotations

import struct
import zlib

_PRELUDE = struct.Struct("!III")  # total length, headers length, prelude CRC
_U32 = struct.Struct("!I")
# Fixed value sizes of the non-string header types (0/1 are booleans without a value).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}

Message = tuple[dict[str, str], bytes]


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


def _decode(src: bytes, pos: int, out: list[Message]) -> int:
    """Append every whole message of ``src[pos:]`` to ``out``; return where the rest starts."""
    end = len(src)
    crc32, unpack_prelude, unpack_u32 = zlib.crc32, _PRELUDE.unpack_from, _U32.unpack_from
    while end - pos >= 12:
        total, headers_len, prelude_crc = unpack_prelude(src, pos)
        if total < 16 or headers_len > total - 16:
            raise EventStreamDecodeError(f"bad prelude: total {total}, headers {headers_len}")
        stop = pos + total
        if stop > end:
            break
        crc = crc32(src[pos : pos + 8])
        if crc != prelude_crc:
            raise EventStreamDecodeError("prelude CRC mismatch")
        # The message CRC covers the prelude too: continue from the prelude's CRC.
        if crc32(src[pos + 8 : stop - 4], crc) != unpack_u32(src, stop - 4)[0]:
            raise EventStreamDecodeError("message CRC mismatch")
        body = pos + 12 + headers_len
        out.append((parse_headers(src[pos + 12 : body]), src[body : stop - 4]))
        pos = stop
    return pos


class EventStreamDecoder:
    """Feed bytes as they arrive; get back complete ``(headers, payload)`` messages."""

    def __init__(self) -> None:
        self._buf = bytearray()  # the start of a message that is still arriving

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data``; return every message it completed, in order."""
        buf = self._buf
        n = len(data)
        if not buf and n >= 12:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(data)
            if total == n and total >= 16 and headers_len <= total - 16:
                # The hot path (a read is one whole message): no loop, no copy into _buf.
                crc = zlib.crc32(data[:8])
                if crc != prelude_crc:
                    raise EventStreamDecodeError("prelude CRC mismatch")
                if zlib.crc32(data[8:-4], crc) != _U32.unpack_from(data, n - 4)[0]:
                    raise EventStreamDecodeError("message CRC mismatch")
                block = data[12 : 12 + headers_len]
                headers = _HEADER_CACHE.get(block) or parse_headers(block)
                return [(headers, data[12 + headers_len : -4])]
            if total < n:  # several messages: decode in place, keep only a partial tail
                out: list[Message] = []
                pos = _decode(data, 0, out)
                buf += data[pos:]
                return out
        buf += data
        end = len(buf)
        if end < 12 or end < _U32.unpack_from(buf)[0]:
            return []  # the pending message is incomplete: nothing to copy or decode yet
        out = []
        # One copy per read that completes a message (slices of bytes are then plain bytes);
        # consumed bytes leave the buffer once per read, not once per message.
        pos = _decode(bytes(buf), 0, out)
        if pos == end:
            buf.clear()
        else:
            del buf[:pos]
        return out
