"""The embedded RTMP listener's bounds, tried with a raw socket client before any stream key.

Malformed or oversized AMF0, oversized or spread-out messages, a huge chunk size, many
connections from one address or in all, and a client that trickles its handshake: each is
closed with one short log line (no traceback) and holds little memory, and the listener keeps
serving everyone else.
"""

import asyncio
import logging
import os
import struct

import pytest

from tests.ingest.streams import push_rtmp, wait_for
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest import amf0
from wagtail_live.ingest.rtmp import (
    COMMAND_AMF0,
    MAX_COMMAND_SIZE,
    SET_CHUNK_SIZE,
    RTMPServer,
    encode_message,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

TIMEOUT = 2


@pytest.fixture
async def server(settings):
    settings.WAGTAIL_LIVE = {
        "RECONNECT_GRACE": 0,
        "RTMP_MAX_CONNECTIONS": 20,
        "RTMP_MAX_CONNECTIONS_PER_ADDRESS": 4,
    }
    listener = RTMPServer("127.0.0.1", 0, timeout=TIMEOUT)
    await listener.start()
    yield listener
    await listener.close()


async def handshaken(server):
    """A raw connection that completed the RTMP handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x03" + os.urandom(1536))
    await reader.readexactly(1 + 1536 * 2)
    writer.write(os.urandom(1536))  # C2
    await writer.drain()
    return reader, writer


async def closed_by_server(reader, timeout=TIMEOUT + 3):
    """Read until EOF (or a reset); True when the server closed the connection in time."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except ConnectionError:
        pass
    return True


def command(*values, chunk_size=128, chunk_stream=3):
    return encode_message(
        COMMAND_AMF0, amf0.encode(*values), chunk_stream=chunk_stream, chunk_size=chunk_size
    )


def raw_command(payload, chunk_size=128):
    return encode_message(COMMAND_AMF0, payload, chunk_size=chunk_size)


def nested(depth, opener):
    """``connect`` followed by ``depth`` nested containers (``opener`` starts each level)."""
    return amf0.encode("connect", 1.0) + opener * depth


DEEP_OBJECTS = nested(3500, b"\x03\x00\x01a")
DEEP_ECMA = nested(1800, b"\x08\x00\x00\x00\x01\x00\x01a")
DEEP_STRICT = nested(3000, b"\x0a\x00\x00\x00\x01")
MANY_VALUES = amf0.encode("connect", 1.0) + b"\x0a" + struct.pack(">I", 8000) + b"\x05" * 8000
HUGE_STRING_CLAIM = amf0.encode("connect", 1.0) + b"\x0c\xff\xff\xff\xff" + b"x" * 100
HUGE_ARRAY_CLAIM = amf0.encode("connect", 1.0) + b"\x0a\xff\xff\xff\xff" + b"\x05" * 10


@pytest.mark.parametrize(
    "payload", [DEEP_OBJECTS, DEEP_ECMA, DEEP_STRICT, MANY_VALUES, HUGE_STRING_CLAIM]
)
def test_amf0_decoder_refuses_deep_or_oversized_values(payload):
    with pytest.raises(amf0.AMFError):
        amf0.decode_all(payload)


def test_amf0_decoder_refuses_a_48_kb_deeply_nested_message():
    with pytest.raises(amf0.AMFError):
        amf0.decode_all(nested(12_000, b"\x03\x00\x01a"))
    with pytest.raises(amf0.AMFError):
        amf0.decode_all(HUGE_ARRAY_CLAIM)


def test_amf0_decoder_still_reads_what_encoders_send():
    metadata = {"width": 1280.0, "height": 720.0, "encoder": "obs-output module", "nested": {}}
    assert amf0.decode_all(amf0.encode("@setDataFrame", "onMetaData", metadata)) == [
        "@setDataFrame",
        "onMetaData",
        metadata,
    ]


def assert_one_short_line(caplog):
    records = [r for r in caplog.records if r.name.startswith("wagtail_live.ingest")]
    assert records, "the refusal is logged"
    for record in records:
        assert record.exc_info is None, "no traceback"
        assert len(record.getMessage()) < 300


@pytest.mark.parametrize(
    "payload", [DEEP_OBJECTS, DEEP_ECMA, DEEP_STRICT, MANY_VALUES, HUGE_STRING_CLAIM]
)
async def test_malformed_amf0_before_publish_closes_with_one_line(server, caplog, payload):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    reader, writer = await handshaken(server)
    writer.write(raw_command(payload))
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    assert_one_short_line(caplog)
    assert "protocol error" in caplog.text


async def test_connect_with_an_object_as_transaction_id_is_answered_without_error(server, caplog):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    reader, writer = await handshaken(server)
    writer.write(command("connect", {"app": "live"}, {"app": "live"}))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 3)  # the server answers
    writer.close()
    await asyncio.sleep(0.2)
    assert not any(record.exc_info for record in caplog.records)


