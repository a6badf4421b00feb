"""nginx with the RTMP module as the ingest (scale-out): the callbacks' logic and its config.

nginx-rtmp receives the encoder, writes HLS and the recording itself, and asks
the site through HTTP callbacks (``views/rtmp.py`` are their thin faces). Two
RTMP applications keep the stream key out of every file name and URL:

* ``live`` (public): encoders publish ``live/<stream key>``. Its ``on_publish``
  checks the key before nginx accepts any media; a non-2xx answer refuses the
  encoder. An accepted stream is answered with a redirect that makes nginx
  relay it to ``rtmp://127.0.0.1:<port>/live_hls/<pk>/hls?token=<hmac>``;
* ``live_hls`` (internal: publish from 127.0.0.1 only, and only with the token
  the site signed): writes HLS to ``PRIVATE_ROOT/<MEDIA_SUBDIR>/<pk>/hls/index.m3u8`` (the
  same place as the embedded backends) and records the stream.

``on_update`` of the encoder's stream, every ``UPDATE_SECONDS`` while nginx
receives it, moves the session to *live* once its first HLS segment is listed
(nginx has no "first media" callback; a publisher that sends nothing leaves the
session as it was), and drops the encoder with a non-2xx answer once the
session was ended elsewhere (*End live* in the admin). ``on_publish_done`` of
the internal stream ends the session at once when
``RECONNECT_GRACE`` is 0, else the clean-up task ends it if nobody resumes;
``on_record_done`` hands the recording (moved to ``<pk>/recording.flv``) to
``enqueue_recording`` once the session is over: while it may resume, nginx
appends to the same file (``record_append``).
"""

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from ..conf import live_settings
from ..exceptions import WagtailLiveError
from . import rtmp_publish_url
from .base import (
    IngestBackend,
    StreamRefused,
    end_session_quietly,
    finish_session,
    hls_dir,
    hls_playlist_path,
    is_receiving_elsewhere,
    prepare_hls_dir,
    start_session_quietly,
)
from .encoders import note_encoder

logger = logging.getLogger("wagtail_live.ingest.nginx")

PUBLIC_APP = "live"
INTERNAL_APP = "live_hls"
# How often nginx calls on_update while it receives a stream (going live, noticing *End live*).
UPDATE_SECONDS = 1
# An encoder that stops sending media mid-stream is dropped after this long (nginx starts
# counting at the first packet; one that never sends is dropped by nginx's own timeout).
IDLE_PUBLISHER_SECONDS = 10
# The internal stream of session 12 is "12/hls": nginx then writes 12/hls/index.m3u8.
INTERNAL_NAME = re.compile(r"(\d+)/hls")


class CallbackDenied(WagtailLiveError):
    """A callback came without the shared secret (or with a wrong one)."""


class NginxRTMPBackend(IngestBackend):
    """OBS publishes to nginx-rtmp (``manage.py live_nginx_config``), which calls the site back."""

    name = "nginx"

    def publish_url(self, session, request=None):
        """The nginx RTMP server URL (``RTMP_PUBLIC_URL``, else the site's host on ``RTMP_PORT``)."""
        return rtmp_publish_url(request)


def check_secret(provided):
    """Raise CallbackDenied unless ``provided`` is ``WAGTAIL_LIVE["NGINX_SECRET"]``.

    Compared in constant time. With no secret configured every callback is
    refused: a site that never set nginx up cannot be published to through it.
    """
    expected = live_settings.NGINX_SECRET
    if not expected:
        raise CallbackDenied(_('WAGTAIL_LIVE["NGINX_SECRET"] is not set.'))
    if not hmac.compare_digest(str(provided or "").encode(), str(expected).encode()):
        raise CallbackDenied(_("Wrong or missing callback secret."))


def relay_token(pk):
    """The token that lets nginx relay session ``pk``'s stream into the internal application."""
    message = f"wagtail_live relay {pk}".encode()
    return hmac.new(str(live_settings.NGINX_SECRET).encode(), message, hashlib.sha256).hexdigest()


def authorize_publish(stream_key, relay_base):
    """on_publish of the public application: return the relay URL, or raise StreamRefused.

    Refuses wrong, revoked and expired keys, ended sessions and a second
    encoder while one is live, and creates the HLS directory nginx writes into.
    The session goes *live* later, in :func:`publish_update`, once media arrived.
    """
    from ..models import LiveSession

    session = LiveSession.objects.for_stream_key(stream_key or "")
    if session is None:  # also for a session that has ended: its keys are no longer usable
        raise StreamRefused(_("Unknown, revoked or expired stream key."))
    if session.status == LiveSession.Status.LIVE and is_receiving_elsewhere(session):
        raise StreamRefused(_("Another encoder is already live on this session."))
    prepare_hls_dir(hls_dir(session))
    note_encoder(session, "nginx")
    logger.info("nginx: publishing to session %s", session.pk)
    return f"{relay_base.rstrip('/')}/{session.pk}/hls?token={relay_token(session.pk)}"


