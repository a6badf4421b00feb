"""The browser ingest socket, end to end: a real daphne, real websockets, real ffmpeg.

WebM made by ffmpeg from lavfi sources stands in for the camera: H.264/Opus as
Chromium's MediaRecorder sends it, and VP8/Opus as other browsers do. It is sent
in chunks over ``ws/live/<pk>/ingest/`` like golive.js sends MediaRecorder chunks.
"""

import asyncio
import json
import os
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.ingest.streams import (
    decodes_without_error,
    encode_file,
    playlist_segments,
    probe,
    segments_around_the_change,
    video_sizes,
    wait_for,
)
from tests.live_site import LiveSite, migrated_database
from tests.utils import CHROMIUM_ARGS, chromium_path, require
from wagtail_live.ingest.browser import FrameSizeWatch, InvalidMedia, detect_codecs

pytestmark = [pytest.mark.services, pytest.mark.slow]

GRACE = 10  # seconds; short so the grace-expiry test stays quick, long enough for a loaded CI
# Long enough that a loaded 2-core CI never sees a streaming socket as idle while ffmpeg
# catches up after the last chunk; the silent-socket test proves the watchdog still fires.
IDLE_TIMEOUT = 15
CHUNK_BYTES = 16 * 1024

SETUP = """
from tests.utils import make_editor, make_session
host = make_editor("host")
make_editor("viewer")
make_editor("goer", "go_live")
result = {}
"""


def chromium_like(webm):
    """Give an H.264 Matroska file the ``webm`` DocType Chromium's MediaRecorder writes.

    ffmpeg's webm muxer refuses H.264, so the file is written as Matroska and its
    8-byte DocType "matroska" becomes "webm" plus a 4-byte EBML Void element.
    """
    original = b"\x42\x82\x88matroska"
    assert original in webm[:64]
    return webm.replace(original, b"\x42\x82\x84webm\xec\x82\x00\x00", 1)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("webm")
    h264 = encode_file(directory / "h264.mkv", 6, container="matroska", audio="libopus", rate=30)
    # Long enough to keep sending, as a camera does, while the server cuts the first segments.
    long = encode_file(directory / "long.mkv", 12, container="matroska", audio="libopus", rate=30)
    vp8 = encode_file(
        directory / "vp8.webm", 4, container="webm", video="libvpx", audio="libopus", rate=30
    )
    return {"h264": chromium_like(h264), "h264_long": chromium_like(long), "vp8": vp8}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(shutil.which("ffmpeg") or _imageio_ffmpeg(), "ffmpeg")
    directory = tmp_path_factory.mktemp("site")
    template = migrated_database(directory)
    site = LiveSite(
        directory, template, {"RECONNECT_GRACE": GRACE, "INGEST_IDLE_TIMEOUT": IDLE_TIMEOUT}
    )
    site.run(SETUP)
    for user in ("host", "viewer", "goer"):
        site.login_cookie(user)  # made now, so no test pauses mid-stream to make one
    site.start()
    yield site
    site.stop()


def _imageio_ffmpeg():
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None


def new_session(site, **fields):
    """Create a session owned by ``host`` on the site; return its pk."""
    return site.run(
        f"""
        from tests.utils import make_session
        result = make_session(owner=User.objects.get(username="host"), **{fields!r}).pk
        """
    )


def session_state(site, pk):
    return site.run(
        f"""
        s = LiveSession.objects.get(pk={pk})
        result = {{"status": s.status, "started_at": str(s.started_at), "ended_at": str(s.ended_at)}}
        """
    )


def hls_dir(site, pk):
    return site.media_root.parent / "live-private" / "uploads" / "live" / str(pk) / "hls"


def recording(site, pk):
    return hls_dir(site, pk).parent / "recording.mpegts"


def connect(site, pk, user="host", origin=None):
    headers = {}
    if user:
        headers["Cookie"] = site.login_cookie(user)
    return websockets.connect(
        f"{site.ws_url}/ws/live/{pk}/ingest/",
        origin=origin or site.url,
        additional_headers=headers,
        max_size=None,
    )


