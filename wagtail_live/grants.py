"""Signed playback grants: short-lived, shared proofs that a viewer may fetch a session's video.

A **grant** is ``(session id, expires, signature)``. It travels in the path, never in a
cookie or a query string, so hls.js resolves every segment of the playlist under it:

    <DELIVERY_URL><session id>/<expires>-<signature>/hls/index.m3u8
    <DELIVERY_URL><session id>/<expires>-<signature>/recording-3.mp4

* ``expires`` is a Unix time in seconds; ``signature`` signs ``"<expires>/<session id>"``
  with a key derived from ``SECRET_KEY`` (or ``GRANT_KEY``), by the ``GRANT_SIGNER``.
* The grant names no viewer: everyone whom ``can_watch`` allows within the same
  ``GRANT_WINDOW_SECONDS`` gets the same grant, so a CDN (or the embedded verifier's
  cache) keeps one copy of each segment per window for all viewers, whatever the
  session's privacy (the trade-off is in docs/delivery.md).
* Revocation is "no renewal": a grant is issued only after ``can_watch`` allowed the
  viewer, and lives ``GRANT_SECONDS`` plus at most one window.

Core layer: settings and the standard library only (``LiveSession.playback_url`` uses it).
"""

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from .conf import live_settings

# Bounded parsing: digits of sane length and a base64url signature of sane length.
# Anything else is refused before a byte of it is decoded or hashed.
GRANT_PATTERN = re.compile(r"(?P<expires>[0-9]{1,12})-(?P<signature>[A-Za-z0-9_-]{16,88})")
SESSION_ID_PATTERN = re.compile(r"[1-9][0-9]{0,11}")

# The longest lifetime a grant may claim, whatever the settings: a forged far-future
# expiry is refused even if its signature were right.
MAX_GRANT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    """A signed grant for one session: valid until ``expires`` (Unix seconds)."""

    session_id: int
    expires: int
    signature: str

    @property
    def token(self):
        """The path segment that carries the grant: ``<expires>-<signature>``."""
        return f"{self.expires}-{self.signature}"


def _b64url(digest):
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def hmac_sha256_signer(message, key):
    """The default signer: base64url HMAC-SHA256 of ``message`` under ``key`` (43 characters)."""
    return _b64url(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest())


def nginx_md5_signer(message, key):
    """What nginx's ``secure_link_md5 "<expires>/<session> <key>"`` computes (22 characters).

    nginx compares the base64url MD5 of its expression with the one in the link
    (https://nginx.org/en/docs/http/ngx_http_secure_link_module.html). Use it with
    ``live_nginx_config --http``: MD5 with the key last is what nginx offers, and
    the grant still expires within minutes.
    """
    return _b64url(hashlib.md5(f"{message} {key}".encode()).digest())  # noqa: S324


SIGNERS = {"hmac-sha256": hmac_sha256_signer, "nginx-md5": nginx_md5_signer}


def signer():
    """The configured signer: ``GRANT_SIGNER`` is a name in ``SIGNERS`` or a dotted path
    to a function ``(message, key) -> str`` (e.g. a CDN's token scheme)."""
    name = live_settings.GRANT_SIGNER
    if callable(name):
        return name
    if name in SIGNERS:
        return SIGNERS[name]
    return import_string(name)


def grant_key():
    """The signing key (text): ``GRANT_KEY``, else one derived from ``SECRET_KEY``.

    Derived, not the secret itself, so the key printed into an nginx configuration
    or given to a CDN reveals nothing that signs sessions, cookies or passwords.
    """
    return live_settings.GRANT_KEY or _derived_key(settings.SECRET_KEY)


@lru_cache(maxsize=4)
def _derived_key(secret_key):
    return hmac.new(
        secret_key.encode(), b"wagtail_live.grants playback key", hashlib.sha256
    ).hexdigest()


def _message(session_id, expires):
    return f"{expires}/{session_id}"


def sign(session_id, expires):
    """The signature of a grant for ``session_id`` valid until ``expires``."""
    return signer()(_message(session_id, expires), grant_key())


def current_expiry(now=None, seconds=None):
    """When a grant issued at ``now`` expires: the end of the current window plus ``seconds``.

    Everyone asking within one ``GRANT_WINDOW_SECONDS`` gets the same value, hence
    the same URL and one cached copy of each file.
    """
    now = int(time.time() if now is None else now)
    window = max(1, int(live_settings.GRANT_WINDOW_SECONDS))
    seconds = int(live_settings.GRANT_SECONDS if seconds is None else seconds)
    return (now // window + 1) * window + seconds


def issue(session, now=None, seconds=None):
    """A grant for ``session`` (a LiveSession or its id). Callers must have asked ``can_watch``."""
    session_id = int(getattr(session, "pk", session))
    expires = current_expiry(now, seconds)
    return Grant(session_id, expires, sign(session_id, expires))


def parse(session_id, token):
    """The ``Grant`` in a URL's session id and ``<expires>-<signature>`` text, or None.

    Both parts are strings from a request; anything that is not the exact shape
    (lengths, alphabet) is None, so hostile input costs a regex match at most.
    """
    if not isinstance(session_id, str) or not isinstance(token, str):
        return None
    if len(session_id) > 12 or len(token) > 101:
        return None
    if not SESSION_ID_PATTERN.fullmatch(session_id):
        return None
    match = GRANT_PATTERN.fullmatch(token)
    if match is None:
        return None
    return Grant(int(session_id), int(match["expires"]), match["signature"])


def is_valid(grant, now=None):
    """Whether ``grant`` (a ``Grant`` or None) is signed by us and not expired.

    The signature is compared in constant time (``hmac.compare_digest``).
    """
    if grant is None:
        return False
    now = time.time() if now is None else now
    if not now < grant.expires <= now + MAX_GRANT_SECONDS:
        return False
    expected = sign(grant.session_id, grant.expires)
    return hmac.compare_digest(expected.encode(), grant.signature.encode())


def verify(session_id, token, now=None):
    """The valid ``Grant`` for these URL parts, or None (forged, expired, malformed)."""
    grant = parse(session_id, token)
    return grant if is_valid(grant, now) else None


def delivery_prefix():
    """The URL (path, or absolute for a CDN) files are delivered under, ending in ``/``.

    ``DELIVERY_URL``, else the ``delivery/`` route inside the app's URLs (e.g.
    ``/live/delivery/``), which the embedded verifier answers before Django does.
    """
    configured = live_settings.DELIVERY_URL
    if configured:
        return configured.rstrip("/") + "/"
    from django.urls import reverse

    return reverse("wagtail_live:delivery_root")


def grant_url(session, name, now=None, seconds=None):
    """The signed URL of ``name`` (``"hls/index.m3u8"``, ``"recording-1.mp4"``) of ``session``."""
    grant = issue(session, now=now, seconds=seconds)
    return f"{delivery_prefix()}{grant.session_id}/{grant.token}/{name}"


def grant_payload(session, now=None):
    """What the player gets: the grant's parts and its live playlist URL (JSON-ready)."""
    grant = issue(session, now=now)
    base = f"{delivery_prefix()}{grant.session_id}/{grant.token}/"
    return {
        "session": grant.session_id,
        "expires": grant.expires,
        "signature": grant.signature,
        "base_url": base,
        "playlist_url": base + "hls/index.m3u8",
    }
