"""nginx-rtmp ingest: a real nginx, configured by ``live_nginx_config``, calling a real site.

The end-to-end tests run nginx against a real daphne (``tests.live_site``) with its own SQLite
file, as in production: nginx's callbacks arrive concurrently, which an in-memory test database
shared between threads cannot take. The callbacks' own checks are tested in-process below.
"""

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.ingest.streams import lavfi_args, media_timestamps, playlist_segments, probe
from tests.live_site import ROOT, LiveSite, migrated_database
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest import amf0
from wagtail_live.ingest.base import (
    HLS_MARKER_NAME,
    RECORDING_NAME,
    end_stale_sessions,
    hls_playlist_path,
    prepare_hls_dir,
)
from wagtail_live.ingest.rtmp import ChunkReader, encode_message
from wagtail_live.models import LiveSession, Recording
from wagtail_live.storage import private_root

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
NGINX_PREFIXES = {}  # the nginx fixture's port -> its prefix (config and logs)
SECRET = "a-test-secret-of-some-length"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

db = pytest.mark.django_db(transaction=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def require_nginx():
    require(os.path.exists(NGINX) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")


@pytest.fixture(scope="module")
def template_database(tmp_path_factory):
    require_nginx()
    return migrated_database(tmp_path_factory.mktemp("nginx-db"))


def start_site(tmp_path_factory, template, **live_settings):
    """A real daphne serving the test project, its own database and media root."""
    directory = tmp_path_factory.mktemp("nginx-site")
    site = LiveSite(directory / "site", template, {"NGINX_SECRET": SECRET, **live_settings})
    site.start()
    site_live_root(site).mkdir(parents=True, exist_ok=True)
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory, template_database):
    """The site without a grace period: an encoder that leaves ends the session."""
    site = start_site(tmp_path_factory, template_database, RECONNECT_GRACE=0)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def nginx(site, tmp_path_factory):
    """A real nginx with the RTMP module, configured by ``live_nginx_config`` for ``site``."""
    yield from run_nginx(site, tmp_path_factory)


@pytest.fixture(scope="module")
def graceful_site(tmp_path_factory, template_database):
    """A site where an encoder may come back within 60 s and continue the session."""
    site = start_site(tmp_path_factory, template_database, RECONNECT_GRACE=60)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def graceful_nginx(graceful_site, tmp_path_factory):
    yield from run_nginx(graceful_site, tmp_path_factory)


def run_nginx(site, tmp_path_factory):
    """Run nginx with the printed ``--full`` config for ``site``; yield its RTMP port."""
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    config = subprocess.run(
        [sys.executable, "-m", "django", "live_nginx_config", "--full",
         f"--site-url={site.url}", f"--rtmp-port={port}", f"--prefix={prefix}",
         f"--module-path={MODULE}", f"--callback-port={free_port()}"],
        cwd=ROOT, env=site.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (prefix / "nginx.conf").write_text(config)
    NGINX_PREFIXES[port] = prefix
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _accepts(port) or process.poll() is not None, timeout=10)
        assert process.poll() is None, process.stderr.read().decode()
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def stream_key_field(pk, key):
    """What the Go Live screen shows as the stream key for nginx: ``<pk>/hls?key=<key>``."""
    return f"{pk}/hls?key={key}"


def push(port, stream, seconds=4, **options):
    """ffmpeg publishing to *Server* ``rtmp://…/live`` with *Stream key* ``stream``, as OBS does.

    ffmpeg takes the application from the URL's first path part only when the stream name has
    no "/", so the stream name (``<pk>/hls?key=…``) is given as ``-rtmp_playpath``.
    """
    return subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error",
         *lavfi_args(seconds, **options), "-rtmp_playpath", stream, "-f", "flv",
         f"rtmp://127.0.0.1:{port}/live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def push_session(port, pk, key, seconds=4, **options):
    """ffmpeg publishing to session ``pk`` with its stream ``key``."""
    return push(port, stream_key_field(pk, key), seconds, **options)


def site_session(site, then=""):
    """Create a session with a key on ``site`` (then run ``then`` on it); return (pk, key)."""
    return site.run(
        f"""
        from datetime import timedelta
        from wagtail_live.models import StreamKey
        session = LiveSession.objects.create(title="Open day")
        key = session.issue_stream_key()
        {then}
        result = [session.pk, key]
        """
    )


def site_state(site, pk):
    """The session's status and its recordings' (source, status) on ``site``."""
    return site.run(
        f"""
        from wagtail_live.models import Recording
        result = [
            LiveSession.objects.get(pk={pk}).status,
            [[r.source.name, r.status] for r in Recording.objects.filter(session_id={pk})],
        ]
        """
    )


def site_went_live(site, pk):
    """Whether the session on ``site`` went live (its started_at is set, live or ended since)."""
    return site.run(
        f"""
        session = LiveSession.objects.get(pk={pk})
        result = session.started_at is not None and session.status in ("live", "ended")
        """
    )


def site_live_root(site):
    """Where ``site`` keeps live files: PRIVATE_ROOT's default, beside its MEDIA_ROOT."""
    return site.media_root.parent / "live-private" / "uploads" / "live"


def session_dir(site, pk):
    return site_live_root(site) / str(pk)


def playlist(site, pk):
    return session_dir(site, pk) / "hls" / "index.m3u8"


def segment_count(site, pk):
    path = playlist(site, pk)
    return len(playlist_segments(path)) if path.exists() else 0


def recording_handed_off(site, pk):
    status, recordings = site_state(site, pk)
    return status == "ended" and any(state in ("ready", "failed") for _, state in recordings)


@pytest.mark.services
@pytest.mark.slow
def test_right_key_streams_hls_and_hands_off_the_recording(site, nginx):
    pk, key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=8)
    wait_until(lambda: segment_count(site, pk) >= 3, timeout=30)
    # Read the segments while the stream runs: nginx's hls_cleanup removes them soon after.
    segments = playlist_segments(playlist(site, pk))
    assert all(duration <= 1.6 for duration, _ in segments[:-1]), segments
    assert probe(playlist(site, pk).parent / segments[0][1])[0] == ["aac", "h264"]
    # Live at the first on_update (every second) that finds a listed segment. The
    # stream may have ended by the time a loaded machine looks, so the proof it went
    # live is started_at, which ending keeps.
    wait_until(lambda: site_went_live(site, pk), timeout=30, interval=0.5)
    assert encoder.wait(30) == 0

    wait_until(lambda: recording_handed_off(site, pk), timeout=60, interval=0.5)
    codecs, duration = probe(session_dir(site, pk) / "recording.flv")
    assert codecs == ["aac", "h264"] and duration > 6
    names = " ".join(str(path) for path in site.media_root.parent.rglob("*"))
    assert key not in names  # the stream key never names a file
    _, recordings = site_state(site, pk)
    assert recordings[0] == [f"uploads/live/{pk}/recording.flv", "ready"]
    assert health_report(site, pk)["settings_changed"] is False  # steady settings: no warning


