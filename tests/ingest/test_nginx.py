"""nginx-rtmp ingest: a real nginx, configured by ``live_nginx_config``, calling a live Django."""

import io
import os
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.urls import reverse

from tests.ingest.streams import lavfi_args, playlist_segments, probe
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest.base import end_stale_sessions, hls_playlist_path
from wagtail_live.models import LiveSession, Recording, StreamKey

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
SECRET = "a-test-secret-of-some-length"
DONE = ("ready", "failed")  # the recordings task ran (Huey is immediate in tests)

pytestmark = [pytest.mark.django_db(transaction=True)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OperationalError:
            pass  # the live server's thread holds SQLite's shared in-memory table lock
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


@pytest.fixture
def nginx_settings(settings, media_root):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 0}
    (media_root / "uploads" / "live").mkdir(parents=True)
    return settings


@pytest.fixture
def nginx(nginx_settings, live_server, tmp_path):
    """A real nginx with the RTMP module, its callbacks pointing at ``live_server``."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    config = io.StringIO()
    call_command(
        "live_nginx_config",
        "--full",
        f"--site-url={live_server.url}",
        f"--rtmp-port={port}",
        f"--prefix={prefix}",
        f"--module-path={MODULE}",
        stdout=config,
    )
    (prefix / "nginx.conf").write_text(config.getvalue())
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
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


def push(port, key, seconds=4):
    return subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error",
         *lavfi_args(seconds), "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def session_with_key(title="Open day"):
    session = make_session(title)
    return session, session.issue_stream_key()


def status_of(session):
    session.refresh_from_db()
    return session.status


@pytest.mark.services
@pytest.mark.slow
def test_right_key_streams_hls_and_hands_off_the_recording(nginx):
    session, key = session_with_key()
    encoder = push(nginx, key)
    wait_until(lambda: hls_playlist_path(session).exists())
    assert status_of(session) == LiveSession.Status.LIVE
    assert encoder.wait(20) == 0

    wait_until(lambda: Recording.objects.filter(session=session, status__in=DONE).exists())
    assert status_of(session) == LiveSession.Status.ENDED
    segments = playlist_segments(hls_playlist_path(session))
    assert segments and all(duration <= 1.6 for duration, _ in segments[:-1])
    assert probe(hls_playlist_path(session).parent / segments[0][1])[0] == ["aac", "h264"]
    recording = Path(session.media_dir) / "recording.flv"
    codecs, duration = probe(recording)
    assert codecs == ["aac", "h264"] and duration > 3
    assert key not in " ".join(os.listdir(session.media_dir))  # the key never names a file
    assert Recording.objects.get(session=session).source.name == session.media_path("recording.flv")


def assert_refused(port, session, key):
    encoder = push(port, key, seconds=2)
    _, stderr = encoder.communicate(timeout=20)
    assert encoder.returncode != 0, "the encoder must be refused"
    assert not os.path.exists(session.media_dir), "nothing may be written for a refused encoder"
    return stderr


@pytest.mark.services
def test_wrong_key_is_refused(nginx):
    session, _ = session_with_key()
    assert_refused(nginx, session, "wrong-key")
    assert status_of(session) == LiveSession.Status.READY


@pytest.mark.services
def test_revoked_key_is_refused(nginx):
    session, key = session_with_key()
    session.revoke_stream_key()
    assert_refused(nginx, session, key)


@pytest.mark.services
def test_expired_key_is_refused(nginx):
    session, key = session_with_key()
    stream_key = StreamKey.objects.get(session=session)
    StreamKey.objects.filter(pk=stream_key.pk).update(
        issued_at=stream_key.issued_at - timedelta(days=30)
    )
    assert_refused(nginx, session, key)


@pytest.mark.services
def test_ended_session_key_is_refused(nginx):
    session, key = session_with_key()
    session.end()
    assert_refused(nginx, session, key)


@pytest.mark.services
@pytest.mark.slow
def test_second_encoder_is_refused_and_the_first_keeps_streaming(nginx):
    session, key = session_with_key()
    first = push(nginx, key, seconds=6)
    wait_until(lambda: segment_count(session) >= 2)
    second = push(nginx, key, seconds=2)
    second.communicate(timeout=20)
    assert second.returncode != 0
    count = segment_count(session)
    wait_until(lambda: segment_count(session) > count)  # the first one keeps streaming
    assert first.wait(20) == 0


def segment_count(session):
    path = hls_playlist_path(session)
    return len(playlist_segments(path)) if path.exists() else 0


# -- the callbacks themselves (no nginx needed) ------------------------------------------


@pytest.mark.parametrize("name", ["rtmp_on_publish", "rtmp_on_publish_done", "rtmp_on_record_done"])
@pytest.mark.parametrize("secret", [None, "", "not-the-secret"])
def test_callbacks_without_the_secret_are_refused(client, nginx_settings, name, secret):
    session, key = session_with_key()
    url = reverse(f"wagtail_live:{name}") + (f"?secret={secret}" if secret is not None else "")
    response = client.post(url, {"name": key, "call": "publish"})
    assert response.status_code == 403
    assert status_of(session) == LiveSession.Status.READY
    assert not os.path.exists(session.media_dir)


def test_callbacks_are_refused_when_no_secret_is_configured(client, settings):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": None}
    session, key = session_with_key()
    response = client.post(reverse("wagtail_live:rtmp_on_publish") + "?secret=", {"name": key})
    assert response.status_code == 403


def test_callbacks_only_accept_post(client, nginx_settings):
    response = client.get(reverse("wagtail_live:rtmp_on_publish") + f"?secret={SECRET}")
    assert response.status_code == 405


def callback_url(name, **query):
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return reverse(f"wagtail_live:{name}") + f"?secret={SECRET}{extra}"


RELAY = "rtmp://127.0.0.1:1935/live_hls"


def test_on_publish_relays_the_stream_away_from_the_key(client, nginx_settings):
    session, key = session_with_key()
    response = client.post(
        callback_url("rtmp_on_publish", relay=RELAY), {"app": "live", "name": key}
    )
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{RELAY}/{session.pk}/hls?token=") and key not in location
    assert status_of(session) == LiveSession.Status.LIVE
    # The relay itself is let into the internal application with that token only.
    token = location.partition("token=")[2]
    inner = {"app": "live_hls", "name": f"{session.pk}/hls"}
    url = callback_url("rtmp_on_publish")
    assert client.post(url, {**inner, "token": token}).status_code == 200
    assert client.post(url, {**inner, "token": "forged"}).status_code == 403
    assert (
        client.post(url, {**inner, "name": f"{session.pk + 1}/hls", "token": token}).status_code
        == 403
    )


def test_record_done_for_an_unknown_stream_is_ignored(client, nginx_settings):
    response = client.post(
        callback_url("rtmp_on_record_done"),
        {"app": "live_hls", "name": "../x", "path": "/etc/passwd"},
    )
    assert response.status_code == 404


def test_with_a_grace_period_the_clean_up_task_ends_and_hands_off(
    client, nginx_settings, media_root
):
    nginx_settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 5}
    session, key = session_with_key()
    client.post(callback_url("rtmp_on_publish", relay=RELAY), {"app": "live", "name": key})
    recorded = media_root / "uploads" / "live" / f"{session.pk}%2Fhls.flv"  # as nginx names it
    recorded.write_bytes(b"FLV" + b"\0" * 100)
    hls_playlist_path(session).write_text("#EXTM3U\n")
    inner = {"app": "live_hls", "name": f"{session.pk}/hls"}
    client.post(callback_url("rtmp_on_publish_done"), inner)
    client.post(callback_url("rtmp_on_record_done"), {**inner, "path": str(recorded)})
    assert status_of(session) == LiveSession.Status.LIVE  # it may still resume
    assert recorded.exists()

    old = time.time() - 60
    os.utime(hls_playlist_path(session), (old, old))
    end_stale_sessions()

    assert status_of(session) == LiveSession.Status.ENDED
    assert (Path(session.media_dir) / "recording.flv").exists()
    assert Recording.objects.get(session=session).source.name == session.media_path("recording.flv")


@pytest.mark.services
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
    assert f"secret={SECRET}" in config.getvalue()


def test_config_command_requires_a_secret(settings):
    from django.core.management import CommandError

    settings.WAGTAIL_LIVE = {"NGINX_SECRET": None}
    with pytest.raises(CommandError, match="NGINX_SECRET"):
        call_command("live_nginx_config", stdout=io.StringIO())


@pytest.mark.services
@pytest.mark.slow
def test_encoder_dying_mid_stream_ends_the_session_and_keeps_the_recording(nginx):
    session, key = session_with_key()
    encoder = push(nginx, key, seconds=0)
    wait_until(lambda: segment_count(session) >= 2)
    encoder.kill()  # no deleteStream, just a dropped TCP connection
    encoder.wait()

    wait_until(lambda: Recording.objects.filter(session=session, status__in=DONE).exists())
    assert status_of(session) == LiveSession.Status.ENDED
    codecs, duration = probe(Path(session.media_dir) / "recording.flv")
    assert codecs == ["aac", "h264"] and duration > 1
