"""A channel layer that is down is a clear message, never a 500 after a commit (issue 11, kind 6).

``channels_redis`` points at 127.0.0.1:1, where nothing listens: every send is refused.
The state change still happens, the failed announcement is logged, and people are told:
the admin with a Wagtail message, a chat socket with an ``error`` frame and close code
4503 (docs/protocol.md), and an encoder keeps streaming.
"""

import asyncio
import logging
import os

import pytest
from asgiref.sync import sync_to_async
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.live_client import LiveClient
from tests.utils import make_session, require
from wagtail_live import presence
from wagtail_live.ingest.base import Broadcast, hls_playlist_path
from wagtail_live.models import LiveSession

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [("127.0.0.1", 1)]},
    }
}
UNAVAILABLE = "real-time updates are unavailable"
NGINX_SECRET = "nginx-shared-secret-for-tests"


@pytest.fixture
def redis_down(settings, caplog):
    """The site's channel layer is channels_redis, and its Redis is unreachable."""
    pytest.importorskip("channels_redis")
    settings.CHANNEL_LAYERS = UNREACHABLE_REDIS
    caplog.set_level(logging.ERROR, logger="wagtail_live")
    return caplog


def layer_failures(caplog):
    return [r for r in caplog.records if UNAVAILABLE in r.getMessage().lower()]


def status_of(session):
    return LiveSession.objects.get(pk=session.pk).status


# -- the admin: Go live and End live ------------------------------------------------------


@pytest.mark.django_db
def test_go_live_saves_the_change_and_says_realtime_is_unavailable(client, host, redis_down):
    session = make_session(owner=host)
    client.force_login(host)
    response = client.post(reverse("wagtail_live_admin:go_live", args=[session.pk]))
    assert response.status_code == 302
    assert status_of(session) == LiveSession.Status.LIVE
    texts = [str(m).lower() for m in get_messages(response.wsgi_request)]
    assert any("you are live" in t for t in texts)
    assert any(UNAVAILABLE in t for t in texts), texts
    assert layer_failures(redis_down), "the failed announcement is logged"


@pytest.mark.django_db
def test_end_live_saves_the_change_and_says_realtime_is_unavailable(client, host, redis_down):
    session = make_session(owner=host)
    session.start()
    client.force_login(host)
    response = client.post(reverse("wagtail_live_admin:end_live", args=[session.pk]))
    assert response.status_code == 302
    assert status_of(session) == LiveSession.Status.ENDED
    texts = [str(m).lower() for m in get_messages(response.wsgi_request)]
    assert any("ended" in t for t in texts)
    assert any(UNAVAILABLE in t for t in texts), texts
    # The rest of the transition happened: keys revoked, figures kept.
    assert not session.stream_keys.filter(revoked_at__isnull=True).exists()
    assert LiveSession.objects.get(pk=session.pk).figures is not None


@pytest.mark.django_db
def test_with_the_layer_up_nobody_is_warned(client, host):
    session = make_session(owner=host)
    client.force_login(host)
    response = client.post(reverse("wagtail_live_admin:go_live", args=[session.pk]))
    texts = [str(m).lower() for m in get_messages(response.wsgi_request)]
    assert texts == ["you are live."]


@pytest.mark.django_db
def test_services_publishing_from_sync_code_log_instead_of_raising(redis_down):
    from wagtail_live import events

    assert events.publish(1, "status", state="live") is False
    assert layer_failures(redis_down)


# -- a chat socket ------------------------------------------------------------------------


@pytest.fixture
def fresh_presence():
    presence._backend = None
    yield
    presence._backend = None


@pytest.mark.django_db(transaction=True)
async def test_chat_socket_gets_an_error_frame_and_close_4503(redis_down, fresh_presence):
    session = await sync_to_async(make_session)()
    client = LiveClient(session.pk)
    connected, _ = await client.communicator.connect()
    assert connected
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == "realtime_unavailable"
    assert error["message"]
    assert await client.expect_close() == 4503
    assert layer_failures(redis_down) or any(
        "live socket refused" in r.getMessage() for r in redis_down.records
    )


@pytest.mark.django_db(transaction=True)
async def test_a_second_socket_after_a_failed_one_is_refused_the_same_way(
    redis_down, fresh_presence
):
    # A failed join leaves no half-started room behind for the next socket to fall into.
    session = await sync_to_async(make_session)()
    for _ in range(2):
        client = LiveClient(session.pk)
        await client.communicator.connect()
        assert (await client.receive())["code"] == "realtime_unavailable"
        assert await client.expect_close() == 4503


# -- encoders: nginx-rtmp's callbacks and the embedded RTMP listener ---------------------