async def reconnect(site, pk, timeout=10):
    """Connect again after a drop, retrying while the server has not noticed it (4009).

    golive.js does the same: the server may learn of a dropped connection only
    after the page has already reconnected.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        socket = await connect(site, pk)
        try:
            # A refusal arrives at once; silence means this socket has the session.
            frame = await asyncio.wait_for(socket.recv(), 0.5)
        except TimeoutError:
            return socket
        except websockets.ConnectionClosed:
            frame = None
        await socket.close()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"could not resume: {frame}")
        await asyncio.sleep(0.3)


async def send_media(socket, data, pause=0.02):
    for start in range(0, len(data), CHUNK_BYTES):
        await socket.send(data[start : start + CHUNK_BYTES])
        await asyncio.sleep(pause)


async def send_in_real_time(socket, data, seconds):
    """Send ``data`` (``seconds`` of media) spread over ``seconds``, as MediaRecorder does.

    A browser keeps sending while the server cuts segments; sending the whole file at
    once and then waiting leaves the socket silent for as long as ffmpeg takes.
    """
    chunks = max(1, -(-len(data) // CHUNK_BYTES))
    await send_media(socket, data, pause=seconds / chunks)


async def next_message(socket, timeout=15):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def expect_close(socket, timeout=15):
    """Read until the server closes; return (close code, messages received)."""
    messages = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            frame = await asyncio.wait_for(socket.recv(), timeout)
            messages.append(json.loads(frame))
    return closed.value.rcvd.code if closed.value.rcvd else None, messages


# -- the happy paths ----------------------------------------------------------------


async def test_h264_opus_from_the_browser_becomes_hls_and_a_recording(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await socket.send(json.dumps({"type": "start", "mime": "video/webm;codecs=h264,opus"}))
        # Checked while the media still flows, so the socket is never idle on a slow machine.
        sending = asyncio.create_task(send_in_real_time(socket, media_files["h264_long"], 12))
        live = await next_message(socket, timeout=30)
        assert live["type"] == "live"
        assert live["started_at"]
        playlist = hls_dir(site, pk) / "index.m3u8"
        await wait_for(lambda: playlist.exists() and len(playlist_segments(playlist)) >= 3, 30)
        assert (await asyncio.to_thread(session_state, site, pk))["status"] == "live"
        await sending
        await socket.send(json.dumps({"type": "end"}))
        code, messages = await expect_close(socket)
    assert code == 4000
    assert {"type": "ended"} in messages
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ended"

    segments = playlist_segments(playlist)
    assert "#EXT-X-ENDLIST" in playlist.read_text()
    # H.264 is copied with its 1 s keyframes: ~1 s segments (the last may be shorter).
    assert all(duration <= 1.6 for duration, _ in segments), segments
    codecs, _ = probe(hls_dir(site, pk) / segments[0][1])
    assert codecs == ["aac", "h264"]
    codecs, duration = probe(recording(site, pk))
    assert codecs == ["aac", "h264"]
    assert duration == pytest.approx(12, abs=1)


async def test_vp8_opus_is_transcoded_to_h264(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        sending = asyncio.create_task(send_in_real_time(socket, media_files["vp8"], 4))
        assert (await next_message(socket, timeout=30))["type"] == "live"
        await sending
        playlist = hls_dir(site, pk) / "index.m3u8"
        await wait_for(lambda: playlist.exists() and len(playlist_segments(playlist)) >= 2, 30)
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket, timeout=30)
    segments = playlist_segments(playlist)
    assert all(duration <= 1.6 for duration, _ in segments), segments
    codecs, _ = probe(hls_dir(site, pk) / segments[-1][1])
    assert codecs == ["aac", "h264"]


async def test_a_dropped_connection_resumes_into_the_same_session_and_recording(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await send_media(socket, media_files["h264"][: len(media_files["h264"]) // 2])
        assert (await next_message(socket))["type"] == "live"
        await wait_for(lambda: recording(site, pk).exists() and recording(site, pk).stat().st_size)
    # The socket dropped without "end": the session waits for the host to come back.
    first_part = await wait_for(lambda: recording(site, pk).stat().st_size, 10)
    state = await asyncio.to_thread(session_state, site, pk)
    assert state["status"] == "live"

    async with await reconnect(site, pk) as socket:
        await send_media(socket, media_files["h264"])
        assert (await next_message(socket))["type"] == "live"
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket)
    resumed = await asyncio.to_thread(session_state, site, pk)
    assert resumed["status"] == "ended"
    assert resumed["started_at"] == state["started_at"]  # the same session, not a new start
    assert recording(site, pk).stat().st_size > first_part
    playlist = (hls_dir(site, pk) / "index.m3u8").read_text()
    assert "#EXT-X-DISCONTINUITY" in playlist
    _, duration = probe(recording(site, pk))
    assert duration > 6


async def test_after_the_grace_period_a_dropped_session_ends(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await send_media(socket, media_files["h264"][: len(media_files["h264"]) // 2])
        assert (await next_message(socket))["type"] == "live"
    await asyncio.sleep(GRACE + 3)
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ended"
    assert recording(site, pk).stat().st_size > 0  # the recording is kept


def ffmpeg_children(pid):
    """Process ids of the ffmpeg processes that process ``pid`` (our daphne) started."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            name = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and name.startswith("ffmpeg"):
            children.append(int(stat.parent.name))
    return children


