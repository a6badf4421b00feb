"""Signed playback grants (wagtail_live.grants) and the embedded verifier, called in process.

The same verifier under a real daphne is tests/test_delivery.py; under nginx,
tests/test_delivery_nginx.py.
"""

import asyncio
import time

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.utils import make_session
from wagtail_live import chat, grants
from wagtail_live.delivery import HLSVerifier, parse_range
from wagtail_live.models import LiveSession

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"
SEGMENT = b"\x47" + b"\x02" * 187


@pytest.fixture(autouse=True)
def roots(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_LIVE = {"PRIVATE_ROOT": str(tmp_path / "private")}
    return tmp_path


def with_files(session):
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    (hls / "index.m3u8").write_text(PLAYLIST)
    (hls / "seg-abc-00001.ts").write_bytes(SEGMENT)
    (session.media_dir / "recording.mpegts").write_bytes(b"source")
    (session.media_dir / "recording-7.mp4").write_bytes(bytes(range(256)) * 40)
    return session


@pytest.fixture
def private_session(host):
    return with_files(make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE))


@pytest.fixture
def other_session(host):
    return with_files(make_session("Other", owner=host, privacy=LiveSession.Privacy.PRIVATE))


# -- the grant itself --------------------------------------------------------------------


def test_a_fresh_grant_verifies_and_is_shared_within_its_window():
    now = 1_800_000_010
    grant = grants.issue(5, now=now)
    assert grants.verify("5", grant.token, now=now) == grant
    # Everyone in the same window gets the same grant: one URL, one cached copy.
    assert grants.issue(5, now=now + 30) == grant
    assert grants.issue(5, now=now + 60) != grant
    assert grant.expires - now > 120


def test_an_expired_grant_is_refused():
    grant = grants.issue(5, now=1_800_000_000)
    assert grants.verify("5", grant.token, now=grant.expires) is None
    assert grants.verify("5", grant.token, now=grant.expires - 1) is not None


def test_a_grant_is_for_one_session_only():
    grant = grants.issue(5, now=time.time())
    assert grants.verify("6", grant.token) is None
    assert grants.verify("50", grant.token) is None


def test_forged_grants_are_refused():
    grant = grants.issue(5)
    flipped = grant.signature[:-1] + ("A" if grant.signature[-1] != "A" else "B")
    later = grant.expires + 3600
    for token in (
        f"{grant.expires}-{flipped}",
        f"{later}-{grant.signature}",  # a longer life with the old signature
        f"{grant.expires}-{grants.hmac_sha256_signer(f'{grant.expires}/5', 'guessed-key')}",
        f"{grant.expires}-{grants.nginx_md5_signer(f'{grant.expires}/5', grants.grant_key())}",
    ):
        assert grants.verify("5", token) is None, token


@override_settings(SECRET_KEY="another-secret-key-another-secret-key-another-secret-key")
def test_a_grant_from_another_secret_key_is_refused():
    assert grants.verify("5", "1999999999-" + "A" * 43) is None


@pytest.mark.parametrize(
    "session_id, token",
    [
        ("5", ""),
        ("5", "-"),
        ("5", "123"),
        ("5", "123-"),
        ("5", "abc-" + "A" * 43),
        ("5", "1" * 13 + "-" + "A" * 43),  # huge expiry
        ("5", "1999999999-" + "A" * 10),  # truncated signature
        ("5", "1999999999-" + "A" * 5000),  # huge signature
        ("5", "1999999999-" + "A" * 42 + "="),
        ("5", "1999999999-" + "é" * 43),
        ("0", "1999999999-" + "A" * 43),
        ("05", "1999999999-" + "A" * 43),
        ("-5", "1999999999-" + "A" * 43),
        ("9" * 5000, "1999999999-" + "A" * 43),
        (None, None),
        (5, b"1999999999-AAAA"),
    ],
)
def test_garbage_is_refused_without_an_error(session_id, token):
    assert grants.parse(session_id, token) is None or grants.verify(session_id, token) is None
    assert grants.verify(session_id, token) is None


