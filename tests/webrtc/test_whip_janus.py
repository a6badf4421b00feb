"""WHIP ingest with real parts: Janus, daphne, ffmpeg and an aiortc publisher in a netns.

Everything WebRTC runs inside a network namespace this module makes (tests/webrtc/netns.py):
nothing is sent to or from the machine's own interfaces.
"""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.ingest.streams import probe
from tests.live_site import ROOT
from tests.utils import require
from tests.webrtc.netns import http, janus_site

pytestmark = pytest.mark.slow

GRACE = 3
SETUP = """
from tests.utils import make_editor
make_editor("host")
result = None
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("whip")
    with janus_site(directory, SETUP, RECONNECT_GRACE=GRACE, WEBRTC_MAX_VIEWERS=1) as parts:
        yield parts


def new_session_with_key(site):
    return site.run(
        """
        from tests.utils import make_session
        s = make_session(owner=User.objects.get(username="host"))
        result = [s.pk, s.issue_stream_key()]
        """
    )


def state(site, pk):
    """The session's status, start, and its recordings' pages (and whether they are live).

    Read straight from the site's SQLite file: polling through ``site.run`` would start a
    Python process with Django every time.
    """
    with contextlib.closing(sqlite3.connect(site.database, timeout=20)) as database:
        status, started_at = database.execute(
            "SELECT status, started_at FROM wagtail_live_livesession WHERE id = ?", (pk,)
        ).fetchone()
        pages = database.execute(
            "SELECT p.title, p.live FROM wagtail_live_recording r "
            "JOIN wagtailcore_page p ON p.id = r.page_id WHERE r.session_id = ?",
            (pk,),
        ).fetchall()
    return {
        "status": status,
        "started_at": str(started_at),
        "pages": [title for title, _live in pages],
        "drafts": [bool(live) for _title, live in pages],
    }


def publisher(netns, site, pk, key, *args):
    """Start the aiortc WHIP publisher inside the namespace; returns the process."""
    return subprocess.Popen(
        netns.command(
            [sys.executable, "tests/webrtc/whip_publisher.py", f"{site.url}/live/whip/{pk}/", key]
            + list(args)
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def steps(process, timeout=90):
    out, err = process.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {line["step"]: line for line in lines}, err


def read_step(process, step, timeout=60):
    """Wait for the publisher's JSON line ``{"step": step, ...}``; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{") and json.loads(line)["step"] == step:
            return json.loads(line)
    raise AssertionError(f"publisher never said {step!r}: {process.stderr.read()[-2000:]}")


