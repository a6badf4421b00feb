"""A real nginx with the generated config, plus the by-path ``MEDIA_URL`` location every site has.

No spelling of any path hands out a private session's files (live HLS, recording
sources, nginx-rtmp's ``.flv``, the MP4, the poster), to visitors or members; members
get them through the checked routes, which nginx sends with X-Accel-Redirect.
"""

from pathlib import Path

import pytest
from django.urls import reverse

from tests.nginx import ACCEL, free_port, full_config, running_nginx, use_accel_redirect
from tests.test_playback_nginx import member_cookie
from tests.test_private_files import PLAYLIST, SEGMENT, recorded, spellings, write_working_files
from tests.test_recordings import ensure_default_site
from tests.utils import make_session
from tests.utils import raw_get as nginx_get
from wagtail_live.models import LiveSession
from wagtail_live.storage import private_root

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def media(settings, tmp_path):
    # A transactional test that ran before flushed the migrations' default site.
    ensure_default_site()
    use_accel_redirect(settings, tmp_path / "media")
    (tmp_path / "media").mkdir()
    return tmp_path / "media"


@pytest.fixture
def nginx(media, live_server, tmp_path):
    """nginx from ``live_nginx_config --full``, with the site's own ``location /media/``."""
    prefix = tmp_path / "nginx"
    port = free_port()
    text = full_config(live_server.url, prefix, media, port)
    # What a site adds for MEDIA_URL: everything under MEDIA_ROOT, by path.
    site_media = f"location /media/ {{\n            alias {media}/;\n        }}\n        "
    text = text.replace("location / {", site_media + "location / {", 1)
    with running_nginx(prefix, text, port, rtmp=True):
        yield port


def raw_get(port, path, cookie=None):
    """(status, body) for ``path`` sent exactly as written (no client-side normalising)."""
    status, _headers, body = nginx_get(port, path, {"Cookie": cookie} if cookie else None)
    return status, body


def test_nginx_serves_no_private_file_by_any_path(nginx, host, editor, client, tmp_path, media):
    session = make_session("Members only", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    write_working_files(session)
    recording = recorded(session, tmp_path)
    files = {
        str(path.relative_to(private_root())): path.read_bytes()
        for path in private_root().rglob("*")
        if path.is_file() and f"/{session.pk}" in str(path)
    }
    assert len(files) >= 7
    assert [p for p in Path(media).rglob("*") if p.is_file()] == []
    # The by-path location works: a public file under MEDIA_ROOT is served.
    (Path(media) / "public.txt").write_text("anyone")
    assert raw_get(nginx, "/media/public.txt") == (200, b"anyone")

    cookie = member_cookie(client, editor)
    leaks = []
    for who in (None, cookie):
        for name, content in files.items():
            for path in spellings("/media/", name):
                status, body = raw_get(nginx, path, who)
                if status == 200 and content in body:
                    leaks.append((bool(who), path))
    assert leaks == []

    # Members reach them through the checked routes; nginx sends the bytes.
    checked = [
        (reverse("wagtail_live:hls", args=[session.pk, "index.m3u8"]), PLAYLIST.encode()),
        (reverse("wagtail_live:hls", args=[session.pk, "seg-abc-00001.ts"]), SEGMENT),
        (reverse("wagtail_live:recording_media", args=[recording.pk]), None),
        (reverse("wagtail_live:recording_poster", args=[recording.pk]), None),
    ]
    for url, expected in checked:
        assert raw_get(nginx, url)[0] == 403, url
        status, body = raw_get(nginx, url, cookie)
        assert status == 200, url
        if expected is not None:
            assert body == expected
        else:
            assert body and any(body == content for content in files.values()), url
    # The internal location is not reachable from outside.
    assert raw_get(nginx, f"{ACCEL}{session.pk}/hls/index.m3u8", cookie)[0] == 404