async def test_ffmpeg_dying_mid_stream_keeps_the_recording_and_the_page_resumes(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    data = media_files["h264"]
    async with connect(site, pk) as socket:
        await send_media(socket, data[: len(data) // 2])
        assert (await next_message(socket))["type"] == "live"
        await wait_for(lambda: recording(site, pk).exists() and recording(site, pk).stat().st_size)
        (ffmpeg,) = ffmpeg_children(site.process.pid)
        os.kill(ffmpeg, signal.SIGKILL)
        messages = []

        async def read_until_closed():
            try:
                async for frame in socket:
                    messages.append(json.loads(frame))
            except websockets.ConnectionClosed:
                pass

        reader = asyncio.create_task(read_until_closed())
        # The page keeps sending until the server notices the dead pipeline and says so.
        try:
            for _ in range(200):
                if reader.done():
                    break
                await socket.send(data[len(data) // 2 : len(data) // 2 + CHUNK_BYTES])
                await asyncio.sleep(0.05)
        except (websockets.ConnectionClosed, OSError):
            pass
        await asyncio.wait_for(reader, 15)
    assert [m["code"] for m in messages if m["type"] == "error"] == ["pipeline"]
    kept = recording(site, pk).stat().st_size
    assert kept > 0
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "live"
    # The page reconnects within the grace: same session, same recording, growing.
    async with await reconnect(site, pk) as socket:
        await send_media(socket, data)
        assert (await next_message(socket))["type"] == "live"
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket)
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ended"
    assert recording(site, pk).stat().st_size > kept


# -- bad input ----------------------------------------------------------------------


async def test_garbage_bytes_get_a_clear_error_and_start_nothing(site):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await socket.send(b"GET / HTTP/1.1\r\n" + bytes(range(256)) * 10)
        code, messages = await expect_close(socket)
    assert code == 4000
    assert messages[0]["type"] == "error"
    assert messages[0]["code"] == "invalid_media"
    assert "WebM" in messages[0]["message"]
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ready"
    assert not hls_dir(site, pk).exists()
    # The server is fine: the next, valid connection streams.
    async with connect(site, pk) as socket:
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket)


async def test_audio_only_webm_goes_live_with_audio_hls_and_recording(site, tmp_path):
    # A radio show from the browser: MediaRecorder's audio/webm;codecs=opus, no camera.
    audio_only = tmp_path / "audio.webm"
    proc = await asyncio.create_subprocess_exec(
        _imageio_ffmpeg() or "ffmpeg", "-loglevel", "error", "-f", "lavfi",
        "-i", "sine=sample_rate=48000", "-t", "4", "-c:a", "libopus", str(audio_only),
    )  # fmt: skip
    assert await proc.wait() == 0
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await socket.send(json.dumps({"type": "start", "mime": "audio/webm;codecs=opus"}))
        await send_media(socket, audio_only.read_bytes(), pause=0.2)
        assert (await next_message(socket))["type"] == "live"
        playlist = hls_dir(site, pk) / "index.m3u8"
        await wait_for(lambda: playlist.exists() and len(playlist_segments(playlist)) >= 2)
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket)
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ended"
    segments = playlist_segments(playlist)
    assert probe(hls_dir(site, pk) / segments[0][1])[0] == ["aac"]
    codecs, duration = probe(recording(site, pk))
    assert codecs == ["aac"]
    assert duration == pytest.approx(4, abs=1)


@pytest.mark.parametrize("user", ["viewer", None])
async def test_another_user_is_refused(site, user):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk, user=user) as socket:
        code, messages = await expect_close(socket)
    assert code == 4003
    assert messages[0]["code"] == "forbidden"
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ready"
    assert not hls_dir(site, pk).exists()


async def test_a_user_with_go_live_permission_may_stream(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk, user="goer") as socket:
        await send_media(socket, media_files["h264"][: 4 * CHUNK_BYTES])
        assert (await next_message(socket))["type"] == "live"
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket)


