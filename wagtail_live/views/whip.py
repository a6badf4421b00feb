"""WHIP (RFC 9725): encoders publish WebRTC to a session with its stream key as bearer token.

``POST /live/whip/<pk>/`` with ``Content-Type: application/sdp`` and
``Authorization: Bearer <stream key>``: the key is checked (wrong, revoked, expired,
another session's: 401) and the session claimed (another encoder live: 409, ended:
403) before Janus hears of the offer; the answer is ``201 Created`` with Janus's SDP
answer and ``Location`` of the WHIP resource. On that resource, ``PATCH`` with
``application/trickle-ice-sdpfrag`` gives Janus the encoder's late ICE candidates
(204; 400 for a malformed fragment, 404 once the resource has gone) and ``DELETE`` ends
the session (200) unless a newer publish has resumed it (then only this resource ends).
ICE restarts are not supported (the RFC allows that; encoders then publish anew): a PATCH
asking for one (``If-Match: *``, or new ICE credentials) is a 422, as §4.3.1 requires.

The views are async (they run in the ASGI process, which then feeds ffmpeg while
the publisher streams, see ``ingest/janus.py``), csrf-exempt (no cookies: the key
is the credential, as for RTMP) and answer only when ``WAGTAIL_LIVE["WEBRTC"]`` is set.
"""

import logging

from asgiref.sync import sync_to_async
from django.core import signing
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from ..conf import live_settings
from ..ingest import janus
from ..ingest.base import StreamRefused, end_session_quietly

logger = logging.getLogger("wagtail_live.ingest.janus")

#: Largest SDP offer or trickle fragment read (browsers' offers are a few kB).
MAX_SDP_BYTES = 64 * 1024
RESOURCE_SALT = "wagtail_live.whip"
#: Janus's codes for an offer it cannot use (janus.h: invalid JSEP / SDP).
BAD_OFFER_CODES = {464, 465, 466}
#: Janus's codes for a resource that is gone (janus.h: no such session / handle).
GONE_CODES = {458, 459}
#: Bounds of a trickle fragment: candidates in it, characters in one candidate line.
MAX_CANDIDATES = 50
MAX_CANDIDATE_CHARS = 512


def text(status, message, **headers):
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def bearer_token(request):
    """The bearer token of ``Authorization`` (RFC 6750), or None."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def unauthorized():
    return text(
        401,
        "Unknown, revoked or expired stream key for this session.",
        WWW_Authenticate='Bearer realm="wagtail_live"',
    )


def session_for_token(pk, token):
    """The session ``token`` may publish to if it is session ``pk``'s current key, else None."""
    from ..models import LiveSession

    session = LiveSession.objects.for_stream_key(token) if token else None
    return session if session is not None and session.pk == pk else None


def content_type(request):
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


@csrf_exempt
async def whip_endpoint(request, pk):
    """``POST`` an SDP offer: ``201`` with the answer, or a plain-text refusal."""
    if not live_settings.WEBRTC:
        return text(404, "WebRTC ingest is not enabled on this site.")
    if request.method == "OPTIONS":
        return HttpResponse(status=204, headers={"Accept-Post": "application/sdp"})
    if request.method != "POST":
        return text(405, "Use POST with an SDP offer.", Allow="POST, OPTIONS")
    session = await sync_to_async(session_for_token)(pk, bearer_token(request))
    if session is None:
        return unauthorized()
    if content_type(request) != "application/sdp":
        return text(415, "The offer must be sent as application/sdp.")
    if len(request.body) > MAX_SDP_BYTES:
        return text(413, "The SDP offer is too large.")
    offer = request.body.decode("utf-8", "replace")
    if not offer.startswith("v=0") or "m=" not in offer:
        return text(400, "The body is not an SDP offer.")
    try:
        janus_session, handle, answer = await janus.publish(session, offer)
    except StreamRefused as error:
        status = 403 if await sync_to_async(_has_ended)(session) else 409
        return text(status, str(error))
    except janus.UnusableOffer as error:
        return text(400, str(error))
    except janus.JanusError as error:
        if error.code in BAD_OFFER_CODES:
            return text(400, f"The SDP offer was refused: {error}")
        logger.error("session %s: WHIP publish failed: %s", session.pk, error)
        return text(503, "The WebRTC server is not available; try again, or stream over RTMP.")
    resource = signing.dumps(
        {"p": session.pk, "s": janus_session, "h": handle, "u": ice_ufrag(offer)},
        salt=RESOURCE_SALT,
    )
    response = HttpResponse(answer, status=201, content_type="application/sdp")
    response["Location"] = reverse("wagtail_live:whip_resource", args=[session.pk, resource])
    return response


def _has_ended(session):
    session.refresh_from_db(fields=["status"])
    return session.has_ended


def resource_ids(pk, resource):
    """``(janus_session, handle, offer's ICE ufrag or None)`` of a signed resource name of
    session ``pk``, or None."""
    try:
        data = signing.loads(resource, salt=RESOURCE_SALT)
    except signing.BadSignature:
        return None
    if data.get("p") != pk:
        return None
    return data["s"], data["h"], data.get("u")


def ice_ufrag(sdp):
    """The first ``a=ice-ufrag`` value of an SDP offer or fragment, or None."""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:") :].strip() or None
    return None


