"""The embedded RTMP listener, with real ffmpeg encoders publishing lavfi streams to it."""

import asyncio
import os
import subprocess
from array import array
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async

from tests.ingest.streams import (
    audio_formats,
    decodes_without_error,
    media_timestamps,
    playlist_segments,
    probe,
    push_rtmp,
    segments_around_the_change,
    video_sizes,
    wait_for,
)
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest import amf0, rtmp_publish_url
from wagtail_live.ingest.base import hls_dir, hls_playlist_path, recording_path
from wagtail_live.ingest.rtmp import (
    ChunkReader,
    EmbeddedRTMPBackend,
    RTMPServer,
    encode_message,
)
from wagtail_live.models import LiveSession, Recording, StreamKey

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def grace(settings):
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 2}


@pytest.fixture
async def server(grace):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    listener = RTMPServer("127.0.0.1", 0, timeout=4)
    await listener.start()
    yield listener
    await listener.close()


def url(server, key):
    return f"rtmp://127.0.0.1:{server.port}/live/{key}"


async def live_session_with_key(title="Open day"):
    def create():
        session = make_session(title)
        return session, session.issue_stream_key()

    return await sync_to_async(create)()


async def status_of(session):
    await sync_to_async(session.refresh_from_db)()
    return session.status


async def wait_until_ended(session, timeout):
    for _ in range(int(timeout * 10)):
        if await status_of(session) == LiveSession.Status.ENDED:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"session still {session.status} after {timeout}s")


def playlist_ready(session, segments=1):
    path = hls_playlist_path(session)
    return path.exists() and len(playlist_segments(path)) >= segments


# -- the happy path ------------------------------------------------------------


@pytest.mark.services
@pytest.mark.slow
async def test_right_key_gives_one_second_hls_recording_and_lifecycle(server):
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=4)

    await wait_for(lambda: playlist_ready(session))
    assert await status_of(session) == LiveSession.Status.LIVE
    assert await encoder.wait() == 0

    # The encoder left: the session ends after the grace period, and the recording is handed on.
    await wait_until_ended(session, timeout=10)
    segments = playlist_segments(hls_playlist_path(session))
    assert all(0.8 <= duration <= 1.2 for duration, _ in segments[:-1])
    assert probe(hls_dir(session) / segments[0][1])[0] == ["aac", "h264"]
    assert hls_playlist_path(session).read_text().rstrip().endswith("#EXT-X-ENDLIST")
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and 3.5 < duration < 4.6
    assert await sync_to_async(Recording.objects.filter(session_id=session.pk).exists)()


@pytest.mark.services
@pytest.mark.slow
async def test_a_high_bitrate_stream_is_read_in_real_time(server, tmp_path):
    # The listener rests between reads; it must still keep up with an encoder sending far
    # more than one read's worth per rest (a 24 Mbit/s stream: 300 KB per 100 ms).
    seconds = 6
    source = tmp_path / "cbr.flv"
    await asyncio.to_thread(
        subprocess.run,
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi",
         "-i", "sine=sample_rate=48000", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-b:v", "24M",
         "-minrate", "24M", "-maxrate", "24M", "-bufsize", "2M",
         "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-f", "flv", str(source)],
        check=True,
    )  # fmt: skip
    assert source.stat().st_size > seconds * 2_500_000  # it really is ~24 Mbit/s
    session, key = await live_session_with_key()
    started = asyncio.get_running_loop().time()
    encoder = await asyncio.create_subprocess_exec(
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-i", str(source), "-c", "copy", "-f", "flv", url(server, key),
    )  # fmt: skip
    assert await asyncio.wait_for(encoder.wait(), 60) == 0
    # An encoder held back by a slow reader takes longer than the media lasts.
    assert asyncio.get_running_loop().time() - started < seconds + 4
    await wait_until_ended(session, timeout=15)
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and duration > seconds - 1


@pytest.mark.services
@pytest.mark.slow
async def test_one_listener_serves_several_sessions(server):
    (first, first_key), (second, second_key) = [
        await live_session_with_key("one"),
        await live_session_with_key("two"),
    ]
    encoders = [
        await push_rtmp(url(server, first_key), seconds=3),
        await push_rtmp(url(server, second_key), seconds=3),
    ]
    await wait_for(lambda: playlist_ready(first, 2) and playlist_ready(second, 2))
    assert [await encoder.wait() for encoder in encoders] == [0, 0]


