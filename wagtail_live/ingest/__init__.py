"""Ingest backends: how an encoder's media reaches ffmpeg and becomes HLS and a recording."""

from ..conf import live_settings


def rtmp_publish_url(request=None):
    """The RTMP server URL a host pastes into OBS (the stream key goes in OBS's own field).

    ``WAGTAIL_LIVE["RTMP_PUBLIC_URL"]`` wins; otherwise the site's host name on
    ``RTMP_PORT`` (1935), where both the embedded listener and nginx listen by default.
    """
    if live_settings.RTMP_PUBLIC_URL:
        return live_settings.RTMP_PUBLIC_URL
    host = request.get_host().split(":")[0] if request is not None else "localhost"
    return f"rtmp://{host}:{live_settings.RTMP_PORT}/live"