def wait_until(predicate, timeout=60, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def live_dir(site, pk):
    return site.media_root.parent / "live-private" / "uploads" / "live" / str(pk)


def test_whip_publisher_goes_live_delete_ends_and_the_recording_becomes_a_draft(stack):
    netns, janus, site = stack
    pk, key = new_session_with_key(site)
    done, err = steps(publisher(netns, site, pk, key, "--seconds", "6", "--end", "delete"))
    assert done["post"]["status"] == 201, (done, err, site.log()[-3000:])
    assert "connected" in done, err
    assert done["delete"]["status"] == 200
    directory = live_dir(site, pk)
    # DELETE ended the session; the recording becomes a draft page (Huey runs inline here).
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s)
    assert result["status"] == "ended" and result["started_at"] != "None"
    assert result["drafts"] == [False]
    playlist = (directory / "hls" / "index.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in playlist and ".ts" in playlist
    codecs, duration = probe(directory / "recording.mpegts")
    assert codecs == ["aac", "h264"]  # H.264 copied, Opus converted
    assert duration > 3
    # Janus's secrets never reached a log.
    assert janus.api_secret not in site.log() and janus.admin_key not in site.log()
    assert janus.api_secret not in janus.log()


def test_wrong_key_and_second_encoder_are_refused_before_any_media(stack):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    done, _err = steps(publisher(netns, site, pk, "not-the-key"))
    assert done["post"]["status"] == 401
    assert not live_dir(site, pk).exists()
    first = publisher(netns, site, pk, key, "--end", "none")
    try:
        wait_until(lambda: state(site, pk)["status"] == "live")
        done, _err = steps(publisher(netns, site, pk, key))
        assert done["post"]["status"] == 409
        assert "already live" in done["post"]["body"]
        # End live in the admin hangs the first publisher up and ends the session.
        site.run(f"LiveSession.objects.get(pk={pk}).end()")
        wait_until(lambda: state(site, pk)["pages"])
    finally:
        first.kill()
        first.wait()


def test_a_vanished_encoder_ends_the_session_after_the_grace(stack):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    done, err = steps(publisher(netns, site, pk, key, "--seconds", "4", "--end", "vanish"))
    assert "connected" in done, err
    assert state(site, pk)["status"] == "live"  # the grace period runs
    result = wait_until(
        lambda: (s := state(site, pk))["status"] == "ended" and s, timeout=GRACE + 40
    )
    assert result["started_at"] != "None"
    wait_until(lambda: state(site, pk)["pages"])


# A late candidate (RFC 8840 fragment) for PATCH requests made by hand.
FRAGMENT = (
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
    "a=candidate:1 1 udp 2130706431 10.254.0.2 40000 typ host\r\n"
)


def patch(netns, site, location, key, fragment=FRAGMENT, *headers):
    """``(status, body)`` of a trickle ``PATCH`` of ``fragment`` to a WHIP resource."""
    status, _headers, body = http(
        netns,
        "PATCH",
        site.url + location,
        fragment,
        [f"Authorization: Bearer {key}", "Content-Type: application/trickle-ice-sdpfrag", *headers],
    )
    return status, body


def test_a_publisher_trickling_its_candidates_by_patch_goes_live(stack):
    """RFC 9725 §4.3: the offer carries no candidate, they follow in a PATCH (204); the
    publish connects and goes live through Janus. A PATCH once it has ended is a 404.

    Janus also learns the publisher's address from its connectivity checks (a peer-reflexive
    candidate), so connecting alone does not show the PATCH's candidates were used:
    ``test_janus_hostile.py`` shows they reach Janus's ICE agent (and only with the key).
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    process = publisher(netns, site, pk, key, "--trickle", "--seconds", "4", "--end", "delete")
    done, err = steps(process)
    assert done["post"]["status"] == 201, (done, err)
    assert done["patch"]["status"] == 204, done["patch"]
    assert "connected" in done, (done, err)
    assert done["delete"]["status"] == 200
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s)
    assert result["status"] == "ended" and result["started_at"] != "None"
    assert ".ts" in (live_dir(site, pk) / "hls" / "index.m3u8").read_text()
    status, body = patch(netns, site, done["post"]["location"], key)
    assert status == 404 and "has ended" in body, (status, body)


def test_an_ice_restart_patch_is_a_422_and_the_publish_goes_on(stack):
    """ICE restarts are not supported: a PATCH with new ICE credentials (or ``If-Match: *``)
    is a 422 (RFC 9725 §4.3.1), never given to Janus as candidates, and the running
    publish is left alone (the encoder may publish anew instead).
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    live = publisher(netns, site, pk, key, "--end", "none")
    try:
        location = read_step(live, "post")["location"]
        read_step(live, "connected")
        restart = "a=ice-ufrag:new1\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n"
        assert patch(netns, site, location, key, restart)[0] == 422
        assert patch(netns, site, location, key, FRAGMENT, "If-Match: *")[0] == 422
        assert patch(netns, site, location, key, restart + FRAGMENT)[0] == 422
        # A late candidate of the running ICE session is still taken.
        assert patch(netns, site, location, key)[0] == 204
        wait_until(lambda: state(site, pk)["status"] == "live")
        time.sleep(3)
        assert state(site, pk)["status"] == "live" and live.poll() is None
    finally:
        live.kill()
        live.wait()
        end_unless_ended(site, pk)


def end_unless_ended(site, pk):
    site.run(f"s = LiveSession.objects.get(pk={pk})\nif not s.has_ended: s.end()\nresult = None")


def visitors(site):
    """Two signed visitor ids: two different people for the WebRTC audience cap."""
    return site.run(
        "from wagtail_live.visitors import new_visitor_cookie\n"
        "result = [new_visitor_cookie(), new_visitor_cookie()]"
    )


def viewer(netns, site, url, *args):
    """Start the aiortc WebRTC viewer inside the namespace; returns the process."""
    return subprocess.Popen(
        netns.command([sys.executable, "tests/webrtc/webrtc_viewer.py", url, *args]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_viewers_watch_over_webrtc_with_a_grant_up_to_the_cap(stack):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    token = site.run(f"from wagtail_live import grants\nresult = grants.issue({pk}).token")
    alice, bob = visitors(site)
    watch_url = f"{site.url}/live/webrtc/{pk}/{token}/"
    # Not streaming yet: the player is told to play HLS.
    done, _err = steps(viewer(netns, site, watch_url))
    assert done["watch"]["status"] == 404 and done["watch"]["fallback"] == "hls"
    first = publisher(netns, site, pk, key, "--end", "none")
    try:
        wait_until(lambda: state(site, pk)["status"] == "live")
        watching = viewer(
            netns, site, watch_url, "--frames", "30", "--hold", "4", "--visitor", alice
        )
        started = json.loads(watching.stdout.readline())  # counted from here on
        assert started["step"] == "watch" and started["status"] == 201, started
        # A forged grant is refused; over the cap (1 here) the next viewer gets HLS.
        done, _err = steps(viewer(netns, site, f"{site.url}/live/webrtc/{pk}/1-{'A' * 43}/"))
        assert done["watch"]["status"] == 403
        done, _err = steps(viewer(netns, site, watch_url, "--visitor", bob))
        assert done["watch"]["status"] == 503 and done["watch"]["fallback"] == "hls"
        done, err = steps(watching)
        assert done["answer"]["status"] == 204
        assert done["frames"]["count"] == 30 and done["frames"]["width"] == 640
        assert done["keepalive"]["status"] == 204 and done["delete"]["status"] == 200
    finally:
        first.kill()
        first.wait()
        site.run(f"LiveSession.objects.get(pk={pk}).end()")


@pytest.fixture(scope="module")
def chromium_in_netns(stack, tmp_path_factory):
    """Playwright's Chromium, started inside the namespace through a small wrapper script."""
    from tests.utils import CHROMIUM_ARGS, chromium_path

    require(os.path.exists(chromium_path()), f"chromium at {chromium_path()}")
    from playwright.sync_api import sync_playwright

    netns, _janus, _site = stack
    wrapper = tmp_path_factory.mktemp("chromium") / "chromium-in-netns"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(netns.command([chromium_path()])) + ' "$@"\n')
    wrapper.chmod(0o755)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        # libnice answers from the veth addresses; Chromium must accept its own machine's peers.
        "--allow-loopback-in-peer-connection",
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(wrapper), args=args)
        yield browser
        browser.close()


@pytest.mark.browser
def test_the_go_live_screens_low_latency_switch_publishes_over_whip(stack, chromium_in_netns):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    context = chromium_in_netns.new_context()
    cookie = site.login_cookie("host").split("=", 1)[1]
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
    page = context.new_page()
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    assert page.input_value("#live-whip-url") == f"{site.url}/live/whip/{pk}/"
    assert page.input_value("#live-whip-token") == key
    page.wait_for_function("document.querySelector('[data-camera-preview]').videoWidth > 0")
    page.check("[data-live-low-latency]")
    page.click("[data-live-go]")
    page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=30000)
    wait_until(lambda: state(site, pk)["status"] == "live")
    playlist = live_dir(site, pk) / "hls" / "index.m3u8"
    wait_until(lambda: playlist.exists() and ".ts" in playlist.read_text())
    page.click("[data-live-end]")
    page.click("[data-live-end-confirm]")  # in Wagtail's confirmation dialog
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s)
    assert result["status"] == "ended"
    codecs, _duration = probe(live_dir(site, pk) / "recording.mpegts")
    assert codecs == ["aac", "h264"]
    context.close()