# -- refused encoders ------------------------------------------------------------


async def assert_refused(server, session, key):
    encoder = await push_rtmp(url(server, key), seconds=2)
    _, stderr = await asyncio.wait_for(encoder.communicate(), 10)
    assert encoder.returncode != 0
    assert b"stream key" in stderr or b"ended" in stderr or b"already live" in stderr
    assert not os.path.exists(session.media_dir), "nothing may be written for a refused encoder"


@pytest.mark.services
async def test_wrong_key_is_refused_before_any_file(server):
    session, _key = await live_session_with_key()
    await assert_refused(server, session, "not-the-key")
    assert await status_of(session) == LiveSession.Status.READY


@pytest.mark.services
async def test_revoked_key_is_refused(server):
    session, key = await live_session_with_key()
    await sync_to_async(session.revoke_stream_key)()
    await assert_refused(server, session, key)


@pytest.mark.services
async def test_replaced_key_is_refused(server):
    session, key = await live_session_with_key()
    await sync_to_async(session.issue_stream_key)()
    await assert_refused(server, session, key)


@pytest.mark.services
async def test_expired_key_is_refused(server):
    session, key = await live_session_with_key()

    def age_key():
        issued = StreamKey.objects.get(session=session).issued_at
        StreamKey.objects.filter(session=session).update(issued_at=issued - timedelta(days=30))

    await sync_to_async(age_key)()
    await assert_refused(server, session, key)


@pytest.mark.services
async def test_ended_session_key_is_refused(server):
    session, key = await live_session_with_key()
    await sync_to_async(session.end)()
    await assert_refused(server, session, key)


@pytest.mark.services
@pytest.mark.slow
async def test_second_encoder_is_refused_and_the_first_keeps_streaming(server):
    session, key = await live_session_with_key()
    first = await push_rtmp(url(server, key), seconds=6)
    await wait_for(lambda: playlist_ready(session, 2))

    second = await push_rtmp(url(server, key), seconds=2)
    _, stderr = await asyncio.wait_for(second.communicate(), 10)
    assert second.returncode != 0 and b"already live" in stderr

    count = len(playlist_segments(hls_playlist_path(session)))
    await wait_for(lambda: len(playlist_segments(hls_playlist_path(session))) > count)
    assert await first.wait() == 0


# -- bad clients -------------------------------------------------------------------


async def assert_closed_by_server(reader, timeout=5):
    data = await asyncio.wait_for(reader.read(), timeout)  # read() returns at EOF
    return data


@pytest.mark.services
async def test_garbage_bytes_are_dropped_and_the_listener_keeps_serving(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" + os.urandom(4000))
    await writer.drain()
    await assert_closed_by_server(reader)
    writer.close()

    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=2)
    await wait_for(lambda: playlist_ready(session))
    assert await encoder.wait() == 0


