"""WebRTC ingest through the Janus WebRTC Server: WHIP publishers, RTP forwarded to ffmpeg.

Django does the signalling and the authorisation; media flows between the encoder
(OBS 30+'s *WHIP* service, a browser, any WHIP client) and Janus. For each publish:

1. ``POST /live/whip/<pk>/`` (``views/whip.py``, RFC 9725) with the stream key as the
   bearer token and an SDP offer: the key is checked before Janus hears of it;
2. a Janus session and a VideoRoom handle are created (room = the session's id), the
   offer goes in with ``joinandconfigure`` and Janus's SDP answer comes back;
3. :class:`JanusBroadcast` (an asyncio task in the ASGI process that took the POST)
   starts ffmpeg reading an SDP that describes two local UDP ports, asks Janus to
   ``rtp_forward`` the publisher's audio and video there, and follows the handle's
   events (long polls, which also keep the Janus session alive): the first
   ``media`` event moves the session to *live*, ``hangup``/``detached`` or
   ``SILENCE_TIMEOUT`` without media start the grace period (the encoder vanished),
   a new publish while Janus receives nothing replaces the silent one, and the session
   ending elsewhere (*End live*, ``DELETE``) hangs the publisher up;
4. ffmpeg writes HLS and the recording exactly as for the other backends
   (:func:`~.base.build_ffmpeg_args`: H.264 copied, Opus converted to AAC).

Janus's API is used over plain HTTP (its ``janus.transport.http`` plugin, see
https://janus.conf.meetecho.com/docs/rest.html): four kinds of request (create,
attach, message, trickle/destroy) and a long-poll GET. That is small enough that
our own client (:class:`JanusClient`, about a hundred lines on asyncio streams)
beats pulling in a third-party one: the maintained Python clients on PyPI speak the
WebSocket transport and bring an HTTP stack of their own (docs/ingest-backends.md).

Secrets: ``JANUS_API_SECRET`` and ``JANUS_ADMIN_KEY`` go only into requests to Janus;
they are never logged (requests are logged without their body) nor sent to a browser.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async

from ..conf import live_settings
from ..exceptions import WagtailLiveError
from .base import (
    Broadcast,
    IngestBackend,
    LivePipeline,
    StreamRefused,
    build_ffmpeg_args,
    resume_offset,
    start_session_quietly,
)

logger = logging.getLogger("wagtail_live.ingest.janus")

VIDEOROOM = "janus.plugin.videoroom"
STREAMING = "janus.plugin.streaming"
# Janus's error codes we act on (janus_videoroom.c, janus.h).
ROOM_EXISTS = 427
NO_SUCH_SESSION = 458
NO_SUCH_MOUNTPOINT = 455  # janus_streaming.c
# Seconds Janus holds a long poll open when no event arrives (its HTTP transport's default is 30).
LONG_POLL_SECONDS = 30
# Payload types ffmpeg is told to expect; Janus rewrites the forwarded packets to them.
AUDIO_PT = 111
VIDEO_PT = 96
# ffmpeg codec names of what Janus may negotiate (janus_videoroom's audiocodec/videocodec).
FFMPEG_CODEC = {"opus": "opus", "h264": "h264", "vp8": "vp8", "vp9": "vp9", "av1": "av1"}
SDP_ENCODING = {
    "opus": "opus/48000/2",
    "h264": "H264/90000",
    "vp8": "VP8/90000",
    "vp9": "VP9/90000",
}
SDP_ENCODING["av1"] = "AV1/90000"


class JanusError(WagtailLiveError):
    """Janus refused a request or could not be reached. ``code`` is Janus's error code, if any."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class UnusableOffer(JanusError):
    """Janus answered a WHIP offer with every stream rejected: nothing could be streamed."""


#: Seconds a WHIP publish may take from its answer to its first media (ICE and DTLS done)
#: before it is hung up and the session given back: an encoder that crashed after its
#: POST, or whose UDP is blocked, would otherwise hold the session for ever.
CONNECT_TIMEOUT = 30
#: Seconds a connected WHIP publisher may send nothing (Janus's ``media`` events say no
#: stream is receiving) before it counts as gone and the grace period starts. An encoder
#: whose machine or network went away closes nothing: Janus (without ICE consent checks)
#: never reports a hangup, and its publish would hold the session for ever.
SILENCE_TIMEOUT = 10
#: Seconds a new WHIP publish waits for the current one to fall silent before it is refused
#: (409): Janus reports a stream silent after its ``no_media_timer`` (1 s), checked about
#: once a second, so an encoder back at once after a crash is not refused.
REPLACE_WAIT = 3


# ---------------------------------------------------------------------------
# The HTTP API client
# ---------------------------------------------------------------------------


