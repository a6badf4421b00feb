"""The shared ffmpeg pipeline and lifecycle (ingest/base.py), fed with real ffmpeg output."""

import os
import time

import pytest

from tests.ingest.streams import (
    decodes_without_error,
    encode_file,
    media_timestamps,
    playlist_segments,
    probe,
    segments_around_the_change,
    video_sizes,
)
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest import base
from wagtail_live.ingest.base import (
    Broadcast,
    LivePipeline,
    PipelineError,
    StreamRefused,
    build_ffmpeg_args,
    end_stale_sessions,
    hls_dir,
    hls_playlist_path,
    recording_path,
)
from wagtail_live.models import LiveSession, Recording

pytestmark = [pytest.mark.django_db(transaction=True)]


def needs_ffmpeg():
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")


async def feed(pipeline, data, chunk=32 * 1024):
    for offset in range(0, len(data), chunk):
        await pipeline.write(data[offset : offset + chunk])


def test_h264_and_aac_are_copied():
    args = build_ffmpeg_args("flv", "/tmp/x", video_codec="h264", audio_codec="aac")
    assert args[args.index("-c:v") + 1] == "copy"
    assert args[args.index("-c:a") + 1] == "copy"


def test_vp8_is_transcoded_and_opus_converted():
    args = build_ffmpeg_args("webm", "/tmp/x", video_codec="vp8", audio_codec="opus")
    assert args[args.index("-c:v") + 1] == "libx264"
    assert args[args.index("-c:a") + 1] == "aac"
    assert any(arg.startswith("expr:gte(t,n_forced*") for arg in args)
    # The browser's timestamps kept: no frames repeated to a guessed constant rate.
    assert args[args.index("-fps_mode") + 1] == "vfr"


def test_segment_names_are_not_guessable():
    first = build_ffmpeg_args("flv", "/tmp/x")[-1]
    second = build_ffmpeg_args("flv", "/tmp/x")[-1]
    assert first != second  # a random prefix per pipeline


def test_paths_with_tee_specials_are_escaped():
    args = build_ffmpeg_args("flv", "/tmp/a:b|c")
    assert "/tmp/a\\:b\\|c/index.m3u8" in args[-1]


@pytest.mark.services
@pytest.mark.slow
async def test_flv_becomes_one_second_hls_and_a_recording(tmp_path):
    needs_ffmpeg()
    session = await _make_session()
    data = encode_file(tmp_path / "in.flv", 4)
    pipeline = LivePipeline(session, "flv")
    await pipeline.start()
    await feed(pipeline, data)
    seconds = await pipeline.close()

    assert 3.5 < seconds < 4.5
    segments = playlist_segments(hls_playlist_path(session))
    assert len(segments) >= 3
    assert all(0.8 <= duration <= 1.2 for duration, _ in segments)
    codecs, duration = probe(base.hls_dir(session) / segments[0][1])
    assert codecs == ["aac", "h264"]
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"]
    assert 3.5 < duration < 4.5


@pytest.mark.services
@pytest.mark.slow
async def test_vp8_opus_webm_is_transcoded_to_h264_aac(tmp_path):
    needs_ffmpeg()
    session = await _make_session()
    data = encode_file(tmp_path / "in.webm", 3, container="webm", video="libvpx", audio="libopus")
    pipeline = LivePipeline(session, "webm", video_codec="vp8", audio_codec="opus")
    await pipeline.start()
    await feed(pipeline, data)
    await pipeline.close()

    segments = playlist_segments(hls_playlist_path(session))
    assert segments and all(duration <= 1.2 for duration, _ in segments)
    assert probe(recording_path(session))[0] == ["aac", "h264"]


@pytest.mark.services
async def test_garbage_instead_of_media_is_refused_clearly():
    needs_ffmpeg()
    session = await _make_session()
    pipeline = LivePipeline(session, "webm", video_codec="vp8", audio_codec="opus")
    await pipeline.start()
    with pytest.raises(PipelineError, match="does not start like WEBM media"):
        await pipeline.write(b"GET / HTTP/1.1\r\n" + os.urandom(1024))
    await pipeline.close()
    assert not pipeline.running