@pytest.mark.services
async def test_garbage_after_the_handshake_is_dropped(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x03" + os.urandom(1536))
    await reader.readexactly(1 + 1536 * 2)
    writer.write(os.urandom(1536))  # C2
    # A chunk announcing a message far larger than any encoder sends, then noise.
    writer.write(b"\x03" + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x14" + b"\x00" * 4)
    writer.write(os.urandom(2000))
    await writer.drain()
    await assert_closed_by_server(reader)
    writer.close()


@pytest.mark.services
async def test_client_that_sends_nothing_is_disconnected(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await assert_closed_by_server(reader, timeout=server.timeout + 3)
    writer.close()


@pytest.mark.services
async def test_client_that_stalls_before_publishing_is_disconnected(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x03" + os.urandom(1536))
    await reader.readexactly(1 + 1536 * 2)
    writer.write(os.urandom(1536))
    await writer.drain()
    # Handshake done, then nothing: the server must not wait for ever.
    await assert_closed_by_server(reader, timeout=server.timeout + 3)
    writer.close()


# -- a dying encoder -------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.slow
async def test_encoder_dying_then_resuming_within_grace_continues_the_same_recording(
    server, settings
):
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 6}
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=0)
    await wait_for(lambda: playlist_ready(session, 2))
    encoder.kill()  # the encoder dies mid-stream, without saying goodbye
    await encoder.wait()
    await asyncio.sleep(1)
    size_before = recording_path(session).stat().st_size
    assert await status_of(session) == LiveSession.Status.LIVE  # within the grace period

    again = await push_rtmp(url(server, key), seconds=3)
    assert await again.wait() == 0
    await wait_until_ended(session, timeout=15)

    assert recording_path(session).stat().st_size > size_before
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and duration > 4
    assert "#EXT-X-DISCONTINUITY" in hls_playlist_path(session).read_text()


@pytest.mark.services
@pytest.mark.slow
async def test_encoder_dying_without_return_ends_the_session_and_keeps_the_recording(server):
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=0)
    await wait_for(lambda: playlist_ready(session, 2))
    encoder.kill()
    await encoder.wait()

    await wait_until_ended(session, timeout=10)
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and duration > 1
    assert await sync_to_async(Recording.objects.filter(session_id=session.pk).exists)()


# -- protocol pieces ------------------------------------------------------------------


def test_amf0_round_trip():
    values = ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://x/live", "n": None}, True]
    assert amf0.decode_all(amf0.encode(*values)) == values


def test_amf0_truncated_input_is_an_error():
    with pytest.raises(amf0.AMFError):
        amf0.decode_all(amf0.encode("publish")[:-2])


async def test_chunk_reader_reassembles_messages_split_into_chunks():
    payload = os.urandom(1000)
    reader = asyncio.StreamReader()
    reader.feed_data(encode_message(9, payload, chunk_stream=6, stream_id=1, chunk_size=128))
    reader.feed_eof()
    [(type_id, stream_id, timestamp, body)] = await ChunkReader(reader).read_messages()
    assert (type_id, stream_id, body) == (9, 1, payload)


async def test_chunk_reader_takes_everything_buffered_in_one_read():
    frames = [os.urandom(40_000) for _ in range(20)]  # 800 KB, far more than one chunk block
    reader = asyncio.StreamReader(limit=2**22)
    reader.feed_data(
        b"".join(encode_message(9, f, chunk_stream=6, stream_id=1, chunk_size=4096) for f in frames)
    )
    chunks = ChunkReader(reader)
    chunks.allow_media()  # publishing: media-sized messages and reads
    chunks.chunk_size = 4096
    messages = await chunks.read_messages()
    assert [m[3] for m in messages] == frames


async def test_chunk_reader_returns_buffered_media_together_and_stops_after_a_command():
    video, audio = os.urandom(300), os.urandom(20)
    reader = asyncio.StreamReader()
    reader.feed_data(
        encode_message(9, video, chunk_stream=6, stream_id=1, chunk_size=128)
        + encode_message(8, audio, chunk_stream=4, stream_id=1, chunk_size=128)
        + encode_message(1, (4096).to_bytes(4, "big"), chunk_stream=2, chunk_size=128)
        # After the chunk-size change: one 4096-byte chunk, not 128-byte ones.
        + encode_message(9, video * 10, chunk_stream=6, stream_id=1, chunk_size=4096)
    )
    reader.feed_eof()
    chunks = ChunkReader(reader)
    first = await chunks.read_messages()
    assert [(m[0], m[3]) for m in first] == [(9, video), (8, audio), (1, b"\x00\x00\x10\x00")]
    chunks.chunk_size = 4096  # what the connection does on SET_CHUNK_SIZE
    [(type_id, _, _, body)] = await chunks.read_messages()
    assert (type_id, body) == (9, video * 10)


def test_publish_url_uses_the_configured_port(settings, rf):
    settings.WAGTAIL_LIVE = {"RTMP_PORT": 19350}
    request = rf.get("/", HTTP_HOST="live.example.com:8000")
    settings.ALLOWED_HOSTS = ["live.example.com"]
    assert EmbeddedRTMPBackend().publish_url(None, request) == "rtmp://live.example.com:19350/live"
    settings.WAGTAIL_LIVE = {"RTMP_PUBLIC_URL": "rtmp://ingest.example.com/live"}
    assert rtmp_publish_url(request) == "rtmp://ingest.example.com/live"


# -- the demo stream command -------------------------------------------------------------


@pytest.mark.services
@pytest.mark.slow
async def test_live_demo_stream_publishes_a_demo_session(server):
    from django.core.management import call_command

    from wagtail_live.management.commands.live_demo_stream import DEMO_TITLE

    command = asyncio.create_task(
        sync_to_async(call_command, thread_sensitive=False)(
            "live_demo_stream",
            f"--url=rtmp://127.0.0.1:{server.port}/live",
            "--size=320x240",
            "--fps=15",
            "--duration=3",
        )
    )
    await command
    session = await sync_to_async(LiveSession.objects.get)(title=DEMO_TITLE)
    segments = playlist_segments(hls_playlist_path(session))
    assert len(segments) >= 2
    codecs, _ = probe(hls_dir(session) / segments[0][1])
    assert codecs == ["aac", "h264"]


def test_live_demo_stream_refuses_an_unknown_session():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no live session"):
        call_command("live_demo_stream", "--session=999999", "--duration=1")


def test_demo_filter_burns_in_a_clock_when_a_font_exists():
    from wagtail_live.management.commands.live_demo_stream import demo_ffmpeg_args

    with_font = demo_ffmpeg_args("rtmp://x/live/k", font="/fonts/a.ttf")
    assert "drawtext=fontfile='/fonts/a.ttf'" in with_font[with_font.index("-i") + 1]
    without = demo_ffmpeg_args("rtmp://x/live/k", font=None)
    assert "drawtext" not in " ".join(without)


@pytest.mark.services
@pytest.mark.slow
async def test_our_ffmpeg_dying_drops_the_encoder_and_keeps_the_recording(server):
    from wagtail_live.ingest.base import Broadcast

    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=0)
    await wait_for(lambda: playlist_ready(session, 2))
    Broadcast.for_session(session).pipeline._process.kill()  # the pipeline's ffmpeg crashes

    # The encoder is disconnected rather than left sending into nothing ...
    assert await asyncio.wait_for(encoder.wait(), 15) != 0
    # ... and the session ends after the grace period with what was recorded so far.
    await wait_until_ended(session, timeout=10)
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and duration > 1