class JanusClient:
    """Janus's HTTP API (``janus.transport.http``) on asyncio streams.

    ``url`` is the API's base, e.g. ``http://127.0.0.1:8088/janus``. Every request
    carries ``apisecret`` when ``api_secret`` is set. Methods raise :class:`JanusError`
    when Janus answers ``"janus": "error"`` or cannot be reached within ``timeout``.
    """

    _transactions = itertools.count(1)

    def __init__(self, url=None, api_secret=None, timeout=10):
        self.url = (url or live_settings.JANUS_URL).rstrip("/")
        self.api_secret = api_secret if api_secret is not None else live_settings.JANUS_API_SECRET
        self.timeout = timeout
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise JanusError(f"JANUS_URL must be an http:// URL, not {self.url!r}")
        self._host, self._port, self._base = parts.hostname, parts.port or 80, parts.path

    async def _http(self, method, path, body=None, timeout=None):
        """One HTTP/1.1 exchange (a fresh connection each time); return the decoded JSON."""
        payload = b"" if body is None else json.dumps(body).encode()
        # For messages: a long poll's query carries the API secret, which no log may see.
        shown = path.split("?", 1)[0] or "/"
        head = (
            f"{method} {self._base}{path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(timeout or self.timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port)
                try:
                    writer.write(head + payload)
                    await writer.drain()
                    raw = await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as error:
            # The body (with the secrets) is never part of the message.
            raise JanusError(
                f"Janus at {self.url} did not answer {method} {shown}: {error}"
            ) from error
        header, _sep, data = raw.partition(b"\r\n\r\n")
        status = header.split(b" ", 2)[1:2]
        if not status or status[0] != b"200":
            raise JanusError(f"Janus answered {method} {shown} with {header[:80]!r}")
        if b"transfer-encoding: chunked" in header.lower():
            data = dechunk(data)
        try:
            return json.loads(data)
        except ValueError as error:
            raise JanusError(f"Janus sent no JSON for {method} {shown}") from error

    async def request(self, path, body):
        """POST ``body`` (a Janus request) to ``path``; return the answer, raising on errors."""
        body = {**body, "transaction": f"wl{next(self._transactions)}"}
        if self.api_secret:
            body["apisecret"] = self.api_secret
        answer = await self._http("POST", path, body)
        return self.checked(answer)

    @staticmethod
    def checked(answer):
        """``answer``, or :class:`JanusError` for a core error or a plugin's ``error``."""
        if answer.get("janus") == "error":
            error = answer.get("error") or {}
            raise JanusError(f"Janus: {error.get('reason')}", error.get("code"))
        data = (answer.get("plugindata") or {}).get("data") or {}
        if "error" in data:
            raise JanusError(f"Janus plugin: {data['error']}", data.get("error_code"))
        return answer

    async def create_session(self):
        """A new Janus session's id."""
        return (await self.request("", {"janus": "create"}))["data"]["id"]

    async def attach(self, session_id, plugin=VIDEOROOM):
        """A new handle on ``plugin`` in ``session_id``; its id."""
        answer = await self.request(f"/{session_id}", {"janus": "attach", "plugin": plugin})
        return answer["data"]["id"]

    async def message(self, session_id, handle_id, body, jsep=None):
        """Send a plugin request; synchronous ones answer at once, others ``ack``."""
        request = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        return await self.request(f"/{session_id}/{handle_id}", request)

    async def trickle(self, session_id, handle_id, candidates):
        """Give Janus the encoder's ICE ``candidates`` (dicts; ``{"completed": True}`` ends)."""
        await self.request(
            f"/{session_id}/{handle_id}", {"janus": "trickle", "candidates": candidates}
        )

    async def hangup(self, session_id, handle_id):
        """Close the handle's PeerConnection (the publisher stops)."""
        await self.request(f"/{session_id}/{handle_id}", {"janus": "hangup"})

    async def destroy(self, session_id):
        """Destroy a Janus session and its handles (the publisher stops)."""
        await self.request(f"/{session_id}", {"janus": "destroy"})

    async def events(self, session_id, max_events=10):
        """Long-poll ``session_id``'s events: a list, empty after ``LONG_POLL_SECONDS`` quiet.

        Each poll also keeps the Janus session alive (``session_timeout``).
        """
        query = f"/{session_id}?maxev={max_events}"
        if self.api_secret:
            query += "&apisecret=" + self.api_secret
        answer = await self._http("GET", query, timeout=LONG_POLL_SECONDS + self.timeout)
        answers = answer if isinstance(answer, list) else [answer]
        events = [event for event in answers if event.get("janus") != "keepalive"]
        for event in events:
            if event.get("janus") == "error":
                self.checked(event)
        return events


def dechunk(data):
    """The body of an HTTP/1.1 ``Transfer-Encoding: chunked`` message (Janus's answers)."""
    body = bytearray()
    while data:
        size_line, _sep, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        body += rest[:size]
        data = rest[size + 2 :]
    return bytes(body)


# ---------------------------------------------------------------------------
# SDP: what Janus negotiated, and what ffmpeg reads
# ---------------------------------------------------------------------------


def negotiated_streams(answer_sdp):
    """``[{"type": "audio"|"video", "mid": str, "codec": str}]`` of an SDP answer's m-sections.

    Sections that were rejected (port 0) or carry no media (data channels) are left out.
    """
    streams = []
    for section in re.split(r"\r?\nm=", "\n" + answer_sdp)[1:]:
        first, *lines = section.splitlines()
        kind, port, _proto, *formats = first.split()
        if kind not in ("audio", "video") or port == "0" or not formats:
            continue
        mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
        rtpmap = {}
        for line in lines:
            match = re.match(r"a=rtpmap:(\d+) ([^/\s]+)", line)
            if match:
                rtpmap[match.group(1)] = match.group(2).lower()
        codec = rtpmap.get(formats[0], "")
        if mid is not None and codec in FFMPEG_CODEC:
            streams.append({"type": kind, "mid": mid, "codec": codec})
    return streams


def ffmpeg_sdp(host, streams):
    """The SDP ffmpeg reads: one m-line per forwarded stream (``port`` set on each)."""
    lines = ["v=0", f"o=- 0 0 IN IP4 {host}", "s=wagtail_live", f"c=IN IP4 {host}", "t=0 0"]
    for stream in streams:
        pt = VIDEO_PT if stream["type"] == "video" else AUDIO_PT
        lines.append(f"m={stream['type']} {stream['port']} RTP/AVP {pt}")
        lines.append(f"a=rtpmap:{pt} {SDP_ENCODING[stream['codec']]}")
        if stream["codec"] == "h264":
            lines.append(f"a=fmtp:{pt} packetization-mode=1")
    return "\r\n".join(lines) + "\r\n"


def free_udp_port_pair(host):
    """An even UDP port whose odd neighbour (its RTCP port) is free too, on ``host``."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1] & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
                rtp.bind((host, port))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp:
                    rtcp.bind((host, port + 1))
            return port
        except OSError:
            continue
    raise JanusError("No free UDP port pair for ffmpeg's RTP input")


class RTPPipeline(LivePipeline):
    """The live pipeline fed by Janus's RTP forwarders: ffmpeg reads an SDP, then UDP.

    The SDP goes to ffmpeg's stdin (closed right after: ffmpeg reads it to the
    end), which is the only file it opens; its protocols are limited to the pipe,
    UDP and RTP. ffmpeg never sees the end of an RTP stream, so :meth:`close`
    interrupts it (SIGINT: it finishes the playlist and the recording cleanly).
    """

    input_format = "sdp"

    def ffmpeg_args(self, directory, recording_fd):
        return build_ffmpeg_args(
            "sdp",
            directory,
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            ts_offset=self.ts_offset,
            resume=self.resume,
            recording_fd=recording_fd,
            input_args=[
                "-protocol_whitelist", "pipe,udp,rtp",
                # Packets from the loopback come in order; a small queue keeps latency low.
                "-reorder_queue_size", "64", "-max_delay", "200000",
                "-analyzeduration", "2000000", "-probesize", "2000000",
                "-f", "sdp", "-i", "pipe:0",
            ],
        )  # fmt: skip

    async def feed_sdp(self, sdp):
        await self.write(sdp.encode())
        self._process.stdin.close()

    async def close(self):
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGINT)
        return await super().close()


# ---------------------------------------------------------------------------
# One WHIP publisher
# ---------------------------------------------------------------------------


def room_id(session):
    """The VideoRoom room of ``session`` (``JANUS_ROOM_OFFSET`` + its id)."""
    return live_settings.JANUS_ROOM_OFFSET + session.pk


async def publish(session, offer_sdp, client=None):
    """Put a WHIP offer into Janus for ``session``; return ``(janus_session, handle, answer)``.

    Claims the session first (:class:`~.base.StreamRefused` when another encoder is
    live or it ended), so a refused encoder never reaches Janus. The claim is given
    to a :class:`JanusBroadcast` started here, which then owns the media.
    """
    client = client or JanusClient()
    await replace_silent_publisher(session)
    broadcast = await Broadcast.open(session)
    janus_session = None
    try:
        janus_session = await client.create_session()
        handle = await client.attach(janus_session)
        await ensure_room(client, janus_session, handle, session)
        answer_event = await join_and_publish(client, janus_session, handle, session, offer_sdp)
        if not negotiated_streams(answer_event["jsep"]["sdp"]):
            raise UnusableOffer("The offer has no usable audio/video (H.264/VP8/VP9, Opus).")
    except BaseException:
        broadcast.attached = False
        if not broadcast.started and not broadcast.parts:
            Broadcast._active.pop(session.pk, None)
        if janus_session is not None:
            with contextlib.suppress(JanusError):
                await client.destroy(janus_session)
        raise
    data = answer_event["plugindata"]["data"]
    answer_sdp = answer_event["jsep"]["sdp"]
    broadcast.janus_session = janus_session  # whose WHIP resource is the current one
    watcher = JanusBroadcast(broadcast, client, janus_session, handle, data.get("id"), answer_sdp)
    broadcast.whip_publisher = watcher
    watcher.begin()
    return janus_session, handle, answer_sdp


async def replace_silent_publisher(session):
    """End ``session``'s WHIP publish in this process if Janus receives nothing from it.

    The encoder it belonged to is gone (its machine or network went away, so nothing
    told Janus) and the caller, holding the stream key, is publishing anew: its publish
    resumes the session as after a hangup, rather than being refused with 409 until
    :data:`SILENCE_TIMEOUT` has passed. A publisher still sending media after
    :data:`REPLACE_WAIT` seconds is kept (:meth:`Broadcast.open` then refuses the new one).
    """
    current = getattr(Broadcast._active.get(session.pk), "whip_publisher", None)
    if current is not None and await current.silent_or_gone_within(REPLACE_WAIT):
        logger.info("session %s: a new publish replaces the silent one", session.pk)
        await current.cancel()


async def ensure_room(client, janus_session, handle, session):
    """Create the session's VideoRoom (one publisher, keyframes every HLS segment)."""
    body = {
        "request": "create",
        "room": room_id(session),
        "publishers": 1,
        "is_private": True,
        "fir_freq": max(1, int(live_settings.HLS_SEGMENT_SECONDS)),
        "audiocodec": "opus",
        "videocodec": "h264,vp8,vp9",
        "bitrate": int((live_settings.HEALTH_MAX_BITRATE_KBPS or 6000) * 1000),
        "notify_joining": False,
    }
    if live_settings.JANUS_ADMIN_KEY:
        body["admin_key"] = live_settings.JANUS_ADMIN_KEY
    try:
        await client.message(janus_session, handle, body)
    except JanusError as error:
        if error.code != ROOM_EXISTS:
            raise


