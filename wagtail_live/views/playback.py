"""Public faces of a session: its HLS files, a JSON status for the player, an .ics invite."""

from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import delivery as delivery_service
from .. import grants, playback
from ..calendar import player_page_url, session_calendar
from ..conf import live_settings
from ..models import LiveSession


def _forbidden():
    return HttpResponseForbidden(
        _("This live session is for members only. Log in to watch it."), content_type="text/plain"
    )


def session_or_none(request, pk):
    """The session ``pk``; None when it does not exist and the visitor is anonymous.

    Anonymous visitors get the same refusal for a missing session as for one they may
    not see, so they cannot probe which ids exist (docs/security.md); signed-in users
    get a 404 for a missing one (``Http404``), as from the hls view.
    """
    session = LiveSession.objects.filter(pk=pk).first()
    if session is None and request.user.is_authenticated:
        raise Http404(_("No such live session."))
    return session


@require_GET
def hls(request, pk, name):
    """Serve one playlist or segment of a session, to users who may watch it.

    Everyone else gets 403 for every name, existing or guessed, before the name
    is even looked at, so nothing about the files leaks.
    """
    session = LiveSession.objects.filter(pk=pk).first()
    if session is None:
        # Anonymous visitors can't tell a missing session from a private one.
        if not request.user.is_authenticated:
            return _forbidden()
        raise Http404(_("No such live session."))
    if not playback.can_watch(session, request.user):
        return _forbidden()
    path = playback.hls_file(session, name)
    if path is None:
        raise Http404(_("No such file."))
    content_type = playback.content_type(name)
    if live_settings.ACCEL_REDIRECT_PREFIX:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = playback.accel_redirect_path(session, name)
    else:
        response = FileResponse(path.open("rb"), content_type=content_type)
    # The type is ours, never a browser's guess from the bytes.
    response["X-Content-Type-Options"] = "nosniff"
    # The playlist changes every segment; segments never change once listed.
    if name.endswith(".m3u8"):
        response["Cache-Control"] = "no-cache, no-store"
    else:
        response["Cache-Control"] = "private, max-age=60"
    return response


@never_cache
@require_GET
def session_status(request, pk):
    """What the live player polls: status, times, and the playback URL if allowed."""
    refused = JsonResponse({"error": "members_only"}, status=403)
    session = session_or_none(request, pk)
    if session is None or not playback.can_watch(session, request.user):
        return refused
    return JsonResponse(status_payload(session))


def status_payload(session):
    """The JSON the player understands (also rendered into the block's HTML)."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": session.pk,
        "status": session.status,
        "title": session.title,
        "scheduled_start": iso(session.scheduled_start),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "playback_url": playback.playback_url(session) if session.is_live else None,
        # The signed grant behind playback_url: the player renews it before "expires".
        "grant": grants.grant_payload(session) if session.is_live else None,
    }


def _delivery_refused(status=403):
    response = HttpResponse(b"Forbidden.", status=status, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def delivery_root(request):
    """The delivery prefix itself: nothing is served here."""
    return _delivery_refused()


@require_GET
def delivery(request, rest):
    """A granted file when the embedded verifier is not in asgi.py (slower: Django's stack).

    The same grant check and the same files as ``wagtail_live.delivery.HLSVerifier``,
    which docs/installation.md puts in front of Django; kept so a site that has not
    added that line yet still plays.
    """
    prefix = request.path[: len(request.path) - len(rest)]
    parts = delivery_service.parse_path(request.path.encode("utf-8", "replace"), prefix)
    if parts is None:
        return _delivery_refused()
    session_id, token, name = parts
    # A recording's file needs a grant signed for that file (grants.bound_name).
    if grants.verify(session_id, token, name=grants.bound_name(name)) is None:
        return _delivery_refused()
    path = delivery_service.file_path(session_id, name)
    if path is None:
        raise Http404(_("No such file."))
    response = FileResponse(path.open("rb"), content_type=delivery_service.content_type(name))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = delivery_service.cache_control(name)
    return response


@require_GET
def session_calendar_file(request, pk):
    """An .ics invite for *Add to calendar* (members only for private sessions)."""
    session = session_or_none(request, pk)
    if session is None or not playback.can_watch(session, request.user):
        return _forbidden()
    if session.scheduled_start is None:
        raise Http404(_("This live session has no scheduled start."))
    # The page with the player, never the Referer (a browser may send none, or another site).
    page_url = player_page_url(session, request, request.GET.get("page"))
    body = session_calendar(session, url=page_url, host=request.get_host())
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    filename = f"live-{session.slug or session.pk}.ics"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