@pytest.mark.services
@pytest.mark.slow
async def test_garbage_after_media_keeps_what_came_before(tmp_path):
    needs_ffmpeg()
    session = await _make_session()
    data = encode_file(tmp_path / "in.flv", 2)
    pipeline = LivePipeline(session, "flv")
    await pipeline.start()
    await feed(pipeline, data)
    try:
        await feed(pipeline, os.urandom(256 * 1024))
    except PipelineError:
        pass  # ffmpeg may give up on the input; either way the first part is kept
    await pipeline.close()
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and duration > 1.5


@pytest.mark.services
@pytest.mark.slow
async def test_resume_appends_to_the_same_recording_and_playlist(tmp_path, settings):
    needs_ffmpeg()
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 30}
    session = await _make_session()
    data = encode_file(tmp_path / "in.flv", 2)

    broadcast = await Broadcast.open(session)
    await broadcast.start_media("flv")
    await feed(broadcast, data)
    await broadcast.disconnected()  # dropped: grace period starts
    await _refresh(session)
    assert session.status == LiveSession.Status.LIVE

    again = await Broadcast.open(session)  # the encoder is back within the grace period
    assert again is broadcast
    await again.start_media("flv")
    await feed(again, data)
    await again.disconnected(end=True)

    await _refresh(session)
    assert session.status == LiveSession.Status.ENDED
    codecs, duration = probe(recording_path(session))
    assert codecs == ["aac", "h264"] and 3.5 < duration < 4.6
    stamps = media_timestamps(recording_path(session))
    assert stamps == sorted(stamps), "the second part continues after the first"
    playlist = hls_playlist_path(session).read_text()
    assert "#EXT-X-DISCONTINUITY" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert await _recordings(session) == [base.recording_storage_name(session)]


@pytest.mark.services
@pytest.mark.slow
async def test_a_browser_stream_changing_its_frame_size_continues_in_a_new_part(tmp_path):
    # VP8 at 320x240, then the clusters of a 640x360 VP8 file: one WebM stream whose frame
    # size changes, as MediaRecorder sends it. Without the cut, ffmpeg stretched the second
    # size into the first; with it, each size has its own part, joined as a reconnect is.
    needs_ffmpeg()
    from tests.test_recordings import ensure_default_site
    from wagtail_live.ingest.browser import CLUSTER_ID, BrowserIngest

    await _call(ensure_default_site)  # the recording becomes a page under it
    webm = {"container": "webm", "video": "libvpx", "audio": "libopus"}
    small = encode_file(tmp_path / "small.webm", 2, **webm)
    large = encode_file(tmp_path / "large.webm", 2, size="640x360", **webm)
    stream = small + large[large.index(CLUSTER_ID) :]
    session = await _make_session()
    ingest = BrowserIngest(session)
    await ingest.open()
    for offset in range(0, len(stream), 16 * 1024):
        await ingest.receive(stream[offset : offset + 16 * 1024])
    await ingest.end()

    before, after = segments_around_the_change(hls_playlist_path(session))
    assert video_sizes(hls_dir(session) / before) == [(320, 240)]
    assert video_sizes(hls_dir(session) / after) == [(640, 360)]
    assert video_sizes(recording_path(session)) == [(320, 240), (640, 360)]
    assert decodes_without_error(recording_path(session)) == (True, "")
    assert 3.5 < probe(recording_path(session))[1] < 4.8
    # The MP4 (made at once: Huey runs tasks immediately in tests) plays at one size.
    recording = await _call(lambda: Recording.objects.select_related("media").get(session=session))
    assert recording.status == Recording.Status.READY, recording.error
    assert decodes_without_error(recording.media.file.path) == (True, "")
    assert video_sizes(recording.media.file.path) == [(640, 360)]
    assert 3.5 < probe(recording.media.file.path)[1] < 4.8


async def test_second_encoder_is_refused_while_one_is_attached():
    session = await _make_session()
    first = await Broadcast.open(session)
    with pytest.raises(StreamRefused):
        await Broadcast.open(session)
    await first.disconnected(end=True)


async def test_ended_session_is_refused():
    session = await _make_session()
    await _call(session.end)
    with pytest.raises(StreamRefused, match="ended"):
        await Broadcast.open(session)
    assert not os.path.exists(session.media_dir)