async def join_and_publish(client, janus_session, handle, session, offer_sdp):
    """``joinandconfigure`` with the offer; return the event carrying Janus's answer."""
    body = {
        "request": "joinandconfigure",
        "ptype": "publisher",
        "room": room_id(session),
        "display": f"whip-{session.pk}",
    }
    await client.message(janus_session, handle, body, jsep={"type": "offer", "sdp": offer_sdp})
    return await jsep_event(client, janus_session, handle)


async def jsep_event(client, janus_session, handle):
    """The handle's next event carrying a JSEP (Janus's answer or offer), within the timeout.

    Raises :class:`JanusError` when none comes in ``client.timeout`` seconds (an overloaded
    Janus, or a publisher that just left): callers answer "try again", never a 500.
    """
    try:
        async with asyncio.timeout(client.timeout):
            while True:
                for event in await client.events(janus_session):
                    client.checked(event)
                    if event.get("sender") == handle and event.get("jsep"):
                        return event
    except TimeoutError as error:
        raise JanusError(f"Janus sent no SDP within {client.timeout}s") from error


class JanusBroadcast:
    """Follows one Janus publisher and feeds its forwarded RTP to the session's pipeline."""

    # Strong references: a task only referenced by the loop may be garbage-collected.
    _running = set()

    def __init__(self, broadcast, client, janus_session, handle, publisher_id, answer_sdp):
        self.broadcast = broadcast
        self.session = broadcast.session
        self.client = client
        self.janus_session = janus_session
        self.handle = handle
        self.publisher_id = publisher_id
        self.streams = negotiated_streams(answer_sdp)
        self.forwarding = False
        self.ended_here = False
        # Janus's last word on each stream (``media`` events): mid -> receiving.
        self.receiving = {}
        # Set while Janus says no stream receives (after its ``no_media_timer``, 1 s).
        self.silence = asyncio.Event()
        self.silent_since = None
        self._task = None
        self._stopping = False

    async def silent_or_gone_within(self, seconds):
        """Whether, within ``seconds``, Janus says this publisher sends nothing or it ends."""
        silence = asyncio.ensure_future(self.silence.wait())
        waits = {silence} if self._task is None else {silence, self._task}
        done, _pending = await asyncio.wait(
            waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        silence.cancel()
        return bool(done)

    def begin(self):
        task = self._task = asyncio.get_running_loop().create_task(self.run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def cancel(self):
        """Stop following the publisher and wait for :meth:`stop` (grace period started)."""
        if self._task is None:
            return
        if not self._stopping:
            # Never into stop() itself: the pipeline must close and the session be let go.
            self._task.cancel()
        await asyncio.wait({self._task})

    async def run(self):
        try:
            await self.start_pipeline()
            await self.forward()
            await self.follow()
        except Exception:
            logger.exception("session %s: WebRTC publisher failed", self.session.pk)
        finally:
            await self.stop()

    async def start_pipeline(self):
        """Start ffmpeg on free local ports and give it the SDP of the forwarded streams."""
        host = live_settings.JANUS_FORWARD_HOST
        for stream in self.streams:
            stream["port"] = free_udp_port_pair(host)
        video = next((s["codec"] for s in self.streams if s["type"] == "video"), None)
        audio = next((s["codec"] for s in self.streams if s["type"] == "audio"), None)
        broadcast = self.broadcast
        resume = broadcast.parts > 0 or Path(self.session.media_dir, "recording.mpegts").exists()
        offset = await sync_to_async(resume_offset)(self.session) if resume else 0.0
        broadcast.pipeline = RTPPipeline(
            self.session,
            "sdp",
            video_codec=FFMPEG_CODEC.get(video),
            audio_codec=FFMPEG_CODEC.get(audio, "aac"),
            ts_offset=offset,
            resume=resume,
        )
        broadcast.parts += 1
        await broadcast.pipeline.start()
        await broadcast.pipeline.feed_sdp(ffmpeg_sdp(host, self.streams))
        from .encoders import note_encoder

        await sync_to_async(note_encoder)(self.session, "whip")

    async def forward(self):
        """Ask Janus to send the publisher's streams to ffmpeg's ports."""
        body = {
            "request": "rtp_forward",
            "room": room_id(self.session),
            "publisher_id": self.publisher_id,
            "host": live_settings.JANUS_FORWARD_HOST,
            "streams": [
                {
                    "mid": stream["mid"],
                    "port": stream["port"],
                    "pt": VIDEO_PT if stream["type"] == "video" else AUDIO_PT,
                }
                for stream in self.streams
            ],
        }
        if live_settings.JANUS_ADMIN_KEY:
            body["admin_key"] = live_settings.JANUS_ADMIN_KEY
        await self.client.message(self.janus_session, self.handle, body)
        self.forwarding = True

    async def follow(self):
        """Until the publisher goes: media moves the session live, *End live* hangs up."""
        watch = asyncio.create_task(self.watch_status())
        connected = False
        deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT
        try:
            while True:
                if connected:
                    deadline = self.silence_deadline()
                try:
                    events = await self.next_events(deadline)
                except TimeoutError:
                    if connected:
                        why = f"sent nothing for {SILENCE_TIMEOUT}s"
                    else:
                        why = f"never connected within {CONNECT_TIMEOUT}s"
                    logger.info("session %s: WHIP publisher %s", self.session.pk, why)
                    return
                except JanusError as error:
                    logger.info("session %s: Janus session gone (%s)", self.session.pk, error)
                    return
                for event in events:
                    if event.get("sender") not in (None, self.handle):
                        continue
                    kind = event.get("janus")
                    if kind == "webrtcup" or (kind == "media" and event.get("receiving")):
                        connected = True
                    if kind == "media":
                        self.note_media(event)
                    if kind == "media" and event.get("receiving") and not self.broadcast.started:
                        await sync_to_async(start_session_quietly)(self.session)
                        self.broadcast.started = True
                    elif kind in ("hangup", "detached"):
                        logger.info(
                            "session %s: publisher gone (%s)", self.session.pk, event.get("reason")
                        )
                        return
                if watch.done():
                    return
        finally:
            watch.cancel()

    def silence_deadline(self):
        """The loop time at which the silent publisher counts as gone; None while media flows."""
        return None if self.silent_since is None else self.silent_since + SILENCE_TIMEOUT

    def note_media(self, event):
        """Follow Janus's ``media`` event: whether, and since when, no stream receives."""
        stream = event.get("mid") or event.get("type")
        self.receiving[stream] = bool(event.get("receiving"))
        if any(self.receiving.values()):
            self.silent_since = None
            self.silence.clear()
        elif self.silent_since is None:
            self.silent_since = asyncio.get_running_loop().time()
            self.silence.set()

    async def next_events(self, deadline=None):
        """The next long poll's events; :class:`TimeoutError` once the loop time ``deadline``
        (for a publisher not connected yet, or silent) has passed."""
        if deadline is None:
            return await self.client.events(self.janus_session)
        async with asyncio.timeout_at(deadline):
            return await self.client.events(self.janus_session)

    async def watch_status(self):
        """Re-read the session every few seconds; hang the publisher up once it ended."""
        while True:
            await asyncio.sleep(2)
            await sync_to_async(self.session.refresh_from_db)(fields=["status"])
            if self.session.has_ended:
                self.ended_here = True
                # Hanging up ends the long poll with a "hangup" event; stop() then destroys
                # the room and the Janus session.
                try:
                    await self.client.hangup(self.janus_session, self.handle)
                except JanusError:
                    with contextlib.suppress(JanusError):
                        await self.client.destroy(self.janus_session)
                return

    async def stop(self):
        self._stopping = True
        if getattr(self.broadcast, "whip_publisher", None) is self:
            self.broadcast.whip_publisher = None
        with contextlib.suppress(JanusError):
            # Rooms live in Janus's memory until destroyed; a resume creates the room anew.
            await self.client.message(
                self.janus_session,
                self.handle,
                {"request": "destroy", "room": room_id(self.session), "permanent": False},
            )
        with contextlib.suppress(JanusError):
            await self.client.destroy(self.janus_session)
        await sync_to_async(self.session.refresh_from_db)(fields=["status"])
        await self.broadcast.disconnected(end=self.session.has_ended)


# ---------------------------------------------------------------------------
# RTMP and browser sessions: a Streaming mountpoint fed by the session's ffmpeg
# ---------------------------------------------------------------------------

#: Seconds to wait for Janus when a broadcast starts: HLS waits for this, WebRTC is a bonus.
RELAY_TIMEOUT = 3
#: What the mountpoint tells browsers about the H.264 (copied from the encoder, not
#: transcoded: encoders set to baseline or main without B-frames play everywhere).
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1"


def mountpoint_id(session):
    """The Streaming mountpoint of ``session`` (``JANUS_ROOM_OFFSET`` + its id)."""
    return live_settings.JANUS_ROOM_OFFSET + session.pk


def mountpoint_password(session, purpose):
    """The mountpoint's ``pin`` (``purpose="pin"``) or ``secret``: derived from SECRET_KEY.

    Derived rather than stored, so the RTMP listener that makes the mountpoint and the
    ASGI process that lets viewers watch it agree without sharing state. Neither is ever
    sent to a browser: Django asks Janus on the viewer's behalf.
    """
    from django.utils.crypto import salted_hmac

    return salted_hmac(f"wagtail_live.janus-mountpoint.{purpose}", str(session.pk)).hexdigest()[:32]


def rtp_host():
    """Where ffmpeg sends RTP to Janus, and where the mountpoint listens: JANUS_URL's host.

    An address, as Janus binds the mountpoint's ports to it (``iface``), never to all
    interfaces: anyone who can send to those ports could put media on the stream.
    """
    host = urlsplit(live_settings.JANUS_URL).hostname or "127.0.0.1"
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        raise JanusError(f"JANUS_URL's host {host!r} has no address: {error}") from error


async def open_streaming_relay(session, client=None):
    """Create ``session``'s Streaming mountpoint; ``{"host", "video_port", "audio_port"}`` or None.

    An ``rtp`` mountpoint (Janus's Streaming plugin, ``create`` request: see
    https://janus.conf.meetecho.com/docs/streaming.html) with H.264 (payload type 96) and
    Opus (111) on ports Janus picks on :func:`rtp_host`; a private one with a pin and a
    secret. One left from an earlier run (a restarted listener) is replaced. Returns None,
    logging why, when Janus cannot make it: HLS and the recording go on regardless.
    """
    client = client or JanusClient(timeout=RELAY_TIMEOUT)
    try:
        host = rtp_host()
        media = [
            {"type": "video", "mid": "v", "port": 0, "pt": VIDEO_PT, "codec": "h264"},
            {"type": "audio", "mid": "a", "port": 0, "pt": AUDIO_PT, "codec": "opus"},
        ]
        media[0]["fmtp"] = H264_FMTP
        for item in media:
            item["iface"] = host
        body = {
            "request": "create",
            "type": "rtp",
            "id": mountpoint_id(session),
            "description": f"wagtail_live session {session.pk}",
            "is_private": True,
            "pin": mountpoint_password(session, "pin"),
            "secret": mountpoint_password(session, "secret"),
            "permanent": False,
            "media": media,
        }
        if live_settings.JANUS_ADMIN_KEY:
            body["admin_key"] = live_settings.JANUS_ADMIN_KEY
        async with streaming_handle(client) as (janus_session, handle):
            await destroy_mountpoint(client, janus_session, handle, session)
            answer = await client.message(janus_session, handle, body)
        ports = {p["type"]: p["port"] for p in answer["plugindata"]["data"]["stream"]["ports"]}
        relay = {"host": host, "video_port": ports["video"], "audio_port": ports["audio"]}
        logger.info("session %s: WebRTC relay to Janus ports %s", session.pk, ports)
        return relay
    except (JanusError, KeyError, TypeError) as error:
        logger.warning("session %s: no WebRTC playback (Janus: %s)", session.pk, error)
        return None


@contextlib.asynccontextmanager
async def streaming_handle(client):
    """``(janus session, Streaming plugin handle)`` for a few requests, the Janus session
    destroyed after (a failure to destroy it is ignored: Janus times it out). Raises
    JanusError when Janus cannot be asked."""
    janus_session = await client.create_session()
    try:
        yield janus_session, await client.attach(janus_session, STREAMING)
    finally:
        with contextlib.suppress(JanusError):
            await client.destroy(janus_session)


async def destroy_mountpoint(client, janus_session, handle, session):
    """Destroy ``session``'s mountpoint if there is one (its viewers' PeerConnections end)."""
    body = {
        "request": "destroy",
        "id": mountpoint_id(session),
        "secret": mountpoint_password(session, "secret"),
        "permanent": False,
    }
    try:
        await client.message(janus_session, handle, body)
    except JanusError as error:
        if error.code != NO_SUCH_MOUNTPOINT:
            raise


async def mountpoint_exists(session, client=None):
    """Whether Janus has ``session``'s Streaming mountpoint (a restarted Janus has none).

    Asks ``info`` without the secret (the answer then holds neither pin nor secret);
    raises JanusError when Janus cannot be asked.
    """
    client = client or JanusClient(timeout=RELAY_TIMEOUT)
    request = {"request": "info", "id": mountpoint_id(session)}
    async with streaming_handle(client) as (janus_session, handle):
        try:
            await client.message(janus_session, handle, request)
        except JanusError as error:
            if error.code == NO_SUCH_MOUNTPOINT:
                return False
            raise
        return True


async def close_streaming_relay(session, client=None):
    """Destroy ``session``'s mountpoint (the broadcast is over); Janus down is only logged."""
    client = client or JanusClient(timeout=RELAY_TIMEOUT)
    try:
        async with streaming_handle(client) as (janus_session, handle):
            await destroy_mountpoint(client, janus_session, handle, session)
    except JanusError as error:
        logger.warning("session %s: WebRTC relay not destroyed: %s", session.pk, error)


# ---------------------------------------------------------------------------
# WebRTC viewers: VideoRoom subscribers or Streaming viewers, signalled through Django
# ---------------------------------------------------------------------------


class NotStreaming(JanusError):
    """The session has no WebRTC publisher (not live over WebRTC, or it just ended)."""


async def publisher_of(client, janus_session, handle, session):
    """The VideoRoom publisher id of ``session``'s room, or :class:`NotStreaming`."""
    try:
        answer = await client.message(
            janus_session, handle, {"request": "listparticipants", "room": room_id(session)}
        )
    except JanusError as error:
        raise NotStreaming(str(error), error.code) from error
    data = answer["plugindata"]["data"]
    for participant in data.get("participants", []):
        if participant.get("publisher"):
            return participant["id"]
    raise NotStreaming("No WebRTC publisher in this session's room")


async def subscribe(session, client=None):
    """Start a viewer of ``session``: ``(janus_session, handle, offer_sdp)``.

    A WHIP session is watched as a VideoRoom subscriber; an RTMP or browser session
    through its Streaming mountpoint (:func:`open_streaming_relay`). Either way Janus
    makes the offer; the viewer answers with :func:`start_watching` and keeps the Janus
    session alive with :func:`keep_watching`. Raises :class:`NotStreaming` when neither
    feeds the session.
    """
    client = client or JanusClient()
    janus_session = await client.create_session()
    try:
        handle = await client.attach(janus_session)
        try:
            feed = await publisher_of(client, janus_session, handle, session)
        except NotStreaming:
            handle = await client.attach(janus_session, STREAMING)
            offer = await watch_mountpoint(client, janus_session, handle, session)
            return janus_session, handle, offer
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": room_id(session),
            "streams": [{"feed": feed}],
        }
        await client.message(janus_session, handle, body)
        event = await jsep_event(client, janus_session, handle)
        return janus_session, handle, event["jsep"]["sdp"]
    except BaseException:
        with contextlib.suppress(JanusError):
            await client.destroy(janus_session)
        raise


async def watch_mountpoint(client, janus_session, handle, session):
    """Janus's offer for a viewer of ``session``'s mountpoint, or :class:`NotStreaming`."""
    body = {
        "request": "watch",
        "id": mountpoint_id(session),
        "pin": mountpoint_password(session, "pin"),
    }
    try:
        await client.message(janus_session, handle, body)
        # "watch" is answered asynchronously: a missing mountpoint is an event too.
        event = await jsep_event(client, janus_session, handle)
    except JanusError as error:
        if error.code == NO_SUCH_MOUNTPOINT:
            raise NotStreaming(str(error), error.code) from error
        raise
    return event["jsep"]["sdp"]


async def start_watching(janus_session, handle, answer_sdp, client=None):
    """Give Janus the viewer's SDP answer: media starts flowing to the viewer."""
    client = client or JanusClient()
    await client.message(
        janus_session, handle, {"request": "start"}, jsep={"type": "answer", "sdp": answer_sdp}
    )


async def keep_watching(janus_session, client=None):
    """Keep a viewer's Janus session alive (the viewer calls this every ~20 s)."""
    client = client or JanusClient()
    await client.request(f"/{janus_session}", {"janus": "keepalive"})


async def end_publish(janus_session):
    """Destroy a Janus session (a WHIP resource's or a viewer's; a watcher then ends).

    Returns True when it was destroyed, False when Janus knew no such session, None
    when Janus could not be asked (it is then most likely gone with Janus anyway).
    """
    try:
        await JanusClient().destroy(janus_session)
    except JanusError as error:
        return False if error.code == NO_SUCH_SESSION else None
    return True


def current_publish(pk):
    """The Janus session of session ``pk``'s publish in this process, or None."""
    broadcast = Broadcast._active.get(pk)
    return getattr(broadcast, "janus_session", None) if broadcast is not None else None


# ---------------------------------------------------------------------------
# The backend and the operator's config
# ---------------------------------------------------------------------------


class JanusBackend(IngestBackend):
    """WHIP ingest (and WebRTC playback) through Janus; picked by ``WAGTAIL_LIVE["WEBRTC"]``."""

    name = "janus"

    def publish_url(self, session, request=None):
        """The session's WHIP endpoint URL (the stream key is the bearer token)."""
        from django.urls import reverse

        path = reverse("wagtail_live:whip", args=[session.pk])
        if live_settings.WHIP_PUBLIC_URL:
            return live_settings.WHIP_PUBLIC_URL.rstrip("/") + path
        return request.build_absolute_uri(path) if request is not None else path


def get_webrtc_backend():
    """The WebRTC backend ``WAGTAIL_LIVE["WEBRTC"]`` picks, or None when WebRTC is off."""
    from django.utils.module_loading import import_string

    choice = live_settings.WEBRTC
    if not choice:
        return None
    path = {"janus": "wagtail_live.ingest.janus.JanusBackend"}.get(choice, choice)
    try:
        return import_string(path)()
    except ImportError as error:
        raise WagtailLiveError(
            f'WAGTAIL_LIVE["WEBRTC"] is {choice!r}: use None, "janus" or a dotted class path.'
        ) from error


PLUGINS_DIR = "/usr/lib/x86_64-linux-gnu/janus"
UNUSED_PLUGINS = (
    "audiobridge duktape echotest lua nosip recordplay sip textroom videocall voicemail"
).split()
UNUSED_TRANSPORTS = "mqtt nanomsg pfunix rabbitmq websockets".split()


def janus_config(
    *,
    port=8088,
    ip="127.0.0.1",
    api_secret=None,
    admin_key=None,
    rtp_port_range="20000-40000",
    libraries=PLUGINS_DIR,
    nat_1_1_mapping=None,
    stun_server=None,
    ice_enforce_list=None,
    configs_folder="/etc/janus",
    keep_echotest=False,
):
    """The Janus config files this app needs: ``{file name: text}``.

    ``janus.jcfg`` (core: only the VideoRoom and Streaming plugins and the HTTP
    transport are loaded; no admin API), ``janus.transport.http.jcfg`` (the API on
    ``ip:port``, which must not be reachable from the internet: it is Django's),
    and the two plugins' files (no static rooms: Django creates one per session).
    """
    disabled_plugins = [p for p in UNUSED_PLUGINS if not (keep_echotest and p == "echotest")]
    general = [
        f'configs_folder = "{configs_folder}"',
        f'plugins_folder = "{libraries}/plugins"',
        f'transports_folder = "{libraries}/transports"',
        f'events_folder = "{libraries}/events"',
        f'loggers_folder = "{libraries}/loggers"',
        "debug_level = 4",
        'server_name = "wagtail_live"',
        "session_timeout = 60",
        "hide_dependencies = true",
    ]
    if api_secret:
        general.append(f'api_secret = "{api_secret}"')
    nat = ["nice_debug = false", "ignore_mdns = true"]
    if nat_1_1_mapping:
        nat.append(f'nat_1_1_mapping = "{nat_1_1_mapping}"')
    if stun_server:
        host, _sep, stun_port = stun_server.partition(":")
        nat += [f'stun_server = "{host}"', f"stun_port = {stun_port or 3478}"]
    if ice_enforce_list:
        nat.append(f'ice_enforce_list = "{ice_enforce_list}"')
    core = "\n".join(
        [
            "general: {",
            *("\t" + line for line in general),
            "}",
            "media: {",
            f'\trtp_port_range = "{rtp_port_range}"',
            "}",
            "nat: {",
            *("\t" + line for line in nat),
            "}",
            "plugins: {",
            '\tdisable = "' + ",".join(f"libjanus_{p}.so" for p in disabled_plugins) + '"',
            "}",
            "transports: {",
            '\tdisable = "' + ",".join(f"libjanus_{t}.so" for t in UNUSED_TRANSPORTS) + '"',
            "}",
            "loggers: {",
            '\tdisable = "libjanus_jsonlog.so"',
            "}",
            "events: {",
            "\tbroadcast = false",
            "}",
            "",
        ]
    )
    http = "\n".join(
        [
            "general: {",
            '\tjson = "compact"',
            '\tbase_path = "/janus"',
            "\thttp = true",
            f"\tport = {port}",
            f'\tip = "{ip}"',
            "\thttps = false",
            "}",
            "admin: {",
            "\tadmin_http = false",
            "}",
            "",
        ]
    )
    videoroom = "general: {\n" + (f'\tadmin_key = "{admin_key}"\n' if admin_key else "")
    videoroom += "\tlock_rtp_forward = true\n}\n" if admin_key else "}\n"
    streaming = "general: {\n" + (f'\tadmin_key = "{admin_key}"\n' if admin_key else "") + "}\n"
    return {
        "janus.jcfg": core,
        "janus.transport.http.jcfg": http,
        "janus.plugin.videoroom.jcfg": videoroom,
        "janus.plugin.streaming.jcfg": streaming,
        "janus.plugin.echotest.jcfg": "general: {\n}\n",
    }


#: What a secret may hold: printable ASCII without quotes, backslashes or spaces, which
#: would end the jcfg string it is written into (``new_secret`` makes URL-safe ones).
SECRET_PATTERN = re.compile(r"[!#-\[\]-~]{1,200}")
HOST_PATTERN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")
PORT_RANGE_PATTERN = re.compile(r"(\d{1,5})-(\d{1,5})")


def checked_config_options(options):
    """``options`` of :func:`janus_config` once every value is safe to write between quotes.

    Raises :class:`ValueError` naming the bad value: a quote or newline in a value
    would write other Janus settings (e.g. a higher ``debug_level``, which logs every
    request's API secret) or a file Janus refuses with a parse error far from the cause.
    """
    for name in ("api_secret", "admin_key"):
        value = options.get(name)
        if value and not SECRET_PATTERN.fullmatch(value):
            raise ValueError(
                f"The Janus {name.replace('_', ' ')} must be up to 200 printable ASCII characters "
                "without spaces, quotes or backslashes (e.g. secrets.token_urlsafe(24))."
            )
    ip = options.get("ip")
    if ip is not None:
        _ip_address(ip, "--ip")
    mapping = options.get("nat_1_1_mapping")
    if mapping:
        for address in mapping.split(","):
            _ip_address(address, "--public-ip")
    stun = options.get("stun_server")
    if stun:
        host, _sep, port = stun.rpartition(":") if ":" in stun else (stun, "", "3478")
        if not HOST_PATTERN.fullmatch(host) or not _is_port(port):
            raise ValueError(f"--stun-server must be host[:port], not {stun!r}.")
    port_range = options.get("rtp_port_range")
    if port_range is not None:
        match = PORT_RANGE_PATTERN.fullmatch(port_range)
        if not match or not all(_is_port(p) for p in match.groups()):
            raise ValueError(f"--rtp-port-range must be LOW-HIGH, not {port_range!r}.")
    port = options.get("port")
    if port is not None and not _is_port(str(port)):
        raise ValueError(f"--port must be 1-65535, not {port!r}.")
    interfaces = options.get("ice_enforce_list")
    if interfaces and not re.fullmatch(r"[A-Za-z0-9.:,_-]+", interfaces):
        raise ValueError(f"ice_enforce_list must list interfaces, not {interfaces!r}.")
    libraries = options.get("libraries")
    if libraries is not None and (not libraries.isprintable() or '"' in libraries):
        raise ValueError(f"--libraries must be a plain path, not {libraries!r}.")
    return options


def _ip_address(value, option):
    import ipaddress

    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{option} must be an IP address, not {value!r}.") from None


def _is_port(text):
    return text.isdigit() and 0 < int(text) < 65536


def write_janus_config(directory, **options):
    """Write :func:`janus_config` into ``directory``; return the path of ``janus.jcfg``.

    Raises :class:`ValueError` (before writing anything) for a value
    :func:`checked_config_options` refuses. The files are created with mode 600: the
    API secret and admin key are in them, and no other user may read them even briefly.
    """
    files = janus_config(configs_folder=str(directory), **checked_config_options(options))
    directory = Path(directory)
    if not directory.as_posix().isprintable() or '"' in str(directory):
        raise ValueError(f"The config folder must be a plain path, not {str(directory)!r}.")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        descriptor = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # a file already there keeps its mode otherwise
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
    return directory / "janus.jcfg"


def new_secret():
    """A random secret for ``JANUS_API_SECRET`` / ``JANUS_ADMIN_KEY``."""
    return secrets.token_urlsafe(24)


__all__ = [
    "JanusBackend",
    "JanusBroadcast",
    "JanusClient",
    "JanusError",
    "RTPPipeline",
    "StreamRefused",
    "UnusableOffer",
    "end_publish",
    "ffmpeg_sdp",
    "get_webrtc_backend",
    "close_streaming_relay",
    "janus_config",
    "negotiated_streams",
    "open_streaming_relay",
    "publish",
    "write_janus_config",
]
