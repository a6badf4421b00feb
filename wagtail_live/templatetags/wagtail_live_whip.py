"""``{% live_whip_fields session %}``: the WHIP URL and bearer token on the Go Live screen.

Shown beside the RTMP server and stream key when ``WAGTAIL_LIVE["WEBRTC"]`` is set
(docs/going-live.md, "OBS over WHIP"). The token is the session's stream key itself
(the RTMP field may show it wrapped for nginx-rtmp; WHIP takes the bare key), and
only whoever may see the stream key sees it.
"""

from django import template

from ..conf import live_settings

register = template.Library()


@register.inclusion_tag("wagtail_live/admin/includes/whip_fields.html", takes_context=True)
def live_whip_fields(context, session):
    request = context.get("request")
    user = getattr(request, "user", None)
    shown = bool(live_settings.WEBRTC)
    whip_url = token = None
    can_see = shown and user is not None and session.can_see_stream_key(user)
    if shown:
        from ..ingest.janus import get_webrtc_backend

        whip_url = get_webrtc_backend().publish_url(session, request)
        current = session.current_stream_key if can_see else None
        token = current.key if current else None
    return {
        "shown": shown,
        "whip_url": whip_url,
        "whip_token": token,
        "can_see": can_see,
        "session": session,
    }


@register.simple_tag
def live_webrtc_url():
    """The prefix of the WebRTC viewer endpoint (``/live/webrtc/``) when WebRTC is on, else "".

    The player (webrtc-player.js) adds ``<session>/<grant>/`` to it.
    """
    if not live_settings.WEBRTC:
        return ""
    from django.urls import reverse

    path = reverse("wagtail_live:webrtc_watch", args=[0, "g"])
    return path[: -len("0/g/")]
