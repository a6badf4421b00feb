"""Bounded numbers from clients: one parser for every face (websocket frames, query strings).

A number a client sends is either inside a documented range or refused with
``OutOfBounds`` naming the field; it never reaches ``timedelta``, ``datetime`` or
the database unchecked (an ``OverflowError`` there would answer 500 or
``server_error``). Faces turn ``OutOfBounds`` into their client error: the
websocket's ``invalid`` (``ChatError`` with ``field``), a view's 400.
"""

from datetime import UTC, datetime

from django.utils.translation import gettext as _

from .exceptions import WagtailLiveError

#: The largest primary key the database can hold (a signed 64-bit integer).
MAX_ID = 2**63 - 1
#: Epoch milliseconds a query may name: 1970-01-01 up to the year 9999 (Python's datetime limit).
MAX_EPOCH_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
#: Digits a number given as text may have: far more than any range here needs, far fewer than
#: Python's own limit (a long digit string costs quadratic time to convert).
MAX_DIGITS = 20


class OutOfBounds(WagtailLiveError, ValueError):
    """A client's number is missing, of the wrong type or outside its range; ``field`` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def bounded_int(value, field, *, low, high, accept_text=False):
    """Return ``value`` as an int within ``low``..``high`` (inclusive), else raise ``OutOfBounds``.

    JSON integers are accepted as they are; booleans, floats (``5.0``, NaN and infinities
    too) and other types are refused. ``accept_text`` also takes a decimal string (query strings),
    at most ``MAX_DIGITS`` digits with an optional leading minus.
    """
    if accept_text and isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_DIGITS:
            raise OutOfBounds(field, _("“%(field)s” must be a whole number.") % {"field": field})
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OutOfBounds(field, _("“%(field)s” must be a whole number.") % {"field": field})
    if not low <= value <= high:
        raise OutOfBounds(
            field,
            _("“%(field)s” must be from %(low)d to %(high)d.")
            % {"field": field, "low": low, "high": high},
        )
    return value


def bounded_id(value, field, *, accept_text=False):
    """A primary key: a whole number from 1 to ``MAX_ID``."""
    return bounded_int(value, field, low=1, high=MAX_ID, accept_text=accept_text)


def bounded_epoch_ms(value, field):
    """Epoch milliseconds given as text, within 1970..9999 (so a datetime can hold them)."""
    return bounded_int(value, field, low=0, high=MAX_EPOCH_MS, accept_text=True)
