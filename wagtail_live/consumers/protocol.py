"""Parsing and checking client frames of the live protocol (see docs/protocol.md).

Pure functions: a text frame goes in, a ``(type, fields)`` pair comes out, or a
``ChatError`` whose ``code`` the client can act on.
"""

import json

from django.utils.translation import gettext as _

from ..bounds import MAX_ID, OutOfBounds, bounded_int
from ..chat import MUTE_MAX_SECONDS, SLOW_MODE_MAX_SECONDS, ChatError

#: Frames larger than this get an ``error`` (``frame_too_large``) and are ignored.
MAX_FRAME_BYTES = 4 * 1024
#: Frames larger than this close the socket with ``CLOSE_TOO_LARGE``.
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


def frame_size(text):
    """Size of a text frame in bytes (exact only when it may matter)."""
    # A character is at most 4 bytes in UTF-8, so short frames need no encoding.
    if len(text) * 4 <= MAX_FRAME_BYTES:
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
