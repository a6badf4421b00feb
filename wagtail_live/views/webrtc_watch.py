"""Sub-second playback: a viewer's WebRTC signalling through Django, media from Janus.

The viewer is a subscriber of the session's VideoRoom (a WHIP session) or a viewer of its
Streaming mountpoint (an RTMP or browser-camera session, fed by the session's ffmpeg; see
``ingest/janus.py``). In both Janus makes the offer, which WHEP (a client offer) does not
fit, so the player uses this small exchange instead (docs/ingest-backends.md):

* ``POST /live/webrtc/<pk>/<grant>/`` → ``201`` ``{"sdp": <Janus's offer>, "resource": <url>}``;
* ``POST <resource>`` ``{"type": "answer", "sdp": ...}`` → ``204``: media flows;
* ``POST <resource>`` ``{"type": "keepalive"}`` every ~20 s → ``204`` (Janus drops a
  viewer whose session is not kept alive within 60 s);
* ``DELETE <resource>`` → ``200``.

The grant (``grants.py``, the same one that signs the HLS URLs) is the authorisation: a
viewer ``can_watch`` no longer allows gets no new grant, so its next keepalive is refused
(``403``) and its Janus session destroyed at once. ``WEBRTC_MAX_VIEWERS`` caps the WebRTC
audience per session, ``ANONYMOUS_VIEWERS_PER_ADDRESS`` the places of one address's anonymous
viewers (as in the live count);
a full session, one nothing feeds over WebRTC (no publisher, no mountpoint), and every failure
answer with ``"fallback": "hls"``, and the player plays HLS instead.
"""

import json
import logging
import secrets
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


def person_of(request):
    """Who is watching: the user, else the signed visitor id (``visitors.py``), else the address.

    The cap counts people, not connections: one person holds one WebRTC place however
    often they ask (a reload replaces their previous connection).
    """
    from ..visitors import COOKIE, visitor_id

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    visitor = visitor_id(request.COOKIES.get(COOKIE))
    if visitor:
        return f"visitor:{visitor}"
    return "address:" + request.META.get("REMOTE_ADDR", "")


def current_viewers(pk, now=None):
    """``{person: {"v": viewer id, "exp": expiry, "s": Janus session or None}}``, live ones."""
    now = now or time.time()
    viewers = cache.get(viewers_key(pk)) or {}
    return {person: entry for person, entry in viewers.items() if entry["exp"] > now}


def save_viewers(pk, viewers):
    cache.set(viewers_key(pk), viewers, VIEWER_TTL * 2)


def admit_viewer(pk, person, viewer_id, cap, address=None):
    """Reserve ``person``'s place before Janus is asked; ``(admitted, previous Janus session)``.

    Runs in one thread (``sync_to_async``), so requests of one process cannot all pass the
    check while the first ones wait for Janus. A person already asking is refused; a person
    already watching gives their place to this new connection (the old one is ended).
    ``address`` is given for anonymous people: one address holds at most
    ``ANONYMOUS_VIEWERS_PER_ADDRESS`` places (signed visitor ids are free for the asking).
    """
    viewers = current_viewers(pk)
    previous = viewers.get(person)
    if previous is not None and previous["s"] is None:
        return False, None  # this person's previous request is still being answered
    if previous is None and len(viewers) >= cap:
        return False, None
    if previous is None and address is not None:
        same_address = sum(1 for entry in viewers.values() if entry.get("a") == address)
        if same_address >= live_settings.ANONYMOUS_VIEWERS_PER_ADDRESS:
            return False, None
    viewers[person] = {"v": viewer_id, "exp": time.time() + VIEWER_TTL, "s": None, "a": address}
    save_viewers(pk, viewers)
    return True, previous["s"] if previous else None


