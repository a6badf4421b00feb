"""nginx as the grant verifier: the server block of ``live_nginx_config --http`` in a real nginx.

nginx checks every grant itself (secure_link); the site behind it (a live Django server)
is only asked for everything else. Private files must be unreachable without a valid
grant, and out of the grant's reach (sources, other sessions) with one, by any spelling.
"""

import getpass
import io
import time

import pytest
from django.core.management import call_command

from tests.nginx import free_port, running_nginx
from tests.utils import make_session
from tests.utils import raw_get as get
from wagtail_live import grants
from wagtail_live.models import LiveSession

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"
SEGMENT = b"\x47" + b"\x03" * 187
RECORDING = bytes(range(256)) * 64
SOURCE = b"the recording's source: never delivered"


@pytest.fixture
def roots(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_LIVE = {"PRIVATE_ROOT": str(tmp_path / "private"), "GRANT_SIGNER": "nginx-md5"}
    return tmp_path


@pytest.fixture
def nginx(roots, live_server, tmp_path):
    """A real nginx running the printed server block; returns its port."""
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    port = free_port()
    out = io.StringIO()
    call_command("live_nginx_config", "--http", f"--listen=127.0.0.1:{port}",
                 f"--site-url={live_server.url}", stdout=out)  # fmt: skip
    temp = " ".join(
        f"{name}_temp_path {prefix}/tmp/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = (
        f"user {getpass.getuser()};\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{temp}\n{out.getvalue()}\n}}\n"
    )
    with running_nginx(prefix, config, port):
        yield port


def with_files(session):
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True)
    (hls / "index.m3u8").write_text(PLAYLIST)
    (hls / "seg-abc-00001.ts").write_bytes(SEGMENT)
    (session.media_dir / f"recording-{session.pk}.mp4").write_bytes(RECORDING)
    (session.media_dir / "recording.mpegts").write_bytes(SOURCE)
    return session


@pytest.fixture
def private_session(roots, host):
    return with_files(make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE))


@pytest.fixture
def other_session(roots, host):
    return with_files(make_session("Other", owner=host, privacy=LiveSession.Privacy.PRIVATE))


def leaked(body):
    return b"EXTM3U" in body or SEGMENT in body or RECORDING[:512] in body or SOURCE in body


def test_a_valid_grant_gets_every_file_from_nginx(nginx, private_session):
    url = private_session.playback_url
    status, headers, body = get(nginx, url)
    assert (status, body.decode()) == (200, PLAYLIST)
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "public, max-age=1"
    status, headers, body = get(nginx, url.replace("index.m3u8", "seg-abc-00001.ts"))
    assert (status, body) == (200, SEGMENT)
    assert headers["Content-Type"] == "video/mp2t"
    assert "immutable" in headers["Cache-Control"]
    recording = grants.grant_url(private_session, f"recording-{private_session.pk}.mp4")
    status, headers, body = get(nginx, recording, {"Range": "bytes=100-199"})
    assert (status, body) == (206, RECORDING[100:200])
    assert headers["Content-Type"] == "video/mp4"


def test_a_recordings_grant_opens_that_file_only_in_nginx(nginx, private_session):
    """secure_link_md5 signs "$wl_expires/$wl_session/$wl_file" for recordings: the live
    grant and another recording's grant are refused (the draft-recording attack)."""
    pk = private_session.pk
    other_name = f"recording-{pk + 1000}.mp4"
    (private_session.media_dir / other_name).write_bytes(b"draft in review")
    (private_session.media_dir / f"recording-{pk}-web.mp4").write_bytes(b"web copy")
    own = grants.grant_url(private_session, f"recording-{pk}.mp4")
    assert get(nginx, own)[0] == 200
    live_base = private_session.playback_url.removesuffix("hls/index.m3u8")
    for path in (
        own.replace(f"recording-{pk}.mp4", other_name),
        own.replace(f"recording-{pk}.mp4", f"recording-{pk}-web.mp4"),
        live_base + f"recording-{pk}.mp4",
        live_base + other_name,
    ):
        status, _headers, body = get(nginx, path)
        assert status == 403, path
        assert b"draft" not in body and not leaked(body), path
    # A recording's grant is no live grant either.
    recording_base = own.removesuffix(f"recording-{pk}.mp4")
    assert get(nginx, recording_base + "hls/index.m3u8")[0] == 403