def test_end_stale_sessions_ends_only_sessions_without_recent_media(settings):
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 5}
    stale, fresh, no_media = make_session("stale"), make_session("fresh"), make_session("none")
    for session in (stale, fresh, no_media):
        session.start()
        base.hls_dir(session).mkdir(parents=True)
    hls_playlist_path(stale).write_text("#EXTM3U\n")
    hls_playlist_path(fresh).write_text("#EXTM3U\n")
    recording_path(stale).write_bytes(b"\x47" * 188)
    old = time.time() - 60
    os.utime(hls_playlist_path(stale), (old, old))
    os.utime(recording_path(stale), (old, old))
    LiveSession.objects.filter(pk=no_media.pk).update(
        started_at=LiveSession.objects.get(pk=no_media.pk).started_at.replace(year=2000)
    )

    ended = end_stale_sessions()

    assert {s.pk for s in ended} == {stale.pk, no_media.pk}
    assert LiveSession.objects.get(pk=fresh.pk).status == LiveSession.Status.LIVE
    assert LiveSession.objects.get(pk=stale.pk).status == LiveSession.Status.ENDED
    assert "#EXT-X-ENDLIST" in hls_playlist_path(stale).read_text()
    assert Recording.objects.filter(session=stale).exists()  # the file was handed on, not lost


def test_a_recording_still_growing_keeps_a_session_whose_playlist_was_swept(settings):
    # nginx-rtmp's hls_cleanup may delete the playlist of a stream that paused; the
    # recording is only ever appended to, so it says when media last arrived.
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 5}
    session = make_session("paused")
    session.start()
    LiveSession.objects.filter(pk=session.pk).update(
        started_at=session.started_at.replace(year=2000)
    )
    base.hls_dir(session).mkdir(parents=True)
    recording_path(session).write_bytes(b"\x47" * 188)

    assert end_stale_sessions() == []
    old = time.time() - 60
    os.utime(recording_path(session), (old, old))
    assert [s.pk for s in end_stale_sessions()] == [session.pk]


def test_new_hls_directories_carry_a_marker_so_they_are_never_empty(tmp_path):
    directory = base.prepare_hls_dir(tmp_path / "7" / "hls")
    assert [p.name for p in directory.iterdir()] == [base.HLS_MARKER_NAME]
    assert not base.RECORDING_NAME.endswith(".ts")  # nginx-rtmp sweeps *.ts under its hls_path
    base.prepare_hls_dir(directory)  # idempotent


# -- helpers -----------------------------------------------------------------


async def _call(fn, *args):
    from asgiref.sync import sync_to_async

    return await sync_to_async(fn)(*args)


async def _make_session(**fields):
    return await _call(lambda: make_session(**fields))


async def _refresh(session):
    await _call(session.refresh_from_db)


async def _recordings(session):
    return await _call(
        lambda: [r.source.name for r in Recording.objects.filter(session_id=session.pk)]
    )


def test_the_periodic_task_ends_stale_sessions(settings):
    from wagtail_live.tasks import end_stale_live_sessions

    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 5}
    session = make_session("vanished")
    session.start()
    base.hls_dir(session).mkdir(parents=True)
    hls_playlist_path(session).write_text("#EXTM3U\n")
    old = time.time() - 60
    os.utime(hls_playlist_path(session), (old, old))

    end_stale_live_sessions.call_local()

    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED


def test_the_rtmp_setting_picks_the_backend(settings):
    from wagtail_live.exceptions import WagtailLiveError
    from wagtail_live.ingest.base import get_rtmp_backend
    from wagtail_live.ingest.nginx_rtmp import NginxRTMPBackend
    from wagtail_live.ingest.rtmp import EmbeddedRTMPBackend

    assert isinstance(get_rtmp_backend(), EmbeddedRTMPBackend)
    settings.WAGTAIL_LIVE = {"RTMP": "nginx"}
    assert isinstance(get_rtmp_backend(), NginxRTMPBackend)
    settings.WAGTAIL_LIVE = {"RTMP": "wowza"}
    with pytest.raises(WagtailLiveError, match="embedded"):
        get_rtmp_backend()


def test_backend_stop_ends_the_session_and_playback_url_is_the_playlist():
    from wagtail_live.ingest.rtmp import EmbeddedRTMPBackend

    session = make_session()
    backend = EmbeddedRTMPBackend()
    assert backend.playback_url(session) == session.playback_url
    backend.stop(session)
    backend.stop(session)  # a double stop changes nothing
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