def may_manage(pk, token):
    """The key still publishes to ``pk``, or ``pk`` has ended (a late DELETE is harmless)."""
    from ..models import LiveSession

    if session_for_token(pk, token) is not None:
        return True
    session = LiveSession.objects.filter(pk=pk).first()
    return session is not None and session.has_ended


@csrf_exempt
async def whip_resource(request, pk, resource):
    """``DELETE`` ends the session; ``PATCH`` trickles ICE candidates to Janus."""
    if not live_settings.WEBRTC:
        return text(404, "WebRTC ingest is not enabled on this site.")
    ids = resource_ids(pk, resource)
    if ids is None:
        return text(404, "No such WHIP resource.")
    if not await sync_to_async(may_manage)(pk, bearer_token(request)):
        return unauthorized()
    janus_session, handle, ufrag = ids
    if request.method == "DELETE":
        return await delete_resource(pk, janus_session)
    if request.method == "PATCH":
        return await trickle(request, janus_session, handle, ufrag)
    return text(405, "Use PATCH (trickle ICE) or DELETE.", Allow="PATCH, DELETE")


async def delete_resource(pk, janus_session):
    """``DELETE``: end the session if this resource is its current publish (RFC 9725 §4.3).

    A stale Location (from before the encoder resumed within the grace) names a Janus
    session that is no longer the broadcast's: only that one is destroyed (404 when
    Janus has forgotten it already), never the resumed publish.
    """
    current = janus.current_publish(pk)
    if current is not None and current != janus_session:
        found = await janus.end_publish(janus_session)
        return HttpResponse(status=200) if found else text(404, "This WHIP resource has ended.")
    found = await janus.end_publish(janus_session)
    if found is False and current is None:
        # Janus knows no such session: this publish ended already (the grace is running
        # or over), so the resource is gone and the session is left to its grace period.
        return text(404, "This WHIP resource has ended.")
    await sync_to_async(_end)(pk)
    return HttpResponse(status=200)


def _end(pk):
    from ..models import LiveSession

    session = LiveSession.objects.filter(pk=pk).first()
    if session is not None and not session.has_ended:
        end_session_quietly(session)


async def trickle(request, janus_session, handle, ufrag=None):
    """Relay an ``application/trickle-ice-sdpfrag`` (RFC 8840) body's candidates to Janus.

    ``ufrag`` is the offer's ICE username fragment: a fragment with another one (or
    ``If-Match: *``) asks for an ICE restart, which is refused with 422 (RFC 9725 §4.3.1)
    rather than given to Janus as candidates of the running ICE session.
    """
    if content_type(request) != "application/trickle-ice-sdpfrag":
        return text(415, "Trickle ICE fragments must be application/trickle-ice-sdpfrag.")
    if len(request.body) > MAX_SDP_BYTES:
        return text(413, "The fragment is too large.")
    fragment = request.body.decode("utf-8", "replace")
    if asks_ice_restart(request, fragment, ufrag):
        return text(422, "ICE restarts are not supported: publish anew (POST) instead.")
    candidates = candidates_of(fragment)
    if not candidates:
        return text(400, "The fragment has no ICE candidate.")
    problem = bad_candidates(candidates)
    if problem:
        return text(400, problem)
    try:
        await janus.JanusClient().trickle(janus_session, handle, candidates)
    except janus.JanusError as error:
        logger.info("WHIP trickle refused: %s", error)
        if error.code in GONE_CODES:
            return text(404, "This WHIP resource has ended.")
        if error.code is None:
            return text(503, "The WebRTC server is not available; try again.")
        return text(400, f"The trickle fragment was refused: {error}")
    return HttpResponse(status=204)


def asks_ice_restart(request, fragment, ufrag):
    """Whether a PATCH asks for an ICE restart: ``If-Match: *`` or new ICE credentials."""
    if request.headers.get("If-Match", "").strip() == "*":
        return True
    new = ice_ufrag(fragment)
    return new is not None and ufrag is not None and new != ufrag


def bad_candidates(candidates):
    """Why ``candidates`` (from :func:`candidates_of`) cannot go to Janus, or None.

    A candidate line (RFC 8839 §5.1) is printable ASCII of modest length; one with a NUL
    or other control character is the client's error (400), never the resource's end.
    """
    if len(candidates) > MAX_CANDIDATES:
        return f"At most {MAX_CANDIDATES} candidates per fragment."
    for candidate in candidates:
        line = candidate.get("candidate", "") + candidate.get("sdpMid", "")
        if len(line) > MAX_CANDIDATE_CHARS or not (line.isascii() and line.isprintable()):
            return "A candidate line is not printable ASCII or is too long."
    return None


def candidates_of(fragment):
    """Janus trickle candidates of an SDP fragment: ``a=candidate`` lines by ``a=mid``."""
    candidates, mid, index = [], None, -1
    for line in fragment.splitlines():
        line = line.strip()
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            candidate = {"candidate": line[2:], "sdpMLineIndex": max(index, 0)}
            if mid is not None:
                candidate["sdpMid"] = mid
            candidates.append(candidate)
        elif line == "a=end-of-candidates":
            candidates.append({"completed": True})
    return candidates
