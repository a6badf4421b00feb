"""nginx with the RTMP module as the ingest (scale-out): the callbacks' logic and its config.

nginx-rtmp receives the encoder, writes HLS and the recording itself, and asks
the site through HTTP callbacks (``views/rtmp.py`` are their thin faces). Two
RTMP applications keep the stream key out of every file name and URL:

* ``live`` (public): encoders publish ``live/<stream key>``. Its ``on_publish``
  checks the key before nginx accepts any media; a non-2xx answer refuses the
  encoder. An accepted stream is answered with a redirect that makes nginx
  relay it to ``rtmp://127.0.0.1:<port>/live_hls/<pk>/hls``;
* ``live_hls`` (internal: publish from 127.0.0.1 only, and only for a session
  the site just accepted an encoder for): writes HLS to
  ``PRIVATE_ROOT/<MEDIA_SUBDIR>/<pk>/hls/index.m3u8`` (the same place as the
  embedded backends) and records the stream.

Secrets stay out of URLs and logs (docs/security.md): nginx-rtmp cannot send
headers, so its callbacks go to a loopback-only server of the same nginx that
adds the shared secret as the ``X-Wagtail-Live-Secret`` header and proxies to
the site (no access log); the relay URL carries no token;
``notify_relay_redirect`` renames the relayed stream so nginx's error-level
``notify: push`` line names a hash, not the stream key; the RTMP access log is
off and the error log stays at ``notice`` (nginx-rtmp logs stream names at
``info``).

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
#: The header nginx's callback proxy adds; the secret is never in a callback's URL.
SECRET_HEADER = "X-Wagtail-Live-Secret"
# Seconds after accepting an encoder within which nginx's relay of it may publish internally.
RELAY_WINDOW_SECONDS = 60


class CallbackDenied(WagtailLiveError):
    """A callback came without the shared secret (or with a wrong one)."""


class NginxRTMPBackend(IngestBackend):
    """OBS publishes to nginx-rtmp (``manage.py live_nginx_config``), which calls the site back."""

    name = "nginx"

    def publish_url(self, session, request=None):
        """The nginx RTMP server URL (``RTMP_PUBLIC_URL``, else the site's host on ``RTMP_PORT``)."""
        return rtmp_publish_url(request)


def check_secret(provided):
    """Raise CallbackDenied unless ``provided`` (the ``SECRET_HEADER``) is ``NGINX_SECRET``.

    Compared in constant time. With no secret configured every callback is
    refused: a site that never set nginx up cannot be published to through it.
    """
    expected = live_settings.NGINX_SECRET
    if not expected:
        raise CallbackDenied(_('WAGTAIL_LIVE["NGINX_SECRET"] is not set.'))
    if not hmac.compare_digest(str(provided or "").encode(), str(expected).encode()):
        raise CallbackDenied(_("Wrong or missing callback secret."))


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
    return relay_url(relay_base, session.pk)


def authorize_relay(name):
    """on_publish of the internal application: only the relay of an encoder just accepted.

    nginx lets only 127.0.0.1 publish there; the site also wants an encoder it
    accepted for that session (:func:`authorize_publish` notes it) within
    ``RELAY_WINDOW_SECONDS``. No token: a token in the relay URL would be in
    nginx's error log (``notify: push … to '<url>'`` is logged at ``error``).
    """
    from datetime import timedelta

    from django.utils import timezone
    from wagtail.models import ModelLogEntry

    from .encoders import ENCODER_ACTION

    session = session_for_internal_stream(name)
    since = timezone.now() - timedelta(seconds=RELAY_WINDOW_SECONDS)
    accepted = (
        session is not None
        and ModelLogEntry.objects.for_instance(session)
        .filter(action=ENCODER_ACTION, timestamp__gte=since, data__encoder="nginx")
        .exists()
    )
    if not accepted:
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


def relayed_stream_name(relay_url):
    """The name nginx-rtmp gives a stream it relays to ``relay_url``.

    With ``notify_relay_redirect on`` the stream is renamed to the hex MD5 of
    the redirect's ``Location`` (``ngx_rtmp_notify_set_name``), and its later
    callbacks (``on_update``) carry that name instead of the stream key.
    """
    return hashlib.md5(relay_url.encode(), usedforsecurity=False).hexdigest()


def session_for_public_stream(name, relay_base):
    """The session of the public stream ``name``: a stream key, or a relayed stream's hash.

    The hash is matched against the relay URLs of the sessions nginx accepted an
    encoder for in the last day (few: the ones streaming through nginx).
    """
    from datetime import timedelta

    from django.utils import timezone
    from wagtail.models import ModelLogEntry

    from ..models import LiveSession
    from .encoders import ENCODER_ACTION

    session = session_streaming_with_key(name) if name else None
    if session is not None or not relay_base or not re.fullmatch(r"[0-9a-f]{32}", name or ""):
        return session
    recent = (
        ModelLogEntry.objects.filter(
            content_type__model="livesession",
            action=ENCODER_ACTION,
            timestamp__gte=timezone.now() - timedelta(days=1),
            data__encoder="nginx",
        )
        .values_list("object_id", flat=True)
        .distinct()
    )
    for pk in {int(pk) for pk in recent if str(pk).isdigit()}:
        if relayed_stream_name(relay_url(relay_base, pk)) == name:
            return LiveSession.objects.filter(pk=pk).first()
    return None


def relay_url(relay_base, pk):
    """Where nginx relays session ``pk``'s stream: the internal application, no token."""
    return f"{relay_base.rstrip('/')}/{pk}/hls"


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
    callback_port=None,
):
    """Return nginx configuration for this site (see ``manage.py live_nginx_config``).

    The ``rtmp {}`` block and HTTP ``location``s; with ``full`` a complete
    ``nginx.conf`` (module load, events, pid and logs under ``prefix``) that
    runs as it is. nginx-rtmp writes HLS and recordings under ``private_root``
    (``PRIVATE_ROOT``), which no location serves by path: only the ``internal``
    X-Accel location, after Django's permission check, reads it.

    nginx-rtmp's callbacks go to ``127.0.0.1:<callback_port>`` (default
    ``rtmp_port + 1``), a server of the same nginx that adds ``secret`` as the
    ``X-Wagtail-Live-Secret`` header: no URL carries it (see the module docstring).
    """
    from django.urls import reverse

    from ..storage import private_root as default_private_root

    subdir = live_settings.MEDIA_SUBDIR.strip("/")
    media_root = Path(media_root or settings.MEDIA_ROOT)
    live_root = Path(private_root or default_private_root()) / subdir
    public_live_root = media_root / subdir
    site_url = site_url.rstrip("/")

    callback_port = callback_port or rtmp_port + 1
    relay = f"rtmp://127.0.0.1:{rtmp_port}/{INTERNAL_APP}"

    def callback(name, **extra):
        query = "&".join(f"{key}={value}" for key, value in extra.items())
        url = f"http://127.0.0.1:{callback_port}{reverse(f'wagtail_live:{name}')}"
        return f"{url}?{query}" if query else url

    accel = live_settings.ACCEL_REDIRECT_PREFIX or "/_live_media/"
    media_url = (settings.MEDIA_URL or "/media/").rstrip("/") + "/" + live_settings.MEDIA_SUBDIR
    context = {
        "live_root": live_root,
        "public_live_root": public_live_root,
        "rtmp_port": rtmp_port,
        "seg": live_settings.HLS_SEGMENT_SECONDS,
        "on_publish": callback("rtmp_on_publish", relay=relay),
        "on_publish_done": callback("rtmp_on_publish_done"),
        "on_record_done": callback("rtmp_on_record_done"),
        # The relay base lets on_update find a relayed stream by its hash (relayed_stream_name).
        "on_update": callback("rtmp_on_update", relay=relay),
        "update": UPDATE_SECONDS,
        "idle": IDLE_PUBLISHER_SECONDS,
        "accel": "/" + accel.strip("/") + "/",
        "public_app": PUBLIC_APP,
        "internal_app": INTERNAL_APP,
        "media_url": media_url.rstrip("/") + "/",
        "site_url": site_url,
        "callback_port": callback_port,
        "secret_header": SECRET_HEADER,
        "secret": _nginx_string(secret),
    }
    rtmp_block = RTMP_BLOCK.format(**context)
    callback_server = CALLBACK_SERVER.format(**context)
    media_location = MEDIA_URL_DENIED
    if live_settings.PLAYBACK_FROM_MEDIA_URL:
        media_location = MEDIA_URL_PUBLIC + MEDIA_URL_DENIED
    context["media_url_location"] = media_location.format(**context)
    http_locations = HTTP_LOCATIONS.format(**context)
    if not full:
        return f"{rtmp_block}\n{callback_server}\n{http_locations}"
    prefix = Path(prefix or os.getcwd())
    worker_user = f"user {user};\n" if user else ""
    site_server = ""
    if http_port:
        site_server = SITE_SERVER.format(http_port=http_port, locations=_indent(http_locations, 4))
    http_server = HTTP_BLOCK.format(servers=_indent(callback_server + site_server, 4))
    return FULL_CONFIG.format(
        module_path=module_path,
        worker_user=worker_user,
        prefix=prefix,
        rtmp_block=rtmp_block,
        http_server=http_server,
    )


