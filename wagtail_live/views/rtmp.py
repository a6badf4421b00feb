"""nginx-rtmp's HTTP callbacks: check the shared secret, parse the form, call the service.

nginx-rtmp POSTs form fields (the stream's name as ``name``, its publish
arguments, the stream key among them, as more fields); any non-2xx answer
refuses the publisher. The logic lives in ``ingest/nginx_rtmp.py``.
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


#: The 400's text for a callback with the secret in its query string (an older nginx config).
SECRET_IN_URL = (
    "The shared secret is in this callback's URL, where access logs keep it: this nginx "
    "config is from an older version. Regenerate it with `manage.py live_nginx_config` "
    "(the secret now travels in the X-Wagtail-Live-Secret header) and change NGINX_SECRET."
)


#: The 400's text for an on_publish from a config that relayed streams (before the one-application
#: scheme): its encoders publish the bare key, which no longer names a stream.
RELAY_CONFIG = (
    "This nginx config relays streams into an internal application, which this version no "
    "longer uses: regenerate it with `manage.py live_nginx_config` and reload nginx. Encoders "
    "then publish <session id>/hls?key=<stream key> (the Go Live screen shows the new "
    "stream key field)."
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
        if "relay" in request.GET:
            logger.warning("nginx callback refused: %s", RELAY_CONFIG)
            return HttpResponseBadRequest(RELAY_CONFIG)
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


def field(request, name):
    """The form field ``name`` when nginx sent it exactly once, else None.

    nginx-rtmp appends the encoder's own publish arguments to its fields, so an
    encoder could send ``name`` again (``12/hls?key=…&name=13/hls``); a field
    given twice is ambiguous and answered as missing, which refuses the encoder.
    """
    values = request.POST.getlist(name)
    return values[0] if len(values) == 1 else None


def client(request):
    """nginx's id of the RTMP connection a callback is about (``clientid``)."""
    return field(request, "clientid")


def stream_session(request):
    """The session whose stream (``name``: ``<pk>/hls``) a callback is about, or None."""
    return nginx_rtmp.session_for_stream(field(request, "name"))


@callback
def on_publish(request):
    """An encoder wants to publish ``<pk>/hls?key=…``: accept it (200) or refuse it (403)."""
    try:
        nginx_rtmp.authorize_publish(
            field(request, "name"), field(request, nginx_rtmp.KEY_ARGUMENT), client(request)
        )
    except StreamRefused as error:
        logger.info("nginx: encoder refused: %s", error)
        return HttpResponseForbidden(str(error))
    return HttpResponse("ok")


@callback
def on_publish_done(request):
    """An encoder left (not one nginx refused after on_publish: "Already publishing")."""
    session = stream_session(request)
    if session is not None and nginx_rtmp.is_publisher(session, client(request)):
        nginx_rtmp.forget_publisher(session, client(request))
        nginx_rtmp.publish_done(session)
    return HttpResponse("ok")


@callback
def on_update(request):
    """Every second while an encoder publishes: go live at the first segment, or drop it."""
    session = stream_session(request)
    if session is None:
        return HttpResponse("unknown stream", status=404)
    if field(request, "call") == "update_play":
        # The WebRTC relay playing the stream from nginx (live_janus_relay), not its encoder:
        # it notes nothing and makes nothing live; an ended session's player is dropped.
        if session.has_ended:
            return HttpResponseForbidden("the live session has ended")
        return HttpResponse("ok")
    nginx_rtmp.publisher_still_there(session, client(request))
    if not nginx_rtmp.publish_update(session):
        return HttpResponseForbidden("the live session has ended")
    return HttpResponse("ok")


@callback
def on_record_done(request):
    """nginx closed a recording file."""
    session = stream_session(request)
    if session is None:
        return HttpResponse("unknown stream", status=404)
    if not nginx_rtmp.is_publisher(session, client(request)):
        return HttpResponse("not the stream's publisher")  # refused by nginx, recorded nothing
    nginx_rtmp.record_done(session, field(request, "path") or "")
    return HttpResponse("ok")
