"""Stream health (issue 12): real ffmpeg encoders' HLS probed, warnings in plain words, staff only."""

import subprocess

import pytest
from asgiref.sync import sync_to_async

from tests.ingest.streams import lavfi_args
from tests.live_client import LiveClient
from tests.utils import make_editor, require
from wagtail_live import health, presence
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest.base import hls_dir, hls_playlist_path, prepare_hls_dir


def write_hls(session, seconds=4, *, extra=(), **options):
    """What the live pipeline writes for an encoder with ``options``: H.264 copied into HLS."""
    require(ffmpeg_binary(), "an ffmpeg binary")
    directory = prepare_hls_dir(hls_dir(session))
    args = lavfi_args(seconds, realtime=False, **options)
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args, *extra,
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
         "-hls_segment_filename", str(directory / "seg-%03d.ts"), str(hls_playlist_path(session))],
        check=True,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def own_media(settings, tmp_path):
    """Session pks repeat across tests: each test keeps its live files apart."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    presence._backend = None
    yield
    presence._backend = None


def codes(report):
    return [warning["code"] for warning in report["warnings"]]


@pytest.mark.django_db
def test_a_good_stream_is_described_and_has_no_warnings(session):
    write_hls(session, 4, size="640x360", rate=30)
    report = health.measure(session, source={"video_codec": "h264", "audio_codec": "aac"})
    assert report["video"]["codec"] == "h264"
    assert (report["video"]["width"], report["video"]["height"]) == (640, 360)
    assert report["video"]["fps"] == pytest.approx(30, abs=0.5)
    assert report["video"]["keyframe_interval"] == pytest.approx(1, abs=0.1)
    assert report["video"]["dropped_frames"] == 0
    assert report["audio"] == {"codec": "aac", "sample_rate": 48000, "channels": 2}
    assert report["bitrate_kbps"] > 0
    assert report["warnings"] == []


@pytest.mark.django_db
def test_long_keyframe_interval_is_warned_with_the_obs_fix(session):
    write_hls(session, 12, keyframe_seconds=4)
    report = health.measure(session)
    assert report["video"]["keyframe_interval"] == pytest.approx(4, abs=0.2)
    (warning,) = report["warnings"]
    assert warning["code"] == "keyframe_interval"
    assert "every 4 s" in warning["message"] and "OBS → Settings → Output" in warning["message"]


@pytest.mark.django_db
def test_missing_audio_is_warned(session):
    write_hls(session, 3, audio=None)
    assert codes(health.measure(session)) == ["audio_missing"]


@pytest.mark.django_db
def test_bitrate_far_above_the_setting_is_warned(session, settings):
    settings.WAGTAIL_LIVE = {"HEALTH_MAX_BITRATE_KBPS": 50}
    write_hls(session, 3, size="640x360", extra=["-b:v", "1M"])
    report = health.measure(session)
    assert report["bitrate_kbps"] > 500
    assert codes(report) == ["bitrate"]
    assert "Mbit/s" in report["warnings"][0]["message"]


@pytest.mark.django_db
def test_dropped_frames_are_counted_and_warned(session):
    # Frames between 1.0 s and 1.5 s never arrive (an overloaded encoder), timestamps kept.
    write_hls(
        session, 3, rate=30,
        extra=["-vf", "select='not(between(t,1,1.5))'", "-fps_mode", "passthrough"],
    )  # fmt: skip
    report = health.measure(session)
    assert 12 <= report["video"]["dropped_frames"] <= 16
    assert "frames_dropped" in codes(report)


@pytest.mark.django_db
def test_a_codec_the_server_converts_is_warned(session):
    write_hls(session, 2)
    report = health.measure(session, source={"video_codec": "hevc", "audio_codec": "mp3"})
    assert codes(report) == ["video_transcoded", "audio_transcoded"]
    # Opus from a browser is converted too, but cheaply and the host cannot change it.
    report = health.measure(session, source={"video_codec": "h264", "audio_codec": "opus"})
    assert codes(report) == []


@pytest.mark.django_db
def test_no_segments_no_report(session):
    assert health.measure(session) is None
    assert health.latest_report(session) is None


@pytest.mark.django_db(transaction=True)
async def test_health_reaches_the_host_and_moderators_but_not_viewers(session, django_user_model):
    write = sync_to_async(write_hls)
    await write(session, 2)
    viewer = await sync_to_async(django_user_model.objects.create_user)("viewer", "v@e.com", "pw")
    moderator = await sync_to_async(make_editor)("moderator", "moderate_chat")
    clients = {}
    for name, user in (("host", session.owner), ("moderator", moderator), ("viewer", viewer)):
        clients[name] = LiveClient(session.pk, user)
        await clients[name].connect()
    report = await sync_to_async(health.measure_and_publish)(session)
    for name in ("host", "moderator"):
        message = await clients[name].expect("health")
        assert message["report"]["video"]["codec"] == "h264"
    seen = await clients["viewer"].collect(1.5)
    assert not [m for m in seen if m.get("type") == "health"]
    # A screen loaded later shows the same report.
    assert await sync_to_async(health.latest_report)(session) == report
    for client in clients.values():
        await client.disconnect()


@pytest.mark.django_db
@pytest.mark.parametrize("screen", ["go_live", "dashboard"])
def test_go_live_screen_and_dashboard_show_the_latest_report(client, session, screen):
    from django.urls import reverse

    write_hls(session, 9, keyframe_seconds=3, audio=None)
    session.start()
    health.measure_and_publish(session)
    client.force_login(session.owner)
    page = client.get(reverse(f"wagtail_live_admin:{screen}", args=[session.pk])).content.decode()
    assert "Stream health" in page and "data-live-health" in page
    assert 'data-code="keyframe_interval"' in page and 'data-code="audio_missing"' in page
    assert "OBS → Settings → Output" in page
    assert "H264 · 320×240 · 15 fps" in page


@pytest.mark.django_db
def test_an_audio_only_stream_has_no_video_and_no_warning(session):
    write_hls(session, 3, video=None)
    report = health.measure(session)
    assert report["video"] is None
    assert report["audio"]["codec"] == "aac"
    assert report["warnings"] == []