@pytest.mark.services
@pytest.mark.slow
def test_a_long_keyframe_interval_loses_nothing_of_the_first_group_of_pictures(site, nginx):
    # A keyframe every 12 s (issue 12). Through the relay the first group of pictures never
    # reached HLS or the recording: the first segments had no video and the recording's
    # video started a keyframe interval late. Published under its own name, nothing is lost.
    pk, key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=16, keyframe_seconds=12)
    wait_until(lambda: segment_count(site, pk) >= 1, timeout=60)
    first = playlist(site, pk).parent / playlist_segments(playlist(site, pk))[0][1]
    assert "video" in packet_types(first)
    assert video_start(first) < 1.5  # the encoder's first frame, not one 12 s later
    assert encoder.wait(60) == 0

    wait_until(lambda: recording_handed_off(site, pk), timeout=90, interval=0.5)
    timestamps = media_timestamps(session_dir(site, pk) / "recording.flv")
    assert timestamps[0] < 0.5, timestamps[:3]
    assert len(timestamps) >= 16 * 15 * 0.9  # every frame, the first group of pictures too
    assert site_state(site, pk)[1][0][1] == "ready"


def video_start(path):
    """The first video packet's time (s) in an MPEG-TS segment, from the stream's own start."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is not None:
                return float(packet.pts * stream.time_base) - 1.4  # MPEG-TS starts at 1.4 s
    return None


def discontinuity_pair(path):
    """The (before, after) segment names of a live playlist's first ``#EXT-X-DISCONTINUITY``
    that follows a segment, or None."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    previous = None
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-DISCONTINUITY") and previous:
            following = [name for name in lines[index:] if not name.startswith("#")]
            return (previous, following[0]) if following else None
        if not line.startswith("#"):
            previous = line
    return None


def frame_size(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0].codec_context
        for frame in container.decode(video=0):
            return frame.width, frame.height
    return video.width, video.height


@pytest.mark.services
@pytest.mark.slow
def test_a_reconnect_with_other_settings_is_marked_and_recorded_to_play_right_throughout(
    graceful_site, graceful_nginx
):
    """720p 48 kHz stereo, then within the grace period 360p 44.1 kHz mono: the live playlist
    marks the join, and the recording (one FLV nginx appended to) plays right throughout."""
    from tests.ingest.test_rtmp import decoded_audio, tone_frequency

    site, port = graceful_site, graceful_nginx
    pk, key = site_session(site)
    first = push_session(port, pk, key, seconds=4, size="1280x720", tone=1000)
    assert first.wait(30) == 0
    time.sleep(2)
    second = push_session(
        port, pk, key, seconds=5, size="640x360", tone=1000, sample_rate=44100, channels=1
    )
    # Read while the second part streams: nginx's hls_cleanup removes old segments soon.
    pair = wait_until_value(lambda: discontinuity_pair(playlist(site, pk)), timeout=30)
    directory = playlist(site, pk).parent
    assert [frame_size(directory / name) for name in pair] == [(1280, 720), (640, 360)]
    assert second.wait(30) == 0
    assert site_state(site, pk)[0] == "live"  # one session across the reconnect

    # The grace period over (the clean-up task, run as if an hour later), the recording is made.
    site.run(
        """
        import time
        from wagtail_live.ingest.base import end_stale_sessions
        end_stale_sessions(now=time.time() + 3600)
        """
    )
    path = site.run(
        f"""
        from wagtail_live.models import Recording
        recording = Recording.objects.get(session_id={pk})
        result = [recording.status, recording.error, recording.media.file.path]
        """
    )
    assert path[:2] == ["ready", ""], path
    path = path[2]
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"] and 8 < duration < 11.5, duration
    samples, rate = decoded_audio(path, 0.5, 3.5)
    assert rate == 48000 and tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)
    samples, rate = decoded_audio(path, duration - 3.5, duration - 0.5)
    assert rate == 48000 and tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)
    import av

    with av.open(path) as container:
        sizes = {(frame.width, frame.height) for frame in container.decode(video=0)}
    assert sizes == {(1280, 720)}  # part 2 scaled into part 1's frame, not misread


# -- codec parameters changing within one publish (issue 12) ------------------------------


