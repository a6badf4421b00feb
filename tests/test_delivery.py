"""The embedded verifier under a real daphne (tests/live_site.py, composed as tests/asgi.py).

A member gets a grant from status.json and fetches the live playlist, a segment and a
private recording (with a range) from the verifier, which answers without Django's
request stack; every bad grant and every other spelling gets 403 and no bytes; a
banned member gets no renewal.
"""

import json
import time

import pytest

from tests.utils import raw_get
from wagtail_live import grants

pytestmark = [pytest.mark.slow]

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"


def get(site, path, headers=None):
    """(status, headers, body) of a GET sent with exactly this path."""
    return raw_get(site.port, path, headers, timeout=15)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.live_site import LiveSite, migrated_database

    directory = tmp_path_factory.mktemp("delivery")
    site = LiveSite(directory, migrated_database(directory))
    site.ids = site.run(
        f"""
        from tests.utils import make_editor, make_session
        host = make_editor("host")
        make_editor("member")
        ids = {{}}
        for name in ("private", "other"):
            session = make_session(name, owner=host, privacy=LiveSession.Privacy.PRIVATE)
            session.start()
            hls = session.media_dir / "hls"
            hls.mkdir(parents=True)
            (hls / "index.m3u8").write_text({PLAYLIST!r})
            (hls / "seg-abc-00001.ts").write_bytes(b"\\x47" * 188)
            (session.media_dir / "recording-{{}}.mp4".format(session.pk)).write_bytes(bytes(range(256)) * 64)
            (session.media_dir / "recording.mpegts").write_bytes(b"SOURCE" * 10)
            ids[name] = session.pk
        result = ids
        """
    )
    site.start()
    yield site
    site.stop()


def status(site, pk, user=None):
    headers = {"Cookie": site.login_cookie(user)} if user else {}
    return get(site, f"/live/sessions/{pk}/status.json", headers)


def member_grant(site, name="private"):
    code, _headers, body = status(site, site.ids[name], "member")
    assert code == 200, body
    return json.loads(body)["grant"]


def test_a_member_plays_from_the_verifier(site):
    grant = member_grant(site)
    code, headers, body = get(site, grant["playlist_url"])
    assert (code, body.decode()) == (200, PLAYLIST)
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "public, max-age=1"
    # Django's middleware (e.g. X-Frame-Options) never saw the request.
    assert "X-Frame-Options" not in headers and "Vary" not in headers
    code, headers, body = get(site, grant["base_url"] + "hls/seg-abc-00001.ts")
    assert (code, body) == (200, b"\x47" * 188)
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_private_recording_through_its_own_grant_with_ranges(site):
    grant = member_grant(site)
    pk = site.ids["private"]
    name = f"recording-{pk}.mp4"
    # The live grant from status.json does not open a recording: its grant names the file.
    assert get(site, grant["base_url"] + name)[0] == 403
    url = f"/live/delivery/{pk}/{grants.issue(pk, name=name).token}/{name}"
    whole = bytes(range(256)) * 64
    code, headers, body = get(site, url, {"Range": "bytes=1000-1099"})
    assert (code, body) == (206, whole[1000:1100])
    assert headers["Content-Range"] == f"bytes 1000-1099/{len(whole)}"
    assert headers["Content-Type"] == "video/mp4"
    code, _headers, body = get(site, url)
    assert (code, body) == (200, whole)


def test_anonymous_visitors_get_no_grant(site):
    code, _headers, body = status(site, site.ids["private"])
    assert code == 403 and b"signature" not in body


def test_bad_grants_and_other_spellings_are_403(site):
    grant = member_grant(site)
    pk, other = site.ids["private"], site.ids["other"]
    token = f"{grant['expires']}-{grant['signature']}"
    expired = grants.issue(pk, now=time.time() - 3600).token
    base = f"/live/delivery/{pk}"
    for path in (
        f"{base}/{expired}/hls/index.m3u8",
        f"{base}/{grant['expires'] + 60}-{grant['signature']}/hls/index.m3u8",
        f"{base}/{grant['expires']}-{grant['signature'][:-3]}abc/hls/index.m3u8",
        f"/live/delivery/{other}/{token}/hls/index.m3u8",
        f"{base}/hls/index.m3u8",
        f"{base}/{token}/recording.mpegts",
        f"{base}/{token}/hls/../recording.mpegts",
        f"{base}/{token}/hls/%2e%2e/recording.mpegts",
        f"{base}/{token}/hls%2Findex.m3u8",
        f"{base}/{token}//hls/index.m3u8",
        f"{base}/{token}/hls/index.m3u8%00",
        f"/live/%64elivery/{pk}/{token}/hls/index.m3u8",
        f"{base}/{token}/" + "a" * 3000 + ".ts",
    ):
        code, _headers, body = get(site, path)
        assert code in (403, 404), (path, code)
        assert b"EXTM3U" not in body and b"SOURCE" not in body, path


def test_a_banned_member_gets_no_renewal(site):
    grant = member_grant(site, "other")
    site.run(
        """
        from wagtail_live import chat
        mod = User.objects.create_superuser("mod", "mod@example.com", "x")
        chat.ban(mod, User.objects.get(username="member").pk, "spam")
        """
    )
    code, _headers, body = status(site, site.ids["other"], "member")
    assert code == 403 and b"signature" not in body
    # The grant already given works until it expires (GRANT_SECONDS, docs/delivery.md).
    assert get(site, grant["playlist_url"])[0] == 200
