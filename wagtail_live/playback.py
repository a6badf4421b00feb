"""Who may watch a session, and which HLS file a playback request may read.

The permission-checked playback view and the live player block both ask here,
so the page and the video can never disagree about who is a member.
"""

import re
from pathlib import Path

from wagtail import hooks

from .conf import live_settings

#: Sites register ``@hooks.register("can_watch_live_session")`` functions taking
#: ``(session, user)``; the first to return True or False decides.
CAN_WATCH_HOOK = "can_watch_live_session"

# Names ffmpeg's HLS muxer writes: the playlist and its segments, nothing else.
# No slash, no leading dot: a name that doesn't match is never looked up on disk.
HLS_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\.(m3u8|ts|m4s|mp4)")

CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "ts": "video/mp2t",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
}

PLAYLIST_NAME = "index.m3u8"


def can_watch(session, user):
    """Whether ``user`` may watch ``session``'s video (and see its playback URL).

    A ``can_watch_live_session`` hook may decide (e.g. paying members only);
    otherwise public sessions are for everyone and private ones for logged-in users.
    """
    for fn in hooks.get_hooks(CAN_WATCH_HOOK):
        verdict = fn(session, user)
        if verdict is not None:
            return bool(verdict)
    return session.can_view(user)


def playback_url(session):
    """The URL of ``session``'s live HLS playlist (``LiveSession.playback_url``)."""
    return session.playback_url


def hls_file(session, name):
    """The absolute path of the HLS file ``name`` of ``session``, or None.

    None for anything that is not a plain playlist/segment name inside the
    session's ``hls/`` directory (``..``, slashes, other files) or does not exist.
    """
    if not isinstance(name, str) or not HLS_FILE_NAME.fullmatch(name) or ".." in name:
        return None
    hls_dir = (session.media_dir / "hls").resolve()
    path = (hls_dir / name).resolve()
    # Belt and braces: even a symlink may not lead out of the directory.
    if path.parent != hls_dir or not path.is_file():
        return None
    return path


def content_type(name):
    """The MIME type to serve an HLS file with."""
    return CONTENT_TYPES.get(Path(name).suffix.lstrip("."), "application/octet-stream")


def accel_redirect_path(session, name):
    """The internal URI nginx serves ``name`` from, under ``ACCEL_REDIRECT_PREFIX``."""
    prefix = live_settings.ACCEL_REDIRECT_PREFIX.rstrip("/")
    return f"{prefix}/{session.pk}/hls/{name}"
