"""A WHIP encoder that goes away and publishes again within ``RECONNECT_GRACE``, with real
parts: Janus, daphne, ffmpeg and aiortc publishers in the namespace of tests/webrtc/netns.py.

The session must stay one session (never ended, never started twice), the new publish
continues HLS (after ``#EXT-X-DISCONTINUITY``) and the recording, and the end gives one
draft page whose media holds both publishes.
"""

import signal
import time

import pytest

from tests.ingest.streams import probe
from tests.webrtc.netns import http, janus_site
from tests.webrtc.test_whip_janus import (
    SETUP,
    live_dir,
    new_session_with_key,
    publisher,
    read_step,
    state,
    wait_until,
)

pytestmark = pytest.mark.slow

#: Long enough for a new publisher process to start and connect within it, short enough
#: that waiting it out (the session's end) stays quick.
GRACE = 10
#: Seconds each publish streams.
FIRST, SECOND = 4, 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("whip-resume")
    with janus_site(directory, SETUP, RECONNECT_GRACE=GRACE) as parts:
        yield parts


def transitions(site, pk):
    """How many times session ``pk`` was started and ended (its log entries)."""
    return site.run(
        "from wagtail.models import ModelLogEntry\n"
        f"entries = ModelLogEntry.objects.filter(object_id='{pk}')\n"
        "result = [entries.filter(action=a).count() "
        "for a in ('wagtail_live.start', 'wagtail_live.end')]"
    )


def recording_media(site, pk):
    """``[page is live, path of the media file]`` of session ``pk``'s one recording."""
    return site.run(
        f"from wagtail_live.models import Recording\nr = Recording.objects.get(session_id={pk})\n"
        "result = [r.page.live, r.media.file.path]"
    )


def end_quietly(site, pk):
    site.run(f"s = LiveSession.objects.get(pk={pk})\nif not s.has_ended: s.end()\nresult = None")


def vanish(netns, site, pk, key, how):
    """Publish ``FIRST`` seconds, then go away ``how``; return the publish's Location.

    ``"close"``: the encoder app closes its PeerConnection (DTLS says so, Janus hangs up);
    ``"kill"``: the encoder's machine or network goes (SIGKILL: not a packet more).
    """
    first = publisher(netns, site, pk, key, "--seconds", str(FIRST), "--end", "vanish")
    location = read_step(first, "post")["location"]
    read_step(first, "connected")
    if how == "close":
        read_step(first, "closed")
    else:
        time.sleep(FIRST)
        first.send_signal(signal.SIGKILL)
    first.wait()
    return location


@pytest.mark.parametrize("how", ["close", "kill"])
def test_an_encoder_back_within_the_grace_continues_the_same_session(stack, how):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    stale = vanish(netns, site, pk, key, how)
    started = state(site, pk)
    assert started["status"] == "live", started
    second = publisher(netns, site, pk, key, "--seconds", str(SECOND), "--end", "delete")
    try:
        post = read_step(second, "post")
        assert post["status"] == 201, (post, site.log()[-4000:])
        read_step(second, "connected")
        # A stale DELETE (the first publish's Location) must not end the resumed publish.
        status, _headers, body = http(
            netns, "DELETE", site.url + stale, headers=[f"Authorization: Bearer {key}"]
        )
        assert status in (200, 404), (status, body)
        time.sleep(3)  # the publisher's watcher re-reads the session every 2 s
        assert state(site, pk)["status"] == "live", "the stale DELETE ended the resumed publish"
        assert read_step(second, "delete", timeout=SECOND + 30)["status"] == 200
    finally:
        second.kill()
        second.wait()
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s, timeout=GRACE + 60)
    assert result["status"] == "ended"
    assert result["started_at"] == started["started_at"]
    assert transitions(site, pk) == [1, 1], "the resume ended or started the session again"
    playlist = (live_dir(site, pk) / "hls" / "index.m3u8").read_text()
    assert playlist.count("#EXT-X-DISCONTINUITY") == 1 and "#EXT-X-ENDLIST" in playlist
    page_live, media_path = recording_media(site, pk)
    assert page_live is False  # one draft page
    codecs, duration = probe(media_path)
    assert codecs == ["aac", "h264"]
    # Both publishes are in it: more than either one alone (each starts with a keyframe wait).
    assert duration > SECOND + FIRST - 2, duration


def test_a_killed_encoder_that_never_comes_back_ends_the_session(stack):
    """Nothing tells Janus that a killed encoder has gone, only that no media arrives: the
    publish is hung up after ``janus.SILENCE_TIMEOUT`` and the session ends after the grace,
    its recording handed on, rather than staying *live* with nothing coming in.
    """
    from wagtail_live.ingest.janus import SILENCE_TIMEOUT

    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    vanish(netns, site, pk, key, "kill")
    assert state(site, pk)["status"] == "live"
    result = wait_until(
        lambda: (s := state(site, pk))["pages"] and s, timeout=SILENCE_TIMEOUT + GRACE + 60
    )
    assert result["status"] == "ended"
    assert transitions(site, pk) == [1, 1]
