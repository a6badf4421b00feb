"""nginx-rtmp's HTTP callbacks: check the shared secret, parse the form, call the service.

nginx-rtmp POSTs form fields (the stream key arrives as ``name``); any non-2xx
answer refuses the publisher. The logic lives in ``ingest/nginx_rtmp.py``.
"""

import logging

from django.http import HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..ingest import nginx_rtmp
from ..ingest.base import StreamRefused

logger = logging.getLogger("wagtail_live.ingest.nginx")


class StreamRename(HttpResponseRedirect):
    """nginx-rtmp reads a 3xx ``Location`` as the stream's new name, not as a URL."""

    allowed_schemes = []

    def __init__(self, name):
        HttpResponse.__init__(self, status=302)
        self["Location"] = name


def callback(view):
    """csrf-exempt, POST only, and refused (403) without the shared secret."""

    @csrf_exempt
    @require_POST
    def wrapped(request):
        try:
            nginx_rtmp.check_secret(request.GET.get("secret"))
        except nginx_rtmp.CallbackDenied as error:
            logger.warning("nginx callback refused: %s", error)
            return HttpResponseForbidden(str(error))
        return view(request)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@callback
def on_publish(request):
    """An encoder wants to publish: 302 to the stream's new name, 403 to refuse it."""
    try:
        name = nginx_rtmp.authorize_publish(request.POST.get("name", ""))
    except StreamRefused as error:
        return HttpResponseForbidden(str(error))
    return StreamRename(name)


@callback
def on_publish_done(request):
    """The encoder left."""
    session = nginx_rtmp.session_for_callback(name=request.POST.get("name", ""))
    if session is not None:
        nginx_rtmp.publish_done(session)
    return HttpResponse("ok")


@callback
def on_record_done(request):
    """nginx closed a recording file."""
    path = request.POST.get("path", "")
    session = nginx_rtmp.session_for_callback(name=request.POST.get("name", ""), path=path)
    if session is None:
        return HttpResponse("unknown", status=404)
    nginx_rtmp.record_done(session, path)
    return HttpResponse("ok")
