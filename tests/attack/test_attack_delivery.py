"""Attacks on the embedded playback verifier (wagtail_live/delivery.py) and its grants.

Each test here failed when written. Called in process through the ASGI app, as
tests/test_grants.py does (the same verifier under daphne is tests/test_delivery.py).
"""

import pytest
from wagtail.models import Page

from tests.test_grants import call, inner_app, roots  # noqa: F401 (roots: autouse fixture)
from tests.utils import make_session
from wagtail_live import grants
from wagtail_live.conf import live_settings
from wagtail_live.delivery import HLSVerifier
from wagtail_live.models import LiveSession, Recording
from wagtail_live.permissions import can_watch_recording

pytestmark = pytest.mark.django_db


def recording_with_file(session, name, page=None):
    recording = Recording.objects.create(session=session, source=f"{name}.mpegts", page=page)
    session.media_dir.mkdir(parents=True, exist_ok=True)
    (session.media_dir / f"recording-{recording.pk}.mp4").write_bytes(name.encode() * 100)
    (session.media_dir / f"recording-{recording.pk}-poster.jpg").write_bytes(b"\xff\xd8poster")
    return recording


def published_page(slug):
    root = Page.get_first_root_node()
    return root.add_child(instance=Page(title=slug, slug=slug, live=True))


def test_a_published_recordings_grant_does_not_open_a_draft_recording_of_the_same_session(
    host, viewer
):
    """A member may watch recording A (published page) but not recording B (a draft in review).

    docs/delivery.md: "A recording's grant URL is handed out only with its published page
    (and to its reviewers while it is a draft)". But the grant signs only the session, so
    the 4-hour grant handed out with A's page (``granted_recording_url``) serves every
    ``recording-<n>.mp4`` and ``-poster.jpg`` in the session's folder: the member edits
    the file name in the URL and downloads the draft B.
    """
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


def asgi_get(app, path, headers):
    """(status, body) of a GET through the ASGI ``app`` with raw (bytes) ``headers``.

    tests/test_grants.py's ``call`` encodes header values as UTF-8; a client may send any
    byte, and daphne hands the bytes over as they came.
    """
    import asyncio

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


@pytest.mark.parametrize("value", [b"bytes=\xb2-", b"bytes=0-\xb9", b"bytes=-\xb3"])
def test_a_range_with_non_ascii_digits_is_not_a_crash(host, value):
    """``Range: bytes=²-`` (one byte, 0xB2, read as Latin-1): ``parse_range`` asks
    ``str.isdigit()``, which is True for superscript digits, then ``int()`` raises
    ValueError inside the verifier: an exception out of the ASGI app (daphne's 500 and a
    traceback in the log) instead of the whole file (an ignored Range) or a 416.
    """
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    session.media_dir.mkdir(parents=True, exist_ok=True)
    (session.media_dir / "recording-7.mp4").write_bytes(b"x" * 1000)
    url = grants.grant_url(session, "recording-7.mp4")
    status, _body = asgi_get(HLSVerifier(inner_app), url, [(b"range", value)])
    assert status in (200, 416)


def test_a_live_file_larger_than_the_cache_limit_is_served_whole(host):
    """A segment bigger than ``MAX_CACHED_FILE`` (8 MiB: a 10 s segment at 8 Mbit/s, or a
    long keyframe interval) goes through ``_load``, which reads at most 8 MiB + 1 byte:
    the viewer gets a truncated segment with a matching Content-Length, silently.
    """
    from wagtail_live.delivery import MAX_CACHED_FILE

    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    hls = session.media_dir / "hls"
    hls.mkdir(parents=True)
    whole = b"\x47" * (MAX_CACHED_FILE + 188 * 100)
    (hls / "seg-big-00001.ts").write_bytes(whole)
    url = grants.grant_url(session, "hls/seg-big-00001.ts")
    code, headers, body = call(HLSVerifier(inner_app), url)
    assert code == 200
    got, expected = len(body), len(whole)
    assert got == expected, f"{got} of {expected} bytes"
