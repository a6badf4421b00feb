"""The browser camera backend: MediaRecorder chunks over a websocket into the live pipeline.

The admin's Go Live screen records the camera with ``MediaRecorder`` (WebM:
H.264 or VP8/VP9 video, Opus audio) and sends each chunk as a binary frame to
``ws/live/<pk>/ingest/`` (``consumers/ingest.py``). :class:`BrowserIngest` is
what that consumer calls: it checks the stream is WebM before anything starts,
reads the codecs from the WebM header (so H.264 is copied and only VP8/VP9 are
transcoded), and hands the bytes to the shared :class:`~.base.Broadcast`, which
starts the session, writes HLS and the recording, and resumes a dropped
connection within ``RECONNECT_GRACE``.

A camera may change its frame size mid-recording (a phone turned while live, a window
being shared resized): MediaRecorder keeps one track and simply sends frames of the new
size. :class:`FrameSizeWatch` reads the stream's blocks to notice it, and the new size
gets its own ffmpeg part, as in the RTMP listener: live HLS marks the change with
``#EXT-X-DISCONTINUITY`` (else a transcoded VP8/VP9 stream would be stretched into the
first size, and copied H.264 would change size unannounced), and the recording joins
the parts.
"""

import logging

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

logger = logging.getLogger("wagtail_live.ingest.browser")

WEBM_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header every WebM file starts with
CLUSTER_ID = b"\x1f\x43\xb6\x75"  # media starts here; the track list comes before it
# Matroska element IDs (RFC 9559) FrameSizeWatch reads.
SEGMENT_ID = b"\x18\x53\x80\x67"
TRACKS_ID = b"\x16\x54\xae\x6b"
TRACK_ENTRY_ID, TRACK_NUMBER_ID, TRACK_TYPE_ID = b"\xae", b"\xd7", b"\x83"
TIMESTAMP_ID, SIMPLE_BLOCK_ID = b"\xe7", b"\xa3"
# An element size whose bits are all ones: "unknown", as MediaRecorder writes its
# Segment and Clusters (it cannot go back to write their sizes).
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
# No browser writes a block near this size (as the RTMP listener's MAX_MESSAGE_SIZE).
MAX_ELEMENT_BYTES = 8 * 1024 * 1024
# A WebM header is a few hundred bytes; more than this without media is not a camera.
MAX_HEADER_BYTES = 512 * 1024

# Matroska codec IDs (the ``CodecID`` of each track) -> ffmpeg codec names.
VIDEO_CODEC_IDS = {b"V_MPEG4/ISO/AVC": "h264", b"V_VP8": "vp8", b"V_VP9": "vp9", b"V_AV1": "av1"}
AUDIO_CODEC_IDS = {b"A_OPUS": "opus", b"A_AAC": "aac", b"A_VORBIS": "vorbis"}


class InvalidMedia(WagtailLiveError):
    """What the browser sent is not a WebM camera stream."""


# ---------------------------------------------------------------------------
# Frame size changes inside the WebM stream
# ---------------------------------------------------------------------------


def _vint_length(data, position, longest):
    """How many bytes the EBML variable-length integer at ``position`` takes (RFC 8794, 4)."""
    if not data[position]:
        raise ValueError("an EBML number longer than 8 bytes")
    length = 9 - data[position].bit_length()
    if length > longest:
        raise ValueError("an element ID longer than 4 bytes")
    return length


def read_element_id(data, position):
    """The element ID at ``position`` (its 1 to 4 bytes), or None when not all of it is here.

    Raises ValueError for bytes that cannot be an element ID.
    """
    if position >= len(data):
        return None
    length = _vint_length(data, position, 4)
    if position + length > len(data):
        return None
    return bytes(data[position : position + length])


def read_element_size(data, position):
    """(size, bytes it takes) at ``position``, size None for "unknown"; None when not all here."""
    if position >= len(data):
        return None
    length = _vint_length(data, position, 8)
    if position + length > len(data):
        return None
    value = data[position] & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = value << 8 | byte
    return (None if value == (1 << 7 * length) - 1 else value), length


def read_element(data, position):
    """(ID, content start, content end) of the whole element at ``position``, or None.

    The content end is None for an element of unknown size.
    """
    element_id = read_element_id(data, position)
    if element_id is None:
        return None
    sized = read_element_size(data, position + len(element_id))
    if sized is None:
        return None
    size, length = sized
    start = position + len(element_id) + length
    return element_id, start, None if size is None else start + size


def h264_parameter_sets(frame):
    """The SPS NAL units (type 7) in an H.264 frame in Annex B form, as Chromium writes it."""
    units = frame.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return tuple(unit for unit in units if unit and unit[0] & 0x1F == 7) or None


