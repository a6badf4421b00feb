"""The recorded video of a private session, to members only (public ones are served directly)."""

from django.db.models import F
from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..conf import live_settings
from ..models import Recording
from ..permissions import can_watch
from ..recordings import recording_file_for


@require_GET
def recording_media(request, pk):
    """Serve a ready recording's MP4 to users who may watch its session; 403 for the rest.

    With ``ACCEL_REDIRECT_PREFIX`` nginx sends the file (and answers range requests,
    so seeking works); otherwise Django streams it from the storage.
    """
    recording = get_object_or_404(Recording.objects.select_related("session", "media"), pk=pk)
    if not can_watch(recording.session, request.user):
        return HttpResponseForbidden(
            _("This recording is for members only. Log in to watch it."), content_type="text/plain"
        )
    name, content_type = recording_file_for(recording)
    if name is None:
        raise Http404(_("This recording is not ready."))
    if live_settings.ACCEL_REDIRECT_PREFIX:
        response = HttpResponse(content_type=content_type)
        subdir = live_settings.MEDIA_SUBDIR.strip("/") + "/"
        response["X-Accel-Redirect"] = (
            live_settings.ACCEL_REDIRECT_PREFIX.rstrip("/") + "/" + name.removeprefix(subdir)
        )
    else:
        response = FileResponse(recording.media.file.open("rb"), content_type=content_type)
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