def test_a_far_future_grant_is_refused_even_if_signed():
    expires = int(time.time()) + grants.MAX_GRANT_SECONDS + 100
    token = f"{expires}-{grants.sign(5, expires)}"
    assert grants.verify("5", token) is None


@override_settings(WAGTAIL_LIVE={"GRANT_SIGNER": "nginx-md5", "GRANT_KEY": "k3y"})
def test_the_nginx_signer_is_what_secure_link_md5_computes():
    import base64
    import hashlib

    grant = grants.issue(5, now=1_800_000_000)
    expected = hashlib.md5(f"{grant.expires}/5 k3y".encode()).digest()  # noqa: S324
    assert base64.urlsafe_b64decode(grant.signature + "==") == expected
    assert grants.verify("5", grant.token, now=1_800_000_000) is not None


# -- who gets one: can_watch decides, at every renewal ------------------------------------


def status(client, session):
    return client.get(reverse("wagtail_live:session_status", args=[session.pk]))


@pytest.mark.django_db
def test_status_json_carries_the_grant_of_the_playback_url(client, private_session, editor):
    private_session.start()
    client.force_login(editor)
    data = status(client, private_session).json()
    grant = data["grant"]
    assert data["playback_url"] == grant["playlist_url"]
    assert grant["playlist_url"].startswith(f"/live/delivery/{private_session.pk}/")
    token = f"{grant['expires']}-{grant['signature']}"
    assert grants.verify(str(private_session.pk), token) is not None
    assert grant["expires"] - time.time() > 60


@pytest.mark.django_db
def test_no_grant_for_anonymous_visitors_of_a_private_session(client, private_session):
    private_session.start()
    response = status(client, private_session)
    assert response.status_code == 403
    assert b"signature" not in response.content and b"delivery" not in response.content


@pytest.mark.django_db
def test_a_banned_viewer_gets_no_renewal(client, private_session, editor, superuser):
    private_session.start()
    client.force_login(editor)
    assert status(client, private_session).json()["grant"]
    chat.ban(superuser, editor.pk, "spam", session=private_session)
    response = status(client, private_session)
    assert response.status_code == 403
    assert b"signature" not in response.content
    # … nor on a public session.
    public = make_session("Public", owner=private_session.owner)
    public.start()
    assert status(client, public).status_code == 403


@pytest.mark.django_db
def test_a_privacy_change_stops_renewal_for_anonymous_viewers(client, host):
    session = make_session(owner=host)
    session.start()
    assert status(client, session).json()["grant"]
    session.privacy = LiveSession.Privacy.PRIVATE
    session.save()
    assert status(client, session).status_code == 403


@pytest.mark.django_db
def test_an_ended_session_gets_no_live_grant(client, host):
    session = make_session(owner=host)
    session.start()
    session.end()
    data = status(client, session).json()
    assert data["grant"] is None and data["playback_url"] is None


# -- the embedded verifier, in process ---------------------------------------------------


