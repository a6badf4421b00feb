"""Finding the ffmpeg binary every ingest backend and the recording task use."""

import shutil
from functools import cache

from django.core.exceptions import ImproperlyConfigured

from .conf import live_settings


def ffmpeg_binary():
    """Return the path of the ffmpeg to run.

    ``WAGTAIL_LIVE["FFMPEG"]`` wins, then an ``ffmpeg`` on PATH, then the binary
    the imageio-ffmpeg wheel ships, so a fresh machine needs no system package.
    """
    configured = live_settings.FFMPEG
    if configured:
        return configured
    return _discovered_ffmpeg()


@cache
def _discovered_ffmpeg():
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - imageio-ffmpeg is a dependency
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    raise ImproperlyConfigured(
        "wagtail_live cannot find ffmpeg: install it, or set WAGTAIL_LIVE['FFMPEG'] to its path."
    )