@pytest.mark.services
@pytest.mark.slow
async def test_end_live_in_the_admin_drops_the_encoder_and_hands_off_at_once(server, settings):
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 60}  # must not be waited for
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=0)
    await wait_for(lambda: playlist_ready(session, 2))

    await sync_to_async(session.end)()

    assert await asyncio.wait_for(encoder.wait(), 15) != 0  # dropped within seconds
    await wait_for(
        lambda: hls_playlist_path(session).read_text().rstrip().endswith("#EXT-X-ENDLIST"),
        timeout=10,
    )
    assert await sync_to_async(Recording.objects.filter(session_id=session.pk).exists)()


async def parse_all(data, **attributes):
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    chunks = ChunkReader(reader)
    if attributes.pop("publishing", False):
        chunks.allow_media()
    for name, value in attributes.items():
        setattr(chunks, name, value)
    [message] = await chunks.read_messages()
    return message


async def test_large_messages_are_refused_before_publish():
    from wagtail_live.ingest.rtmp import RTMPProtocolError

    big = encode_message(20, b"\x00" * 100_000, chunk_stream=3, chunk_size=128)
    with pytest.raises(RTMPProtocolError, match="too large"):
        await parse_all(big)
    # Once publishing, media messages of that size are fine.
    type_id, _, _, body = await parse_all(big, publishing=True)
    assert type_id == 20 and len(body) == 100_000


async def test_too_many_chunk_streams_are_refused():
    from wagtail_live.ingest.rtmp import RTMPProtocolError

    # Each chunk stream starts a 200-byte message and sends only its first 128-byte chunk.
    def unfinished_message(n):
        basic_header = bytes([0x00, n])  # format 0, chunk stream 64 + n
        header = b"\x00\x00\x00" + (200).to_bytes(3, "big") + bytes([9]) + b"\x00" * 4
        return basic_header + header + b"\x00" * 128

    data = b"".join(unfinished_message(n) for n in range(100))
    with pytest.raises(RTMPProtocolError, match="too many chunk streams"):
        await parse_all(data)


# -- what real encoders send (issue 12) --------------------------------------------------


