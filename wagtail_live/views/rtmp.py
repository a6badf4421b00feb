"""nginx-rtmp's HTTP callbacks: check the shared secret, parse the form, call the service.

nginx-rtmp POSTs form fields (the stream key arrives as ``name``); any non-2xx
answer refuses the publisher. The logic lives in ``ingest/nginx_rtmp.py``.
"""

import logging

from django.db import OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..ingest import nginx_rtmp
from ..ingest.base import StreamRefused
from ..transient import is_transient, retry_transient

logger = logging.getLogger("wagtail_live.ingest.nginx")


def relay_to(url):
    """A 3xx whose ``Location`` is an rtmp:// URL makes nginx-rtmp relay the stream there."""
    response = HttpResponse(status=302)
    response["Location"] = url
    return response


#: The 400's text for a callback with the secret in its query string (an older nginx config).
SECRET_IN_URL = (
    "The shared secret is in this callback's URL, where access logs keep it: this nginx "
    "config is from an older version. Regenerate it with `manage.py live_nginx_config` "
    "(the secret now travels in the X-Wagtail-Live-Secret header) and change NGINX_SECRET."
)


def secret_in_url(request):
    """Whether the query string carries ``secret`` (any case, empty or not)."""
    return any(name.strip().lower() == "secret" for name in request.GET)


def callback(view):
    """csrf-exempt, POST only, and refused (403) without the shared secret.

    The secret comes in the ``X-Wagtail-Live-Secret`` header, which nginx's
    loopback callback server adds (``live_nginx_config``); one in the URL is a
    400 telling to regenerate the config, so a config from an older version that
    puts it in access logs fails loudly instead of working.

    nginx-rtmp sends each callback once and never again, so the view runs in
    one transaction that is retried on a transient database error ("database
    is locked"); the services it calls are idempotent, so a retried callback
    does nothing twice. Only an error that outlasts the retries answers 503
    (nginx then refuses a publisher, who may try again; a recording it closed
    is picked up by ``hand_off_missed_recordings``).
    """

    @csrf_exempt
    @require_POST
    def wrapped(request):
        if secret_in_url(request):
            logger.warning("nginx callback refused: %s", SECRET_IN_URL)
            return HttpResponseBadRequest(SECRET_IN_URL)
        try:
            nginx_rtmp.check_secret(request.headers.get(nginx_rtmp.SECRET_HEADER))
        except nginx_rtmp.CallbackDenied as error:
            logger.warning("nginx callback refused: %s", error)
            return HttpResponseForbidden(str(error))
        try:
            return retry_transient(view, request)
        except OperationalError as error:
            if not is_transient(error):
                raise
            logger.error("nginx callback %s: database busy, gave up: %s", view.__name__, error)
            return HttpResponse("database busy, try again", status=503)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def is_internal(request):
    return request.POST.get("app") == nginx_rtmp.INTERNAL_APP


@callback
def on_publish(request):
    """An encoder wants to publish: relay it (302), or refuse it (403)."""
    try:
        if is_internal(request):
            nginx_rtmp.authorize_relay(request.POST.get("name"))
            return HttpResponse("ok")
        relay = nginx_rtmp.authorize_publish(request.POST.get("name", ""), request.GET["relay"])
    except (StreamRefused, KeyError) as error:
        return HttpResponseForbidden(str(error))
    return relay_to(relay)


@callback
def on_publish_done(request):
    """An encoder left (the internal stream says which session)."""
    if is_internal(request):
        session = nginx_rtmp.session_for_internal_stream(request.POST.get("name"))
        if session is not None:
            nginx_rtmp.publish_done(session)
    return HttpResponse("ok")


@callback
def on_update(request):
    """Every second while an encoder publishes: go live at the first segment, or drop it."""
    if is_internal(request):
        return HttpResponse("ok")
    session = nginx_rtmp.session_for_public_stream(
        request.POST.get("name"), request.GET.get("relay")
    )
    if session is None:
        return HttpResponse("unknown stream", status=404)
    if not nginx_rtmp.publish_update(session):
        return HttpResponseForbidden("the live session has ended")
    return HttpResponse("ok")


@callback
def on_record_done(request):
    """nginx closed a recording file."""
    session = nginx_rtmp.session_for_internal_stream(request.POST.get("name"))
    if session is None:
        return HttpResponse("unknown stream", status=404)
    nginx_rtmp.record_done(session, request.POST.get("path", ""))
    return HttpResponse("ok")
