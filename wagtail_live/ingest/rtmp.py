"""The embedded RTMP listener: OBS (or any RTMP encoder) publishes straight to the site.

A small asyncio server speaking the publishing half of RTMP: the handshake, the
chunk stream, the AMF0 commands an encoder sends (``connect``,
``releaseStream``, ``FCPublish``, ``createStream``, ``publish``,
``FCUnpublish``, ``deleteStream``) and the audio/video messages, which it
rewraps as FLV tags for :class:`~wagtail_live.ingest.base.LivePipeline`.

The stream key is checked at ``publish``, before any media is accepted: a
refused encoder gets ``NetStream.Publish.BadName`` and is disconnected, and no
file or directory is created. Why not a library: ``docs/ingest-backends.md``.
"""

import asyncio
import contextlib
import logging
import os
import struct
import time

from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from ..conf import live_settings
from . import amf0, rtmp_publish_url
from .base import (
    Broadcast,
    DiskFull,
    IngestBackend,
    PipelineError,
    StreamEnded,
    StreamRefused,
)

logger = logging.getLogger("wagtail_live.ingest.rtmp")

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3
DEFAULT_CHUNK_SIZE = 128
OUR_CHUNK_SIZE = 4096
WINDOW_SIZE = 2_500_000
# No encoder sends a message this big; a larger length is garbage, not media.
MAX_MESSAGE_SIZE = 8 * 1024 * 1024
# Before publish only small commands arrive (connect, createStream, publish: a few hundred
# bytes each), so an unauthenticated client is held to little memory: messages of at most
# MAX_COMMAND_SIZE, at most that many bytes of partial messages across all its chunk streams,
# chunks of at most MAX_COMMAND_SIZE, and reads of PRE_PUBLISH_READ_SIZE.
MAX_COMMAND_SIZE = 16 * 1024
PRE_PUBLISH_READ_SIZE = 16 * 1024
MAX_CHUNK_STREAMS = 64
# Audio/metadata buffered while waiting for the first video message, which tells the codec.
MAX_PENDING_BYTES = 4 * 1024 * 1024
PUBLISH_STREAM_ID = 1
RTMP_APP = "live"
# Seconds between socket reads while media flows (see RTMPConnection.let_media_accumulate):
# a tenth of a segment of added latency for about half the listener's CPU (docs/benchmarks.md).
READ_INTERVAL = 0.1
# The most one read takes from the socket's buffer, and the size of a read that means the
# encoder outpaces the rests (at 256 KiB per 100 ms, about 20 Mbit/s): then read without resting.
READ_SIZE = 1024 * 1024
BUSY_READ_SIZE = 256 * 1024
# Seconds a refused publisher's connection stays open after the refusal, so it can read it.
REFUSAL_LINGER = 1.0
# Video messages to wait for the first audio message (to learn its codec) before starting ffmpeg.
MAX_VIDEO_BEFORE_AUDIO = 30
# Milliseconds of audio without any video after which a stream is audio-only (a radio show
# whose encoder sent no metadata saying so): ffmpeg then starts with audio alone.
AUDIO_ONLY_AFTER_MS = 1500

# Message types (RTMP specification, section 5.4 and 7.1).
SET_CHUNK_SIZE, ABORT, ACK, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
AUDIO, VIDEO, DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0 = 8, 9, 15, 17, 18, 20
FLV_AUDIO, FLV_VIDEO, FLV_SCRIPT = 8, 9, 18

FLV_VIDEO_CODECS = {7: "h264", 12: "hevc", 2: "flv1", 4: "vp6f", 5: "vp6a"}
FLV_AUDIO_CODECS = {10: "aac", 2: "mp3", 11: "speex", 0: "pcm", 3: "pcm"}


class RTMPProtocolError(Exception):
    """The peer sent something that is not RTMP (or not the part we speak)."""


# ---------------------------------------------------------------------------
# Chunk stream
# ---------------------------------------------------------------------------


class _ChunkStreamState:
    __slots__ = ("timestamp", "delta", "length", "type_id", "stream_id", "extended", "payload")

    def __init__(self):
        self.timestamp = self.delta = self.length = self.type_id = self.stream_id = 0
        self.extended = False
        self.payload = bytearray()