def publish_file(port, stream, path):
    """ffmpeg publishing the FLV file ``path`` as it is, in real time (new sequence headers
    mid-file are passed on mid-stream, as an encoder that changes settings sends them)."""
    return subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
         "-i", str(path), "-c", "copy", "-rtmp_playpath", stream, "-f", "flv",
         f"rtmp://127.0.0.1:{port}/live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def keep_segments(site, pk, encoder, into, served_url):
    """Copy each segment the live playlist lists into ``into`` until ``encoder`` exits (nginx's
    hls_cleanup removes old ones); return the copies in order, every playlist text seen on disk
    and every one ``served_url`` (the site's verifier) served."""
    import urllib.request

    copies, playlists, served = {}, [], []
    while encoder.poll() is None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(served_url, timeout=5) as answer:
                served.append(answer.read().decode())
        with contextlib.suppress(FileNotFoundError):
            playlists.append(playlist(site, pk).read_text())
            for _, name in playlist_segments(playlist(site, pk)):
                if name not in copies:
                    copies[name] = into / name
                    shutil.copy(playlist(site, pk).parent / name, copies[name])
        time.sleep(0.2)
    return list(copies.values()), playlists, served


def health_report(site, pk):
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads((session_dir(site, pk) / "health.json").read_text())
    return None


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.parametrize("change", ["video", "audio", "video-and-audio"])
def test_settings_changed_mid_publish_play_right_and_the_host_is_told(
    site, nginx, tmp_path, change
):
    """One publish, 3 s then 6 s with other settings (a new AVC sequence header, AAC
    AudioSpecificConfig, or both), a 1 kHz tone throughout. nginx-rtmp carries the new
    settings into the segments (each decodes, at the right pitch) but does not mark the change
    in the playlist; the host is warned, and the recording plays right throughout."""
    from tests.ingest.streams import audio_formats, decodes_without_error, encode_file, video_sizes
    from tests.ingest.test_rtmp import CHANGES, FIRST, decoded_audio, spliced_flv, tone_frequency

    second = CHANGES[change]
    parts = [tmp_path / "first.flv", tmp_path / "second.flv"]
    for path, settings, seconds in ((parts[0], FIRST, 3), (parts[1], second, 6)):
        encode_file(path, seconds, tone=1000, realtime=False, **settings)
    stream = spliced_flv(tmp_path / "stream.flv", parts)
    pk, key = site_session(site)
    served_url = site.url + site.run(
        f"""
        from wagtail_live import grants
        result = grants.grant_url(LiveSession.objects.get(pk={pk}), "hls/index.m3u8")
        """
    )
    encoder = publish_file(nginx, stream_key_field(pk, key), stream)
    (tmp_path / "segments").mkdir()
    segments, playlists, served = keep_segments(
        site, pk, encoder, tmp_path / "segments", served_url
    )
    assert encoder.wait(30) == 0, encoder.stderr.read()

    # Live HLS: the first segment in the first settings, the last in the new ones, each
    # decoding alone at the tone's pitch (the new SPS/PPS and ADTS headers reached them).
    size = {s: tuple(int(n) for n in s.split("x")) for s in (FIRST["size"], second["size"])}
    for segment, settings in ((segments[0], FIRST), (segments[-1], second)):
        assert video_sizes(segment) == [size[settings["size"]]]
        rate = settings["sample_rate"]
        assert audio_formats(segment) == [(rate, settings["channels"])]
        assert decodes_without_error(segment) == (True, "")
        samples, _ = decoded_audio(segment, 0, 99)
        middle = samples[len(samples) // 10 : -len(samples) // 10]  # no encoder priming
        assert tone_frequency(middle, rate) == pytest.approx(1000, rel=0.02)
    # nginx-rtmp marks only a (re)publish: if a later version marks this too, update the docs.
    assert not any(discontinuity_pair_in(text) for text in playlists)
    # The playlist the site's verifier serves marks the change, between the right segments.
    pairs = {pair for text in served if (pair := discontinuity_pair_in(text))}
    assert len(pairs) == 1, served
    (before, after) = pairs.pop()
    directory = tmp_path / "segments"
    assert video_sizes(directory / before) == [size[FIRST["size"]]]
    assert video_sizes(directory / after) == [size[second["size"]]]
    rates = [audio_formats(directory / name)[0][0] for name in (before, after)]
    assert rates == [FIRST["sample_rate"], second["sample_rate"]]
    # The host was told (the report measured while the new settings arrived).
    report = health_report(site, pk)
    assert report["settings_changed"] is True
    assert "settings_changed" in [warning["code"] for warning in report["warnings"]]

    wait_until(lambda: recording_handed_off(site, pk), timeout=90, interval=0.5)
    status, error, path = site.run(
        f"""
        from wagtail_live.models import Recording
        recording = Recording.objects.get(session_id={pk})
        result = [recording.status, recording.error, recording.media.file.path]
        """
    )
    assert (status, error) == ("ready", "")
    assert decodes_without_error(path) == (True, "")
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"] and 8 < duration < 9.8, duration
    for start, end in ((0.3, 2.7), (duration - 5, duration - 0.5)):
        samples, rate = decoded_audio(path, start, end)
        assert rate == 48000 and tone_frequency(samples, rate) == pytest.approx(1000, rel=0.02)
    assert video_sizes(path) == [size[FIRST["size"]]]


def discontinuity_pair_in(text):
    """The (before, after) segment names of a playlist text's first ``#EXT-X-DISCONTINUITY``
    that follows a segment, or None."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    names = [(i, line) for i, line in enumerate(lines) if not line.startswith("#")]
    for index, line in enumerate(lines):
        if line == "#EXT-X-DISCONTINUITY":
            before = [name for i, name in names if i < index]
            after = [name for i, name in names if i > index]
            if before and after:
                return before[-1], after[0]
    return None


def wait_until_value(load, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = load()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


@pytest.mark.services
@pytest.mark.slow
def test_audio_only_stream_goes_live_with_audio_hls_and_an_audio_recording(site, nginx):
    pk, key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=5, video=None)
    wait_until(lambda: segment_count(site, pk) >= 2)
    segments = playlist_segments(playlist(site, pk))
    # nginx-rtmp's segments always declare a video stream in their PMT: what counts is that
    # only audio arrives in them (the player goes by the media, see player.js). Read now:
    # nginx's hls_cleanup removes them soon after the stream ends.
    assert packet_types(playlist(site, pk).parent / segments[0][1]) == {"audio"}
    assert encoder.wait(30) == 0
    # Went live (and, with no grace period, ended) and handed its recording on.
    wait_until(lambda: recording_handed_off(site, pk), timeout=60, interval=0.5)
    assert packet_types(session_dir(site, pk) / "recording.flv") == {"audio"}
    assert probe(session_dir(site, pk) / "recording.flv")[1] > 4
    media_type = site.run(
        f"""
        from wagtail_live.models import Recording
        recording = Recording.objects.get(session_id={pk})
        result = [recording.status, recording.error, recording.media.type if recording.media else None,
                  recording.session.started_at is not None]
        """
    )
    assert media_type == ["ready", "", "audio", True]


@pytest.mark.services
def test_no_log_records_a_stream_key_or_the_secret(site, nginx):
    """A real publish, a refused key and a second encoder; then every log is read."""
    pk, key = site_session(site)
    other_pk, other_key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=3)
    wrong = "wrong-key-" + key[:8]
    for refused in (
        push_session(nginx, other_pk, wrong, seconds=1),
        push_session(nginx, other_pk, key, seconds=1),  # another session's key
        push(nginx, other_key, seconds=1),  # the bare key, as before the one-application scheme
    ):
        refused.communicate(timeout=20)
    assert encoder.wait(30) == 0
    wait_until(lambda: recording_handed_off(site, pk), timeout=30, interval=0.5)

    prefix = NGINX_PREFIXES[nginx]
    logs = [*prefix.rglob("*.log"), site.log_path]
    assert (prefix / "error.log").exists()
    config = (prefix / "nginx.conf").read_text()
    assert "secret=" not in config and key not in config
    for path in logs:
        text = path.read_bytes()
        for secret in (key, other_key, SECRET, wrong):
            assert secret.encode() not in text, f"{secret[:6]}… in {path.name}"


def packet_types(path):
    """The kinds of stream ("audio", "video") that have packets in the media file at ``path``."""
    import av

    with av.open(str(path)) as container:
        return {packet.stream.type for packet in container.demux() if packet.size}


def assert_refused(site, port, pk, stream):
    encoder = push(port, stream, seconds=2)
    encoder.communicate(timeout=20)
    assert encoder.returncode != 0, "the encoder must be refused"
    assert not session_dir(site, pk).exists(), "nothing may be written for a refused encoder"
    assert not (site_live_root(site) / f"{pk}%2Fhls.flv").exists()


@pytest.mark.services
def test_wrong_key_is_refused(site, nginx):
    pk, _ = site_session(site)
    assert_refused(site, nginx, pk, stream_key_field(pk, "wrong-key"))
    assert site_state(site, pk)[0] == "ready"


@pytest.mark.services
@pytest.mark.parametrize(
    "stream",
    [
        "{pk}/hls",  # no key at all
        "{pk}/hls?key=",
        "{pk}/hls?key={other}",  # another session's key
        "{pk}/hls?key={other}&key={key}",  # two keys: ambiguous
        "{pk}/hls?key={key}&name={other_pk}/hls",  # a second name: ambiguous
        "{other_pk}/hls?key={key}&name={pk}/hls",
        "{key}",  # the bare key (configs before the one-application scheme)
        "{pk}?key={key}",
        "{pk}/hls/../hls?key={key}",
    ],
)
def test_missing_other_or_ambiguous_keys_are_refused(site, nginx, stream):
    pk, key = site_session(site)
    other_pk, other = site_session(site)
    values = {"pk": pk, "key": key, "other": other, "other_pk": other_pk}
    assert_refused(site, nginx, pk, stream.format(**values))
    assert not session_dir(site, other_pk).exists()
    assert site_state(site, pk)[0] == "ready" and site_state(site, other_pk)[0] == "ready"


@pytest.mark.services
def test_revoked_key_is_refused(site, nginx):
    pk, key = site_session(site, then="session.revoke_stream_key()")
    assert_refused(site, nginx, pk, stream_key_field(pk, key))


@pytest.mark.services
def test_expired_key_is_refused(site, nginx):
    pk, key = site_session(
        site,
        then="StreamKey.objects.filter(session=session).update("
        "issued_at=StreamKey.objects.get(session=session).issued_at - timedelta(days=30))",
    )
    assert_refused(site, nginx, pk, stream_key_field(pk, key))


@pytest.mark.services
def test_ended_session_key_is_refused(site, nginx):
    pk, key = site_session(site, then="session.end()")
    assert_refused(site, nginx, pk, stream_key_field(pk, key))


@pytest.mark.services
@pytest.mark.slow
def test_second_encoder_is_refused_and_the_first_keeps_streaming(site, nginx):
    pk, key = site_session(site)
    first = push_session(nginx, pk, key, seconds=6)
    wait_until(lambda: segment_count(site, pk) >= 2)
    second = push_session(nginx, pk, key, seconds=2)
    second.communicate(timeout=20)
    assert second.returncode != 0
    count = segment_count(site, pk)
    wait_until(lambda: segment_count(site, pk) > count)  # the first one keeps streaming
    assert first.wait(20) == 0


@pytest.mark.services
@pytest.mark.slow
def test_encoder_dying_mid_stream_ends_the_session_and_keeps_the_recording(site, nginx):
    pk, key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=0)
    wait_until(lambda: segment_count(site, pk) >= 2)
    encoder.kill()  # no deleteStream, just a dropped TCP connection
    encoder.wait()

    try:
        wait_until(lambda: recording_handed_off(site, pk), timeout=60, interval=0.5)
    except TimeoutError:
        pytest.fail(
            f"no hand-off after the encoder died; state {site_state(site, pk)}\n"
            f"site log:\n{site.log()[-4000:]}"
        )
    codecs, duration = probe(session_dir(site, pk) / "recording.flv")
    assert codecs == ["aac", "h264"] and duration > 1


@pytest.mark.services
@pytest.mark.slow
def test_end_live_in_the_admin_drops_the_nginx_encoder(site, nginx):
    pk, key = site_session(site)
    encoder = push_session(nginx, pk, key, seconds=0)
    try:
        wait_until(lambda: site_state(site, pk)[0] == "live")
        site.run(f"LiveSession.objects.get(pk={pk}).end()\nresult = None")
        encoder.wait(15)  # dropped by nginx at the next on_update
    finally:
        encoder.kill()
    wait_until(lambda: recording_handed_off(site, pk), timeout=30, interval=0.5)


async def publish_and_idle(port, key):
    """Publish ``live/<key>`` (the stream key field) like an encoder, then send no media; return (reader, writer, code)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x03" + b"\0" * 8 + os.urandom(1528))  # C0, C1 (plain handshake)
    s0s1s2 = await reader.readexactly(1 + 2 * 1536)
    writer.write(s0s1s2[1:1537])  # C2 echoes S1
    chunks = ChunkReader(reader)
    chunks.max_message_size = 1 << 20
    backlog = []

    async def command(name, transaction, *values, stream_id=0):
        payload = amf0.encode(name, transaction, *values)
        writer.write(encode_message(20, payload, stream_id=stream_id, chunk_size=128))
        await writer.drain()
        while True:
            if not backlog:
                backlog.extend(await chunks.read_messages())
            type_id, _, _, body = backlog.pop(0)
            if type_id == 1:  # SetChunkSize
                chunks.chunk_size = int.from_bytes(body[:4], "big")
            elif type_id == 20:
                reply = amf0.decode_all(body)
                if reply[0] in ("_result", "_error") and reply[1] == transaction:
                    return reply
                if reply[0] == "onStatus" and name == "publish":
                    return reply

    await command("connect", 1, {"app": "live", "tcUrl": f"rtmp://127.0.0.1:{port}/live"})
    stream_id = int((await command("createStream", 2, None))[3])
    status = await command("publish", 3, None, key, "live", stream_id=stream_id)
    return reader, writer, status[3]["code"]


@pytest.mark.services
@pytest.mark.slow
def test_an_encoder_that_publishes_and_sends_nothing_changes_nothing(site, nginx):
    pk, key = site_session(site)

    async def scenario():
        reader, writer, code = await publish_and_idle(nginx, stream_key_field(pk, key))
        assert code == "NetStream.Publish.Start"
        await asyncio.sleep(3)  # several on_update periods with nothing to play
        assert site_state(site, pk) == ["ready", []]
        writer.close()

    asyncio.run(scenario())
    time.sleep(1)  # nginx's publish_done / record_done callbacks
    assert site_state(site, pk) == ["ready", []]
    # The session is untouched: the same key then streams for real.
    encoder = push_session(nginx, pk, key)
    try:
        wait_until(lambda: site_state(site, pk)[0] == "live", timeout=40)
    except TimeoutError:
        pytest.fail(f"not live; encoder: {encoder.stderr.read()!r}\n{site.log()[-3000:]}")
    assert encoder.wait(20) == 0


# -- the callbacks themselves (no nginx needed) ------------------------------------------


@pytest.fixture
def nginx_settings(settings, media_root):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 0}
    (private_root() / "uploads" / "live").mkdir(parents=True)
    return settings