async def test_oversize_message_before_publish_is_refused(server, caplog):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    reader, writer = await handshaken(server)
    # Announces a command one byte over the limit: refused at its header, nothing buffered.
    writer.write(raw_command(b"\x05" * (MAX_COMMAND_SIZE + 1))[:300])
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    assert "too large" in caplog.text
    assert_one_short_line(caplog)


async def test_partial_messages_over_many_chunk_streams_are_capped(server, caplog):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    reader, writer = await handshaken(server)
    # Many chunk streams, each holding the first 5 KB of a large command that never ends.
    for chunk_stream in range(3, 60):
        message = encode_message(
            COMMAND_AMF0, b"\x05" * (MAX_COMMAND_SIZE - 10), chunk_stream=chunk_stream,
            chunk_size=128,
        )  # fmt: skip
        writer.write(message[: 12 + 128 + 129 * 39])
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    assert "unfinished data" in caplog.text


@pytest.mark.parametrize("size", [MAX_COMMAND_SIZE + 1, 8 * 1024 * 1024, 0x7FFFFFFF])
async def test_a_large_chunk_size_before_publish_is_refused(server, caplog, size):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    reader, writer = await handshaken(server)
    writer.write(encode_message(SET_CHUNK_SIZE, struct.pack(">I", size), chunk_size=128))
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    assert "invalid chunk size" in caplog.text


async def test_connections_per_address_are_capped(server, caplog):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    held = [await handshaken(server) for _ in range(4)]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # The fifth is closed at once, before its handshake (well inside the timeout).
    assert await closed_by_server(reader, timeout=1)
    writer.close()
    assert "RTMP_MAX_CONNECTIONS_PER_ADDRESS" in caplog.text
    # One leaves: a new one is served again.
    held.pop()[1].close()
    await asyncio.sleep(0.3)
    held.append(await handshaken(server))
    for _, held_writer in held:
        held_writer.close()


async def test_connections_in_all_are_capped(server, settings, caplog):
    caplog.set_level(logging.INFO, logger="wagtail_live")
    server.max_per_address = 100
    held = [await handshaken(server) for _ in range(server.max_connections)]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await closed_by_server(reader, timeout=1)
    writer.close()
    assert "RTMP_MAX_CONNECTIONS)" in caplog.text
    for _, held_writer in held:
        held_writer.close()


@pytest.mark.parametrize("stage", ["handshake", "commands"])
async def test_a_trickling_client_is_closed_at_the_deadline(server, stage):
    """Slowloris: a byte every 0.3 s keeps every read busy, but not the deadline."""
    loop = asyncio.get_running_loop()
    if stage == "handshake":
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        drip = b"\x03" + os.urandom(1536)
    else:
        reader, writer = await handshaken(server)
        drip = command("connect", 1.0, {"app": "live"})
    started = loop.time()

    async def trickle():
        for byte in drip:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.3)

    dripping = asyncio.create_task(trickle())
    try:
        assert await closed_by_server(reader, timeout=TIMEOUT + 3)
    finally:
        dripping.cancel()
        writer.close()
    assert loop.time() - started < TIMEOUT + 2


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_memory_per_unauthenticated_connection_is_small(server):
    """50 connections each trying to leave 600 KB of unfinished messages hold a few MiB in all.

    Each writes the first 12 KB of a command on each of 50 chunk streams: what it may
    hold is capped (16 KiB) and past that it is closed. Before the bounds, each held it all.
    """
    server.max_per_address = server.max_connections = 60
    before = rss_bytes()
    held = []
    for _ in range(50):
        reader, writer = await handshaken(server)
        for chunk_stream in range(3, 53):
            message = encode_message(
                COMMAND_AMF0, b"\x05" * 15000, chunk_stream=chunk_stream, chunk_size=128
            )
            writer.write(message[: 12 + 128 + 129 * 92])  # whole chunks, no message finished
        try:
            await writer.drain()
        except ConnectionError:
            pass  # closed for holding too much: the point
        held.append((reader, writer))
    await asyncio.sleep(0.5)
    grown = rss_bytes() - before
    assert grown < 30 * 1024 * 1024, f"{grown / 2**20:.1f} MiB for 50 connections"
    for _, writer in held:
        writer.close()


@pytest.mark.services
async def test_after_every_refusal_an_encoder_still_publishes(server):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    for payload in (DEEP_OBJECTS, MANY_VALUES):
        reader, writer = await handshaken(server)
        writer.write(raw_command(payload))
        await writer.drain()
        await closed_by_server(reader)
        writer.close()

    def create():
        session = make_session()
        return session, session.issue_stream_key()

    from asgiref.sync import sync_to_async

    from wagtail_live.ingest.base import hls_playlist_path

    session, key = await sync_to_async(create)()
    encoder = await push_rtmp(f"rtmp://127.0.0.1:{server.port}/live/{key}", seconds=2)
    await wait_for(lambda: hls_playlist_path(session).exists())
    assert await encoder.wait() == 0