_HEADER_SIZES = (11, 7, 3, 0)


class ChunkReader:
    """Reassembles RTMP messages from the chunks arriving on ``reader``.

    Bytes are read in large blocks and chunks parsed from a buffer: one await
    per read rather than several per (often 128-byte) chunk keeps the
    listener's CPU small next to ffmpeg's.
    """

    def __init__(self, reader):
        self.reader = reader
        self.chunk_size = DEFAULT_CHUNK_SIZE
        # Raised by allow_media() once the encoder may publish; until then every bound is small.
        self.max_message_size = MAX_COMMAND_SIZE
        self.max_chunk_size = MAX_COMMAND_SIZE
        self.max_partial_bytes = MAX_COMMAND_SIZE
        self.read_size = PRE_PUBLISH_READ_SIZE
        self.bytes_read = 0
        self.last_read_size = 0
        self._streams = {}
        self._buffer = bytearray()
        self._pos = 0

    def allow_media(self):
        """Lift the before-publish bounds: the stream key was accepted, media may flow."""
        self.max_message_size = MAX_MESSAGE_SIZE
        self.max_chunk_size = MAX_MESSAGE_SIZE
        self.max_partial_bytes = None
        self.read_size = READ_SIZE

    def set_chunk_size(self, size):
        """The peer's Set Chunk Size (bounded: before publish a chunk stays small)."""
        if not 1 <= size <= self.max_chunk_size:
            raise RTMPProtocolError(f"invalid chunk size {size}")
        self.chunk_size = size

    async def read_messages(self):
        """Return every complete message the buffered bytes hold (at least one), in order.

        Each is ``(type_id, stream_id, timestamp, payload)``. Parsing stops after
        anything but audio or video: a chunk-size change or a ``publish`` changes how
        the next chunks are read, so the caller handles it before asking for more.
        """
        messages = []
        while True:
            parsed = self._parse_chunk()
            if parsed is None:
                if messages:
                    return messages
                await self._fill()
            elif parsed is not True:
                messages.append(parsed)
                if parsed[0] not in (AUDIO, VIDEO):
                    return messages

    async def _fill(self):
        # Take all that is buffered: after a rest there may be far more than one block.
        data = await self.reader.read(self.read_size)
        self.last_read_size = len(data)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self._buffer[self._pos :]), None)
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data
        self.bytes_read += len(data)

    def _parse_chunk(self):
        """Consume one chunk from the buffer.

        Returns None when the buffer does not hold a whole chunk yet (nothing is
        consumed), True for a chunk that did not complete a message, else the
        message.
        """
        buf, pos, end = self._buffer, self._pos, len(self._buffer)
        if pos >= end:
            return None
        fmt, csid = buf[pos] >> 6, buf[pos] & 0x3F
        pos += 1
        if csid < 2:
            extra = csid + 1
            if end - pos < extra:
                return None
            csid = 64 + buf[pos] + (buf[pos + 1] * 256 if extra == 2 else 0)
            pos += extra
        state = self._streams.get(csid)
        if state is None and fmt != 0:
            raise RTMPProtocolError(f"chunk stream {csid} starts without a full header")
        size = _HEADER_SIZES[fmt]
        if end - pos < size:
            return None
        header = bytes(buf[pos : pos + size])
        pos += size
        stamp = int.from_bytes(header[0:3], "big") if fmt < 3 else None
        extended = stamp == 0xFFFFFF if fmt < 3 else state.extended
        if extended:
            if end - pos < 4:
                return None
            if fmt < 3:
                stamp = int.from_bytes(buf[pos : pos + 4], "big")
            pos += 4
        if fmt <= 1:
            length = int.from_bytes(header[3:6], "big")
            if length > self.max_message_size:
                raise RTMPProtocolError(f"message of {length} bytes is too large")
        else:
            length = state.length
        have = len(state.payload) if fmt == 3 and state is not None else 0
        take = min(self.chunk_size, length - have)
        if end - pos < take:
            return None
        # The whole chunk is here: only now change any state.
        if state is None:
            if len(self._streams) >= MAX_CHUNK_STREAMS:
                raise RTMPProtocolError("too many chunk streams")
            state = self._streams[csid] = _ChunkStreamState()
        if self.max_partial_bytes is not None and take:
            # Before publish: partial messages spread over many chunk streams count together.
            held = sum(len(other.payload) for other in self._streams.values())
            if held + take > self.max_partial_bytes:
                raise RTMPProtocolError("too much unfinished data before publish")
        self._apply_header(state, fmt, header, stamp, extended, length)
        state.payload += buf[pos : pos + take]
        self._pos = pos + take
        if len(state.payload) < state.length:
            return True
        payload, state.payload = bytes(state.payload), bytearray()
        return state.type_id, state.stream_id, state.timestamp, payload

    @staticmethod
    def _apply_header(state, fmt, header, stamp, extended, length):
        if fmt == 3:
            if not state.payload:  # a new message reusing the previous header
                state.timestamp += state.delta
            return
        state.extended = extended
        state.length = length
        if fmt <= 1:
            state.type_id = header[6]
        if fmt == 0:
            state.stream_id = struct.unpack("<I", header[7:11])[0]
            state.timestamp, state.delta = stamp, 0
        else:
            state.delta = stamp
            state.timestamp += stamp
        state.payload = bytearray()