@pytest.fixture
def client(client):
    """The test client as nginx's callback server: the secret in the header it adds."""
    client.defaults["HTTP_X_WAGTAIL_LIVE_SECRET"] = SECRET
    return client


def session_with_key(title="Open day"):
    session = make_session(title)
    return session, session.issue_stream_key()


def status_of(session):
    session.refresh_from_db()
    return session.status


@pytest.mark.parametrize(
    "name", ["rtmp_on_publish", "rtmp_on_publish_done", "rtmp_on_record_done", "rtmp_on_update"]
)
@pytest.mark.parametrize("secret", [None, "", "not-the-secret"])
@db
def test_callbacks_without_the_secret_are_refused(nginx_settings, name, secret):
    from django.test import Client

    session, key = session_with_key()
    headers = {} if secret is None else {"HTTP_X_WAGTAIL_LIVE_SECRET": secret}
    response = Client().post(reverse(f"wagtail_live:{name}"), {"name": key}, **headers)
    assert response.status_code == 403
    assert status_of(session) == LiveSession.Status.READY
    assert not os.path.exists(session.media_dir)


@db
def test_callbacks_are_refused_when_no_secret_is_configured(client, settings):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": None}
    session, key = session_with_key()
    response = client.post(reverse("wagtail_live:rtmp_on_publish"), {"name": key})
    assert response.status_code == 403