async def test_another_origin_is_refused_at_the_handshake(site):
    pk = await asyncio.to_thread(new_session, site)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(site, pk, origin="http://evil.example.com"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_second_socket_is_refused_while_one_streams(site, media_files):
    pk = await asyncio.to_thread(new_session, site)
    data = media_files["h264"]
    async with connect(site, pk) as first:
        await send_media(first, data[: len(data) // 2])
        assert (await next_message(first))["type"] == "live"
        async with connect(site, pk) as second:
            code, messages = await expect_close(second)
        assert code == 4009
        assert messages[0]["code"] == "refused"
        # The first encoder keeps streaming.
        before = recording(site, pk).stat().st_size
        await send_media(first, data[len(data) // 2 :])
        await wait_for(lambda: recording(site, pk).stat().st_size > before)
        await first.send(json.dumps({"type": "end"}))
        await expect_close(first)


async def test_an_ended_session_is_refused(site):
    pk = await asyncio.to_thread(new_session, site)
    await asyncio.to_thread(site.run, f"LiveSession.objects.get(pk={pk}).end()")
    async with connect(site, pk) as socket:
        code, messages = await expect_close(socket)
    assert code == 4009
    assert "ended" in messages[0]["message"]


async def test_unknown_control_messages_get_an_error_and_the_socket_stays(site):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        await socket.send("not json")
        assert (await next_message(socket))["code"] == "bad_message"
        await socket.send(json.dumps({"type": "dance"}))
        assert (await next_message(socket))["code"] == "unknown_type"
        await socket.send(json.dumps({"type": "end"}))
        code, _ = await expect_close(socket)
    assert code == 4000


async def test_a_silent_socket_is_closed(site):
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        code, messages = await expect_close(socket, timeout=IDLE_TIMEOUT + 10)
    assert messages[0]["code"] == "idle"
    assert (await asyncio.to_thread(session_state, site, pk))["status"] == "ready"


def test_status_endpoint_serves_the_running_site(site):
    pk = new_session(site)
    with urllib.request.urlopen(f"{site.url}/live/sessions/{pk}/status.json") as response:
        assert json.load(response)["status"] == "ready"


# -- the header check, without a server -----------------------------------------------


def test_detect_codecs_reads_the_webm_track_list(media_files):
    assert detect_codecs(media_files["h264"][:4096]) == ("h264", "opus")
    assert detect_codecs(media_files["vp8"][:4096]) == ("vp8", "opus")


@pytest.mark.parametrize("header", [b"", b"RIFF....WEBP", b"\x1a\x45\xdf\xa3" + b"\0" * 64])
def test_detect_codecs_refuses_what_is_not_a_camera(header):
    with pytest.raises(InvalidMedia):
        detect_codecs(header)


def origin_scope(origin, host="live.example.com"):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"headers": headers, "scheme": "wss"}


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://live.example.com", True),
        ("http://live.example.com", False),  # another scheme (tests/test_origins.py has more)
        ("https://evil.example.com", False),
        ("https://live.example.com.evil.com", False),
        ("null", False),
        (None, False),
        ("https://studio.example.com", True),  # in CSRF_TRUSTED_ORIGINS
    ],
)
def test_origin_check(settings, origin, allowed):
    from wagtail_live.consumers.ingest import is_same_origin

    settings.CSRF_TRUSTED_ORIGINS = ["https://studio.example.com"]
    assert is_same_origin(origin_scope(origin)) is allowed


def test_close_reason_fits_a_close_frame():
    from wagtail_live.consumers.ingest import close_reason

    reason = close_reason("“Ünïcode” " * 40)
    assert len(reason.encode("utf-8")) <= 123
    assert reason.startswith("“Ünïcode”")


# -- the camera changing its frame size while live (issue 12) ---------------------------

CAMERA_SIZES = [(640, 480), (1280, 720)]  # a 4:3 camera, then 16:9 (a phone turned, say)
RECORD_WITH_A_SIZE_CHANGE = """
async ([mimeType, [width, height], [newWidth, newHeight], seconds]) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width, height}, audio: true});
  const recorder = new MediaRecorder(stream, {mimeType, videoKeyFrameIntervalDuration: 1000});
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.start(250);
  await new Promise((resolve) => setTimeout(resolve, seconds * 500));
  await stream.getVideoTracks()[0].applyConstraints({width: newWidth, height: newHeight});
  await new Promise((resolve) => setTimeout(resolve, seconds * 500));
  recorder.stop();
  await new Promise((resolve) => (recorder.onstop = resolve));
  stream.getTracks().forEach((track) => track.stop()); // the next recording opens it anew
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  return Array.from(bytes, (byte) => String.fromCharCode(byte)).join("");
}
"""


@pytest.fixture(scope="module")
def resized_camera():
    """What Chromium's MediaRecorder makes of a camera whose frame size changes midway.

    It keeps one video track and sends the new size in the frames themselves: H.264 with
    a new SPS, VP8 with a keyframe of the new size. Keyed by codec; 6 s each.
    """
    from playwright.sync_api import sync_playwright

    require(os.path.exists(chromium_path()), f"chromium at {chromium_path()}")
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    recordings = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=args, headless=True
        )
        page = browser.new_page()
        # getUserMedia needs a secure context: localhost is one.
        page.route("http://localhost/", lambda route: route.fulfill(body="<p>camera</p>"))
        page.goto("http://localhost/")
        for codec in ("h264", "vp8"):
            text = page.evaluate(
                RECORD_WITH_A_SIZE_CHANGE, [f"video/webm;codecs={codec},opus", *CAMERA_SIZES, 6]
            )
            recordings[codec] = text.encode("latin-1")
        browser.close()
    return recordings


@pytest.mark.browser
@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_a_camera_changing_its_frame_size_starts_a_new_part_at_its_real_size(
    site, resized_camera, codec
):
    # Without the cut, copied H.264 changed size in the middle of a part, unannounced,
    # and transcoded VP8 was stretched from 16:9 into the first 4:3 frame.
    data = resized_camera[codec]
    assert video_sizes_of_webm(data) == CAMERA_SIZES  # what Chromium really sent
    pk = await asyncio.to_thread(new_session, site)
    async with connect(site, pk) as socket:
        sending = asyncio.create_task(send_in_real_time(socket, data, 6))
        assert (await next_message(socket, timeout=30))["type"] == "live"
        await sending
        await socket.send(json.dumps({"type": "end"}))
        await expect_close(socket, timeout=30)

    playlist = hls_dir(site, pk) / "index.m3u8"
    before, after = segments_around_the_change(playlist)
    assert video_sizes(hls_dir(site, pk) / before) == CAMERA_SIZES[:1]
    assert video_sizes(hls_dir(site, pk) / after) == CAMERA_SIZES[1:]
    decoded = decodes_without_error(recording(site, pk))
    assert decoded == (True, ""), decoded[1]
    assert video_sizes(recording(site, pk)) == CAMERA_SIZES
    codecs, duration = probe(recording(site, pk))
    assert codecs == ["aac", "h264"] and duration == pytest.approx(6, abs=1)


def video_sizes_of_webm(data):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".webm") as handle:
        handle.write(data)
        handle.flush()
        return video_sizes(handle.name)


