"""AMF0, the value encoding of RTMP commands (just what an RTMP publisher sends)."""

import struct


class AMFError(ValueError):
    """The bytes are not valid AMF0."""


NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C


def decode_all(data):
    """Decode every AMF0 value in ``data``; raise AMFError on malformed input."""
    values, offset = [], 0
    while offset < len(data):
        value, offset = _decode(data, offset)
        values.append(value)
    return values


def _take(data, offset, size):
    end = offset + size
    if end > len(data):
        raise AMFError("AMF0 value runs past the end of the message")
    return data[offset:end], end


def _decode(data, offset):
    marker, offset = _take(data, offset, 1)
    marker = marker[0]
    if marker == NUMBER:
        raw, offset = _take(data, offset, 8)
        return struct.unpack(">d", raw)[0], offset
    if marker == BOOLEAN:
        raw, offset = _take(data, offset, 1)
        return raw != b"\x00", offset
    if marker == STRING:
        return _decode_string(data, offset, 2)
    if marker == LONG_STRING:
        return _decode_string(data, offset, 4)
    if marker in (NULL, UNDEFINED):
        return None, offset
    if marker == OBJECT:
        return _decode_properties(data, offset)
    if marker == ECMA_ARRAY:
        _, offset = _take(data, offset, 4)  # the count is a hint; the end marker decides
        return _decode_properties(data, offset)
    if marker == STRICT_ARRAY:
        raw, offset = _take(data, offset, 4)
        items = []
        for _ in range(struct.unpack(">I", raw)[0]):
            item, offset = _decode(data, offset)
            items.append(item)
        return items, offset
    if marker == DATE:
        raw, offset = _take(data, offset, 10)
        return struct.unpack(">d", raw[:8])[0], offset
    raise AMFError(f"unsupported AMF0 type marker 0x{marker:02x}")


def _decode_string(data, offset, length_size):
    raw, offset = _take(data, offset, length_size)
    length = int.from_bytes(raw, "big")
    raw, offset = _take(data, offset, length)
    return raw.decode("utf-8", "replace"), offset


def _decode_properties(data, offset):
    result = {}
    while True:
        key, offset = _decode_string(data, offset, 2)
        if key == "":
            marker, offset = _take(data, offset, 1)
            if marker[0] != OBJECT_END:
                raise AMFError("AMF0 object has an empty key without the end marker")
            return result, offset
        result[key], offset = _decode(data, offset)


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