PUT_PLAYER_ON_HOME_PAGE = """
from example_site.home.models import HomePage
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {{"session": LiveSession.objects.get(pk={pk}), "show_chat": False}})]
page.save_revision().publish()
"""


@pytest.mark.browser
def test_the_player_plays_over_webrtc_and_falls_back_to_hls_over_the_cap(stack, chromium_in_netns):
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    site.run(PUT_PLAYER_ON_HOME_PAGE.format(pk=pk))
    first = publisher(netns, site, pk, key, "--end", "none")
    alice, bob = visitors(site)
    context = chromium_in_netns.new_context()
    context.add_cookies([{"name": "wagtail_live_visitor", "value": alice, "url": site.url}])
    other = chromium_in_netns.new_context()
    other.add_cookies([{"name": "wagtail_live_visitor", "value": bob, "url": site.url}])
    try:
        wait_until(lambda: state(site, pk)["status"] == "live")
        playlist = live_dir(site, pk) / "hls" / "index.m3u8"
        wait_until(lambda: playlist.exists() and playlist.read_text().count(".ts") >= 2)
        video = "document.querySelector('[data-live-video]')"
        webrtc = context.new_page()
        webrtc.goto(site.url + "/")
        webrtc.wait_for_function(
            f"{video}.dataset.transport === 'webrtc' && {video}.currentTime > 1", timeout=45000
        )
        assert webrtc.evaluate(f"{video}.srcObject !== null && {video}.videoWidth") == 640
        # The cap is 1 WebRTC viewer here: the next one plays HLS by itself.
        hls = other.new_page()
        hls.goto(site.url + "/")
        hls.wait_for_function(f"{video}.currentTime > 1", timeout=60000)
        assert hls.evaluate(f"{video}.dataset.transport") is None
        assert hls.evaluate(f"{video}.srcObject") is None
    finally:
        context.close()
        other.close()
        first.kill()
        first.wait()
        site.run(f"LiveSession.objects.get(pk={pk}).end()")