def call(app, path, method="GET", headers=(), raw_path=None):
    """(status, headers dict, body) of one request through the ASGI ``app``."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


async def inner_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


@pytest.fixture
def verifier():
    return HLSVerifier(inner_app)


@pytest.mark.django_db
def test_a_valid_grant_gets_the_playlist_and_segment(verifier, private_session):
    url = private_session.playback_url
    code, headers, body = call(verifier, url)
    assert (code, body.decode()) == (200, PLAYLIST)
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "public, max-age=1"
    code, headers, body = call(verifier, url.replace("index.m3u8", "seg-abc-00001.ts"))
    assert (code, body) == (200, SEGMENT)
    assert headers["content-type"] == "video/mp2t"
    assert "immutable" in headers["cache-control"]
    code, headers, body = call(verifier, url, method="HEAD")
    assert (code, body, headers["content-length"]) == (200, b"", str(len(PLAYLIST)))


@pytest.mark.django_db
def test_everything_else_passes_through(verifier):
    assert call(verifier, "/live/sessions/1/status.json")[0] == 299
    assert call(verifier, "/")[2] == b"django"


@pytest.mark.django_db
def test_bad_grants_are_403(verifier, private_session, other_session):
    url = private_session.playback_url
    session_id, token = url.split("/")[3:5]
    expires, signature = token.split("-", 1)
    base = f"/live/delivery/{session_id}"
    other = other_session.playback_url.split("/")[4]
    for path in (
        f"{base}/{int(expires) + 60}-{signature}/hls/index.m3u8",  # longer life
        f"{base}/{expires}-{signature[:-2]}xx/hls/index.m3u8",  # forged
        f"{base}/{expires}-{signature[:20]}/hls/index.m3u8",  # truncated
        f"{base}/{other}/hls/index.m3u8",  # another session's grant
        f"{base}/hls/index.m3u8",  # missing
        f"{base}//hls/index.m3u8",
        f"{base}/{expires}-/hls/index.m3u8",
        f"{base}/{expires}-{signature * 40}/hls/index.m3u8",  # huge
        f"{base}/{token}/" + "a" * 5000 + ".ts",
        "/live/delivery/",
        "/live/delivery/x",
    ):
        code, _headers, body = call(verifier, path)
        assert code == 403, path
        assert b"EXTM3U" not in body


@pytest.mark.django_db
def test_an_expired_grant_is_403(verifier, private_session):
    grant = grants.issue(private_session, now=time.time() - 3600)
    path = f"/live/delivery/{private_session.pk}/{grant.token}/hls/index.m3u8"
    assert call(verifier, path)[0] == 403


@pytest.mark.django_db
def test_other_spellings_of_a_granted_path_are_403(verifier, private_session):
    url = private_session.playback_url
    base = url.removesuffix("hls/index.m3u8")
    token_part = base.rstrip("/").rsplit("/", 1)[1]
    for raw in (
        base + "hls/./index.m3u8",
        base + "hls/../hls/index.m3u8",
        base + "hls//index.m3u8",
        base + "hls%2Findex.m3u8",
        base + "hls/index%2Em3u8",
        base + "hls\\index.m3u8",
        base + "./hls/index.m3u8",
        base + "recording.mpegts",  # the source is never delivered
        base + "../" + token_part + "/hls/index.m3u8",
        url.replace("/live/delivery/", "/live/delivery//"),
        url.replace("/live/delivery/", "/live/%64elivery/"),
        url + "/",
        url + "%00",
    ):
        decoded = raw.replace("%2F", "/").replace("%2E", ".").replace("%64", "d")
        code, _headers, body = call(verifier, decoded, raw_path=raw.encode())
        assert code in (403, 299), raw  # 299: left to Django, which has no such route
        assert b"EXTM3U" not in body, raw


@pytest.mark.django_db
def test_a_missing_file_under_a_valid_grant_is_404(verifier, private_session):
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00009.ts")
    assert call(verifier, url)[0] == 404


@pytest.mark.django_db
def test_other_methods_are_405(verifier, private_session):
    assert call(verifier, private_session.playback_url, method="POST")[0] == 405


@pytest.mark.django_db
def test_recordings_of_private_sessions_through_their_own_grant(verifier, private_session):
    # The live grant opens the hls/ files only; a recording needs a grant for its file.
    live_base = private_session.playback_url.removesuffix("hls/index.m3u8")
    assert call(verifier, live_base + "recording-7.mp4")[0] == 403
    url = grants.grant_url(private_session, "recording-7.mp4")
    base = url.removesuffix("recording-7.mp4")
    whole = bytes(range(256)) * 40
    code, headers, body = call(verifier, url)
    assert (code, body) == (200, whole)
    assert headers["content-type"] == "video/mp4"
    assert headers["accept-ranges"] == "bytes"
    code, headers, body = call(
        verifier, base + "recording-7.mp4", headers=[("range", "bytes=10-19")]
    )
    assert (code, body) == (206, whole[10:20])
    assert headers["content-range"] == f"bytes 10-19/{len(whole)}"
    code, headers, body = call(verifier, base + "recording-7.mp4", headers=[("range", "bytes=-5")])
    assert (code, body) == (206, whole[-5:])
    code, headers, _ = call(verifier, base + "recording-7.mp4", headers=[("range", "bytes=99999-")])
    assert code == 416 and headers["content-range"] == f"bytes */{len(whole)}"


def test_parse_range_bounds():
    assert parse_range("bytes=0-", 10) == (0, 9)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=0-1,3-4", 10) is None
    assert parse_range("bytes=a-b", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=" + "9" * 200, 10) is None
    assert parse_range("bytes=9-3", 10) == "unsatisfiable"
    assert parse_range("bytes=-0", 10) == "unsatisfiable"


@pytest.mark.django_db
def test_the_cache_is_bounded(private_session):
    verifier = HLSVerifier(inner_app, cache_bytes=300)
    base = private_session.playback_url.removesuffix("index.m3u8")
    for index in range(10):
        (private_session.media_dir / "hls" / f"seg-abc-1{index}.ts").write_bytes(b"\x47" * 188)
        assert call(verifier, f"{base}seg-abc-1{index}.ts")[0] == 200
        assert verifier.cache.size <= 300


@pytest.mark.django_db
def test_without_the_verifier_django_answers_the_same_urls(client, private_session):
    url = private_session.playback_url
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == PLAYLIST
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(url.replace(str(private_session.pk) + "/", "999/", 1)).status_code == 403
    grant = grants.issue(private_session, now=time.time() - 3600)
    expired = f"/live/delivery/{private_session.pk}/{grant.token}/hls/index.m3u8"
    assert client.get(expired).status_code == 403


# -- a recording's grant opens that one file ----------------------------------------------


def test_a_recordings_grant_is_bound_to_its_file():
    now = 1_800_000_010
    grant = grants.issue(5, now=now, name="recording-7.mp4")
    assert grant.name == "recording-7.mp4"
    assert grants.verify("5", grant.token, now=now, name="recording-7.mp4") == grant
    for name in (None, "recording-8.mp4", "recording-7-web.mp4", "recording-7-poster.jpg"):
        assert grants.verify("5", grant.token, now=now, name=name) is None, name
    # The live grant opens no recording, and the live files ignore a bound grant.
    live = grants.issue(5, now=now)
    assert grants.verify("5", live.token, now=now, name="recording-7.mp4") is None
    assert grants.bound_name("hls/index.m3u8") is None
    assert grants.bound_name("recording-7.mp4") == "recording-7.mp4"
    assert grants.message(5, 99, "recording-7.mp4") == "99/5/recording-7.mp4"
    assert grants.message(5, 99) == "99/5"
    with pytest.raises(ValueError):
        grants.issue(5, name="../recording.mpegts")


def test_grant_url_binds_recordings_and_shares_live_files(private_session):
    live = grants.grant_url(private_session, "hls/index.m3u8")
    assert live == private_session.playback_url
    recording = grants.grant_url(private_session, "recording-7.mp4")
    assert recording.split("/")[-2] != live.split("/")[-3]


@pytest.mark.django_db
def test_a_bound_grant_is_remembered_per_file(verifier, private_session):
    (private_session.media_dir / "recording-8.mp4").write_bytes(b"draft")
    url = grants.grant_url(private_session, "recording-7.mp4")
    for _ in range(2):  # checked, then from the verifier's memory of checked grants
        assert call(verifier, url)[0] == 200
        assert call(verifier, url.replace("recording-7", "recording-8"))[0] == 403
        hls = url.replace("recording-7.mp4", "hls/index.m3u8")
        assert call(verifier, hls)[0] == 403


@pytest.mark.django_db
def test_django_answers_a_recording_only_under_its_own_grant(client, private_session):
    (private_session.media_dir / "recording-8.mp4").write_bytes(b"draft")
    url = grants.grant_url(private_session, "recording-7.mp4")
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == bytes(range(256)) * 40
    assert client.get(url.replace("recording-7", "recording-8")).status_code == 403
    live_base = private_session.playback_url.removesuffix("hls/index.m3u8")
    assert client.get(live_base + "recording-7.mp4").status_code == 403


def recording_with_file(session, name, page=None):
    from wagtail_live.models import Recording

    recording = Recording.objects.create(session=session, source=f"{name}.mpegts", page=page)
    session.media_dir.mkdir(parents=True, exist_ok=True)
    (session.media_dir / f"recording-{recording.pk}.mp4").write_bytes(name.encode() * 100)
    (session.media_dir / f"recording-{recording.pk}-poster.jpg").write_bytes(b"\xff\xd8poster")
    return recording


def published_page(slug):
    from wagtail.models import Page

    root = Page.get_first_root_node()
    return root.add_child(instance=Page(title=slug, slug=slug, live=True))


@pytest.mark.django_db
def test_a_published_recordings_grant_does_not_open_a_draft_recording_of_the_same_session(
    host, viewer
):
    """A member may watch recording A (published page) but not recording B (a draft in review).

    The grant handed out with A's page (``granted_recording_url``) must not serve
    ``recording-<B>.mp4`` or its ``-poster.jpg`` when the member edits the file name in
    the URL (it did while grants signed only the session).
    """
    from wagtail_live.conf import live_settings
    from wagtail_live.permissions import can_watch_recording

    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    published = recording_with_file(session, "published", page=published_page("published"))
    draft = recording_with_file(session, "draft-in-review")  # no published page yet
    assert can_watch_recording(published, viewer)
    assert not can_watch_recording(draft, viewer)

    # What the published recording's page gives the member (recordings.granted_recording_url).
    url = grants.grant_url(
        session, f"recording-{published.pk}.mp4", seconds=live_settings.RECORDING_GRANT_SECONDS
    )
    verifier = HLSVerifier(inner_app)
    assert call(verifier, url)[0] == 200

    for name in (f"recording-{draft.pk}.mp4", f"recording-{draft.pk}-poster.jpg"):
        code, _headers, body = call(verifier, url.replace(f"recording-{published.pk}.mp4", name))
        assert code in (403, 404), f"{name}: {code}"
        assert b"draft-in-review" not in body


# -- numbers from requests: ASCII digits, bounded ----------------------------------------


def asgi_get(app, path, headers):
    """(status, body) of a GET through the ASGI ``app`` with raw (bytes) ``headers``.

    ``call`` encodes header values as UTF-8; a client may send any byte, and daphne
    hands the bytes over as they came.
    """
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        b"bytes=\xb2-",  # superscript two (Latin-1): str.isdigit() is True, int() raises
        b"bytes=0-\xb9",
        b"bytes=-\xb3",
        "bytes=\u0663-".encode(),  # Arabic-Indic three, as UTF-8 bytes
        "bytes=\uff13-\uff15".encode(),  # fullwidth digits
        b"bytes=" + b"9" * 94 + b"-",
        b"bytes=0-" + b"9" * 5000,
        b"bytes=-" + b"1" * 40,
    ],
)
def test_a_range_with_non_ascii_or_huge_digits_is_not_a_crash(host, value):
    """A Range the verifier cannot read is ignored (whole file) or unsatisfiable (416),
    never an exception out of the ASGI app (a 500 and a traceback under daphne)."""
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    session.media_dir.mkdir(parents=True, exist_ok=True)
    (session.media_dir / "recording-7.mp4").write_bytes(b"x" * 1000)
    url = grants.grant_url(session, "recording-7.mp4")
    status, body = asgi_get(HLSVerifier(inner_app), url, [(b"range", value)])
    assert status in (200, 416)
    assert status == 416 or body == b"x" * 1000


@pytest.mark.parametrize(
    "header",
    [
        "bytes=\u00b2-",
        "bytes=0-\u00b9",
        "bytes=-\u00b3",
        "bytes=\u0663-",
        "bytes=1-\u0665",
        "bytes=\uff13-",
        "bytes=\u0967-",  # Devanagari one
        "bytes=1" + "0" * 40 + "-",  # more digits than any file's size needs
        "bytes=0-" + "9" * 200,
    ],
)
def test_parse_range_takes_only_ascii_digits_of_bounded_length(header):
    assert parse_range(header, 10) is None


def test_parse_range_still_reads_plain_ranges():
    assert parse_range("bytes= 2-4 ", 10) == (2, 4)
    assert parse_range("bytes=0-" + "9" * 30, 10) == (0, 9)
    assert parse_range("bytes=" + "9" * 30 + "-", 10) == "unsatisfiable"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["\u0663/hls", "\uff13/hls", "1" * 5000 + "/hls", "0/hls"])
def test_an_rtmp_stream_name_with_other_digits_names_no_session(host, name):
    from wagtail_live.ingest.nginx_rtmp import session_for_stream

    session = make_session(owner=host)
    assert session_for_stream(f"{session.pk}/hls") == session
    assert session_for_stream(name) is None


# -- live files over the cache limit ------------------------------------------------------


def big_segment(session, size):
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    whole = (bytes(range(188)) * (size // 188 + 1))[:size]
    (hls / "seg-big-00001.ts").write_bytes(whole)
    return whole, grants.grant_url(session, "hls/seg-big-00001.ts")


@pytest.mark.django_db
def test_a_live_file_larger_than_the_cache_limit_is_served_whole(host):
    """A segment bigger than ``MAX_CACHED_FILE`` (8 MiB: a 10 s segment at 8 Mbit/s, or a
    long keyframe interval) is streamed whole, never cut at the limit."""
    from wagtail_live.delivery import MAX_CACHED_FILE

    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    whole, url = big_segment(session, MAX_CACHED_FILE + 188 * 100)
    verifier = HLSVerifier(inner_app)
    for _ in range(2):
        code, headers, body = call(verifier, url)
        assert code == 200
        got, expected = len(body), len(whole)
        assert got == expected, f"{got} of {expected} bytes"
        assert body == whole and headers["content-length"] == str(expected)
        assert headers["content-type"] == "video/mp2t"
    assert verifier.cache.size == 0  # streamed, not kept
    code, headers, body = call(verifier, url, method="HEAD")
    assert (code, body, headers["content-length"]) == (200, b"", str(len(whole)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "real, reported",
    [
        ("over", 100),  # grew past the limit after its size was asked: streamed whole
        (5000, 9000),  # shrank: sent as read, with the length read
        (5000, "over"),  # was over the limit, then shrank: streamed at its size then
    ],
)
def test_a_live_file_that_changes_size_between_stat_and_read_is_sent_as_read(
    host, monkeypatch, real, reported
):
    """The size asked of the open file may be stale by the read: whatever it said, the
    body is the whole file as read, with a Content-Length that matches it."""
    from wagtail_live import delivery

    over = delivery.MAX_CACHED_FILE + 1000
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    whole, url = big_segment(session, over if real == "over" else real)
    stale_size = over if reported == "over" else reported
    real_fstat = delivery.os.fstat

    class Stale:
        def __init__(self, fd):
            real_fstat(fd)  # still fails as the real one would
            self.st_size = stale_size

    monkeypatch.setattr(delivery.os, "fstat", Stale)
    code, headers, body = call(HLSVerifier(inner_app), url)
    assert code == 200
    assert body == whole and headers["content-length"] == str(len(whole))
