"""AMF0, the value encoding of RTMP commands (just what an RTMP publisher sends).

Decoding is bounded, because the first AMF0 message arrives before any stream
key: objects and arrays nest at most ``MAX_DEPTH`` deep, one message holds at
most ``MAX_VALUES`` values (object properties and array items included) and a
string at most ``MAX_STRING_BYTES`` bytes. Past a bound the decoder raises
``AMFError`` like for any malformed input (never ``RecursionError``, never an
allocation the message did not pay for). An encoder's ``connect`` and
``onMetaData`` need depth 2 and a few dozen values.
"""

import struct

#: Deepest nesting of objects and arrays (an encoder sends 2: a command's object).
MAX_DEPTH = 16
#: Most values in one message, counting every property and array item.
MAX_VALUES = 4096
#: Longest string (UTF-8 bytes); a publish name, a tcUrl or a description is far shorter.
MAX_STRING_BYTES = 16 * 1024


class AMFError(ValueError):
    """The bytes are not valid AMF0 (or exceed the decoder's bounds)."""


NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C


def decode_all(data):
    """Decode every AMF0 value in ``data``; raise AMFError on malformed or oversized input."""
    decoder = _Decoder(data)
    values = []
    while decoder.offset < len(data):
        values.append(decoder.value(depth=0))
    return values


class _Decoder:
    """One message's decoding state: the offset and the values counted so far."""

    def __init__(self, data):
        self.data = data
        self.offset = 0
        self.count = 0

    def take(self, size):
        end = self.offset + size
        if end > len(self.data):
            raise AMFError("AMF0 value runs past the end of the message")
        raw, self.offset = self.data[self.offset : end], end
        return raw

    def value(self, depth):
        self.count += 1
        if self.count > MAX_VALUES:
            raise AMFError(f"AMF0 message has more than {MAX_VALUES} values")
        marker = self.take(1)[0]
        if marker == NUMBER:
            return struct.unpack(">d", self.take(8))[0]
        if marker == BOOLEAN:
            return self.take(1) != b"\x00"
        if marker == STRING:
            return self.string(2)
        if marker == LONG_STRING:
            return self.string(4)
        if marker in (NULL, UNDEFINED):
            return None
        if marker == DATE:
            return struct.unpack(">d", self.take(10)[:8])[0]
        if marker not in (OBJECT, ECMA_ARRAY, STRICT_ARRAY):
            raise AMFError(f"unsupported AMF0 type marker 0x{marker:02x}")
        if depth >= MAX_DEPTH:
            raise AMFError(f"AMF0 values nest deeper than {MAX_DEPTH}")
        if marker == OBJECT:
            return self.properties(depth + 1)
        if marker == ECMA_ARRAY:
            self.take(4)  # the count is a hint; the end marker decides
            return self.properties(depth + 1)
        count = struct.unpack(">I", self.take(4))[0]
        # Each item takes at least one byte: a count the message cannot hold is a lie.
        if count > len(self.data) - self.offset:
            raise AMFError("AMF0 array claims more items than the message holds")
        return [self.value(depth + 1) for _ in range(count)]

    def string(self, length_size):
        length = int.from_bytes(self.take(length_size), "big")
        if length > MAX_STRING_BYTES:
            raise AMFError(f"AMF0 string of {length} bytes is too long")
        return self.take(length).decode("utf-8", "replace")

    def properties(self, depth):
        result = {}
        while True:
            key = self.string(2)
            if key == "":
                if self.take(1)[0] != OBJECT_END:
                    raise AMFError("AMF0 object has an empty key without the end marker")
                return result
            result[key] = self.value(depth)


def encode(*values):
    """Encode ``values`` (None, bool, int/float, str, dict) as consecutive AMF0 values."""
    return b"".join(_encode(value) for value in values)


def _encode(value):
    if value is None:
        return bytes([NULL])
    if isinstance(value, bool):
        return bytes([BOOLEAN, int(value)])
    if isinstance(value, (int, float)):
        return bytes([NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return bytes([STRING]) + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(
            struct.pack(">H", len(key.encode())) + key.encode() + _encode(item)
            for key, item in value.items()
        )
        return bytes([OBJECT]) + body + b"\x00\x00" + bytes([OBJECT_END])
    raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
