"""Parsing and checking client frames of the live protocol (see docs/protocol.md).

Pure functions: a text frame goes in, a ``(type, fields)`` pair comes out, or a
``ChatError`` whose ``code`` the client can act on.
"""

import json

from django.utils.translation import gettext as _

from ..bounds import MAX_ID, OutOfBounds, bounded_int
from ..chat import (
    GUEST_NAME_MAX_LENGTH,
    MUTE_MAX_SECONDS,
    REASON_MAX_LENGTH,
    SLOW_MODE_MAX_SECONDS,
    ChatError,
)
from ..conf import live_settings

#: Bytes one character of text may take in a frame at worst: a character outside the Basic
#: Multilingual Plane (most emoji) is a UTF-16 surrogate pair, and JSON may escape each half
#: as ``\uXXXX`` (RFC 8259 section 7), 6 bytes each.
WORST_BYTES_PER_CHARACTER = 12
#: Room in a frame for the type, the field names, numbers and JSON punctuation.
ENVELOPE_BYTES = 1024
#: Frames at least this large close the socket with ``CLOSE_TOO_LARGE`` (or twice the
#: ``max_frame_bytes``, when a long ``CHAT_MAX_LENGTH`` makes that larger).
CLOSE_FRAME_BYTES = 64 * 1024

# Close codes (daphne lets an application use only 1000 and 3000–4999).
CLOSE_POLICY = 4008
CLOSE_TOO_LARGE = 4009
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
#: The channel layer (e.g. Redis) is down: the client reconnects with backoff.
CLOSE_UNAVAILABLE = 4503

#: The most likes one ``like`` frame may carry (the per-user rate limit still applies).
MAX_LIKES_PER_FRAME = 100


def _whole(low, high, *, nullable=False):
    """A check for a whole number within ``low``..``high`` (or null when ``nullable``)."""

    def check(value, field):
        if value is None and nullable:
            return None
        return bounded_int(value, field, low=low, high=high)

    return check


def _id(*, nullable=False):
    return _whole(1, MAX_ID, nullable=nullable)


def _text(*, nullable=False):
    def check(value, field):
        if isinstance(value, str) or (value is None and nullable):
            return value
        raise OutOfBounds(field, _("“%(field)s” has the wrong type.") % {"field": field})

    return check


#: type -> {field: (check, required)}; a check returns the value or raises ``OutOfBounds``.
#: The ranges are documented in docs/protocol.md.
MESSAGES = {
    "chat.send": {"text": (_text(), True), "name": (_text(nullable=True), False)},
    "like": {"count": (_whole(1, MAX_LIKES_PER_FRAME), False)},
    "mod.remove": {"message_id": (_id(), True)},
    "mod.mute": {
        "user_id": (_id(), True),
        "seconds": (_whole(1, MUTE_MAX_SECONDS, nullable=True), True),
    },
    "mod.ban": {"user_id": (_id(), True), "reason": (_text(nullable=True), False)},
    "mod.unmute": {"user_id": (_id(), True)},
    "mod.unban": {"user_id": (_id(), True)},
    "mod.slow": {"seconds": (_whole(0, SLOW_MODE_MAX_SECONDS), True)},
    "mod.pin": {"message_id": (_id(nullable=True), True)},
}


def max_frame_bytes():
    """Largest frame handled; larger ones get ``frame_too_large`` and change nothing.

    Enough for the longest text any message carries (``CHAT_MAX_LENGTH`` characters
    plus a guest name, or a ban reason) at worst-case escaping, plus the envelope:
    length is judged in characters by ``chat.clean_text`` (``too_long``), never by
    how many bytes a client's JSON encoder spent on them. 7,504 bytes by default.
    """
    longest = max(live_settings.CHAT_MAX_LENGTH + GUEST_NAME_MAX_LENGTH, REASON_MAX_LENGTH)
    return longest * WORST_BYTES_PER_CHARACTER + ENVELOPE_BYTES


def close_frame_bytes(limit):
    """Frames over this close the socket (``CLOSE_TOO_LARGE``); ``limit`` is ``max_frame_bytes``."""
    return max(CLOSE_FRAME_BYTES, 2 * limit)


def frame_size(text, limit):
    """Size of a text frame in bytes (exact only when it may exceed ``limit``)."""
    # A character is at most 4 bytes in UTF-8, so short frames need no encoding.
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def parse(text):
    """Turn a client text frame into ``(type, fields)``; raise ``ChatError`` when it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the decoder's stack (``[[[[…]]]]``).
        raise ChatError("bad_json", _("The frame is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise ChatError("bad_message", _("Each frame must be one JSON object with a type."))
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ChatError("invalid", _("The message has no type."), field="type")
    fields = MESSAGES.get(kind)
    if fields is None:
        raise ChatError("unknown_type", _("Unknown message type “%(type)s”.") % {"type": kind[:50]})
    cleaned = {}
    for name, (check, required) in fields.items():
        if name not in data:
            if required:
                raise ChatError(
                    "invalid", _("“%(field)s” is missing.") % {"field": name}, field=name
                )
            continue
        try:
            cleaned[name] = check(data[name], name)
        except OutOfBounds as error:
            raise ChatError("invalid", error.message, field=name) from None
    return kind, cleaned
