"""One-tap Go Live in a real Chromium, watched on the public page in a second browser context.

A real daphne serves the site; Chromium's fake camera and microphone feed
MediaRecorder; the viewer's hls.js plays what ffmpeg made of it.
"""

import os
import re
import time

import pytest

from tests.ingest.streams import playlist_segments, probe
from tests.live_site import LiveSite, migrated_database
from tests.utils import CHROMIUM_ARGS as BASE_CHROMIUM_ARGS
from tests.utils import chromium_path, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = [
    *BASE_CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Keep timers and media running in the background tab the host's page becomes.
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

SETUP = """
from tests.utils import make_editor
make_editor("host", "go_live")
from django.urls import reverse
result = {"prepare": reverse("wagtailsnippets_wagtail_live_livesession:add")}
"""

PUT_PLAYER_ON_HOME_PAGE = """
from example_site.home.models import HomePage
session = LiveSession.objects.get(title="Browser test live")
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {"session": session, "show_chat": True})]
page.save_revision().publish()
result = session.pk
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), f"chromium at {chromium_path()}")
    directory = tmp_path_factory.mktemp("browser-site")
    # A grace long enough for a restarted server to come back (see the resume test).
    site = LiveSite(directory, migrated_database(directory), {"RECONNECT_GRACE": 30})
    site.urls = site.run(SETUP)
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def log_in(page, site, username="host"):
    page.goto(f"{site.url}/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))


def test_go_live_from_the_browser_and_watch_it_on_the_public_page(site, browser):
    host = browser.new_context(permissions=["camera", "microphone"])
    host_page = host.new_page()
    log_in(host_page, site)

    # Prepare live: a title is all it takes; saving leads to the Go Live screen.
    host_page.goto(site.url + site.urls["prepare"])
    host_page.fill("input[name=title]", "Browser test live")
    host_page.get_by_role("button", name=re.compile("Save|Create", re.I)).first.click()
    host_page.wait_for_url(re.compile(r"/go-live/$"))

    # A visitor already waiting on the page before the live starts.
    pk = site.run(PUT_PLAYER_ON_HOME_PAGE)
    early = browser.new_context()
    early_page = early.new_page()
    early_page.goto(site.url + "/")
    early_page.wait_for_selector('[data-live-state="scheduled"]:not([hidden])')
    early_page.evaluate("window.notReloaded = true")

    # The fake camera shows in the preview, then one tap goes live.
    host_page.wait_for_function(
        "document.querySelector('[data-camera-preview]').videoWidth > 0", timeout=15000
    )
    host_page.click("[data-live-go]")
    host_page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=20000)
    assert "You are live" in host_page.inner_text("[data-camera-status]")

    viewer = browser.new_context()
    viewer_page = viewer.new_page()
    viewer_page.goto(site.url + "/")
    viewer_page.wait_for_selector(f'[data-live-player][data-session="{pk}"]')
    # Plays, and keeps playing: currentTime passes 2 s and advances by 2 s more, so it
    # is not just the live edge's starting position.
    video = "document.querySelector('[data-live-video]')"
    viewer_page.wait_for_function(f"{video}.currentTime > 0 && !{video}.paused", timeout=45000)
    first = viewer_page.evaluate(f"{video}.currentTime")
    viewer_page.wait_for_function(f"{video}.currentTime > Math.max(2, {first} + 2)", timeout=30000)
    assert viewer_page.evaluate("document.querySelector('[data-live-video]').videoWidth") > 0
    # The waiting visitor's player switched to the video by itself, without a reload.
    early_page.wait_for_function(f"{video}.currentTime > 1", timeout=30000)
    assert early_page.evaluate("window.notReloaded") is True

    # Chromium recorded H.264 (copied, not transcoded) with a keyframe a second, so the
    # segments are ~1 s long instead of the ~5 s Chromium's default keyframes would give.
    assert "browser records video/webm;codecs=h264,opus" in site.log()
    # Live files are under PRIVATE_ROOT, "live-private" beside the site's MEDIA_ROOT.
    hls = site.media_root.parent / "live-private" / "uploads" / "live" / str(pk) / "hls"
    segments = playlist_segments(hls / "index.m3u8")
    assert segments and all(duration < 1.6 for duration, _ in segments), segments
    assert probe(hls / segments[0][1])[0] == ["aac", "h264"]

    host_page.bring_to_front()
    host_page.click("[data-live-end]")
    host_page.click("[data-live-end-confirm]")  # in Wagtail's confirmation dialog
    # The host's screen reloads into its ended state ...
    host_page.wait_for_selector("text=This session has ended.", timeout=30000)
    # ... and the viewer's player switches to "ended" without a reload.
    viewer_page.wait_for_selector(
        '[data-live-state="ended"]:not([hidden])', state="visible", timeout=20000
    )
    assert viewer_page.is_hidden('[data-live-state="live"]')
    status = site.run(f"result = LiveSession.objects.get(pk={pk}).status")
    assert status == "ended"
    host.close()
    viewer.close()
    early.close()


def test_private_session_page_shows_anonymous_visitors_no_video(site, browser):
    pk = site.run(
        """
        from example_site.home.models import HomePage
        from tests.utils import make_session
        s = make_session("Members briefing", privacy=LiveSession.Privacy.PRIVATE)
        s.start()
        page = HomePage.objects.get(slug="home")
        page.body = [("live_player", {"session": s, "show_chat": True})]
        page.save_revision().publish()
        result = s.pk
        """
    )
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.url + "/")
    assert page.is_visible("text=This live stream is for members only.")
    assert "m3u8" not in page.content()
    assert page.locator("video").count() == 0
    response = page.request.get(f"{site.url}/live/sessions/{pk}/hls/index.m3u8")
    assert response.status == 403
    context.close()


def test_scheduled_session_counts_down_in_local_time(site, browser):
    site.run(
        """
        from datetime import timedelta
        from django.utils import timezone
        from example_site.home.models import HomePage
        from tests.utils import make_session
        s = make_session("Summer concert", scheduled_start=timezone.now() + timedelta(hours=5))
        page = HomePage.objects.get(slug="home")
        page.body = [("live_player", {"session": s, "show_chat": True})]
        page.save_revision().publish()
        """
    )
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-US")
    page = context.new_page()
    page.goto(site.url + "/")
    countdown = page.locator("[data-live-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"Starts in 0?4:59:\d\d", first), first
    page.wait_for_function(
        f"document.querySelector('[data-live-countdown]').textContent !== {first!r}"
    )
    # The start time is shown in the visitor's zone (Tokyo, UTC+9), not the server's.
    local = page.evaluate(
        "new Date(document.querySelector('[data-live-start]').getAttribute('datetime'))"
        ".toLocaleString('en-US', {dateStyle: 'full', timeStyle: 'short'})"
    )
    assert page.inner_text("[data-live-start]") == local
    assert page.is_visible("text=Add to calendar")
    context.close()


def test_the_page_resumes_the_same_session_after_the_server_restarts(site, browser):
    pk = site.run(
        """
        from tests.utils import make_session
        result = make_session("Resumed live", owner=User.objects.get(username="host")).pk
        """
    )
    cookie = site.login_cookie("host").split("=", 1)[1]
    host = browser.new_context()
    host.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
    page = host.new_page()
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_function("document.querySelector('[data-camera-preview]').videoWidth > 0")
    page.click("[data-live-go]")
    page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=20000)
    live_dir = site.media_root.parent / "live-private" / "uploads" / "live" / str(pk)
    wait_until(lambda: len(playlist_segments(live_dir / "hls" / "index.m3u8")) >= 2)
    before = (live_dir / "recording.mpegts").stat().st_size

    # The server goes away mid-stream (its ffmpeg with it) and comes back.
    site.restart()
    # The page noticed, reconnected by itself and streams into the same session again.
    wait_until(
        lambda: "#EXT-X-DISCONTINUITY" in (live_dir / "hls" / "index.m3u8").read_text(),
        timeout=40,
    )
    wait_until(lambda: (live_dir / "recording.mpegts").stat().st_size > before + 50_000)
    assert "You are live" in page.inner_text("[data-camera-status]")
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "live"

    page.click("[data-live-end]")
    page.click("[data-live-end-confirm]")  # in Wagtail's confirmation dialog
    page.wait_for_selector("text=This session has ended.", timeout=30000)
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "ended"
    host.close()


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")
