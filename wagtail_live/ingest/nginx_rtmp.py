"""nginx with the RTMP module as the ingest (scale-out): the callbacks' logic and its config.

nginx-rtmp receives the encoder, writes HLS and the recording itself, and asks
the site through HTTP callbacks (``views/rtmp.py`` are their thin faces). One
RTMP application, ``live``, keeps the stream key out of every file name and URL:
encoders publish the stream ``<pk>/hls`` with the key as an argument
(OBS: *Server* ``rtmp://<host>:1935/live``, *Stream key* ``<pk>/hls?key=<key>``,
see :meth:`NginxRTMPBackend.encoder_stream_key`).

* ``on_publish`` checks the key before nginx accepts any media: nginx-rtmp
  POSTs the stream's arguments as form fields beside its own
  (``…&name=12/hls&type=live&key=…``), so the key arrives in the body, never
  in a URL. A non-2xx answer refuses the encoder;
* the same application writes HLS to
  ``PRIVATE_ROOT/<MEDIA_SUBDIR>/<pk>/hls/index.m3u8`` (``hls_nested``: the
  folder is the stream's name, the arguments are not part of it; the same
  place as the embedded backends) and records the stream to
  ``<MEDIA_SUBDIR>/<pk>%2Fhls.flv``. No relay: nothing the encoder sends
  before a relay would have connected is lost, so the first group of pictures
  reaches HLS and the recording however far apart the keyframes are
  (docs/ingest-backends.md, "Keyframes and nginx").

Secrets stay out of URLs and logs (docs/security.md): nginx-rtmp cannot send
headers, so its callbacks go to a loopback-only server of the same nginx that
adds the shared secret as the ``X-Wagtail-Live-Secret`` header and proxies to
the site (no access log); the RTMP access log is off and the error log stays at
``notice`` (nginx-rtmp logs ``publish: name=… args=…`` at ``info``).

``on_update``, every ``UPDATE_SECONDS`` while nginx receives a stream, moves the
session to *live* once its first HLS segment is listed (nginx has no "first
media" callback; a publisher that sends nothing leaves the session as it was),
and drops the encoder with a non-2xx answer once the session was ended elsewhere
(*End live* in the admin). ``on_publish_done`` ends the session at once when
``RECONNECT_GRACE`` is 0, else the clean-up task ends it if nobody resumes;
``on_record_done`` hands the recording (moved to ``<pk>/recording.flv``) to
``enqueue_recording`` once the session is over: while it may resume, nginx
appends to the same file (``record_append``) and marks the join in the live
playlist with ``#EXT-X-DISCONTINUITY`` (``hls_continuous``).

Settings an encoder changes *without* reconnecting reach nginx's segments and
recording, but nginx does not mark them in the playlist: stream health warns the
host (:func:`note_settings`) and the embedded verifier marks the playlists it
serves (:func:`mark_settings_changes`); docs/ingest-backends.md.

WebRTC viewers (``WAGTAIL_LIVE["WEBRTC"]``): nginx runs ``manage.py live_janus_relay
<pk>/hls`` for every published stream (``exec_push``) and stops it with SIGTERM when the
publish ends. The relay (:func:`relay_to_janus`) plays the stream from nginx over loopback
(the only player nginx lets in) and sends it, with ffmpeg, to the session's Janus Streaming
mountpoint, as the embedded listener's pipeline does; docs/deploying-nginx-rtmp.md.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import NamedTuple

from asgiref.sync import sync_to_async
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

#: The one RTMP application encoders publish to (the last part of the *Server* URL).
APPLICATION = "live"
#: The publish argument (and so the callbacks' form field) that carries the stream key.
KEY_ARGUMENT = "key"
# How often nginx calls on_update while it receives a stream (going live, noticing *End live*).
UPDATE_SECONDS = 1
# An encoder that stops sending media mid-stream is dropped after this long (nginx starts
# counting at the first packet; one that never sends is dropped by nginx's own timeout).
IDLE_PUBLISHER_SECONDS = 10
# Beside a session's hls/: which nginx connection publishes it (note_publisher).
PUBLISHER_FILE = "nginx-publisher.txt"
# Beside it: the settings the last health report of that publisher saw (note_settings).
SETTINGS_FILE = "nginx-settings.json"
# Session 12's stream is "12/hls": with hls_nested nginx then writes 12/hls/index.m3u8.
# ASCII digits of an id's length: \d would take "٣" as 3, and 5000 digits make int() raise.
STREAM_NAME = re.compile(r"([1-9][0-9]{0,11})/hls")
#: The header nginx's callback proxy adds; the secret is never in a callback's URL.
SECRET_HEADER = "X-Wagtail-Live-Secret"


class CallbackDenied(WagtailLiveError):
    """A callback came without the shared secret (or with a wrong one)."""


class NginxRTMPBackend(IngestBackend):
    """OBS publishes to nginx-rtmp (``manage.py live_nginx_config``), which calls the site back."""

    name = "nginx"

    def publish_url(self, session, request=None):
        """The nginx RTMP server URL (``RTMP_PUBLIC_URL``, else the site's host on ``RTMP_PORT``)."""
        return rtmp_publish_url(request)

    def encoder_stream_key(self, session, key):
        """``<pk>/hls?key=<key>``: the stream name nginx writes under, the key as an argument.

        The name (not the key) names the HLS folder and the recording, and nginx
        POSTs the argument to ``on_publish`` in the body, where the site checks it.
        """
        return f"{stream_name(session.pk)}?{KEY_ARGUMENT}={key}"


def stream_name(pk):
    """The stream name session ``pk`` is published under: ``<pk>/hls``."""
    return f"{pk}/hls"


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


def authorize_publish(name, stream_key, client=None):
    """on_publish: accept the stream ``name`` (``<pk>/hls``) with ``stream_key``, or raise.

    Raises StreamRefused (nginx-rtmp refuses the encoder on any non-2xx answer,
    before it accepts media) for a name that is not a session's, a missing,
    wrong, revoked or expired key, a key of another session, an ended session
    and a second encoder while one is live (``client`` is nginx's ``clientid``
    of the connection, see :func:`note_publisher`). Creates the HLS directory
    nginx writes into. The session goes *live* later, in :func:`publish_update`,
    once media arrived. Returns the session.
    """
    from ..models import LiveSession

    session = session_for_stream(name)
    if session is None:
        raise StreamRefused(
            _(
                "Unknown stream: publish <session id>/hls?key=<stream key>, as the Go Live screen shows."
            )
        )
    # for_stream_key is None for an ended session too: its keys are no longer usable.
    if not stream_key or LiveSession.objects.for_stream_key(stream_key) != session:
        raise StreamRefused(_("Unknown, revoked or expired stream key."))
    publisher = current_publisher(session)
    if (publisher is not None and publisher != str(client or "")) or (
        session.status == LiveSession.Status.LIVE and fed_by_another_backend(session)
    ):
        raise StreamRefused(_("Another encoder is already live on this session."))
    prepare_hls_dir(hls_dir(session))
    note_publisher(session, client)
    note_encoder(session, "nginx")
    logger.info("nginx: publishing to session %s", session.pk)
    return session


def fed_by_another_backend(session):
    """True while another backend (the browser, the embedded listener) writes ``session``'s HLS.

    A second encoder through nginx is told apart by its connection instead
    (:func:`current_publisher`), so an nginx encoder that reconnects at once,
    while its last segment is seconds old, is let back in.
    """
    from .encoders import current_encoder

    return current_encoder(session) != "nginx" and is_receiving_elsewhere(session)


def publisher_path(session):
    """The file naming the nginx connection (``clientid``) that publishes ``session``."""
    return Path(session.media_dir) / PUBLISHER_FILE


def note_publisher(session, client):
    """Remember ``client`` (nginx's ``clientid``) as ``session``'s publisher (on_publish).

    nginx-rtmp asks ``on_publish`` *before* it checks that nobody publishes
    the name yet, and a publisher it then refuses (``Already publishing``)
    still gets ``on_publish_done`` and ``on_record_done``: without knowing which
    connection is the real one, those would end the session under the first
    encoder. A file, because nginx and the site share the directory and the
    callbacks may reach different site processes.
    """
    path = publisher_path(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(client or ""))


def publisher_still_there(session, client):
    """on_update of ``client``, every ``UPDATE_SECONDS``: refresh its note (the file's time).

    Only an existing note of the same connection: an update that reaches the
    site after that publisher's ``on_publish_done`` must not bring it back.
    """
    if current_publisher(session) == str(client or ""):
        with contextlib.suppress(FileNotFoundError):  # its publish_done came in between
            os.utime(publisher_path(session))


def current_publisher(session):
    """The ``clientid`` of the nginx connection publishing ``session``, or None.

    None when none is noted, or its note is older than ``IDLE_PUBLISHER_SECONDS``
    (no ``on_update`` for that long: nginx restarted or lost it).
    """
    path = publisher_path(session)
    try:
        if time.time() - path.stat().st_mtime > IDLE_PUBLISHER_SECONDS:
            return None
        return path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def is_publisher(session, client):
    """Whether the callback of connection ``client`` is about ``session``'s real publisher.

    True when it is the noted one, or none is noted (a stream older than the
    note, a note that went stale): only another live connection is ignored.
    """
    publisher = current_publisher(session)
    return publisher is None or publisher == str(client or "")


def forget_publisher(session, client):
    """on_publish_done of the publisher: the next encoder may come in at once."""
    if current_publisher(session) == str(client or ""):
        publisher_path(session).unlink(missing_ok=True)


def session_for_stream(name):
    """The session of the stream name ``<pk>/hls``, or None for any other name."""
    from ..models import LiveSession

    match = STREAM_NAME.fullmatch(name or "")
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
        health.measure_if_due(session, amend=lambda report: note_settings(session, report))
    except Exception:  # a failed measurement must not drop the encoder
        logger.exception("nginx: session %s: stream health not measured", session.pk)


def encoder_settings(report):
    """What a player sets itself up with, from a health report: ``{"video", "audio"}``.

    ``video`` is ``[codec, width, height]``, ``audio`` ``[codec, sample rate,
    channels]``, each None when the probed segments had none.
    """
    video, audio = report.get("video"), report.get("audio")
    return {
        "video": video and [video["codec"], video["width"], video["height"]],
        "audio": audio and [audio["codec"], audio["sample_rate"], audio["channels"]],
    }


def note_settings(session, report):
    """``{"settings_changed": bool}`` for ``report``: did this publish change its settings?

    nginx-rtmp carries an encoder's new sequence header (another resolution,
    another AAC sample rate or channel count) into the following segments, but
    writes ``#EXT-X-DISCONTINUITY`` only when a stream (re)starts publishing, so
    players keep the settings they started with (docs/ingest-backends.md). The
    settings each report saw are noted with the publisher's ``clientid`` in
    ``SETTINGS_FILE``; a later report of the same connection with other settings
    sets the flag, which stays for the rest of that publish (viewers who were
    watching stay affected) and goes with a reconnect, which nginx marks. A
    stream that lost its audio or video for a moment is not a change.
    """
    client = current_publisher(session)
    path = Path(session.media_dir) / SETTINGS_FILE
    try:
        noted = json.loads(path.read_text())
    except (FileNotFoundError, UnicodeDecodeError, ValueError):
        noted = {}
    if client is None or noted.get("client") != client:
        noted = {"client": client, "video": None, "audio": None, "changed": False}
    changed = noted["changed"]
    for kind, now in encoder_settings(report).items():
        if now is None:
            continue
        changed = changed or (noted[kind] is not None and noted[kind] != now)
        noted[kind] = now
    noted["changed"] = changed
    if changed and not noted.get("logged"):
        logger.warning("nginx: session %s: the encoder changed settings mid-publish", session.pk)
        noted["logged"] = True
    with contextlib.suppress(OSError):  # a full disk must not lose the report
        path.write_text(json.dumps(noted))
    return {"settings_changed": changed}


#: Segment settings already probed, by (path, mtime): segments never change once listed.
_SEGMENT_SETTINGS = {}
_SEGMENT_SETTINGS_KEPT = 4096
#: Per HLS folder, the segments a mark was put before (kept while they are listed first).
_MARKED = {}


def segment_settings(path):
    """``{"video": [codec, width, height], "audio": [codec, rate, channels]}`` of an MPEG-TS
    segment (each None when absent), from the first SPS and ADTS header PyAV finds; None when
    the file cannot be read. Cached: a playlist is served many times, a segment probed once.
    """
    import av

    try:
        key = (str(path), os.stat(path).st_mtime_ns)
    except OSError:
        return None
    if key in _SEGMENT_SETTINGS:
        return _SEGMENT_SETTINGS[key]
    try:
        with av.open(str(path), format="mpegts") as container:
            video = next(iter(container.streams.video), None)
            audio = next(iter(container.streams.audio), None)
            found = {
                "video": video and [video.codec_context.name, video.codec_context.width,
                                    video.codec_context.height],
                "audio": audio and [audio.codec_context.name, audio.codec_context.sample_rate,
                                    audio.codec_context.channels],
            }  # fmt: skip
    except (OSError, av.error.FFmpegError):
        return None
    if len(_SEGMENT_SETTINGS) >= _SEGMENT_SETTINGS_KEPT:
        _SEGMENT_SETTINGS.clear()
    _SEGMENT_SETTINGS[key] = found
    return found


def settings_differ(before, after):
    """Whether two segments' settings differ in a kind both have (a gap is no change)."""
    return any(
        before[kind] and after[kind] and before[kind] != after[kind] for kind in ("video", "audio")
    )


def mark_settings_changes(playlist, directory):
    """``playlist`` (nginx-rtmp's HLS playlist, bytes) with ``#EXT-X-DISCONTINUITY`` before each
    segment whose settings differ from the segment before it; segments in ``directory``.

    nginx-rtmp carries an encoder's new settings into the segments but marks only a
    (re)publish, and without the mark hls.js keeps the first AAC configuration: new audio
    settings play at the wrong pitch (docs/ingest-backends.md). Served playlists get the mark
    here (the embedded verifier, ``wagtail_live.delivery``); a mark stays at the top while its
    segment is listed first. Segments that cannot be probed are left as they are.
    """
    try:
        lines = playlist.decode().split("\n")
    except UnicodeDecodeError:
        return playlist
    if len(_MARKED) > 256:  # sessions long over
        _MARKED.clear()
    marked = _MARKED.setdefault(str(directory), set())
    out, previous, first, marked_already = [], None, True, False
    for line in lines:
        if line.startswith("#EXT-X-DISCONTINUITY"):
            marked_already = True
        if not line or line.startswith("#"):
            out.append(line)
            continue
        # A segment's URI; its tags may come in any order before it (RFC 8216, 4.3.2).
        settings = segment_settings(Path(directory) / line)
        if first:
            change = line in marked  # its predecessor has left the playlist
        else:
            change = bool(settings and previous and settings_differ(previous, settings))
        if change and not marked_already:
            out.append("#EXT-X-DISCONTINUITY")
            marked.add(line)
        out.append(line)
        previous, first, marked_already = settings, False, False
    return "\n".join(out).encode()


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


# ---------------------------------------------------------------------------
# WebRTC viewers: the stream relayed to Janus's Streaming plugin (live_janus_relay)
# ---------------------------------------------------------------------------

#: The management command nginx's ``exec_push`` runs for every published stream.
RELAY_COMMAND = "live_janus_relay"
#: nginx-rtmp's variable for the published stream's name (``<pk>/hls``) in ``exec_push``.
STREAM_NAME_VARIABLE = "$name"
# Seconds ffmpeg reads the stream to learn its codecs (nginx sends the codec headers first).
RELAY_PROBE_SECONDS = 1
# Seconds between attempts while Janus cannot make the mountpoint or ffmpeg stops (doubling).
RELAY_RETRY_SECONDS = (2, 60)
# An ffmpeg that ran this long was relaying fine: the next failure starts the waits again.
RELAY_HEALTHY_SECONDS = 30
# Seconds ffmpeg may take to exit after SIGTERM before it is killed.
RELAY_STOP_SECONDS = 5
# How often a running relay asks Janus whether its mountpoint is still there (a restart).
RELAY_CHECK_SECONDS = 10


class RelayRefused(WagtailLiveError):
    """``live_janus_relay`` may not relay this stream (not a stream name, no such session...)."""


def relay_session(name):
    """The session whose stream ``name`` (nginx's ``$name``: ``<pk>/hls``) is to be relayed.

    Raises RelayRefused for anything but ``<pk>/hls`` in ASCII digits of an id's length
    (``../``, ``1/hls/../x``, ``٣/hls``, a 5000-digit number), an unknown session, an ended
    one and one nginx is not publishing (no ``on_publish`` noted its encoder). The name is
    never repeated in the message: only ``on_publish`` has seen what the encoder sent.
    """
    from ..models import LiveSession

    match = STREAM_NAME.fullmatch(name or "")
    if match is None:
        raise RelayRefused(_("Not a stream name: nginx publishes <session id>/hls."))
    session = LiveSession.objects.filter(pk=int(match[1])).first()
    if session is None:
        raise RelayRefused(_("No live session %(pk)s.") % {"pk": match[1]})
    if session.has_ended:
        raise RelayRefused(_("Live session %(pk)s has ended.") % {"pk": session.pk})
    if current_publisher(session) is None:
        raise RelayRefused(_("nginx is not publishing session %(pk)s.") % {"pk": session.pk})
    return session


def published_by(session, publisher):
    """Whether nginx's connection ``publisher`` still publishes ``session`` (not ended)."""
    session.refresh_from_db()
    return not session.has_ended and current_publisher(session) == publisher


def relay_source(session, rtmp_port):
    """Where the relay plays ``session``'s stream: ``(url, demuxer, options)`` for ffmpeg/PyAV.

    nginx on loopback (the only address its ``allow play`` lets in), the application and
    the stream name as options (ffmpeg splits a URL at the first ``/`` after the
    application only when the name has none). Only RTMP over TCP may be opened, the
    demuxer is forced, and nothing is buffered beyond what the demuxer needs
    (``nobuffer``): WebRTC viewers get each frame as it comes.
    """
    options = {
        "protocol_whitelist": "rtmp,tcp",
        "fflags": "nobuffer",
        "analyzeduration": str(RELAY_PROBE_SECONDS * 1_000_000),
        "rtmp_app": APPLICATION,
        "rtmp_playpath": stream_name(session.pk),
        "rtmp_live": "live",
    }
    return f"rtmp://127.0.0.1:{rtmp_port}/{APPLICATION}", "live_flv", options


def ffmpeg_input_args(url, demuxer, options):
    """:func:`relay_source`'s answer as ffmpeg's input arguments."""
    args = [item for key, value in options.items() for item in (f"-{key}", value)]
    return [*args, "-f", demuxer, "-i", url]


class StreamCodecs(NamedTuple):
    """What the relay learns of a stream before it sends it on (:func:`stream_codecs`)."""

    video: str | None  # "h264", or None: audio only
    audio: str | None  # "aac", or None: no audio
    b_frames: bool  # B-frames (frames out of display order): WebRTC players expect none


def stream_codecs(url, demuxer, options):
    """:class:`StreamCodecs` of the stream at ``url``, read with PyAV.

    None when it cannot be read (nginx refused the play, the publish just ended).
    """
    import av

    try:
        with av.open(url, format=demuxer, options=options, timeout=10) as media:
            video = next(iter(media.streams.video), None)
            audio = next(iter(media.streams.audio), None)
            return StreamCodecs(
                video=video and video.codec_context.name,
                audio=audio and audio.codec_context.name,
                b_frames=bool(video and video.codec_context.has_b_frames),
            )
    except (OSError, av.error.FFmpegError) as error:
        logger.info("nginx relay: stream not readable: %s", error)
        return None


async def relay_to_janus(session, rtmp_port, stopping):
    """Send ``session``'s stream, played from nginx, to a Janus Streaming mountpoint until
    ``stopping`` (an asyncio.Event: nginx's SIGTERM) is set or the publish is over.

    ``live_janus_relay``'s work, once per publish (nginx's ``exec_push``). The mountpoint is
    :func:`~.janus.open_streaming_relay`'s, as for the embedded listener, and ffmpeg's
    arguments :func:`~.base.build_rtp_relay_args`: H.264 copied (other video, and H.264
    with B-frames, transcoded), the audio as Opus. Janus down, a refused mountpoint or
    ffmpeg stopping are logged and retried, with waits doubling from
    ``RELAY_RETRY_SECONDS``, and a mountpoint Janus lost (a restart) is made again; an
    audio-only stream is not relayed (its viewers play HLS). The mountpoint is destroyed
    at the end, unless a newer publish of the session (an encoder that reconnected at
    once) has made its own; a relay whose publish is over by the end of its probe makes
    none (it would replace the newer relay's mountpoint). Never raises for Janus: HLS and the recording are nginx's and
    go on regardless.
    """
    from .janus import close_streaming_relay, open_streaming_relay

    source = relay_source(session, rtmp_port)
    publisher = await sync_to_async(current_publisher)(session)
    relay, wait = None, RELAY_RETRY_SECONDS[0]
    try:
        while not stopping.is_set() and await sync_to_async(published_by)(session, publisher):
            codecs = await asyncio.to_thread(stream_codecs, *source)
            # The probe takes a second or more, in which the publish may have ended or an
            # encoder that reconnected may have its own relay: a mountpoint made now would
            # replace that relay's, and nothing would feed it.
            if stopping.is_set() or not await sync_to_async(published_by)(session, publisher):
                break
            if codecs and codecs.video is None:
                logger.info("nginx relay: session %s is audio only: HLS only", session.pk)
                await stopping.wait()
                break
            if codecs:
                relay = relay or await open_streaming_relay(session)
            if codecs and relay:
                started = time.monotonic()
                args = ffmpeg_input_args(*source)
                lost = await run_relay_ffmpeg(session, args, relay, codecs, stopping)
                if lost or time.monotonic() - started > RELAY_HEALTHY_SECONDS:
                    wait = RELAY_RETRY_SECONDS[0]
                if lost:  # Janus answers but lost it (a restart): the next round makes it again
                    relay = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
            wait = min(wait * 2, RELAY_RETRY_SECONDS[1])
    finally:
        if relay is not None and await sync_to_async(current_publisher)(session) in (
            None,
            publisher,
        ):
            await close_streaming_relay(session)
            logger.info("nginx relay: session %s: mountpoint destroyed", session.pk)


async def run_relay_ffmpeg(session, input_args, relay, codecs, stopping):
    """Run the relay's ffmpeg until it exits, ``stopping`` is set or Janus lost the mountpoint.

    ffmpeg gets SIGTERM in the last two cases. Returns whether the mountpoint was lost.
    """
    from ..ffmpeg import ffmpeg_binary
    from .base import build_rtp_relay_args

    if codecs.b_frames:
        logger.info(
            "nginx relay: session %s: the encoder sends B-frames, which WebRTC players do "
            "not expect: transcoding (set the encoder to bframes=0 to spare the CPU)",
            session.pk,
        )
    args = build_rtp_relay_args(
        input_args,
        relay,
        video_codec=codecs.video,
        audio=codecs.audio is not None,
        transcode=codecs.b_frames,
    )
    process = await asyncio.create_subprocess_exec(
        ffmpeg_binary(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    logger.info("nginx relay: session %s: ffmpeg sends to Janus", session.pk)
    output = asyncio.create_task(process.stderr.read())
    stop = asyncio.create_task(stopping.wait())
    lost = asyncio.create_task(mountpoint_lost(session))
    await asyncio.wait([output, stop, lost], return_when=asyncio.FIRST_COMPLETED)
    if process.returncode is None and (stopping.is_set() or lost.done()):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), RELAY_STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
    stop.cancel()
    if lost.done():
        return True
    lost.cancel()
    if not stopping.is_set():
        message = (await output).decode("utf-8", "replace").strip()[-500:]
        logger.warning(
            "nginx relay: session %s: ffmpeg stopped (%s): %s",
            session.pk,
            process.returncode,
            message or "no message",
        )
    return False


async def mountpoint_lost(session):
    """Return once Janus no longer has ``session``'s mountpoint (asked every few seconds).

    Janus down is no answer: the relay goes on sending, and finds out once Janus is back.
    """
    from .janus import JanusError, mountpoint_exists

    while True:
        await asyncio.sleep(RELAY_CHECK_SECONDS)
        with contextlib.suppress(JanusError):
            if not await mountpoint_exists(session):
                logger.warning(
                    "nginx relay: session %s: Janus lost the mountpoint (restarted?), "
                    "making it again",
                    session.pk,
                )
                return


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
    janus_relay=None,
    relay_env=(),
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

    ``janus_relay`` (the argv of :func:`relay_command`) has nginx run the WebRTC relay
    for every published stream (``exec_push``) and lets only loopback play; ``relay_env``
    names the environment variables nginx passes on to it (``env NAME;``: nginx clears
    its workers' environment). Raises ValueError for a name that is not one.
    """
    from django.urls import reverse

    from ..storage import private_root as default_private_root

    subdir = live_settings.MEDIA_SUBDIR.strip("/")
    media_root = Path(media_root or settings.MEDIA_ROOT)
    live_root = Path(private_root or default_private_root()) / subdir
    public_live_root = media_root / subdir
    site_url = site_url.rstrip("/")

    callback_port = callback_port or rtmp_port + 1

    def callback(name, **extra):
        query = "&".join(f"{key}={value}" for key, value in extra.items())
        url = f"http://127.0.0.1:{callback_port}{reverse(f'wagtail_live:{name}')}"
        return f"{url}?{query}" if query else url

    accel = live_settings.ACCEL_REDIRECT_PREFIX or "/_live_media/"
    media_url = (settings.MEDIA_URL or "/media/").rstrip("/") + "/" + live_settings.MEDIA_SUBDIR
    context = {
        "live_root": _nginx_path(live_root),
        "live_root_dir": _nginx_path(f"{live_root}/"),
        "public_live_alias": _nginx_path(f"{public_live_root}/", variable="$1"),
        "rtmp_port": rtmp_port,
        "seg": live_settings.HLS_SEGMENT_SECONDS,
        "on_publish": callback("rtmp_on_publish"),
        "on_publish_done": callback("rtmp_on_publish_done"),
        "on_record_done": callback("rtmp_on_record_done"),
        "on_update": callback("rtmp_on_update"),
        "update": UPDATE_SECONDS,
        "idle": IDLE_PUBLISHER_SECONDS,
        "accel": "/" + accel.strip("/") + "/",
        "app": APPLICATION,
        "media_url": media_url.rstrip("/") + "/",
        "site_url": site_url,
        "callback_port": callback_port,
        "secret_header": SECRET_HEADER,
        "secret": _nginx_string(secret),
        "play": PLAY_DENIED,
        "relay_env": "",
    }
    if janus_relay:
        command = exec_push_words(janus_relay)
        context["play"] = RELAY_LINES.format(command=command)
        context["relay_env"] = "".join(f"env {name};\n" for name in _env_names(relay_env))
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
    worker_user = f"user {_nginx_path(user)};\n" if user else ""
    site_server = ""
    if http_port:
        site_server = SITE_SERVER.format(http_port=http_port, locations=_indent(http_locations, 4))
    http_server = HTTP_BLOCK.format(servers=_indent(callback_server + site_server, 4))
    return FULL_CONFIG.format(
        module_path=_nginx_path(module_path),
        worker_user=worker_user,
        pid_file=_nginx_path(prefix / "nginx.pid"),
        error_log=_nginx_path(prefix / "error.log"),
        rtmp_block=rtmp_block,
        http_server=http_server,
    )


def _nginx_string(value):
    """``value`` as a double-quoted nginx string (backslash and quote escaped)."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _nginx_word(value):
    """``value`` as one nginx config word: quoted when it holds a space, quote, ``;`` or brace."""
    value = str(value)
    return _nginx_string(value) if re.search(r"[\s\"';{}#\\]", value) or not value else value


def exec_push_words(argv):
    """``argv`` (:func:`relay_command`'s) as the words of nginx-rtmp's ``exec_push``.

    nginx-rtmp reads its ``exec`` arguments once more when it starts the command: ``$x``
    and ``${x}`` are its variables, a backslash takes the next character as it is, and an
    argument like ``>file`` or ``2>>file`` is a redirection, not an argument. So every
    ``$`` and backslash of a path is escaped for it (a virtualenv under ``/srv/my$site``
    stays that), except in :data:`STREAM_NAME_VARIABLE`, the one variable meant; an
    argument it would take as a redirection raises ValueError.
    """
    words = []
    for arg in map(str, argv):
        if arg != STREAM_NAME_VARIABLE:
            if re.match(r"[0-9]*[<>]", arg):
                raise ValueError(
                    f"{arg!r} cannot be an argument of nginx's exec_push "
                    "(nginx-rtmp takes it as a redirection)."
                )
            arg = re.sub(r"([\\$])", r"\\\1", arg)
        words.append(_nginx_word(arg))
    return " ".join(words)


def _nginx_path(value, variable=""):
    """A path (or name) from the settings or the command line as one nginx config word.

    Quoted when it needs to be (a space, quote, ``;`` or brace), so it cannot end its
    directive or begin another; ValueError for a control character (a newline would end
    the comment line it is also printed in) and, where nginx expands variables in it
    (``variable``, e.g. ``alias …/$1``), for a ``$``, which nginx has no escape for.
    """
    value = str(value)
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError(f"{value!r} has a control character: nginx cannot be given it.")
    if variable and "$" in value:
        raise ValueError(f"{value!r} has a '$', which nginx would read as a variable there.")
    return _nginx_word(value + variable)


def _env_names(names):
    """``names`` checked as environment variable names (ValueError otherwise)."""
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name.")
    return names


def relay_command(*, rtmp_port, settings_module, pythonpath, python=None, log_file=None):
    """The argv nginx's ``exec_push`` runs for every published stream: ``live_janus_relay``.

    ``<python> -m django live_janus_relay $name --settings=… --pythonpath=… --rtmp-port=…``
    (nginx puts the stream's name, ``<pk>/hls``, for ``$name``; never its arguments, so
    never the key). Absolute paths and explicit settings: nginx starts it with an empty
    environment, no ``PATH``, in its own working directory. ``python`` defaults to this
    interpreter; ``log_file`` is where the relay logs (nginx sends its output to /dev/null).
    """
    argv = [python or sys.executable, "-m", "django", RELAY_COMMAND, STREAM_NAME_VARIABLE]
    argv += [f"--settings={settings_module}", f"--pythonpath={pythonpath}"]
    argv += [f"--rtmp-port={rtmp_port}"]
    if log_file:
        argv.append(f"--log-file={log_file}")
    return argv


def _indent(text, spaces):
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in text.splitlines())


RTMP_BLOCK = """\
# RTMP ingest for wagtail_live: encoders publish to rtmp://<this host>:{rtmp_port}/{app}
# the stream <session id>/hls?key=<stream key> (the Go Live screen shows it). nginx's
# worker user must be able to write to {live_root} (run the workers as the site's user,
# or share a group with g+w).
{relay_env}rtmp {{
    server {{
        listen {rtmp_port};
        chunk_size 4096;
        notify_method post;
        # The access log would record every stream's arguments: the stream key.
        access_log off;

        # One application, no relay into another: what the encoder sends first (its first
        # keyframe) reaches HLS and the recording. The site checks the key, which nginx POSTs to
        # on_publish as a form field, before any media is accepted.
        application {app} {{
            live on;
{play}            # An encoder that stops sending media mid-stream is dropped (the grace period applies).
            drop_idle_publisher {idle}s;
            on_publish {on_publish};
            on_publish_done {on_publish_done};
            on_record_done {on_record_done};
            # Goes live at the first segment; a non-2xx answer (session ended) drops the encoder.
            on_update {on_update};
            notify_update_timeout {update}s;

            # The stream <id>/hls writes <id>/hls/index.m3u8 (the arguments name nothing).
            hls on;
            hls_path {live_root};
            hls_nested on;
            hls_fragment {seg}s;
            hls_playlist_length 6s;
            # A resumed stream continues the numbering, after #EXT-X-DISCONTINUITY.
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

# Without the relay nobody plays a stream from nginx (viewers get HLS through the site).
PLAY_DENIED = """\
            deny play all;
"""
# With it (janus_relay): nginx runs live_janus_relay for every published stream.
RELAY_LINES = """\
            # WebRTC viewers: for every published stream nginx runs the relay, which plays it
            # over loopback and sends it to Janus's Streaming plugin; nginx stops it (SIGTERM)
            # when the publish ends. It retries by itself, so nginx does not respawn it.
            exec_push {command};
            exec_kill_signal term;
            respawn off;
            # Only the relay plays (from this host), and is let go when the publish ends.
            allow play 127.0.0.1;
            deny play all;
            idle_streams off;
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
    alias {public_live_alias};
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
    alias {live_root_dir};
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
pid {pid_file};
# notice, not info: nginx-rtmp logs stream names (stream keys) at info.
error_log {error_log} notice;
events {{
    worker_connections 256;
}}

{rtmp_block}
{http_server}"""