def vp8_frame_size(frame):
    """(width, height) of a VP8 keyframe (RFC 6386, section 9.1), or None."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(
        frame[8:10], "little"
    ) & 0x3FFF


def vp9_frame_size(frame):
    """(width, height) of a VP9 keyframe (VP9 bitstream specification, 6.2), or None."""
    bits = int.from_bytes(frame[:16], "big")
    total, taken = 8 * min(len(frame), 16), 0

    def read(count):
        nonlocal taken
        taken += count
        if taken > total:
            raise ValueError("frame too short")
        return bits >> (total - taken) & ((1 << count) - 1)

    try:
        if read(2) != 2:  # frame_marker
            return None
        profile = read(1) | read(1) << 1
        if profile == 3:
            read(1)
        if read(1) or read(1):  # show_existing_frame, or not a KEY_FRAME
            return None
        read(2)  # show_frame, error_resilient_mode
        if read(24) != 0x498342:  # frame_sync_code
            return None
        if profile >= 2:
            read(1)  # ten_or_twelve_bit
        if read(3) != 7:  # color_space other than CS_RGB
            read(1)  # color_range
            if profile in (1, 3):
                read(3)  # subsampling_x, subsampling_y, reserved_zero
        elif profile in (1, 3):
            read(1)  # reserved_zero
        return read(16) + 1, read(16) + 1
    except ValueError:
        return None


#: How each copied or transcoded codec's keyframes tell their frame size (or parameter sets).
FRAME_SIZE_READERS = {"h264": h264_parameter_sets, "vp8": vp8_frame_size, "vp9": vp9_frame_size}


class FrameSizeWatch:
    """Splits a browser's WebM stream where its video frame size changes.

    :meth:`feed` takes the bytes as they come and returns a list of byte strings: the
    first continues the current part, each further one starts a new part, as a WebM
    stream of its own (the stream's header, then a Cluster beginning at the keyframe of
    the new size). Only elements that must be read whole are held back (a block arriving
    over several chunks); everything else passes at once. The frame size is read from
    keyframes: H.264's SPS, VP8's and VP9's frame headers. Anything it cannot follow
    (another codec, a malformed element) is passed on unsplit, as before it existed.
    """

    def __init__(self, video_codec):
        self.reader = FRAME_SIZE_READERS.get(video_codec)
        self.buffer = bytearray()
        self.header = bytearray()  # everything before the first Cluster
        self.in_header = True
        self.video_track = None
        self.frame_size = None
        self.timestamp = b""  # the current Cluster's Timestamp element, whole
        self.following = self.reader is not None

    def feed(self, data):
        """Return the parts ``data`` continues or starts (see the class)."""
        if not self.following:
            return [bytes(data)]
        self.buffer += data
        parts, position = [bytearray()], 0
        try:
            while (step := self._element(position)) is not None:
                start, end, new_part = step
                if new_part:
                    parts.append(
                        bytearray(self.header) + CLUSTER_ID + UNKNOWN_SIZE + self.timestamp
                    )
                parts[-1] += self.buffer[start:end]
                if self.in_header and start < end:
                    self.header += self.buffer[start:end]
                position = end
        except ValueError as error:
            logger.warning("browser stream not followed for frame size changes: %s", error)
            self.following = False
            parts[-1] += self.buffer[position:]
            position = len(self.buffer)
        del self.buffer[:position]
        return [bytes(part) for part in parts]

    def _element(self, position):
        """Read the element at ``position``: (start, end, starts a new part) or None if partial."""
        element = read_element(self.buffer, position)
        if element is None:
            return None
        element_id, body, end = element
        if element_id in (SEGMENT_ID, CLUSTER_ID):
            # Their children follow: step into them (their size is usually "unknown").
            if element_id == CLUSTER_ID:
                self.in_header = False
            return position, body, False
        if end is None or end - body > MAX_ELEMENT_BYTES:
            raise ValueError("an element of unknown or excessive size")
        if end > len(self.buffer):
            return None
        if element_id == TRACKS_ID:
            self.video_track = video_track_number(bytes(self.buffer[body:end]))
        elif element_id == TIMESTAMP_ID:
            self.timestamp = bytes(self.buffer[position:end])
        elif element_id == SIMPLE_BLOCK_ID:
            return position, end, self._is_new_size(bytes(self.buffer[body:end]))
        return position, end, False

    def _is_new_size(self, block):
        """True when this SimpleBlock is a video keyframe of another size than the last."""
        track = read_element_size(block, 0)
        if track is None or track[0] != self.video_track or self.reader is None:
            return False
        length = track[1]
        flags = block[length + 2] if len(block) > length + 2 else 0
        if not flags & 0x80 or flags & 0x06:  # not a keyframe, or laced frames
            return False
        size = self.reader(bytes(block[length + 3 :]))
        if size is None:
            return False
        changed = self.frame_size is not None and size != self.frame_size
        self.frame_size = size
        return changed


def children(content):
    """The (ID, content) of each element in a master element's content (all of it present)."""
    position = 0
    while position < len(content):
        element = read_element(content, position)
        if element is None or element[2] is None or element[2] > len(content):
            raise ValueError("a malformed element in the track list")
        element_id, start, end = element
        yield element_id, content[start:end]
        position = end


def video_track_number(tracks):
    """The TrackNumber of the first video track (TrackType 1) in a Tracks element's content."""
    for element_id, entry in children(tracks):
        if element_id == TRACK_ENTRY_ID:
            fields = {key: int.from_bytes(value, "big") for key, value in children(entry)}
            if fields.get(TRACK_TYPE_ID) == 1:
                return fields.get(TRACK_NUMBER_ID)
    return None


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
        self.frame_sizes = None

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
            await self.write(chunk)
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
        self.frame_sizes = FrameSizeWatch(video)
        header, self.header = bytes(self.header), bytearray()
        await self.write(header)
        return True

    async def write(self, data):
        """Hand ``data`` to the broadcast, starting a new part where the frame size changes."""
        first, *new_parts = self.frame_sizes.feed(data)
        if first:
            await self.broadcast.write(first)
        video, audio = self.codecs
        for part in new_parts:
            logger.info("session %s: the camera's frame size changed: next part", self.session.pk)
            await self.broadcast.next_part("webm", video_codec=video, audio_codec=audio or "aac")
            await self.broadcast.write(part)

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
