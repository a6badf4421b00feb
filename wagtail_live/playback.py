"""Who may watch a session, and which HLS file a playback request may read.

Who may watch is ``wagtail_live.permissions.can_watch`` (re-exported here):
the playback views, the player block and every other face ask that one function.
"""

import re
from pathlib import Path

from .conf import live_settings

# Kept importable from here for callers from before permissions.py.
from .permissions import CAN_WATCH_HOOK, can_watch  # noqa: F401

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
