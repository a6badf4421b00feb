"""Signed playback grants: short-lived, shared proofs that a viewer may fetch a session's video.

A **grant** is ``(session id, expires, signature)``. It travels in the path, never in a
cookie or a query string, so hls.js resolves every segment of the playlist under it:

    <DELIVERY_URL><session id>/<expires>-<signature>/hls/index.m3u8
    <DELIVERY_URL><session id>/<expires>-<signature>/recording-3.mp4

* ``expires`` is a Unix time in seconds; ``signature`` signs ``"<expires>/<session id>"``
  for the live stream's files (``hls/…``: one grant for the playlist and all its
  segments) and ``"<expires>/<session id>/<file name>"`` for any other file (a
  recording's MP4 or poster: the grant opens that one file, not the session's other
  recordings, some of which the viewer may not see), with a key derived from
  ``SECRET_KEY`` (or ``GRANT_KEY``), by the ``GRANT_SIGNER``.
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
# A file name a grant may be bound to (what the verifiers' path patterns let through).
BOUND_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# Files under this folder share their session's one live grant.
LIVE_FOLDER = "hls/"

# The longest lifetime a grant may claim, whatever the settings: a forged far-future
# expiry is refused even if its signature were right.
MAX_GRANT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    """A signed grant for one session: valid until ``expires`` (Unix seconds).

    ``name`` is the one file it opens (a recording's), or None for the live stream's
    files (``bound_name``).
    """

    session_id: int
    expires: int
    signature: str
    name: str | None = None

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
    """What nginx's ``secure_link_md5 "<message> <key>"`` computes (22 characters).

    ``<message>`` is ``"$expires/$session"`` for live files and ``"$expires/$session/$file"``
    for a recording's (``message``), as in ``delivery.nginx_server_block``.

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


def bound_name(name):
    """The file name a grant for ``name`` is bound to: None for the live stream's files.

    The live playlist and its segments (``hls/…``) share one grant per window, so a CDN
    keeps one copy of each for everyone. Every other file (``recording-7.mp4``, its
    ``-web.mp4`` and ``-poster.jpg``) gets a grant of its own: a grant handed out with
    one published recording must not open a draft of the same session.
    """
    return None if name.startswith(LIVE_FOLDER) else name


def message(session_id, expires, name=None):
    """What is signed: ``"<expires>/<session id>"``, plus ``"/<name>"`` for a bound grant.

    This is the text a CDN's or nginx's signer must reproduce (docs/delivery.md).
    """
    if name is None:
        return f"{expires}/{session_id}"
    return f"{expires}/{session_id}/{name}"


def sign(session_id, expires, name=None):
    """The signature of a grant for ``session_id`` valid until ``expires``.

    ``name``: the one file it opens (``bound_name``), or None for the live stream.
    """
    return signer()(message(session_id, expires, name), grant_key())


def current_expiry(now=None, seconds=None):
    """When a grant issued at ``now`` expires: the end of the current window plus ``seconds``.

    Everyone asking within one ``GRANT_WINDOW_SECONDS`` gets the same value, hence
    the same URL and one cached copy of each file.
    """
    now = int(time.time() if now is None else now)
    window = max(1, int(live_settings.GRANT_WINDOW_SECONDS))
    seconds = int(live_settings.GRANT_SECONDS if seconds is None else seconds)
    return (now // window + 1) * window + seconds


def issue(session, now=None, seconds=None, name=None):
    """A grant for ``session`` (a LiveSession or its id). Callers must have asked ``can_watch``
    (``can_watch_recording`` for a recording's file).

    ``name``: the one file it opens (``bound_name(file name)``), or None for the live
    stream's files. ``ValueError`` for a name no verifier would accept.
    """
    session_id = int(getattr(session, "pk", session))
    if name is not None and not BOUND_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"Not a deliverable file name: {name!r}")
    expires = current_expiry(now, seconds)
    return Grant(session_id, expires, sign(session_id, expires, name), name)


def parse(session_id, token, name=None):
    """The ``Grant`` in a URL's session id and ``<expires>-<signature>`` text, or None.

    All parts are strings from a request (``name``: the file a bound grant opens, or
    None); anything that is not the exact shape (lengths, ASCII alphabet) is None, so
    hostile input costs a regex match at most.
    """
    if not isinstance(session_id, str) or not isinstance(token, str):
        return None
    if len(session_id) > 12 or len(token) > 101:
        return None
    if not SESSION_ID_PATTERN.fullmatch(session_id):
        return None
    if name is not None and not (isinstance(name, str) and BOUND_NAME_PATTERN.fullmatch(name)):
        return None
    match = GRANT_PATTERN.fullmatch(token)
    if match is None:
        return None
    return Grant(int(session_id), int(match["expires"]), match["signature"], name)


def is_valid(grant, now=None):
    """Whether ``grant`` (a ``Grant`` or None) is signed by us and not expired.

    The signature is compared in constant time (``hmac.compare_digest``).
    """
    if grant is None:
        return False
    now = time.time() if now is None else now
    if not now < grant.expires <= now + MAX_GRANT_SECONDS:
        return False
    expected = sign(grant.session_id, grant.expires, grant.name)
    return hmac.compare_digest(expected.encode(), grant.signature.encode())


def verify(session_id, token, now=None, name=None):
    """The valid ``Grant`` for these URL parts, or None (forged, expired, malformed).

    ``name`` is ``bound_name(<requested file>)``: a recording's file needs a grant
    signed for that very file; a live grant (None) opens only ``hls/`` files.
    """
    grant = parse(session_id, token, name)
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
    """The signed URL of ``name`` (``"hls/index.m3u8"``, ``"recording-1.mp4"``) of ``session``.

    A recording's URL carries a grant bound to that file (``bound_name``).
    """
    grant = issue(session, now=now, seconds=seconds, name=bound_name(name))
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