def test_frame_size_watch_cuts_a_vp8_stream_at_the_keyframe_of_the_new_size(tmp_path):
    # Two VP8 files of different sizes, the second's clusters after the first's: one
    # stream whose frame size changes, as MediaRecorder sends it. Fed in small pieces,
    # it comes out as two WebM streams that each decode at their own size.
    small = encode_file(tmp_path / "a.webm", 2, container="webm", video="libvpx", audio=None)
    large = encode_file(
        tmp_path / "b.webm", 2, container="webm", video="libvpx", audio=None, size="640x360"
    )
    stream = small + large[large.index(b"\x1f\x43\xb6\x75") :]
    watch = FrameSizeWatch("vp8")
    parts = [b""]
    for start in range(0, len(stream), 1000):
        first, *new = watch.feed(stream[start : start + 1000])
        parts[-1] += first
        parts += new
    assert len(parts) == 2
    assert parts[0] == stream[: len(parts[0])]  # the first part passes unchanged
    sizes = []
    for index, part in enumerate(parts):
        (tmp_path / f"part{index}.webm").write_bytes(part)
        sizes.append(video_sizes(tmp_path / f"part{index}.webm"))
    assert sizes == [[(320, 240)], [(640, 360)]]


def test_frame_size_watch_passes_what_it_cannot_follow_unchanged():
    watch = FrameSizeWatch("av1")  # no frame size reader: nothing is held or cut
    assert watch.feed(b"\x1a\x45\xdf\xa3anything") == [b"\x1a\x45\xdf\xa3anything"]
    watch = FrameSizeWatch("vp8")
    assert watch.feed(b"\x00\x00garbage") == [b"\x00\x00garbage"]  # not EBML: passed on
    assert watch.feed(b"more") == [b"more"]