@db
@pytest.mark.parametrize(
    "name, query",
    [
        ("rtmp_on_publish", f"secret={SECRET}&relay=rtmp://127.0.0.1:1/live_hls"),
        ("rtmp_on_publish", f"relay=rtmp://127.0.0.1:1/live_hls&secret={SECRET}"),
        ("rtmp_on_publish", "SECRET=x"),
        ("rtmp_on_publish", "secret="),
        ("rtmp_on_update", f"secret={SECRET}"),
        ("rtmp_on_publish_done", f"secret={SECRET}"),
    ],
)
def test_a_secret_in_the_url_is_a_clear_400(nginx_settings, name, query):
    """Access logs keep URLs: a config from an older version is told to regenerate, even
    with the right secret in the header too, and nothing happens."""
    from django.test import Client

    from wagtail_live.ingest.nginx_rtmp import SECRET_HEADER

    session, key = session_with_key()
    url = reverse(f"wagtail_live:{name}") + f"?{query}"
    response = Client().post(url, {"app": "live", "name": key}, headers={SECRET_HEADER: SECRET})
    assert response.status_code == 400
    assert "live_nginx_config" in response.content.decode()
    assert "Regenerate" in response.content.decode()
    assert not os.path.exists(session.media_dir)
    session.refresh_from_db()
    assert session.status == "ready"