async def processed_recording(session):
    def load():
        recording = Recording.objects.select_related("media").get(session_id=session.pk)
        return recording, recording.media, recording.page_id

    return await sync_to_async(load)()


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.parametrize("realtime", [True, False], ids=["real-time", "faster"])
async def test_audio_only_broadcast_goes_live_with_audio_hls_and_an_audio_recording(
    server, realtime
):
    # A radio show: AAC alone, sent in real time and (a file pushed) faster than real time.
    from tests.test_recordings import ensure_default_site

    await sync_to_async(ensure_default_site)()
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=4, video=None, realtime=realtime)
    await wait_for(lambda: playlist_ready(session))
    assert await status_of(session) == LiveSession.Status.LIVE
    _, stderr = await encoder.communicate()
    assert encoder.returncode == 0, stderr

    await wait_until_ended(session, timeout=15)
    segments = playlist_segments(hls_playlist_path(session))
    assert probe(hls_dir(session) / segments[0][1])[0] == ["aac"]
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac"] and 3.5 < duration < 4.6
    recording, media, page_id = await wait_for_async(lambda: processed_recording(session))
    assert recording.status == Recording.Status.READY, recording.error
    assert media.type == "audio" and page_id


async def wait_for_async(load, timeout=30):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await load()
            if result[0].status in (Recording.Status.READY, Recording.Status.FAILED):
                return result
        except Recording.DoesNotExist:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("recording not processed")
        await asyncio.sleep(0.2)


def tone_frequency(samples, rate):
    """The frequency (Hz) of a sine tone, from its rising edges.

    An edge is a rise from below a quarter of the peak to above it: AAC's noise around
    zero crosses zero several times in a row, which would count as extra periods.
    """
    threshold = max(abs(sample) for sample in samples) / 4
    rising, low = 0, False
    for sample in samples:
        if sample < -threshold:
            low = True
        elif sample > threshold and low:
            rising, low = rising + 1, False
    return rising * rate / len(samples)


def decoded_audio(path, start, end):
    """Mono samples of ``path``'s audio between ``start`` and ``end`` seconds, and the rate."""
    import av

    samples, rate = [], None
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            at = float(frame.pts * frame.time_base)
            if start <= at < end:
                assert frame.format.name == "fltp"  # AAC decodes to planar 32-bit floats
                samples.extend(array("f", bytes(frame.planes[0]))[: frame.samples])
    return samples, rate


@pytest.mark.services
@pytest.mark.slow
async def test_a_reconnect_with_other_settings_records_a_file_that_plays_right_throughout(
    server, settings
):
    # Part 1: 720p, 48 kHz stereo; 3 s later part 2: 360p, 44.1 kHz mono. The same 1 kHz tone
    # in both: played with one audio format for the whole file, part 2 came out 8.8 % sharp.
    from tests.test_recordings import ensure_default_site

    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 8}
    await sync_to_async(ensure_default_site)()
    session, key = await live_session_with_key()
    first = await push_rtmp(url(server, key), seconds=4, size="1280x720", tone=1000)
    assert await first.wait() == 0
    await asyncio.sleep(3)
    second = await push_rtmp(
        url(server, key), seconds=4, size="640x360", tone=1000, sample_rate=44100, channels=1
    )
    assert await second.wait() == 0
    await wait_until_ended(session, timeout=30)
    assert "#EXT-X-DISCONTINUITY" in hls_playlist_path(session).read_text()

    recording, media, _page = await wait_for_async(lambda: processed_recording(session), 120)
    assert recording.status == Recording.Status.READY, recording.error
    path = media.file.path
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"] and 7 < duration < 9.5
    samples, rate = decoded_audio(path, 0.5, 3.5)
    assert rate == 48000 and tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)
    samples, rate = decoded_audio(path, duration - 3.5, duration - 0.5)
    assert rate == 48000 and tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)

    import av

    with av.open(path) as container:
        sizes = {(frame.width, frame.height) for frame in container.decode(video=0)}
    assert sizes == {(1280, 720)}  # part 2 scaled into part 1's frame, not misread


