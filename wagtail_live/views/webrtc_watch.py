"""Sub-second playback: a viewer's WebRTC signalling through Django, media from Janus.

Janus's VideoRoom makes the offer for a subscriber, which WHEP (a client offer) does not
fit, so the player uses this small exchange instead (docs/ingest-backends.md):

* ``POST /live/webrtc/<pk>/<grant>/`` → ``201`` ``{"sdp": <Janus's offer>, "resource": <url>}``;
* ``POST <resource>`` ``{"type": "answer", "sdp": ...}`` → ``204``: media flows;
* ``POST <resource>`` ``{"type": "keepalive"}`` every ~20 s → ``204`` (Janus drops a
  viewer whose session is not kept alive within 60 s);
* ``DELETE <resource>`` → ``200``.

The grant (``grants.py``, the same one that signs the HLS URLs) is the authorisation: a
viewer ``can_watch`` no longer allows gets no new grant, so its keepalives are refused
(``403``) and Janus drops it. ``WEBRTC_MAX_VIEWERS`` caps the WebRTC audience per session;
a full session, one without a WebRTC publisher, and every failure answer with
``"fallback": "hls"``, and the player plays HLS instead.
"""

import json
import logging
import time

from django.core import signing
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import grants
from ..conf import live_settings
from ..ingest import janus

logger = logging.getLogger("wagtail_live.ingest.janus")

RESOURCE_SALT = "wagtail_live.webrtc-viewer"
#: Seconds a viewer counts towards the cap after its last keepalive.
VIEWER_TTL = 60


def fallback(status, message):
    return JsonResponse({"error": message, "fallback": "hls"}, status=status)


def viewers_key(pk):
    return f"wagtail_live:webrtc-viewers:{pk}"


def current_viewers(pk, now=None):
    """``{resource: expiry}`` of the session's WebRTC viewers still counted."""
    now = now or time.time()
    viewers = cache.get(viewers_key(pk)) or {}
    return {resource: expiry for resource, expiry in viewers.items() if expiry > now}


def count_viewer(pk, resource, present=True):
    """Add (or refresh), or remove, one viewer in the session's count (approximate under races)."""
    viewers = current_viewers(pk)
    if present:
        viewers[resource] = time.time() + VIEWER_TTL
    else:
        viewers.pop(resource, None)
    cache.set(viewers_key(pk), viewers, VIEWER_TTL * 2)


def session_if_granted(pk, grant):
    from ..models import LiveSession

    if grants.verify(str(pk), grant) is None:
        return None
    return LiveSession.objects.filter(pk=pk).first()


@csrf_exempt
async def watch(request, pk, grant):
    """Start a WebRTC viewer: Janus's offer, or ``"fallback": "hls"``."""
    from asgiref.sync import sync_to_async

    if not live_settings.WEBRTC:
        return fallback(404, "WebRTC playback is not enabled on this site.")
    if request.method != "POST":
        return fallback(405, "Use POST.")
    session = await sync_to_async(session_if_granted)(pk, grant)
    if session is None:
        return fallback(403, "This playback grant is not valid.")
    if len(await sync_to_async(current_viewers)(pk)) >= live_settings.WEBRTC_MAX_VIEWERS:
        return fallback(503, "The WebRTC audience of this session is full.")
    try:
        janus_session, handle, offer = await janus.subscribe(session)
    except janus.NotStreaming:
        return fallback(404, "This session is not streaming over WebRTC.")
    except janus.JanusError as error:
        logger.warning("session %s: WebRTC viewer not started: %s", pk, error)
        return fallback(503, "The WebRTC server is not available.")
    resource = signing.dumps({"p": pk, "s": janus_session, "h": handle}, salt=RESOURCE_SALT)
    await sync_to_async(count_viewer)(pk, resource)
    return JsonResponse(
        {"sdp": offer, "resource": f"{request.path.rstrip('/')}/{resource}/"}, status=201
    )


def resource_ids(pk, resource):
    try:
        data = signing.loads(resource, salt=RESOURCE_SALT)
    except signing.BadSignature:
        return None
    return (data["s"], data["h"]) if data.get("p") == pk else None


@csrf_exempt
async def viewer(request, pk, grant, resource):
    """The answer and keepalives of one viewer (``POST``), or its end (``DELETE``)."""
    from asgiref.sync import sync_to_async

    if not live_settings.WEBRTC:
        return fallback(404, "WebRTC playback is not enabled on this site.")
    ids = resource_ids(pk, resource)
    if ids is None:
        return fallback(404, "No such WebRTC viewer.")
    janus_session, handle = ids
    if request.method == "DELETE":
        await janus.end_publish(janus_session)  # destroys the viewer's Janus session
        await sync_to_async(count_viewer)(pk, resource, present=False)
        return JsonResponse({}, status=200)
    if request.method != "POST":
        return fallback(405, "Use POST or DELETE.")
    if grants.verify(str(pk), grant) is None:
        # No renewed grant (can_watch said no, or the player is stale): Janus drops the viewer.
        return fallback(403, "This playback grant is not valid.")
    try:
        message = json.loads(request.body or b"{}")
    except ValueError:
        return fallback(400, "The body is not JSON.")
    try:
        if message.get("type") == "answer" and isinstance(message.get("sdp"), str):
            await janus.start_watching(janus_session, handle, message["sdp"])
        elif message.get("type") == "keepalive":
            await janus.keep_watching(janus_session)
            await sync_to_async(count_viewer)(pk, resource)
        else:
            return fallback(400, 'Send {"type": "answer", "sdp": ...} or {"type": "keepalive"}.')
    except janus.JanusError as error:
        logger.info("session %s: WebRTC viewer gone: %s", pk, error)
        return fallback(410, "This WebRTC viewer has ended.")
    return HttpResponse(status=204)
