"""Parsing and checking client frames of the live protocol (see docs/protocol.md).

Pure functions: a text frame goes in, a ``(type, fields)`` pair comes out, or a
``ChatError`` whose ``code`` the client can act on.
"""

import json

from django.utils.translation import gettext as _

from ..chat import ChatError

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
_ANY = object()


def _int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_null(value):
    return value is None or _int(value)


def _text(value):
    return isinstance(value, str)


def _text_or_null(value):
    return value is None or isinstance(value, str)


#: type -> {field: (check, required)}
MESSAGES = {
    "chat.send": {"text": (_text, True), "name": (_text_or_null, False)},
    "like": {"count": (_int, False)},
    "mod.remove": {"message_id": (_int, True)},
    "mod.mute": {"user_id": (_int, True), "seconds": (_int_or_null, True)},
    "mod.ban": {"user_id": (_int, True), "reason": (_text_or_null, False)},
    "mod.unmute": {"user_id": (_int, True)},
    "mod.unban": {"user_id": (_int, True)},
    "mod.slow": {"seconds": (_int, True)},
    "mod.pin": {"message_id": (_int_or_null, True)},
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
    except ValueError:
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
        if not check(data[name]):
            raise ChatError(
                "invalid", _("“%(field)s” has the wrong type.") % {"field": name}, field=name
            )
        cleaned[name] = data[name]
    return kind, cleaned