@db
def test_callbacks_only_accept_post(client, nginx_settings):
    response = client.get(reverse("wagtail_live:rtmp_on_publish"))
    assert response.status_code == 405


def callback_url(name, **query):
    extra = "&".join(f"{key}={value}" for key, value in query.items())
    return reverse(f"wagtail_live:{name}") + (f"?{extra}" if extra else "")


def publish_form(session, key, **extra):
    """on_publish's form as nginx-rtmp sends it: its fields, then the publish arguments."""
    return {"app": "live", "call": "publish", "name": f"{session.pk}/hls", "type": "live",
            "key": key, **extra}  # fmt: skip


@db
def test_on_publish_accepts_the_session_s_own_name_with_its_key(client, nginx_settings):
    session, key = session_with_key()
    response = client.post(callback_url("rtmp_on_publish"), publish_form(session, key))
    assert response.status_code == 200
    assert hls_playlist_path(session).parent.is_dir()  # nginx writes there
    assert status_of(session) == LiveSession.Status.READY  # live once media arrives


@db
@pytest.mark.parametrize(
    "change",
    [
        {"key": ""},
        {"key": "wrong"},
        {"key": "other"},  # another session's key
        {"name": "{other}/hls"},  # another session's name with this key
        {"name": "{pk}"},
        {"name": "{pk}/hls/../../x"},
        {"name": "{key}"},  # the bare key: a config from before the one-application scheme
        {"name": ["{pk}/hls", "{other}/hls"]},  # args can repeat nginx's fields: ambiguous
        {"key": ["{key}", "other"]},
        {"key": None},
        {"name": None},
    ],
)
def test_on_publish_refuses_a_wrong_missing_or_ambiguous_key_or_name(
    client, nginx_settings, change
):
    session, key = session_with_key()
    other, other_key = session_with_key("Other")
    values = {"pk": session.pk, "other": other.pk, "key": key}

    def filled(value):
        if isinstance(value, list):
            return [filled(item) for item in value]
        return other_key if value == "other" else value.format(**values)

    form = publish_form(session, key)
    for name, value in change.items():
        if value is None:
            del form[name]
        else:
            form[name] = filled(value)
    response = client.post(callback_url("rtmp_on_publish"), form)
    assert response.status_code == 403
    assert key not in response.content.decode()
    for each in (session, other):
        assert not os.path.exists(each.media_dir)
        assert status_of(each) == LiveSession.Status.READY


@db
def test_on_publish_refuses_a_revoked_key_and_an_ended_session(client, nginx_settings):
    session, key = session_with_key()
    session.revoke_stream_key()
    assert (
        client.post(callback_url("rtmp_on_publish"), publish_form(session, key)).status_code == 403
    )
    session, key = session_with_key()
    session.end()
    assert (
        client.post(callback_url("rtmp_on_publish"), publish_form(session, key)).status_code == 403
    )
    assert not os.path.exists(session.media_dir)


@db
def test_a_second_nginx_encoder_is_refused_and_its_callbacks_change_nothing(client, nginx_settings):
    """nginx asks on_publish before it checks that nobody publishes the name yet, and sends a
    publisher it then refuses ("Already publishing") on_publish_done and on_record_done."""
    session, key = session_with_key()
    url = callback_url
    first = {"app": "live", "name": f"{session.pk}/hls", "clientid": "1"}
    assert (
        client.post(url("rtmp_on_publish"), publish_form(session, key, clientid="1")).status_code
        == 200
    )
    hls_playlist_path(session).write_text(PLAYLIST)
    assert client.post(url("rtmp_on_update"), first).status_code == 200
    assert status_of(session) == LiveSession.Status.LIVE

    second = {**first, "clientid": "5"}
    assert (
        client.post(url("rtmp_on_publish"), publish_form(session, key, clientid="5")).status_code
        == 403
    )
    client.post(url("rtmp_on_publish_done"), second)
    client.post(url("rtmp_on_record_done"), {**second, "path": "/x.flv"})
    assert status_of(session) == LiveSession.Status.LIVE  # the first one streams on
    assert client.post(url("rtmp_on_update"), first).status_code == 200


@db
def test_a_players_update_notes_nothing_and_makes_nothing_live(client, nginx_settings):
    """nginx sends on_update for players too (call=update_play): the WebRTC relay's."""
    from wagtail_live.ingest.nginx_rtmp import current_publisher

    session, key = session_with_key()
    form = publish_form(session, key, clientid="1")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 200
    hls_playlist_path(session).write_text(PLAYLIST)
    play = {"app": "live", "name": f"{session.pk}/hls", "clientid": "9", "call": "update_play"}
    assert client.post(callback_url("rtmp_on_update"), play).status_code == 200
    assert status_of(session) == LiveSession.Status.READY  # only the publisher's update does
    assert current_publisher(session) == "1"
    publish = {**play, "clientid": "1", "call": "update_publish"}
    assert client.post(callback_url("rtmp_on_update"), publish).status_code == 200
    assert status_of(session) == LiveSession.Status.LIVE
    session.refresh_from_db()
    session.end()
    assert client.post(callback_url("rtmp_on_update"), play).status_code == 403


@db
def test_an_nginx_encoder_may_come_back_at_once_but_not_over_another_backend(
    client, nginx_settings
):
    from wagtail_live.ingest.encoders import note_encoder

    nginx_settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 30}
    session, key = session_with_key()
    form = publish_form(session, key, clientid="1")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 200
    hls_playlist_path(session).write_text(PLAYLIST)  # a segment a second ago
    stream = {"app": "live", "name": f"{session.pk}/hls", "clientid": "1"}
    client.post(callback_url("rtmp_on_update"), stream)
    assert status_of(session) == LiveSession.Status.LIVE
    client.post(callback_url("rtmp_on_publish_done"), stream)  # the encoder dropped
    form = publish_form(session, key, clientid="2")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 200
    client.post(callback_url("rtmp_on_publish_done"), {**stream, "clientid": "2"})
    note_encoder(session, "browser")  # the Go Live screen's camera writes the same HLS now
    form = publish_form(session, key, clientid="3")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 403