def settle_viewer(pk, person, viewer_id, janus_session=None, *, keep=True):
    """Note the viewer's Janus session (or refresh it); ``keep=False`` gives the place back.

    Returns False when ``person``'s place now belongs to a newer connection of theirs.
    """
    viewers = current_viewers(pk)
    entry = viewers.get(person)
    if entry is None or entry["v"] != viewer_id:
        return False
    if keep:
        entry["exp"] = time.time() + VIEWER_TTL
        if janus_session is not None:
            entry["s"] = janus_session
    else:
        del viewers[person]
    save_viewers(pk, viewers)
    return True


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
    person, viewer_id = person_of(request), secrets.token_urlsafe(8)
    address = None if person.startswith("user:") else request.META.get("REMOTE_ADDR", "")
    admitted, previous = await sync_to_async(admit_viewer)(
        pk, person, viewer_id, live_settings.WEBRTC_MAX_VIEWERS, address
    )
    if not admitted:
        return fallback(503, "The WebRTC audience of this session is full.")
    if previous is not None:
        await janus.end_publish(previous)  # the same person's earlier connection (a reload)
    try:
        janus_session, handle, offer = await janus.subscribe(session)
    except janus.NotStreaming:
        await sync_to_async(settle_viewer)(pk, person, viewer_id, keep=False)
        return fallback(404, "This session is not streaming over WebRTC.")
    except janus.JanusError as error:
        await sync_to_async(settle_viewer)(pk, person, viewer_id, keep=False)
        logger.warning("session %s: WebRTC viewer not started: %s", pk, error)
        return fallback(503, "The WebRTC server is not available.")
    if not await sync_to_async(settle_viewer)(pk, person, viewer_id, janus_session):
        await janus.end_publish(janus_session)
        return fallback(503, "The WebRTC audience of this session is full.")
    ids = {"p": pk, "s": janus_session, "h": handle, "w": person, "v": viewer_id}
    resource = signing.dumps(ids, salt=RESOURCE_SALT)
    return JsonResponse(
        {"sdp": offer, "resource": f"{request.path.rstrip('/')}/{resource}/"}, status=201
    )


def resource_ids(pk, resource):
    try:
        data = signing.loads(resource, salt=RESOURCE_SALT)
    except signing.BadSignature:
        return None
    return data if data.get("p") == pk else None


@csrf_exempt
async def viewer(request, pk, grant, resource):
    """The answer and keepalives of one viewer (``POST``), or its end (``DELETE``)."""
    from asgiref.sync import sync_to_async

    if not live_settings.WEBRTC:
        return fallback(404, "WebRTC playback is not enabled on this site.")
    ids = resource_ids(pk, resource)
    if ids is None:
        return fallback(404, "No such WebRTC viewer.")
    janus_session, handle = ids["s"], ids["h"]
    person, viewer_id = ids.get("w"), ids.get("v")
    if request.method == "DELETE":
        await janus.end_publish(janus_session)  # destroys the viewer's Janus session
        await sync_to_async(settle_viewer)(pk, person, viewer_id, keep=False)
        return JsonResponse({}, status=200)
    if request.method != "POST":
        return fallback(405, "Use POST or DELETE.")
    if grants.verify(str(pk), grant) is None:
        # No renewed grant (can_watch said no, or the player is stale): the viewer ends now,
        # its media and its place with it; another (shared) grant cannot revive it.
        await janus.end_publish(janus_session)
        await sync_to_async(settle_viewer)(pk, person, viewer_id, keep=False)
        return fallback(403, "This playback grant is not valid.")
    try:
        message = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return fallback(400, "The body is not JSON.")
    if not isinstance(message, dict):
        return fallback(400, "The body is not a JSON object.")
    try:
        if message.get("type") == "answer" and isinstance(message.get("sdp"), str):
            await janus.start_watching(janus_session, handle, message["sdp"])
        elif message.get("type") == "keepalive":
            if not await sync_to_async(settle_viewer)(pk, person, viewer_id):
                # This person's place went to a newer connection of theirs (or expired).
                await janus.end_publish(janus_session)
                return fallback(410, "This WebRTC viewer has ended.")
            await janus.keep_watching(janus_session)
        else:
            return fallback(400, 'Send {"type": "answer", "sdp": ...} or {"type": "keepalive"}.')
    except janus.JanusError as error:
        logger.info("session %s: WebRTC viewer gone: %s", pk, error)
        return fallback(410, "This WebRTC viewer has ended.")
    return HttpResponse(status=204)
