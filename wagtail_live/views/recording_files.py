"""A recording's MP4 and poster through ``can_watch_recording``: the only route to a private session's."""

from django.db.models import F
from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..conf import live_settings
from ..models import Recording
from ..permissions import can_watch, can_watch_recording
from ..recordings import recording_file_for, recording_poster_name, recording_storage_for
from ..storage import working_storage


def _members_only():
    return HttpResponseForbidden(
        _("This recording is for members only. Log in to watch it."), content_type="text/plain"
    )


def _recording_or_none(request, pk, *related):
    """The recording ``pk``; None when it does not exist and the visitor is anonymous.

    Anonymous visitors get the same 403 for a missing recording as for one they may not
    watch, so they cannot probe which ids exist; signed-in users get a 404 for a missing one.
    """
    recording = Recording.objects.select_related("session", "page", *related).filter(pk=pk).first()
    if recording is None and request.user.is_authenticated:
        raise Http404(_("No such recording."))
    return recording


@require_GET
def recording_media(request, pk):
    """Serve a ready recording's MP4 to users who may watch its session; 403 for the rest.

    With ``ACCEL_REDIRECT_PREFIX`` nginx sends the file (and answers range requests,
    so seeking works); otherwise Django streams it from the storage.
    """
    recording = _recording_or_none(request, pk, "media")
    if recording is None or not can_watch_recording(recording, request.user):
        return _members_only()
    name, content_type = recording_file_for(recording)
    if name is None:
        raise Http404(_("This recording is not ready."))
    return _send_file(recording_storage_for(recording), name, content_type)


@require_GET
def recording_poster(request, pk):
    """A recording's poster frame, to users who may watch its session (private sessions' posters
    are no Wagtail images, so this is their only route)."""
    recording = _recording_or_none(request, pk)
    if recording is None or not can_watch_recording(recording, request.user):
        return _members_only()
    storage = recording_storage_for(recording)
    name = recording_poster_name(recording)
    if recording.status != Recording.Status.READY or not storage.exists(name):
        raise Http404(_("This recording has no poster."))
    return _send_file(storage, name, "image/jpeg")


def _send_file(storage, name, content_type):
    """A response carrying ``name`` from ``storage``; X-Accel-Redirect when nginx can send it.

    Never sniffed (``nosniff``), and anything that is not audio, video or an image goes
    out as an attachment, so no file becomes a page on the site's origin.
    """
    if live_settings.ACCEL_REDIRECT_PREFIX and storage is working_storage():
        response = HttpResponse(content_type=content_type)
        # The internal location maps to PRIVATE_ROOT/<MEDIA_SUBDIR>/ (live_nginx_config).
        subdir = live_settings.MEDIA_SUBDIR.strip("/") + "/"
        response["X-Accel-Redirect"] = (
            live_settings.ACCEL_REDIRECT_PREFIX.rstrip("/") + "/" + name.removeprefix(subdir)
        )
    else:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    if not content_type.startswith(("video/", "audio/", "image/")):
        response["Content-Disposition"] = "attachment"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@csrf_exempt
@require_POST
def recording_played(request, pk):
    """Count one play of a published recording (a beacon sent by the page's player).

    Exempt from CSRF like any analytics beacon: it can only add one to a counter of a
    recording the caller may watch, on a page that is live.
    """
    recording = get_object_or_404(
        Recording.objects.select_related("session", "page"), pk=pk, page__live=True
    )
    if not can_watch(recording.session, request.user):
        return HttpResponseForbidden()
    Recording.objects.filter(pk=recording.pk).update(plays=F("plays") + 1)
    return HttpResponse(status=204)