@db
def test_a_publisher_note_nginx_stopped_refreshing_does_not_lock_the_session(
    client, nginx_settings
):
    """nginx restarted (its connection ids start again) or lost the publisher's callbacks."""
    from wagtail_live.ingest.nginx_rtmp import IDLE_PUBLISHER_SECONDS, publisher_path

    session, key = session_with_key()
    form = publish_form(session, key, clientid="1")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 200
    old = time.time() - IDLE_PUBLISHER_SECONDS - 1
    os.utime(publisher_path(session), (old, old))
    form = publish_form(session, key, clientid="2")
    assert client.post(callback_url("rtmp_on_publish"), form).status_code == 200


@db
def test_a_relaying_config_from_an_older_version_is_a_clear_400(client, nginx_settings):
    """Its on_publish URL carries ``relay=``; its encoders publish the bare key."""
    session, key = session_with_key()
    url = callback_url("rtmp_on_publish", relay="rtmp://127.0.0.1:1935/live_hls")
    response = client.post(url, {"app": "live", "name": key})
    assert response.status_code == 400
    assert "live_nginx_config" in response.content.decode()
    assert key not in response.content.decode()
    assert not os.path.exists(session.media_dir)


@db
def test_record_done_for_an_unknown_stream_is_ignored(client, nginx_settings):
    response = client.post(
        callback_url("rtmp_on_record_done"),
        {"app": "live", "name": "../x", "path": "/etc/passwd"},
    )
    assert response.status_code == 404


PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.000,\n0.ts\n"


def publish(client, session, key):
    """on_publish as nginx sends it; returns the form of the stream's later callbacks."""
    response = client.post(callback_url("rtmp_on_publish"), publish_form(session, key))
    assert response.status_code == 200
    return {"app": "live", "name": f"{session.pk}/hls"}


@db
def test_on_update_goes_live_at_the_first_segment_and_drops_an_ended_session(
    client, nginx_settings
):
    session, key = session_with_key()
    stream = publish(client, session, key)
    update = {**stream, "call": "update_publish"}
    url = callback_url("rtmp_on_update")

    assert client.post(url, update).status_code == 200
    assert status_of(session) == LiveSession.Status.READY  # nothing playable yet
    hls_playlist_path(session).write_text(PLAYLIST)
    assert client.post(url, update).status_code == 200
    assert status_of(session) == LiveSession.Status.LIVE

    session.issue_stream_key()  # a new key for next time does not cut the stream
    assert client.post(url, update).status_code == 200
    session.end()  # *End live* in the admin: the next update drops the encoder
    assert client.post(url, update).status_code == 403
    assert client.post(url, {**update, "name": "not-a-stream"}).status_code == 404
    assert client.post(url, {**update, "name": ["1/hls", "2/hls"]}).status_code == 404


@db
def test_an_encoder_that_sent_nothing_leaves_the_session_ready(client, nginx_settings):
    session, key = session_with_key()
    stream = publish(client, session, key)
    # drop_idle_publisher closed it: nginx reports the stream and its (empty) record done.
    client.post(callback_url("rtmp_on_publish_done"), stream)
    client.post(callback_url("rtmp_on_record_done"), {**stream, "path": "/nowhere.flv"})
    assert status_of(session) == LiveSession.Status.READY
    assert not Recording.objects.filter(session=session).exists()
    assert LiveSession.objects.for_stream_key(key) == session  # the key still works


@db
def test_a_stream_shorter_than_one_update_still_goes_live_and_ends(client, nginx_settings):
    session, key = session_with_key()
    stream = publish(client, session, key)
    hls_playlist_path(session).write_text(PLAYLIST)
    client.post(callback_url("rtmp_on_publish_done"), stream)
    assert status_of(session) == LiveSession.Status.ENDED


@db
def test_with_a_grace_period_the_clean_up_task_ends_and_hands_off(
    client, nginx_settings, media_root
):
    nginx_settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 5}
    session, key = session_with_key()
    stream = publish(client, session, key)
    recorded = private_root() / "uploads" / "live" / f"{session.pk}%2Fhls.flv"  # as nginx names it
    recorded.write_bytes(b"FLV" + b"\0" * 100)
    hls_playlist_path(session).write_text(PLAYLIST)
    client.post(callback_url("rtmp_on_update"), stream)
    client.post(callback_url("rtmp_on_publish_done"), stream)
    client.post(callback_url("rtmp_on_record_done"), {**stream, "path": str(recorded)})
    assert status_of(session) == LiveSession.Status.LIVE  # it may still resume
    assert recorded.exists()

    old = time.time() - 60
    os.utime(hls_playlist_path(session), (old, old))
    end_stale_sessions()
    assert status_of(session) == LiveSession.Status.LIVE  # nginx still appends to the recording
    os.utime(recorded, (old, old))
    end_stale_sessions()

    assert status_of(session) == LiveSession.Status.ENDED
    assert (Path(session.media_dir) / "recording.flv").exists()
    assert Recording.objects.get(session=session).source.name == session.media_path("recording.flv")