def test_bad_grants_are_403(nginx, private_session, other_session):
    session_id, token = private_session.playback_url.split("/")[3:5]
    expires, signature = token.split("-", 1)
    other_token = other_session.playback_url.split("/")[4]
    old = grants.issue(private_session, now=time.time() - 3600).token
    base = f"/live/delivery/{session_id}"
    for path in (
        f"{base}/{old}/hls/index.m3u8",  # expired
        f"{base}/{int(expires) + 600}-{signature}/hls/index.m3u8",  # stretched
        f"{base}/{expires}-{signature[:-2]}AA/hls/index.m3u8",  # forged
        f"{base}/{expires}-{grants.hmac_sha256_signer(f'{expires}/{session_id}', 'x')}/hls/index.m3u8",
        f"{base}/{other_token}/hls/index.m3u8",  # another session's grant
        f"{base}/hls/index.m3u8",  # missing
        f"{base}/{expires}/hls/index.m3u8",
        f"{base}/{token}{'A' * 4000}/hls/index.m3u8",
        f"{base}/{token}/hls/seg-abc-00001.ts?{token}",
    ):
        status, _headers, body = get(nginx, path)
        if path.endswith("?" + token):
            continue  # the query string is not the grant; the path's grant is valid
        assert status == 403, path
        assert not leaked(body), path


def test_private_files_are_unreachable_by_any_spelling(nginx, private_session, other_session):
    _, _, _, session_id, token = private_session.playback_url.split("/")[:5]
    base = f"/live/delivery/{session_id}/{token}"
    other = other_session.pk
    paths = [
        f"{base}/recording.mpegts",  # the source, with a valid grant
        f"{base}/hls/../recording.mpegts",
        f"{base}/hls/%2e%2e/recording.mpegts",
        f"{base}/hls/..%2Frecording.mpegts",
        f"{base}/%2e%2e/{other}/hls/index.m3u8",  # another session with this grant
        f"{base}/../../{other}/{token}/hls/index.m3u8",
        f"{base}//..//..//{other}/{token}/hls/index.m3u8",
        f"/live/delivery/{other}/{token}/hls/index.m3u8",
        f"/live/delivery//{other}/{token}/hls/index.m3u8",
        f"/live/delivery/{other}/{token}/recording-{other}.mp4",
        f"/live/%64elivery/{other}/hls/index.m3u8",
        f"/live/sessions/{other}/hls/index.m3u8",
        f"/live/recordings/{other}/media",
        f"/media/uploads/live/{other}/hls/index.m3u8",
        f"/private/uploads/live/{other}/hls/index.m3u8",
        f"/uploads/live/{other}/recording.mpegts",
        f"/live-private/uploads/live/{other}/hls/index.m3u8",
    ]
    for path in paths:
        status, _headers, body = get(nginx, path)
        assert status in (400, 403, 404), (path, status)
        assert not leaked(body), path
    # nginx decodes and normalises before it checks: another spelling of a granted URL is
    # checked as that URL, and gets the same file the grant covers, nothing else.
    status, _headers, body = get(nginx, f"/live/delivery/{session_id}%2F{token}/hls/index.m3u8")
    assert (status, body.decode()) == (200, PLAYLIST)


def test_the_site_answers_everything_else_through_nginx(nginx, private_session):
    status, _headers, body = get(nginx, f"/live/sessions/{private_session.pk}/status.json")
    assert status == 403 and b"members_only" in body


def test_without_the_nginx_signer_the_command_refuses(settings, roots):
    from django.core.management.base import CommandError

    settings.WAGTAIL_LIVE = {**settings.WAGTAIL_LIVE, "GRANT_SIGNER": "hmac-sha256"}
    with pytest.raises(CommandError, match="nginx-md5"):
        call_command("live_nginx_config", "--http", stdout=io.StringIO())
