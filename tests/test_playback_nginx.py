"""Private playback behind a real nginx: Django decides, nginx sends the file (X-Accel-Redirect).

nginx runs the HTTP part of ``manage.py live_nginx_config --full``, proxying to a live
Django server; a private session's playlist and segment are fetched through it as an
anonymous visitor and as a member.
"""

import urllib.error
import urllib.request

import pytest

from tests.nginx import ACCEL, free_port, full_config, running_nginx, use_accel_redirect
from tests.utils import make_session
from wagtail_live.models import LiveSession

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"
SEGMENT = b"\x47" + b"\x01" * 187


@pytest.fixture
def media(settings, tmp_path):
    use_accel_redirect(settings, tmp_path / "media")
    # nginx's rtmp block creates its record directory inside it, so it must exist.
    (tmp_path / "media" / "uploads" / "live").mkdir(parents=True)
    return tmp_path / "media"


@pytest.fixture
def nginx(media, live_server, tmp_path):
    """A real nginx in front of ``live_server``; returns its base URL."""
    yield from run_nginx(media, live_server, tmp_path)


@pytest.fixture
def nginx_public(media, live_server, tmp_path, settings):
    """The same, configured with ``PLAYBACK_FROM_MEDIA_URL``."""
    settings.WAGTAIL_LIVE = {**settings.WAGTAIL_LIVE, "PLAYBACK_FROM_MEDIA_URL": True}
    yield from run_nginx(media, live_server, tmp_path)


def run_nginx(media, live_server, tmp_path):
    prefix = tmp_path / "nginx"
    http_port = free_port()
    config = full_config(live_server.url, prefix, media, http_port)
    with running_nginx(prefix, config, http_port, rtmp=True):
        yield f"http://127.0.0.1:{http_port}"


def get(url, cookie=None):
    """(status, headers, body) of a GET, without raising on 4xx."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def private_session(host):
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True)
    (hls / "index.m3u8").write_text(PLAYLIST)
    (hls / "seg-abc-00001.ts").write_bytes(SEGMENT)
    return session


def member_cookie(client, user):
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_members_get_private_files_from_nginx(nginx, private_session, editor, client):
    cookie = member_cookie(client, editor)
    status, headers, body = get(nginx + private_session.playback_url, cookie)
    assert status == 200
    assert body.decode() == PLAYLIST
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert "X-Accel-Redirect" not in headers  # nginx consumed it
    segment_url = nginx + private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    status, headers, body = get(segment_url, cookie)
    assert status == 200
    assert body == SEGMENT


@pytest.mark.parametrize("name", ["index.m3u8", "seg-abc-00001.ts", "seg-abc-00002.ts"])
def test_anonymous_get_403_through_nginx(nginx, private_session, name):
    status, _, body = get(f"{nginx}/live/sessions/{private_session.pk}/hls/{name}")
    assert status == 403
    assert b"EXTM3U" not in body


def test_the_internal_location_cannot_be_fetched_directly(nginx, private_session):
    status, _, body = get(f"{nginx}{ACCEL}{private_session.pk}/hls/index.m3u8")
    assert status == 404
    assert b"EXTM3U" not in body


def test_private_files_are_not_reachable_under_media_url(nginx, private_session):
    """The live folder lives under MEDIA_ROOT: nginx must not hand it out by path."""
    for name in ("index.m3u8", "seg-abc-00001.ts"):
        status, _, body = get(f"{nginx}/media/uploads/live/{private_session.pk}/hls/{name}")
        assert status in (403, 404), (name, status)
        assert b"EXTM3U" not in body and body != SEGMENT


def test_with_playback_from_media_url_public_files_are_served_by_path(nginx_public, host):
    session = make_session(owner=host)
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True)
    (hls / "index.m3u8").write_text(PLAYLIST)
    assert session.playback_url.startswith("/media/")
    status, _, body = get(nginx_public + session.playback_url)
    assert status == 200
    assert body.decode() == PLAYLIST