def encode_message(type_id, payload, *, chunk_stream=3, stream_id=0, timestamp=0, chunk_size):
    """Encode one message as RTMP chunks (a full header, then type-3 continuations)."""
    header = bytes([chunk_stream & 0x3F]) + min(timestamp, 0xFFFFFF).to_bytes(3, "big")
    header += len(payload).to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)
    pieces = [header, payload[:chunk_size]]
    for offset in range(chunk_size, len(payload), chunk_size):
        pieces += [bytes([0xC0 | (chunk_stream & 0x3F)]), payload[offset : offset + chunk_size]]
    return b"".join(pieces)


# ---------------------------------------------------------------------------
# FLV
# ---------------------------------------------------------------------------


def flv_header(has_audio=True, *, has_video=True):
    """The FLV file header (with PreviousTagSize0); flags say which streams to wait for."""
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


def flv_tag(tag_type, timestamp, payload):
    """One FLV tag with its trailing PreviousTagSize."""
    timestamp &= 0xFFFFFFFF
    header = bytes([tag_type]) + len(payload).to_bytes(3, "big")
    header += (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24]) + b"\x00" * 3
    return header + payload + struct.pack(">I", len(payload) + 11)


def flv_tag_body(tag):
    """The body of an FLV tag made by :func:`flv_tag` (without header and PreviousTagSize)."""
    return tag[11:-4]


def video_codec_of(payload):
    """Name the codec of an FLV video tag body ("h264", "hevc", ...)."""
    if not payload:
        return None
    if payload[0] & 0x80:  # Enhanced RTMP: a FourCC follows the first byte.
        return {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9"}.get(
            bytes(payload[1:5]), "unknown"
        )
    return FLV_VIDEO_CODECS.get(payload[0] & 0x0F, "unknown")


def audio_codec_of(payload):
    """Name the codec of an FLV audio tag body ("aac", "mp3", ...)."""
    if not payload:
        return None
    return FLV_AUDIO_CODECS.get(payload[0] >> 4, "unknown")


def sequence_header_of(type_id, payload):
    """The codec configuration an audio or video message carries, or None for a media frame.

    The AVC/HEVC decoder configuration record (FLV video, AVCPacketType 0), Enhanced
    RTMP's SequenceStart, and AAC's AudioSpecificConfig (AACPacketType 0): Adobe's FLV
    specification v10.1, E.4.2.1 and E.4.3.1; Enhanced RTMP v1 (veovera). Returned as
    the whole message body, so a re-sent identical header compares equal.
    """
    if len(payload) < 2:
        return None
    first = payload[0]
    if type_id == VIDEO:
        if first & 0x80:  # Enhanced RTMP: the low four bits are the packet type
            return bytes(payload) if first & 0x0F == 0 else None
        return bytes(payload) if first & 0x0F in (7, 12) and payload[1] == 0 else None
    return bytes(payload) if first >> 4 == 10 and payload[1] == 0 else None