def authorize_relay(name, token):
    """on_publish of the internal application: only nginx's own relay, with the site's token."""
    match = INTERNAL_NAME.fullmatch(name or "")
    if not match or not hmac.compare_digest(str(token or ""), relay_token(int(match[1]))):
        raise StreamRefused(_("Only the site's own relay may publish here."))


def session_streaming_with_key(stream_key):
    """The session an encoder that publishes with ``stream_key`` streams to, or None.

    Unlike ``for_stream_key`` (may this encoder start?), a key replaced or past its
    lifetime keeps the encoder already streaming: as with the embedded listener,
    only the session's end drops it.
    """
    from ..models.sessions import find_stream_key

    found = find_stream_key(stream_key)
    return found.session if found is not None else None


def session_for_internal_stream(name):
    """The session of an internal stream name ``<pk>/hls``, or None."""
    from ..models import LiveSession

    match = INTERNAL_NAME.fullmatch(name or "")
    return LiveSession.objects.filter(pk=int(match[1])).first() if match else None


def publish_update(session):
    """on_update of the encoder's stream; False when nginx should drop the encoder.

    The session goes *live* once nginx has listed a segment (a viewer can play
    it); a session ended elsewhere answers False, so an *End live* in the admin
    disconnects the encoder within ``UPDATE_SECONDS``.
    """
    if went_live(session):
        measure_health(session)
    if session.has_ended:
        logger.info("nginx: session %s has ended, dropping its encoder", session.pk)
        return False
    return True


def measure_health(session):
    """Stream health from nginx's segments (it copies what arrives), every few seconds."""
    from .. import health

    try:
        health.measure_if_due(session)
    except Exception:  # a failed measurement must not drop the encoder
        logger.exception("nginx: session %s: stream health not measured", session.pk)


def has_segment(session):
    """True once ``session``'s HLS playlist lists a segment."""
    try:
        return "#EXTINF" in hls_playlist_path(session).read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def went_live(session):
    """Refresh ``session``, moving it to *live* if nginx has listed a segment by now.

    False while it never received media (an encoder that sent nothing leaves the
    session as it found it, ready for the next attempt). Called on every
    callback, so a stream shorter than one ``on_update`` period goes live too, late.
    """
    session.refresh_from_db()
    waiting = (type(session).Status.SCHEDULED, type(session).Status.READY)
    if session.status in waiting and has_segment(session):
        start_session_quietly(session)  # leaves session.status as the database has it
    return session.status not in waiting


def publish_done(session):
    """on_publish_done: without a grace period the session ends now.

    The recording is handed on by on_record_done (nginx may still be closing
    the file here) or, after a grace period nobody used, by the clean-up task.
    """
    if not went_live(session):
        return
    if live_settings.RECONNECT_GRACE <= 0:
        end_session_quietly(session)


def record_done(session, path):
    """on_record_done: hand the recording on once the session is over."""
    if not went_live(session):
        return
    if session.has_ended or live_settings.RECONNECT_GRACE <= 0:
        finish_session(session)
    else:
        logger.info("nginx: session %s may resume; %s stays open for appending", session.pk, path)


def nginx_config(
    *,
    site_url,
    secret,
    media_root=None,
    rtmp_port=1935,
    user=None,
    full=False,
    prefix=None,
    module_path="/usr/lib/nginx/modules/ngx_rtmp_module.so",
    http_port=None,
    private_root=None,
):
    """Return nginx configuration for this site (see ``manage.py live_nginx_config``).

    The ``rtmp {}`` block and HTTP ``location``s; with ``full`` a complete
    ``nginx.conf`` (module load, events, pid and logs under ``prefix``) that
    runs as it is. nginx-rtmp writes HLS and recordings under ``private_root``
    (``PRIVATE_ROOT``), which no location serves by path: only the ``internal``
    X-Accel location, after Django's permission check, reads it.
    """
    from django.urls import reverse

    from ..storage import private_root as default_private_root

    subdir = live_settings.MEDIA_SUBDIR.strip("/")
    media_root = Path(media_root or settings.MEDIA_ROOT)
    live_root = Path(private_root or default_private_root()) / subdir
    public_live_root = media_root / subdir
    site_url = site_url.rstrip("/")

    def callback(name, **extra):
        query = "".join(f"&{key}={value}" for key, value in extra.items())
        return f"{site_url}{reverse(f'wagtail_live:{name}')}?secret={secret}{query}"

    accel = live_settings.ACCEL_REDIRECT_PREFIX or "/_live_media/"
    media_url = (settings.MEDIA_URL or "/media/").rstrip("/") + "/" + live_settings.MEDIA_SUBDIR
    context = {
        "live_root": live_root,
        "public_live_root": public_live_root,
        "rtmp_port": rtmp_port,
        "seg": live_settings.HLS_SEGMENT_SECONDS,
        "on_publish": callback(
            "rtmp_on_publish", relay=f"rtmp://127.0.0.1:{rtmp_port}/{INTERNAL_APP}"
        ),
        "on_publish_done": callback("rtmp_on_publish_done"),
        "on_record_done": callback("rtmp_on_record_done"),
        "on_update": callback("rtmp_on_update"),
        "update": UPDATE_SECONDS,
        "idle": IDLE_PUBLISHER_SECONDS,
        "accel": "/" + accel.strip("/") + "/",
        "public_app": PUBLIC_APP,
        "internal_app": INTERNAL_APP,
        "media_url": media_url.rstrip("/") + "/",
        "site_url": site_url,
    }
    rtmp_block = RTMP_BLOCK.format(**context)
    media_location = MEDIA_URL_DENIED
    if live_settings.PLAYBACK_FROM_MEDIA_URL:
        media_location = MEDIA_URL_PUBLIC + MEDIA_URL_DENIED
    context["media_url_location"] = media_location.format(**context)
    http_locations = HTTP_LOCATIONS.format(**context)
    if not full:
        return f"{rtmp_block}\n{http_locations}"
    prefix = Path(prefix or os.getcwd())
    worker_user = f"user {user};\n" if user else ""
    http_server = ""
    if http_port:
        http_server = HTTP_SERVER.format(http_port=http_port, locations=_indent(http_locations, 8))
    return FULL_CONFIG.format(
        module_path=module_path,
        worker_user=worker_user,
        prefix=prefix,
        rtmp_block=rtmp_block,
        http_server=http_server,
    )


