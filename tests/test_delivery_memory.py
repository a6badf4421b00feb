"""What the embedded verifier keeps in memory between requests stays correct (wagtail_live/delivery.py).

A checked grant is remembered, but not past its expiry nor across a change of the grant key;
a cached segment is served from memory; the prefix follows the settings.
"""

import asyncio

import pytest

from tests.test_grants import call, inner_app, private_session, roots  # noqa: F401 (fixtures)
from wagtail_live import delivery, grants
from wagtail_live.delivery import HLSVerifier

pytestmark = pytest.mark.django_db


def test_a_remembered_grant_still_expires(private_session, monkeypatch):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    assert call(verifier, url)[0] == 200
    expires = int(url.split("/")[4].split("-")[0])
    monkeypatch.setattr(delivery.time, "time", lambda: expires + 1)
    assert call(verifier, url)[0] == 403


def test_a_new_grant_key_forgets_remembered_grants(private_session, settings):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    assert call(verifier, url)[0] == 200
    settings.WAGTAIL_LIVE = {**settings.WAGTAIL_LIVE, "GRANT_KEY": "another-key-0123456789"}
    code, _headers, body = call(verifier, url)
    assert code == 403 and b"EXTM3U" not in body


def test_a_cached_segment_comes_from_memory(private_session):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    first = call(verifier, url)
    segment = private_session.media_dir / "hls" / "seg-abc-00001.ts"
    segment.unlink()  # segments never change once listed: the copy in memory is still right
    assert call(verifier, url) == first
    assert call(HLSVerifier(inner_app), url)[0] == 404


def test_the_remembered_grants_are_bounded(private_session, monkeypatch):  # noqa: F811
    monkeypatch.setattr(delivery, "MAX_VERIFIED_GRANTS", 3)
    verifier = HLSVerifier(inner_app)
    for hours in range(1, 6):
        grant = grants.issue(private_session, seconds=hours * 3600)
        assert verifier.is_granted(str(private_session.pk), grant.token)
        assert 0 < len(verifier._verified) <= 3
    assert not verifier.is_granted(str(private_session.pk), f"1-{'A' * 43}")


def test_viewers_asking_at_once_cost_one_read(private_session, monkeypatch):  # noqa: F811
    reads = []
    load = delivery._load

    def counted(*args):
        reads.append(args)
        return load(*args)

    monkeypatch.setattr(delivery, "_load", counted)
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url

    async def many():
        async def one():
            sent = []

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "method": "GET", "path": url, "raw_path": url.encode()}
            await verifier(scope, None, send)
            return sent[0]["status"], sent[1]["body"]

        return await asyncio.gather(*(one() for _ in range(20)))

    answers = asyncio.run(many())
    assert {status for status, _body in answers} == {200}
    assert len({body for _status, body in answers}) == 1
    assert len(reads) == 1


# -- answers remembered for the connection-level fast path (wagtail_live/servers.py) -----


def remembered(verifier, url):
    return verifier.answer_from_memory(url.encode())


def test_a_path_answered_once_is_remembered_with_its_head_and_body(private_session):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    assert remembered(verifier, url) is None  # nothing is vouched for before a full check
    code, headers, body = call(verifier, url)
    head, remembered_body = remembered(verifier, url)
    assert code == 200 and remembered_body == body
    lines = dict(line.split(b": ", 1) for line in head.split(b"\r\n") if line)
    assert {k.decode(): v.decode() for k, v in lines.items()} == headers


def test_only_the_exact_checked_path_is_remembered(private_session):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    call(verifier, url)
    for other in (
        url.replace("/hls/", "//hls/"),
        url.replace("index", "%69ndex"),
        url + "?x=1",
        url.upper(),
        url.replace("index.m3u8", "seg-abc-00001.ts"),  # never asked: not remembered
    ):
        assert remembered(verifier, other) is None, other


def test_refused_and_missing_answers_are_never_remembered(private_session):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    signature = url.split("/")[4].split("-", 1)[1]
    forged = url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])
    missing = url.replace("index.m3u8", "seg-abc-00009.ts")
    assert call(verifier, forged)[0] == 403 and call(verifier, missing)[0] == 404
    assert call(verifier, url, method="HEAD")[0] == 200
    assert remembered(verifier, forged) is None and remembered(verifier, missing) is None


def test_a_remembered_path_ends_with_its_grant(private_session, monkeypatch):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    call(verifier, url)
    expires = int(url.split("/")[4].split("-")[0])
    now = delivery.time.time()
    monotonic = delivery.time.monotonic()
    assert remembered(verifier, url) is not None
    # The grant's end, not only the cached segment's (60 s), bounds it.
    monkeypatch.setattr(delivery, "REMEMBER_PATH_SECONDS", 10**6)
    monkeypatch.setattr(delivery, "SEGMENT_CACHE_SECONDS", 10**6)
    fresh = HLSVerifier(inner_app)
    call(fresh, url)
    monkeypatch.setattr(delivery.time, "monotonic", lambda: monotonic + (expires - now) + 1)
    assert remembered(fresh, url) is None


def test_a_remembered_playlist_goes_stale_with_the_cache(private_session, monkeypatch):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    call(verifier, url)
    later = delivery.time.monotonic() + delivery.PLAYLIST_CACHE_SECONDS + 0.1
    monkeypatch.setattr(delivery.time, "monotonic", lambda: later)
    assert remembered(verifier, url) is None  # the next request re-reads it the ASGI way


def test_a_settings_change_forgets_remembered_paths(private_session, settings):  # noqa: F811
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url
    call(verifier, url)
    settings.WAGTAIL_LIVE = {**settings.WAGTAIL_LIVE, "GRANT_KEY": "another-key-0123456789"}
    assert remembered(verifier, url) is None
    assert call(verifier, url)[0] == 403


def test_remembered_paths_are_bounded(private_session, monkeypatch):  # noqa: F811
    monkeypatch.setattr(delivery, "MAX_REMEMBERED_PATHS", 3)
    verifier = HLSVerifier(inner_app)
    for hours in range(1, 8):
        url = grants.grant_url(private_session, "hls/index.m3u8", seconds=hours * 3600)
        assert call(verifier, url)[0] == 200
        assert 0 < len(verifier._answered) <= 3


@pytest.mark.parametrize("step", [1, 3600], ids=["just past", "an hour past"])
def test_a_remembered_path_ends_when_the_wall_clock_passes_its_grant(
    private_session,  # noqa: F811
    monkeypatch,
    step,
):
    # A grant's expiry is Unix time; the monotonic clock stands still while a VM is
    # suspended or the wall clock is stepped, and the ASGI way then refuses the grant.
    verifier = HLSVerifier(inner_app)
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    call(verifier, url)
    expires = int(url.split("/")[4].split("-")[0])
    monkeypatch.setattr(delivery.time, "time", lambda: expires + step)
    assert remembered(verifier, url) is None
    assert call(verifier, url)[0] == 403