def _nginx_string(value):
    """``value`` as a double-quoted nginx string (backslash and quote escaped)."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


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
        # The access log would record every stream name: that is the stream key.
        access_log off;

        # Encoders publish here. The site checks the stream key before any media is
        # accepted and relays accepted streams to {internal_app} under the session's id.
        application {public_app} {{
            live on;
            deny play all;
            # An encoder that stops sending media mid-stream is dropped (the grace period applies).
            drop_idle_publisher {idle}s;
            on_publish {on_publish};
            # The relayed stream is renamed to a hash of the relay URL, so nginx's
            # error-level "notify: push" line does not name the stream key.
            notify_relay_redirect on;
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
location ~* ^{media_url}(\\d+/(hls/|.*\\.(mpegts|flv|ts|m3u8)$)|\\d+%2fhls\\.flv$) {{
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

CALLBACK_SERVER = """\
# In nginx's http {{ }}: nginx-rtmp's callbacks reach the site through this loopback-only
# server, which adds the shared secret as a header. The secret is in no URL, and this
# server keeps no access log.
server {{
    listen 127.0.0.1:{callback_port};
    access_log off;
    location / {{
        proxy_pass {site_url};
        proxy_set_header {secret_header} {secret};
    }}
}}
"""

SITE_SERVER = """\
server {{
    listen 127.0.0.1:{http_port};
{locations}
}}
"""

HTTP_BLOCK = """\
http {{
{servers}
}}
"""

FULL_CONFIG = """\
# nginx.conf for wagtail_live's RTMP ingest (manage.py live_nginx_config --full).
load_module {module_path};
{worker_user}worker_processes 1;
pid {prefix}/nginx.pid;
# notice, not info: nginx-rtmp logs stream names (stream keys) at info.
error_log {prefix}/error.log notice;
events {{
    worker_connections 256;
}}

{rtmp_block}
{http_server}"""