@pytest.mark.django_db
def test_nginx_callbacks_take_the_stream_live_and_end_it(
    client, settings, tmp_path, redis_down, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": NGINX_SECRET, "RECONNECT_GRACE": 0}
    session = make_session()
    session.issue_stream_key()

    def post(name, data):
        # A callback announces when its transaction commits (the test's would never).
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse(f"wagtail_live:{name}"),
                data,
                HTTP_X_WAGTAIL_LIVE_SECRET=NGINX_SECRET,
            )

    playlist = hls_playlist_path(session)
    playlist.parent.mkdir(parents=True, exist_ok=True)
    playlist.write_text("#EXTM3U\n#EXTINF:1.000,\n0.ts\n")
    update = {"app": "live", "name": f"{session.pk}/hls", "call": "update_publish"}
    assert post("rtmp_on_update", update).status_code == 200  # the encoder stays
    assert status_of(session) == LiveSession.Status.LIVE
    assert post("rtmp_on_update", update).status_code == 200
    inner = {"app": "live", "name": f"{session.pk}/hls"}
    assert post("rtmp_on_publish_done", inner).status_code == 200
    assert status_of(session) == LiveSession.Status.ENDED
    assert layer_failures(redis_down)


@pytest.fixture
def rtmp_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 0}
    Broadcast._active.clear()
    yield
    Broadcast._active.clear()


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_an_rtmp_encoder_is_not_dropped_when_the_broadcast_fails(redis_down, rtmp_media):
    from tests.ingest.streams import playlist_segments, push_rtmp, wait_for
    from wagtail_live.ffmpeg import ffmpeg_binary
    from wagtail_live.ingest.rtmp import RTMPServer

    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    listener = RTMPServer("127.0.0.1", 0, timeout=4)
    await listener.start()
    try:

        def create():
            session = make_session()
            return session, session.issue_stream_key()

        session, key = await sync_to_async(create)()
        encoder = await push_rtmp(f"rtmp://127.0.0.1:{listener.port}/live/{key}", seconds=4)
        playlist = hls_playlist_path(session)
        await wait_for(lambda: playlist.exists() and len(playlist_segments(playlist)) >= 1)
        assert await sync_to_async(status_of)(session) == LiveSession.Status.LIVE
        # The encoder streams to its end: the whole 4 s reach the playlist.
        assert await encoder.wait() == 0, (await encoder.stderr.read()).decode()[-2000:]
        for _ in range(200):  # the session ends once the encoder has gone (no grace)
            if await sync_to_async(status_of)(session) == LiveSession.Status.ENDED:
                break
            await asyncio.sleep(0.1)
        assert await sync_to_async(status_of)(session) == LiveSession.Status.ENDED
        assert len(playlist_segments(playlist)) >= 3
    finally:
        await listener.close()
    assert layer_failures(redis_down)


@pytest.mark.django_db
def test_a_ban_is_saved_though_its_broadcast_fails(redis_down, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model

    from tests.utils import make_editor
    from wagtail_live import chat
    from wagtail_live.models import ChatBan

    moderator = make_editor("moderator", "moderate_chat")
    troll = get_user_model().objects.create_user("troll", "troll@example.com", "password")
    with django_capture_on_commit_callbacks(execute=True):
        chat.ban(moderator, troll.pk, "spam")
    assert ChatBan.objects.filter(target_user=troll).exists()
    assert layer_failures(redis_down)


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_browser_camera_is_not_dropped_when_the_broadcast_fails(
    redis_down, rtmp_media, tmp_path
):
    from channels.testing import WebsocketCommunicator

    from tests.ingest.streams import encode_file
    from tests.ingest.test_browser import chromium_like
    from tests.utils import make_editor
    from wagtail_live.ffmpeg import ffmpeg_binary
    from wagtail_live.routing import websocket_urlpatterns

    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    from channels.routing import URLRouter

    webm = chromium_like(
        await asyncio.to_thread(
            encode_file, tmp_path / "camera.mkv", 4, container="matroska", audio="libopus"
        )
    )

    def create():
        host = make_editor("camera-host")
        return host, make_session(owner=host)

    host, session = await sync_to_async(create)()
    socket = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns),
        f"/ws/live/{session.pk}/ingest/",
        headers=[(b"origin", b"http://testserver"), (b"host", b"testserver")],
    )
    socket.scope["user"] = host
    connected, _ = await socket.connect()
    assert connected
    frames = []
    for start in range(0, len(webm), 16 * 1024):
        await socket.send_to(bytes_data=webm[start : start + 16 * 1024])
        await asyncio.sleep(0.02)
        while not socket.output_queue.empty():
            frames.append(await socket.receive_output())
    # Went live, and kept taking the camera's media to its end: no error, no close.
    assert {"websocket.send"} >= {f["type"] for f in frames}, frames
    sent = [f.get("text") or "" for f in frames]
    assert any('"live"' in text for text in sent), sent
    assert await sync_to_async(status_of)(session) == LiveSession.Status.LIVE
    await socket.send_to(text_data='{"type": "end"}')
    assert '"ended"' in (await socket.receive_output(10)).get("text", "")
    await socket.disconnect()
    assert await sync_to_async(status_of)(session) == LiveSession.Status.ENDED
    assert layer_failures(redis_down)