def is_keyframe(payload):
    """True for an FLV video tag body holding a keyframe (frame type 1), where decoding can start.

    Not AVC's end-of-sequence tag (AVCPacketType 2, which ffmpeg sends last with frame
    type 1) nor a sequence header: neither holds a picture.
    """
    if len(payload) < 2 or (payload[0] >> 4) & 0x07 != 1:
        return False
    if payload[0] & 0x80:  # Enhanced RTMP: CodedFrames or CodedFramesX
        return payload[0] & 0x0F in (1, 3)
    return payload[0] & 0x0F not in (7, 12) or payload[1] == 1


def strip_set_data_frame(payload):
    """Turn an ``@setDataFrame onMetaData {...}`` data message into an FLV script tag body."""
    marker = amf0.encode("@setDataFrame")
    return payload[len(marker) :] if payload.startswith(marker) else payload


# ---------------------------------------------------------------------------
# One connection
# ---------------------------------------------------------------------------


def find_session_for_key(stream_key):
    """The LiveSession this stream key may publish to, or None (wrong, revoked, expired)."""
    from ..models import LiveSession

    return LiveSession.objects.for_stream_key(stream_key)


class RTMPConnection:
    """One encoder's TCP connection, from handshake to disconnect."""

    def __init__(self, reader, writer, *, timeout):
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.chunks = ChunkReader(reader)
        self.out_chunk_size = DEFAULT_CHUNK_SIZE
        self.ack_window = WINDOW_SIZE
        self.acked = 0
        self.broadcast = None
        self.publishing = False
        self.session_over = False
        self.pending = []
        self.pending_bytes = 0
        self.batch = []
        self.video_codec = None
        self.audio_codec = None
        self.expect_audio = True
        self.expect_video = True
        self.first_audio_ms = None
        self.last_audio_ms = None
        # Codec parameters changing mid-publish (see route_media): the sequence header tag
        # of each kind the running part was given, the changed ones not yet applied, and
        # audio in the new parameters held for the next part.
        self.headers = {}
        self.changed = {}
        self.held = []
        self.held_bytes = 0
        self.last_keyframe = None
        self.peer = writer.get_extra_info("peername")

    async def run(self):
        """Serve the connection until the encoder leaves, errs or is refused."""
        try:
            await self.serve()
        except TimeoutError:
            logger.info("rtmp %s: timed out", self.peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            logger.info("rtmp %s: disconnected", self.peer)
        except (RTMPProtocolError, amf0.AMFError) as error:
            logger.warning("rtmp %s: protocol error: %s", self.peer, error)
        except StreamRefused as error:
            logger.info("rtmp %s: refused: %s", self.peer, error)
        except StreamEnded as error:
            logger.info("rtmp %s: stream stopped: %s", self.peer, error)
            self.session_over = True  # ended in the admin: no grace period to wait for
        except DiskFull as error:
            logger.warning("rtmp %s: stream refused: %s", self.peer, error)
            # A proper refusal the encoder shows ("Server error: ..."), not a broken pipe:
            # encoders read the server's messages between writes, so give it a moment.
            with contextlib.suppress(ConnectionError):
                await self.status("error", "NetStream.Publish.Failed", str(error))
                await asyncio.sleep(REFUSAL_LINGER)
        except PipelineError as error:
            logger.info("rtmp %s: stream stopped: %s", self.peer, error)
        finally:
            await self.close()

    async def serve(self):
        # One deadline from connecting to publishing, handshake included: a client that
        # trickles bytes (slowloris) cannot hold a connection longer than the timeout.
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.timeout
        async with asyncio.timeout_at(self.deadline):
            await self.handshake()
        await self.serve_messages()

    async def handshake(self):
        """The plain RTMP handshake (clients accept it when our S1 has a zero version field)."""
        c0c1 = await self.reader.readexactly(1 + HANDSHAKE_SIZE)
        if c0c1[0] != RTMP_VERSION:
            raise RTMPProtocolError(f"not an RTMP client (version byte {c0c1[0]})")
        s1 = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + b"\x00" * 4
        s1 += os.urandom(HANDSHAKE_SIZE - 8)
        self.writer.write(bytes([RTMP_VERSION]) + s1 + c0c1[1:])
        await self.writer.drain()
        await self.reader.readexactly(HANDSHAKE_SIZE)  # C2, an echo of S1

    async def serve_messages(self):
        # Until publish, the whole exchange must fit in the timeout: a silent or
        # stalled client cannot hold a connection open for ever.
        loop = asyncio.get_running_loop()
        while True:
            if self.publishing:
                deadline = loop.time() + self.timeout
            else:
                deadline = self.deadline
            async with asyncio.timeout_at(deadline):
                messages = await self.chunks.read_messages()
            await self.acknowledge()
            for message in messages:
                if not await self.handle(*message):
                    await self.flush_media()
                    return
            await self.flush_media()
            # Not before ffmpeg runs (its start waits on the first audio and video), nor
            # while a read comes back large: then the encoder sends faster than we rest.
            if (
                self.broadcast is not None
                and self.broadcast.pipeline is not None
                and self.chunks.last_read_size < BUSY_READ_SIZE
            ):
                await self.let_media_accumulate()

    async def let_media_accumulate(self):
        """Stop reading for a moment, so the next read takes many messages at once.

        An encoder sends each audio and video frame as it is made (~80 messages a
        second): handled one by one, the event loop's per-wake-up cost would be
        most of the listener's CPU. Resting READ_INTERVAL between reads (the kernel
        buffers meanwhile) turns that into a few reads and ffmpeg writes a second,
        at a delay far below one HLS segment.
        """
        transport = self.writer.transport
        transport.pause_reading()
        try:
            await asyncio.sleep(READ_INTERVAL)
        finally:
            transport.resume_reading()  # does nothing once the connection is closing

    async def acknowledge(self):
        if self.chunks.bytes_read - self.acked >= self.ack_window:
            self.acked = self.chunks.bytes_read
            await self.send(ACK, struct.pack(">I", self.acked & 0xFFFFFFFF), chunk_stream=2)

    async def handle(self, type_id, stream_id, timestamp, payload):
        """Act on one message; return False when the connection should close."""
        if type_id == SET_CHUNK_SIZE:
            size = struct.unpack(">I", payload[:4].rjust(4, b"\0"))[0] & 0x7FFFFFFF
            self.chunks.set_chunk_size(size)
        elif type_id == WINDOW_ACK_SIZE and len(payload) >= 4:
            self.ack_window = max(struct.unpack(">I", payload[:4])[0], 4096)
        elif type_id in (COMMAND_AMF0, COMMAND_AMF3):
            body = payload[1:] if type_id == COMMAND_AMF3 else payload
            return await self.handle_command(stream_id, amf0.decode_all(body))
        elif type_id in (AUDIO, VIDEO, DATA_AMF0) and self.publishing:
            await self.handle_media(type_id, timestamp, payload)
        return True

    async def handle_command(self, stream_id, values):
        if not values or not isinstance(values[0], str):
            raise RTMPProtocolError("command without a name")
        name = values[0]
        # Echoed back in the answer: only a number is one (a client's object is not sent back).
        transaction = values[1] if len(values) > 1 and isinstance(values[1], float) else 0
        args = values[3:]
        if name == "connect":
            await self.on_connect(transaction)
        elif name == "createStream":
            await self.command("_result", transaction, None, PUBLISH_STREAM_ID)
        elif name in ("releaseStream", "FCPublish"):
            await self.command("_result", transaction, None, None)
        elif name == "publish":
            stream_key = args[0] if args and isinstance(args[0], str) else ""
            return await self.on_publish(stream_key)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            logger.info("rtmp %s: encoder stopped publishing (%s)", self.peer, name)
            return not self.publishing
        elif name == "play":
            await self.status("error", "NetStream.Play.Failed", _("This server only ingests."))
            return False
        return True

    async def on_connect(self, transaction):
        await self.send(WINDOW_ACK_SIZE, struct.pack(">I", WINDOW_SIZE), chunk_stream=2)
        await self.send(SET_PEER_BANDWIDTH, struct.pack(">IB", WINDOW_SIZE, 2), chunk_stream=2)
        await self.send(SET_CHUNK_SIZE, struct.pack(">I", OUR_CHUNK_SIZE), chunk_stream=2)
        self.out_chunk_size = OUR_CHUNK_SIZE
        await self.command(
            "_result",
            transaction,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
            {
                "level": "status",
                "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded.",
                "objectEncoding": 0,
            },
        )

    async def on_publish(self, stream_key):
        """Check the key and claim the session before any media is accepted."""
        stream_key = stream_key.partition("?")[0].strip()
        session = await sync_to_async(find_session_for_key)(stream_key) if stream_key else None
        if session is None:
            await self.refuse(_("Unknown, revoked or expired stream key."))
            return False
        try:
            self.broadcast = await Broadcast.open(session)
        except StreamRefused as error:
            await self.refuse(str(error))
            return False
        self.publishing = True
        self.chunks.allow_media()
        user_control = struct.pack(">HI", 0, PUBLISH_STREAM_ID)  # StreamBegin
        await self.send(USER_CONTROL, user_control, chunk_stream=2)
        await self.status("status", "NetStream.Publish.Start", _("Publishing."))
        logger.info("rtmp %s: publishing to session %s", self.peer, session.pk)
        return True

    async def refuse(self, reason):
        logger.info("rtmp %s: publish refused: %s", self.peer, reason)
        await self.status("error", "NetStream.Publish.BadName", reason)

    async def handle_media(self, type_id, timestamp, payload):
        if type_id == DATA_AMF0:
            script = strip_set_data_frame(payload)
            self.learn_from_metadata(script)
            tag = flv_tag(FLV_SCRIPT, 0, script)
        else:
            tag = flv_tag(FLV_AUDIO if type_id == AUDIO else FLV_VIDEO, timestamp, payload)
            if type_id == VIDEO and self.video_codec is None:
                self.video_codec = video_codec_of(payload)
            if type_id == AUDIO:
                if self.audio_codec is None:
                    self.audio_codec = audio_codec_of(payload)
                if self.first_audio_ms is None:
                    self.first_audio_ms = timestamp
                self.last_audio_ms = timestamp
            if self.broadcast.pipeline is not None:
                await self.route_media(type_id, tag, payload)
                return
            if sequence_header_of(type_id, payload) is not None:
                self.headers[type_id] = tag
        if self.broadcast.pipeline is not None:
            self.batch.append(tag)
            return
        # ffmpeg's arguments depend on the codecs (copy or convert): hold the first
        # messages until both are known, then start it with everything held.
        self.pending.append(tag)
        self.pending_bytes += len(tag)
        if self.pending_bytes > MAX_PENDING_BYTES:
            raise RTMPProtocolError("neither audio nor video codec known after 4 MiB")
        if self.codecs_known():
            await self.broadcast.start_media(
                "flv", video_codec=self.video_codec, audio_codec=self.audio_codec
            )
            has_video = self.video_codec is not None
            header = flv_header(self.expect_audio, has_video=has_video)
            pending = self.pending if has_video else [t for t in self.pending if t[0] != FLV_VIDEO]
            await self.broadcast.write(header + b"".join(pending))
            self.pending.clear()

    async def route_media(self, type_id, tag, payload):
        """Send an audio or video tag to the running part, or start the next part first.

        An encoder may change its codec parameters without reconnecting (OBS when the
        output resolution changes, hardware encoders when the audio settings do): it sends
        a new sequence header, then media in the new parameters. That media goes to a new
        ffmpeg part (:meth:`Broadcast.next_part`), cut where the next part can begin
        decoding: at the first video frame after a new video header (a keyframe), or at
        the next keyframe after a new audio header alone, the audio in the meantime held
        for the new part and the old group of pictures finished in the old one.
        """
        header = sequence_header_of(type_id, payload)
        if type_id == VIDEO and header is None and is_keyframe(payload):
            self.last_keyframe = tag
        if header is not None:
            known = self.headers.setdefault(type_id, tag)
            if flv_tag_body(known) != header:
                self.changed[type_id] = tag
                return
        elif self.changed:
            if self.is_cut(type_id, payload):
                await self.start_next_part()
            elif type_id in self.changed:
                self.held.append(tag)
                self.held_bytes += len(tag)
                return
        self.batch.append(tag)

    def is_cut(self, type_id, payload):
        """True when this media frame (parameters having changed) starts the next part."""
        if self.video_codec is None or self.held_bytes > MAX_PENDING_BYTES:
            return True  # audio alone, or no keyframe for far too long: cut now
        return type_id == VIDEO and (VIDEO in self.changed or is_keyframe(payload))

    async def start_next_part(self, still=None):
        """Close the running ffmpeg part and start one with the changed sequence headers.

        ``still`` is a video tag to start the part with, before the held audio.
        """
        await self.flush_media()
        changed = sorted(self.changed)
        if VIDEO in self.changed:
            self.video_codec = video_codec_of(flv_tag_body(self.changed[VIDEO]))
        if AUDIO in self.changed:
            self.audio_codec = audio_codec_of(flv_tag_body(self.changed[AUDIO]))
        self.headers.update(self.changed)
        self.changed.clear()
        held, self.held, self.held_bytes = self.held, [], 0
        logger.info("rtmp %s: codec parameters changed (%s): next part", self.peer, changed)
        await self.broadcast.next_part(
            "flv",
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            # Held audio starts the part, earlier than the old part's last video.
            resume_after="audio" if held else None,
        )
        has_video = self.video_codec is not None
        self.batch = [
            flv_header(self.expect_audio, has_video=has_video),
            *(self.headers[kind] for kind in (VIDEO, AUDIO) if kind in self.headers),
            *([still] if still else []),
            *held,
        ]

    async def flush_media(self):
        """Hand the media tags of the last read to ffmpeg in one write."""
        if self.batch:
            data = b"".join(self.batch)
            self.batch.clear()
            await self.broadcast.write(data)

    def learn_from_metadata(self, script):
        try:
            values = amf0.decode_all(script)
        except amf0.AMFError:
            return
        metadata = values[1] if len(values) > 1 and isinstance(values[1], dict) else {}
        if metadata and "audiocodecid" not in metadata:
            self.expect_audio = False
        if metadata and "videocodecid" not in metadata and "audiocodecid" in metadata:
            self.expect_video = False

    def codecs_known(self):
        """True once ffmpeg's arguments can be chosen: the codecs that will come are known.

        Audio-only broadcasts (radio shows, lectures) are known from metadata without a
        video codec, or from AUDIO_ONLY_AFTER_MS of audio with no video message.
        """
        if self.video_codec is None:
            if self.audio_codec is None:
                return False
            if not self.expect_video:
                return True
            heard = (self.last_audio_ms or 0) - (self.first_audio_ms or 0)
            return heard >= AUDIO_ONLY_AFTER_MS
        if self.audio_codec is not None or not self.expect_audio:
            return True
        videos = sum(1 for tag in self.pending if tag[0] == FLV_VIDEO)
        return videos > MAX_VIDEO_BEFORE_AUDIO

    async def command(self, name, transaction, *values, stream_id=0):
        await self.send(COMMAND_AMF0, amf0.encode(name, transaction, *values), stream_id=stream_id)

    async def status(self, level, code, description):
        info = {"level": level, "code": code, "description": description}
        await self.command("onStatus", 0, None, info, stream_id=PUBLISH_STREAM_ID)

    async def send(self, type_id, payload, *, chunk_stream=3, stream_id=0):
        self.writer.write(
            encode_message(
                type_id,
                payload,
                chunk_stream=chunk_stream,
                stream_id=stream_id,
                chunk_size=self.out_chunk_size,
            )
        )
        await self.writer.drain()

    async def record_held_media(self):
        """Audio held for a next part (see route_media) when the encoder leaves before it began."""
        if not self.held or self.session_over or self.broadcast.pipeline is None:
            return
        # ffmpeg cannot start a part whose video has no frame: the last keyframe, in the
        # video settings it was made with, stays on screen while that audio plays.
        self.changed.pop(VIDEO, None)
        stamp = int.from_bytes(self.held[0][4:7], "big") | self.held[0][7] << 24
        still = flv_tag(FLV_VIDEO, stamp, flv_tag_body(self.last_keyframe))
        try:
            await self.start_next_part(still)
            await self.flush_media()
        except Exception:  # the connection must close whatever this hit
            logger.exception(
                "rtmp %s: the last audio, held for a new part, not recorded", self.peer
            )

    async def close(self):
        if self.broadcast is not None:
            await self.record_held_media()
            broadcast, self.broadcast = self.broadcast, None
            try:
                await broadcast.disconnected(end=self.session_over)
            except Exception:  # the connection must close whatever the clean-up hit
                logger.exception("rtmp %s: error while closing the broadcast", self.peer)
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


# ---------------------------------------------------------------------------
# The server and the backend
# ---------------------------------------------------------------------------


class RTMPServer:
    """The listener: ``await start()``, then ``await serve_forever()`` or ``await close()``."""

    def __init__(self, host=None, port=None, *, timeout=None):
        self.host = host or live_settings.RTMP_HOST
        self.port = live_settings.RTMP_PORT if port is None else port
        self.timeout = timeout or live_settings.RTMP_TIMEOUT
        self.max_connections = live_settings.RTMP_MAX_CONNECTIONS
        self.max_per_address = live_settings.RTMP_MAX_CONNECTIONS_PER_ADDRESS
        self._server = None
        self._connections = {}  # RTMPConnection -> its task
        self._per_address = {}  # peer address -> open connections

    async def start(self):
        """Bind the listening socket; ``self.port`` is the real port (useful with port 0)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("rtmp: listening on %s:%s", self.host, self.port)

    async def _accept(self, reader, writer):
        peer = writer.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        refusal = self.refusal(address)
        if refusal is not None:
            # Closed before the handshake: nothing is read, nothing is held.
            logger.info("rtmp %s: refused: %s", peer, refusal)
            writer.transport.abort()
            return
        connection = RTMPConnection(reader, writer, timeout=self.timeout)
        self._connections[connection] = asyncio.current_task()
        self._per_address[address] = self._per_address.get(address, 0) + 1
        try:
            await connection.run()
        finally:
            self._connections.pop(connection, None)
            left = self._per_address.pop(address, 1) - 1
            if left:
                self._per_address[address] = left

    def refusal(self, address):
        """Why a new connection from ``address`` is refused (caps reached), or None."""
        if len(self._connections) >= self.max_connections:
            return f"{self.max_connections} connections open (RTMP_MAX_CONNECTIONS)"
        if self._per_address.get(address, 0) >= self.max_per_address:
            return (
                f"{self.max_per_address} connections open from this address "
                "(RTMP_MAX_CONNECTIONS_PER_ADDRESS)"
            )
        return None

    async def serve_forever(self):
        """Serve until cancelled."""
        await self._server.serve_forever()

    async def close(self):
        """Stop listening, drop every connection and close every pipeline."""
        if self._server is not None:
            self._server.close()
        # Closing the sockets lets each connection finish its own clean-up.
        for connection in list(self._connections):
            connection.writer.close()
        tasks = list(self._connections.values())
        if tasks:
            await asyncio.wait(tasks, timeout=20)
        for task in tasks:
            task.cancel()
        await Broadcast.shutdown_all()


class EmbeddedRTMPBackend(IngestBackend):
    """OBS publishes to ``manage.py live_rtmp``: ``rtmp://<host>:<port>/live`` + the stream key."""

    name = "rtmp"

    def publish_url(self, session, request=None):
        """The server URL for the encoder (``RTMP_PUBLIC_URL``, else derived from the request)."""
        return rtmp_publish_url(request)