@db
def test_settings_changed_within_one_publish_are_flagged_until_the_encoder_reconnects(
    nginx_settings,
):
    from wagtail_live.ingest.nginx_rtmp import note_publisher, note_settings

    session, _key = session_with_key()
    Path(session.media_dir).mkdir(parents=True, exist_ok=True)

    def report(width=1280, rate=48000, audio=True):
        return {
            "video": {"codec": "h264", "width": width, "height": width * 9 // 16},
            "audio": {"codec": "aac", "sample_rate": rate, "channels": 2} if audio else None,
        }

    note_publisher(session, "7")
    assert note_settings(session, report()) == {"settings_changed": False}
    assert note_settings(session, report(audio=False)) == {"settings_changed": False}  # a gap
    assert note_settings(session, report()) == {"settings_changed": False}
    assert note_settings(session, report(rate=44100)) == {"settings_changed": True}
    assert note_settings(session, report(rate=44100)) == {"settings_changed": True}  # stays
    note_publisher(session, "8")  # a reconnect: nginx marks it in the playlist
    assert note_settings(session, report(width=640)) == {"settings_changed": False}
    assert note_settings(session, report(width=1280)) == {"settings_changed": True}
    (Path(session.media_dir) / "nginx-settings.json").write_text("{not json")
    assert note_settings(session, report()) == {"settings_changed": False}  # starts afresh


def test_served_nginx_playlists_mark_each_settings_change_once_and_keep_it_at_the_top(tmp_path):
    from tests.ingest.streams import encode_file
    from wagtail_live.ingest.nginx_rtmp import mark_settings_changes

    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    for name, rate in (("0.ts", 48000), ("1.ts", 48000), ("2.ts", 44100), ("3.ts", 44100)):
        encode_file(tmp_path / name, 0.5, realtime=False, sample_rate=rate, container="mpegts")
    (tmp_path / "9.ts").write_bytes(b"not a segment")

    mark = "#EXT-X-DISCONTINUITY"

    def served(*names, marked_before=()):
        lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1"]
        for name in names:
            lines += [mark] * (name in marked_before) + ["#EXTINF:0.5,", name]
        text = mark_settings_changes("\n".join(lines).encode(), tmp_path).decode()
        return [line for line in text.splitlines() if line == mark or not line.startswith("#")]

    assert served("0.ts", "1.ts", "2.ts", "3.ts") == ["0.ts", "1.ts", mark, "2.ts", "3.ts"]
    assert served("1.ts", "2.ts", marked_before=["2.ts"]) == ["1.ts", mark, "2.ts"]  # once
    assert served("2.ts", "3.ts") == [mark, "2.ts", "3.ts"]  # 1.ts has left the playlist
    assert served("3.ts", "9.ts", "3.ts") == ["3.ts", "9.ts", "3.ts"]  # unreadable: as it is


def test_the_nginx_backend_gives_the_encoder_the_stream_name_with_the_key_as_an_argument():
    from types import SimpleNamespace

    from wagtail_live.ingest.nginx_rtmp import NginxRTMPBackend
    from wagtail_live.ingest.rtmp import EmbeddedRTMPBackend

    session = SimpleNamespace(pk=12)
    assert NginxRTMPBackend().encoder_stream_key(session, "k3y") == "12/hls?key=k3y"
    assert EmbeddedRTMPBackend().encoder_stream_key(session, "k3y") == "k3y"


@pytest.mark.services
@db
def test_printed_config_with_http_locations_passes_nginx_t(nginx_settings, tmp_path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    config = io.StringIO()
    call_command(
        "live_nginx_config",
        "--full",
        f"--prefix={tmp_path}",
        f"--rtmp-port={free_port()}",
        f"--http-port={free_port()}",
        stdout=config,
    )
    (tmp_path / "nginx.conf").write_text(config.getvalue())
    checked = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    # The secret only in the header the loopback callback server adds, never in a URL.
    assert f'X-Wagtail-Live-Secret "{SECRET}";' in config.getvalue()
    assert "secret=" not in config.getvalue()


@db
def test_config_command_requires_a_secret(settings):
    from django.core.management import CommandError

    settings.WAGTAIL_LIVE = {"NGINX_SECRET": None}
    with pytest.raises(CommandError, match="NGINX_SECRET"):
        call_command("live_nginx_config", stdout=io.StringIO())


def test_nginx_hls_cleanup_spares_what_the_embedded_pipeline_writes(site, nginx):
    # nginx-rtmp sweeps its whole hls_path, where browser-camera sessions write too: old
    # *.ts and *.m3u8 files go, and so do directories it finds empty.
    live_root = site_live_root(site)
    ours = prepare_hls_dir(live_root / "990001" / "hls")
    recording = live_root / "990001" / RECORDING_NAME
    recording.write_bytes(b"\x47" + b"\0" * 187)
    control = live_root / "990002" / "hls" / "seg-00001.ts"
    control.parent.mkdir(parents=True)
    control.write_bytes(b"\x47" + b"\0" * 187)
    long_ago = time.time() - 300
    for path in (recording, control, ours / HLS_MARKER_NAME):
        os.utime(path, (long_ago, long_ago))

    # The clean-up runs every two playlist lengths (12 s with the printed configuration).
    wait_until(lambda: not control.parent.parent.exists(), timeout=45, interval=0.5)
    assert recording.exists()
    assert (ours / HLS_MARKER_NAME).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["nginx", "embedded"])
def test_the_go_live_screen_shows_the_stream_key_field_the_backend_takes(
    client, settings, host, session, backend
):
    """OBS users paste Server and Stream key: for nginx the key field names the stream."""
    import html

    settings.WAGTAIL_LIVE = {"RTMP": backend, "NGINX_SECRET": SECRET}
    key = session.issue_stream_key()
    client.force_login(host)
    content = html.unescape(
        client.get(reverse("wagtail_live_admin:go_live", args=[session.pk])).content.decode()
    )
    field = re.search(r'id="live-stream-key"[^>]*value="([^"]*)"', content)[1]
    assert field == (f"{session.pk}/hls?key={key}" if backend == "nginx" else key)
    server = re.search(r'id="live-rtmp-url"[^>]*value="([^"]*)"', content)[1]
    assert server.endswith("/live")
