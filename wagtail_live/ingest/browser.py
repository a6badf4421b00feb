"""The browser camera backend: MediaRecorder chunks over a websocket into the live pipeline.

The admin's Go Live screen records the camera with ``MediaRecorder`` (WebM:
H.264 or VP8/VP9 video, Opus audio) and sends each chunk as a binary frame to
``ws/live/<pk>/ingest/`` (``consumers/ingest.py``). :class:`BrowserIngest` is
what that consumer calls: it checks the stream is WebM before anything starts,
reads the codecs from the WebM header (so H.264 is copied and only VP8/VP9 are
transcoded), and hands the bytes to the shared :class:`~.base.Broadcast`, which
starts the session, writes HLS and the recording, and resumes a dropped
connection within ``RECONNECT_GRACE``.
"""

from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from ..exceptions import PermissionDenied, WagtailLiveError
from .base import (
    Broadcast,
    DiskFull,
    IngestBackend,
    PipelineError,
    StreamEnded,
    StreamRefused,
    end_session_quietly,
)

WEBM_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header every WebM file starts with
CLUSTER_ID = b"\x1f\x43\xb6\x75"  # media starts here; the track list comes before it
# A WebM header is a few hundred bytes; more than this without media is not a camera.
MAX_HEADER_BYTES = 512 * 1024

# Matroska codec IDs (the ``CodecID`` of each track) -> ffmpeg codec names.
VIDEO_CODEC_IDS = {b"V_MPEG4/ISO/AVC": "h264", b"V_VP8": "vp8", b"V_VP9": "vp9", b"V_AV1": "av1"}
AUDIO_CODEC_IDS = {b"A_OPUS": "opus", b"A_AAC": "aac", b"A_VORBIS": "vorbis"}


class InvalidMedia(WagtailLiveError):
    """What the browser sent is not a WebM camera stream."""


class BrowserBackend(IngestBackend):
    """The always-available backend: the host's browser is the encoder."""

    name = "browser"

    def publish_url(self, session, request=None):
        """The websocket path the Go Live screen streams ``session`` to."""
        return ingest_path(session)


def ingest_path(session):
    """Path of ``session``'s ingest websocket (``routing.py`` serves it)."""
    return f"/ws/live/{session.pk}/ingest/"


def detect_codecs(header):
    """Return ``(video_codec, audio_codec)`` named in a WebM header.

    Raises :class:`InvalidMedia` when ``header`` is not WebM or has neither a video
    nor an audio track we know. ``audio_codec`` is None for a stream without sound,
    ``video_codec`` None for an audio-only broadcast (``audio/webm;codecs=opus``).
    """
    if not header.startswith(WEBM_MAGIC):
        raise InvalidMedia(_("The camera stream is not WebM. Reload the page and try again."))
    video = next((name for cid, name in VIDEO_CODEC_IDS.items() if cid in header), None)
    audio = next((name for cid, name in AUDIO_CODEC_IDS.items() if cid in header), None)
    if video is None and audio is None:
        raise InvalidMedia(_("The camera stream has no video or audio this server can read."))
    return video, audio


def check_can_stream(session, user):
    """Raise unless ``user`` may stream ``session`` from the browser.

    :class:`~wagtail_live.exceptions.PermissionDenied` for users who may not go
    live, :class:`~.base.StreamRefused` when the session has ended.
    """
    if not session.can_go_live(user):
        raise PermissionDenied(
            _("Only the host, a superuser or someone allowed to go live can stream here.")
        )
    if session.has_ended:
        raise StreamRefused(_("This live session has ended."))


class BrowserIngest:
    """One ingest websocket's media: header check, then bytes into the session's broadcast.

    ``await open()`` claims the session for this socket (a second socket is
    refused before it sends anything), ``receive`` takes each chunk, and
    ``end`` (the host tapped *End live*) or ``drop`` (the connection went away)
    release it.
    """

    def __init__(self, session):
        self.session = session
        self.header = bytearray()
        self.broadcast = None
        self.codecs = None
        self.media_started = False

    async def open(self):
        """Claim the session; raises :class:`~.base.StreamRefused` if another encoder has it."""
        self.broadcast = await Broadcast.open(self.session)

    async def receive(self, chunk):
        """Take one MediaRecorder chunk.

        Returns True when this chunk made the session live (or resumed it).
        Raises :class:`InvalidMedia` (nothing was started), :class:`StreamEnded`
        or :class:`PipelineError`.
        """
        if self.media_started:
            await self.broadcast.write(chunk)
            return False
        self.header += chunk
        if not self.header.startswith(WEBM_MAGIC[: len(self.header)]):
            raise InvalidMedia(_("The camera stream is not WebM. Reload the page and try again."))
        if CLUSTER_ID not in self.header:
            if len(self.header) > MAX_HEADER_BYTES:
                raise InvalidMedia(_("The camera stream sent no media."))
            return False
        self.codecs = video, audio = detect_codecs(bytes(self.header))
        await self.broadcast.start_media("webm", video_codec=video, audio_codec=audio or "aac")
        self.media_started = True
        header, self.header = bytes(self.header), bytearray()
        await self.broadcast.write(header)
        return True

    async def started_at(self):
        """When the session went live (ISO 8601), re-read from the database."""
        await sync_to_async(self.session.refresh_from_db)(fields=["status", "started_at"])
        return self.session.started_at.isoformat() if self.session.started_at else None

    async def end(self):
        """The host tapped *End live*: flush the last media and end the session now."""
        broadcast, self.broadcast = self.broadcast, None
        if broadcast is not None:
            await broadcast.disconnected(end=True)
        # Ending before any media arrived still ends the session: the host said so.
        await sync_to_async(_end_if_open)(self.session)

    async def drop(self):
        """The connection went away: the session ends unless it resumes within the grace."""
        broadcast, self.broadcast = self.broadcast, None
        if broadcast is not None:
            await broadcast.disconnected()


def _end_if_open(session):
    session.refresh_from_db()
    if not session.has_ended:
        end_session_quietly(session)


__all__ = [
    "BrowserBackend",
    "BrowserIngest",
    "DiskFull",
    "InvalidMedia",
    "PipelineError",
    "StreamEnded",
    "StreamRefused",
    "check_can_stream",
    "detect_codecs",
    "ingest_path",
]