@pytest.mark.services
@pytest.mark.slow
async def test_long_keyframe_intervals_lose_nothing_of_the_first_group_of_pictures(server):
    # A keyframe only every 5 s: segments follow the keyframes, and the first group of
    # pictures reaches HLS and the recording whole (video from the very first frame).
    session, key = await live_session_with_key()
    encoder = await push_rtmp(url(server, key), seconds=11, keyframe_seconds=5)
    assert await encoder.wait() == 0
    await wait_until_ended(session, timeout=20)
    segments = playlist_segments(hls_playlist_path(session))
    assert segments[0][0] == pytest.approx(5, abs=0.3)
    assert "#EXT-X-TARGETDURATION:5" in hls_playlist_path(session).read_text()
    first_segment = media_timestamps(hls_dir(session) / segments[0][1])
    recording = media_timestamps(recording_path(session))
    assert recording[0] == pytest.approx(first_segment[0], abs=0.1)
    assert recording[-1] - recording[0] > 10  # 11 s of video, none missing at the start
    assert len(recording) >= 15 * 10


# -- codec parameters changing within one publish (issue 12) ------------------------------

PART = {"seconds": 3, "tone": 1000, "realtime": False}
FIRST = {"size": "640x360", "sample_rate": 48000, "channels": 2}
CHANGES = {
    "video-and-audio": {"size": "320x240", "sample_rate": 44100, "channels": 1},
    "video": {"size": "320x240", "sample_rate": 48000, "channels": 2},
    "audio": {"size": "640x360", "sample_rate": 44100, "channels": 1},
}


def flv_tags(data):
    """The (type, timestamp in ms, body) of each tag of an FLV file."""
    position = 13  # the FLV header and PreviousTagSize0
    while position + 11 <= len(data):
        size = int.from_bytes(data[position + 1 : position + 4], "big")
        stamp = int.from_bytes(data[position + 4 : position + 7], "big") | data[position + 7] << 24
        yield data[position], stamp, data[position + 11 : position + 11 + size]
        position += 11 + size + 4


def spliced_flv(path, parts):
    """Write the FLV files ``parts`` one after another as a single FLV stream at ``path``.

    Timestamps continue across the joins and each part keeps its own sequence headers:
    what an encoder sends when its settings change without reconnecting. (The concat
    demuxer cannot make this: it keeps the first file's codec parameters.)
    """
    from wagtail_live.ingest.rtmp import flv_header, flv_tag

    out, offset = [flv_header()], 0
    for index, part in enumerate(parts):
        last = 0
        for kind, stamp, body in flv_tags(part.read_bytes()):
            if kind == 18 and index:
                continue  # one onMetaData, at the start, as encoders send it
            out.append(flv_tag(kind, stamp + offset, body))
            last = max(last, stamp)
        offset += last + 23  # about one audio frame after the part's last tag
    path.write_bytes(b"".join(out))
    return path


