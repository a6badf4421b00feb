"""Anonymous visitor ids: issued and signed by the server, so a client cannot make up people.

The live socket counts an anonymous browser by the id in its ``wagtail_live_visitor``
cookie (all its tabs count once). The id is random and signed with the site's
``SECRET_KEY`` (``django.core.signing``, salt ``wagtail_live.visitor``): a client with
no cookie, an unsigned id or a forged one is not a new person — it counts with the
other such sockets of its address — and is sent a signed id in ``state`` for next time.
A client can still fetch many signed ids; ``ANONYMOUS_VIEWERS_PER_ADDRESS`` caps what
they count for from one address.
"""

import secrets

from django.core import signing

#: The cookie live.js stores the id ``state`` hands out in.
COOKIE = "wagtail_live_visitor"

SALT = "wagtail_live.visitor"

#: A signed id is ~70 characters; anything much longer is not ours (and is not unsigned).
_MAX_COOKIE = 200


def new_visitor_cookie():
    """A fresh signed visitor id: the cookie's value (``<random>:<signature>``, URL-safe)."""
    return signing.Signer(salt=SALT).sign(secrets.token_urlsafe(16))


def visitor_id(cookie):
    """The id inside a cookie value ``new_visitor_cookie`` made, else None (missing, forged)."""
    if not cookie or len(cookie) > _MAX_COOKIE:
        return None
    try:
        return signing.Signer(salt=SALT).unsign(cookie)
    except signing.BadSignature:
        return None