def _indent(text, spaces):
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in text.splitlines())


RTMP_BLOCK = """\
# RTMP ingest for wagtail_live: encoders publish to rtmp://<this host>:{rtmp_port}/{public_app}
# with their session's stream key. nginx's worker user must be able to write to
# {live_root} (run the workers as the site's user, or share a group with g+w).
rtmp {{
    server {{
        listen {rtmp_port};
        chunk_size 4096;
        notify_method post;

        # Encoders publish here. The site checks the stream key before any media is
        # accepted and relays accepted streams to {internal_app} under the session's id.
        application {public_app} {{
            live on;
            deny play all;
            # An encoder that stops sending media mid-stream is dropped (the grace period applies).
            drop_idle_publisher {idle}s;
            on_publish {on_publish};
            on_publish_done {on_publish_done};
            # Goes live at the first segment; a non-2xx answer (session ended) drops the encoder.
            on_update {on_update};
            notify_update_timeout {update}s;
        }}

        # Internal: only nginx's own relay, with a token the site signed, publishes here.
        application {internal_app} {{
            live on;
            deny play all;
            allow publish 127.0.0.1;
            deny publish all;
            on_publish {on_publish};
            on_publish_done {on_publish_done};
            on_record_done {on_record_done};

            hls on;
            hls_path {live_root};
            hls_nested on;
            hls_fragment {seg}s;
            hls_playlist_length 6s;
            hls_continuous on;
            hls_cleanup on;

            record all;
            record_path {live_root};
            record_suffix .flv;
            record_unique off;
            # A resumed stream continues the same recording.
            record_append on;
        }}
    }}
}}
"""

# No session's live HLS or recording source is under MEDIA_ROOT (they are under PRIVATE_ROOT);
# this refuses what a site that has not run `manage.py live_move_private_files` yet still
# keeps there. nginx matches the normalised URI ("//", "/./", "%2e" resolved), so no other
# spelling gets past it.
MEDIA_URL_DENIED = """\
location ~* ^{media_url}\\d+/(hls/|.*\\.(mpegts|flv|ts|m3u8)$) {{
    return 403;
}}
"""
# WAGTAIL_LIVE["PLAYBACK_FROM_MEDIA_URL"] = True: public sessions' playlists and segments
# straight from disk. Only public sessions have the link MEDIA_ROOT/<MEDIA_SUBDIR>/<id>/hls
# to their HLS under PRIVATE_ROOT (wagtail_live.private_files), so private ones are not found.
MEDIA_URL_PUBLIC = """\
location ~ ^{media_url}(\\d+/hls/[A-Za-z0-9_.-]+\\.(m3u8|ts))$ {{
    alias {public_live_root}/$1;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    add_header Cache-Control no-cache;
}}
"""

HTTP_LOCATIONS = """\
# In the site's http {{ server {{ ... }} }}: HLS and the site itself.
# Private sessions: Django checks permission and answers with X-Accel-Redirect
# (WAGTAIL_LIVE["ACCEL_REDIRECT_PREFIX"] = "{accel}").
location {accel} {{
    internal;
    alias {live_root}/;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 mp4 m4a; image/jpeg jpg; }}
    default_type application/octet-stream;
    add_header Cache-Control no-cache;
    add_header X-Content-Type-Options nosniff;
}}
{media_url_location}# Everything else (pages, callbacks, websockets) goes to the ASGI server.
location / {{
    proxy_pass {site_url};
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
}}
"""

HTTP_SERVER = """\
http {{
    server {{
        listen 127.0.0.1:{http_port};
{locations}
    }}
}}
"""

FULL_CONFIG = """\
# nginx.conf for wagtail_live's RTMP ingest (manage.py live_nginx_config --full).
load_module {module_path};
{worker_user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{
    worker_connections 256;
}}

{rtmp_block}
{http_server}"""
