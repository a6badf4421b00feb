"""A minimal RTMP publisher: sends an FLV byte stream to an RTMP server under a stream key.

Why: an encoder given ``rtmp://host/live/<key>`` on its command line shows the key to
anyone who can list processes (``ps``, ``/proc/<pid>/cmdline``). The demo stream
therefore lets ffmpeg write FLV to a pipe and publishes it from here, with the key
kept in this process's memory. It speaks the client half of what
:mod:`wagtail_live.ingest.rtmp` serves: the plain handshake, ``connect``,
``createStream``, ``publish``, then each FLV tag as one audio, video or data message.
"""

import asyncio
import os
import struct
import time

from . import amf0
from .rtmp import (
    AUDIO,
    COMMAND_AMF0,
    DATA_AMF0,
    HANDSHAKE_SIZE,
    OUR_CHUNK_SIZE,
    PUBLISH_STREAM_ID,
    RTMP_VERSION,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    encode_message,
)

FLV_TAG_TYPES = {8: AUDIO, 9: VIDEO, 18: DATA_AMF0}
# Chunk streams per kind, as encoders use them (commands, audio, video).
COMMAND_CHUNK_STREAM, AUDIO_CHUNK_STREAM, VIDEO_CHUNK_STREAM = 3, 4, 6


class PublishRefused(Exception):
    """The server refused the stream key (or the connection) before any media was sent."""


async def publish_flv(host, port, app, stream_key, flv, *, timeout=10):
    """Publish the FLV read from ``flv`` (an ``asyncio.StreamReader``) to ``rtmp://host:port/app``.

    Returns when ``flv`` ends. Raises :class:`PublishRefused` when the server does
    not answer ``NetStream.Publish.Start`` within ``timeout`` seconds.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(timeout):
            await _handshake(reader, writer)
            chunks = ChunkReader(reader)
            chunks.allow_media()
            await _start_publishing(chunks, writer, f"rtmp://{host}:{port}/{app}", app, stream_key)
        drain = asyncio.create_task(_discard_server_messages(chunks))
        try:
            await _send_tags(flv, writer)
        finally:
            drain.cancel()
    finally:
        writer.close()


async def _handshake(reader, writer):
    c1 = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + b"\x00" * 4
    c1 += os.urandom(HANDSHAKE_SIZE - 8)
    writer.write(bytes([RTMP_VERSION]) + c1)
    await writer.drain()
    s0s1 = await reader.readexactly(1 + HANDSHAKE_SIZE)
    await reader.readexactly(HANDSHAKE_SIZE)  # S2, an echo of C1
    writer.write(s0s1[1:])  # C2 echoes S1
    await writer.drain()


def _command(*values, stream_id=0):
    return encode_message(
        COMMAND_AMF0,
        amf0.encode(*values),
        chunk_stream=COMMAND_CHUNK_STREAM,
        stream_id=stream_id,
        chunk_size=OUR_CHUNK_SIZE,
    )


async def _start_publishing(chunks, writer, tc_url, app, stream_key):
    writer.write(
        encode_message(
            SET_CHUNK_SIZE, struct.pack(">I", OUR_CHUNK_SIZE), chunk_stream=2, chunk_size=128
        )
        + _command("connect", 1.0, {"app": app, "type": "nonprivate", "tcUrl": tc_url})
        + _command("createStream", 2.0, None)
        + _command("publish", 3.0, None, stream_key, "live", stream_id=PUBLISH_STREAM_ID)
    )
    await writer.drain()
    while True:
        for type_id, _, _, payload in await chunks.read_messages():
            if type_id == SET_CHUNK_SIZE:
                chunks.set_chunk_size(struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF)
            elif type_id == COMMAND_AMF0:
                values = amf0.decode_all(payload)
                info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
                if values[0] == "onStatus" and info.get("code") == "NetStream.Publish.Start":
                    return
                if values[0] in ("onStatus", "_error") and info.get("level") == "error":
                    raise PublishRefused(info.get("description") or info.get("code"))


async def _discard_server_messages(chunks):
    # Acknowledgements and the like: read so the server's writes never block.
    try:
        while True:
            for type_id, _, _, payload in await chunks.read_messages():
                if type_id == SET_CHUNK_SIZE:
                    chunks.set_chunk_size(struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


async def _send_tags(flv, writer):
    """Each FLV tag (after the 9-byte header and PreviousTagSize0) as one RTMP message."""
    header = await flv.readexactly(13)
    if header[:3] != b"FLV":
        raise ValueError("not an FLV stream")
    while True:
        try:
            tag = await flv.readexactly(11)
        except asyncio.IncompleteReadError:
            return  # the encoder finished
        size = int.from_bytes(tag[1:4], "big")
        timestamp = int.from_bytes(tag[4:7], "big") | (tag[7] << 24)
        body = await flv.readexactly(size)
        await flv.readexactly(4)  # PreviousTagSize
        type_id = FLV_TAG_TYPES.get(tag[0] & 0x1F)
        if type_id is None:
            continue
        chunk_stream = {AUDIO: AUDIO_CHUNK_STREAM, VIDEO: VIDEO_CHUNK_STREAM}.get(
            type_id, COMMAND_CHUNK_STREAM
        )
        if type_id == DATA_AMF0:
            body = amf0.encode("@setDataFrame") + body
        writer.write(
            encode_message(
                type_id,
                body,
                chunk_stream=chunk_stream,
                stream_id=PUBLISH_STREAM_ID,
                timestamp=timestamp,
                chunk_size=OUR_CHUNK_SIZE,
            )
        )
        await writer.drain()