async def publish_file(url, path):
    """Publish an FLV file to ``url`` in real time, as it is (ffmpeg's flv muxer passes
    each new sequence header on, mid-stream)."""
    encoder = await asyncio.create_subprocess_exec(
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-i", str(path), "-c", "copy", "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await encoder.communicate()
    assert encoder.returncode == 0, stderr


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.parametrize("change", list(CHANGES))
async def test_settings_changed_mid_publish_start_a_new_part_and_the_recording_plays_right(
    server, tmp_path, change
):
    # One publish, no reconnect: 3 s, then the encoder's new settings (a new AVC sequence
    # header, a new AAC AudioSpecificConfig, or both) for 3 s more. The same 1 kHz tone
    # throughout: audio read with the first part's sample rate would come out 8.8 % sharp.
    from tests.ingest.streams import encode_file
    from tests.test_recordings import ensure_default_site

    await sync_to_async(ensure_default_site)()
    second = CHANGES[change]
    parts = [tmp_path / "first.flv", tmp_path / "second.flv"]
    for part, settings in zip(parts, (FIRST, second), strict=True):
        await asyncio.to_thread(encode_file, part, **PART, **settings)
    stream = spliced_flv(tmp_path / "stream.flv", parts)
    session, key = await live_session_with_key()

    await publish_file(url(server, key), stream)
    await wait_until_ended(session, timeout=20)

    # Live HLS: a discontinuity where the settings changed, each side in its own settings.
    playlist = hls_playlist_path(session)
    before, after = segments_around_the_change(playlist)
    for name, settings in ((before, FIRST), (after, second)):
        segment = hls_dir(session) / name
        size = tuple(int(n) for n in settings["size"].split("x"))
        assert video_sizes(segment) == [size]
        rate, channels = settings["sample_rate"], settings["channels"]
        assert audio_formats(segment) == [(rate, channels)]
        samples, _ = decoded_audio(segment, 0, 99)
        middle = samples[len(samples) // 10 : -len(samples) // 10]  # no encoder priming
        assert tone_frequency(middle, rate) == pytest.approx(1000, rel=0.02)

    # The recording: both parts, each as it was sent, then one MP4 that plays throughout.
    raw = recording_path(session)
    first_size = tuple(int(n) for n in FIRST["size"].split("x"))
    second_size = tuple(int(n) for n in second["size"].split("x"))
    assert video_sizes(raw) == list(dict.fromkeys([first_size, second_size]))
    recording, media, _page = await wait_for_async(lambda: processed_recording(session), 120)
    assert recording.status == Recording.Status.READY, recording.error
    path = media.file.path
    assert decodes_without_error(path) == (True, "")
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"] and 5.5 < duration < 6.8
    assert audio_formats(path) == [(48000, 2)]  # the first part's format, the second resampled
    for start, end in ((0.3, 2.7), (duration - 2.7, duration - 0.3)):
        samples, rate = decoded_audio(path, start, end)
        assert tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)
    assert video_sizes(path) == [first_size]  # the smaller part scaled into the first's frame
    expected = Recording.Conversion.AUDIO if change == "audio" else Recording.Conversion.TRANSCODE
    assert recording.conversion == expected


@pytest.mark.services
@pytest.mark.slow
async def test_new_audio_held_for_the_next_keyframe_is_recorded_when_the_encoder_stops_first(
    server, tmp_path
):
    # New audio settings wait for a keyframe to start their part; here the encoder stops
    # after 1 s of the new audio and no keyframe comes: that audio still gets its part.
    from tests.ingest.streams import encode_file
    from wagtail_live.ingest.rtmp import flv_header, flv_tag

    first, second = tmp_path / "first.flv", tmp_path / "second.flv"
    await asyncio.to_thread(encode_file, first, **PART, **FIRST)
    await asyncio.to_thread(encode_file, second, **{**PART, "seconds": 1}, **CHANGES["audio"])
    audio = [flv_tag(kind, stamp, body) for kind, stamp, body in flv_tags(second.read_bytes())]
    second.write_bytes(flv_header() + b"".join(tag for tag in audio if tag[0] == 8))
    session, key = await live_session_with_key()

    await publish_file(url(server, key), spliced_flv(tmp_path / "stream.flv", [first, second]))
    await wait_until_ended(session, timeout=20)

    raw = recording_path(session)
    assert audio_formats(raw) == [(48000, 2), (44100, 1)]
    assert decodes_without_error(raw) == (True, "")
    samples, rate = decoded_audio(raw, 0, 99)
    last = samples[-int(0.7 * rate) : -int(0.1 * rate)]  # inside the last part, before its end
    assert rate == 44100 and tone_frequency(last, rate) == pytest.approx(1000, rel=0.02)


def test_sequence_headers_keyframes_and_other_video_tags_are_told_apart():
    from wagtail_live.ingest.rtmp import AUDIO, VIDEO, is_keyframe, sequence_header_of

    avc_header, avc_keyframe = b"\x17\x00\x00\x00\x00\x01\x42", b"\x17\x01\x00\x00\x00\x65"
    end_of_sequence, inter_frame = b"\x17\x02\x00\x00\x00", b"\x27\x01\x00\x00\x00\x41"
    hevc_start, hevc_frame = b"\x90hvc1\x01", b"\x93hvc1\x26"  # Enhanced RTMP, keyframes
    for payload, header, keyframe in [
        (avc_header, True, False),
        (avc_keyframe, False, True),
        (end_of_sequence, False, False),  # ffmpeg's last tag: flagged a keyframe, no picture
        (inter_frame, False, False),
        (hevc_start, True, False),
        (hevc_frame, False, True),
    ]:
        assert (sequence_header_of(VIDEO, payload) is not None, is_keyframe(payload)) == (
            header,
            keyframe,
        ), payload
    assert sequence_header_of(AUDIO, b"\xaf\x00\x12\x10") == b"\xaf\x00\x12\x10"  # AAC config
    assert sequence_header_of(AUDIO, b"\xaf\x01\x21") is None  # an AAC frame
    assert sequence_header_of(AUDIO, b"\x2f\xff\xfb") is None  # MP3 has no sequence header
