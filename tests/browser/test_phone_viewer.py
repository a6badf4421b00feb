"""In Chromium with phone device descriptors and a desktop viewport: the viewer (issue 14).

A real daphne (tests/live_site.py) serves a page with the live player; a real ffmpeg writes
live HLS (a portrait 360x640 test pattern) into the session's folder, so the video plays.
On a phone a tap opens the immersive view (the chat over the video, hearts, the input, Back
leaves); with reduced motion no hearts float; on a wide screen video and chat sit side by
side with theatre and full-screen buttons. docs/watching.md; the screenshots come from
scripts/screenshots_watching.py, which uses the helpers below.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.ingest.streams import lavfi_args
from tests.live_site import LiveSite, migrated_database
from tests.utils import chromium_path, launch_chromium, require
from wagtail_live.ffmpeg import ffmpeg_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Phone-sized contexts for Debian's Chromium: an iPhone 13-like and a Pixel 7-like screen.
PHONES = {
    "iphone13": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "pixel7": {
        "viewport": {"width": 412, "height": 915},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

# Two live sessions on two pages: a phone-shot (portrait) one with a busy chat and a pinned
# message, and a landscape one with an empty chat.
SETUP = """
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session
from wagtail_live import chat

host = make_editor("host", "moderate_chat")
host.first_name, host.last_name = "Hana", "Host"
host.save()
mod = make_editor("mod", "moderate_chat")
ann = User.objects.create_user("ann", "ann@example.com", "password", first_name="Ann")
bob = User.objects.create_user("bob", "bob@example.com", "password")
User.objects.create_user("viewer", "viewer@example.com", "password", first_name="Vera")
root = Site.objects.get(is_default_site=True).root_page
result = {}
for slug, title, layout in [("phone-live", "Morning run, live", "auto"),
                            ("desk-live", "Quarterly town hall", "landscape")]:
    session = make_session(title, owner=host)
    session.start()
    page = root.add_child(instance=HomePage(
        title=title, slug=slug,
        body=[("live_player", {"session": session, "show_chat": True, "layout": layout})],
    ))
    result[slug] = {"pk": session.pk, "url": page.url, "hls": str(session.media_dir / "hls")}
session = LiveSession.objects.get(pk=result["phone-live"]["pk"])
for user, text in [
    (ann, "Good morning from Lisbon! ☀️"),
    (bob, "What pace are you running?"),
    (mod, "Welcome everyone, be kind in the chat"),
    (ann, "That view 😍"),
    (bob, "Which trail is this?"),
    (host, "Around 5:30/km, the river trail"),
    (ann, "Keep going!"),
]:
    message = chat.send_message(session, user, text, broadcast=False)
    if user == host:
        chat.pin(host, session, message.pk)
"""


def start_site(directory):
    """A daphne site with the two sessions above; ``site.pages`` maps slug to pk/url/hls."""
    site = LiveSite(directory, migrated_database(directory))
    site.pages = site.run(SETUP)
    site.start()
    return site


def start_encoder(hls_dir, size="360x640"):
    """A real-time ffmpeg writing live HLS into ``hls_dir``; wait for its first playlist."""
    hls = Path(hls_dir)
    hls.mkdir(parents=True, exist_ok=True)
    encoder = subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y",
         *lavfi_args(900, size=size), "-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
         "-hls_flags", "delete_segments", str(hls / "index.m3u8")],
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (hls / "index.m3u8").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return encoder


def logged_in_context(browser, site, username, **options):
    context = browser.new_context(**options)
    cookie = site.login_cookie(username).split("=", 1)[1]
    context.add_cookies(
        [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
    )
    return context


def open_player(context, site, slug):
    """The page with ``slug``'s player, its chat socket open and its video playing."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(site.url + site.pages[slug]["url"])
    expect(page.locator("[data-live-realtime]")).to_have_attribute(
        "data-connection", "open", timeout=20000
    )
    page.wait_for_function("document.querySelector('video').currentTime > 0", timeout=45000)
    return page


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    site = start_site(tmp_path_factory.mktemp("phone-viewer"))
    encoders = [
        start_encoder(site.pages["phone-live"]["hls"], "360x640"),
        start_encoder(site.pages["desk-live"]["hls"], "640x360"),
    ]
    yield site
    for encoder in encoders:
        encoder.kill()
        encoder.wait()
    site.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
        yield chromium
        chromium.close()


def box(page, selector):
    return page.locator(selector).first.bounding_box()


# -- phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("phone", sorted(PHONES))
def test_on_a_phone_a_tap_opens_the_immersive_view_with_the_chat_over_the_video(
    site, browser, phone
):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "viewer", **PHONES[phone])
    try:
        page = open_player(context, site, "phone-live")
        player = page.locator("[data-live-player]")
        # No native controls (their seek bar and duration mean nothing on a live stream).
        assert page.evaluate("document.querySelector('video').controls") is False
        expect(page.locator("[data-live-open]")).to_be_visible()

        page.locator("[data-live-screen] video").tap()
        expect(player).to_have_class(_has("is-immersive"))
        width, height = PHONES[phone]["viewport"]["width"], PHONES[phone]["viewport"]["height"]
        stage = box(page, "[data-live-stage]")
        assert (stage["x"], stage["y"], stage["width"], stage["height"]) == (0, 0, width, height)
        # A portrait stream covers the screen.
        assert page.evaluate("getComputedStyle(document.querySelector('video')).objectFit") == (
            "cover"
        )
        # The top bar: Live pill, viewer count, title and host.
        expect(
            page.locator(".wagtail-live-player__top .wagtail-live-player__badge")
        ).to_be_visible()
        expect(page.locator("[data-live-stage-viewers]")).to_have_text("1 watching")
        expect(page.locator(".wagtail-live-player__heading-title")).to_have_text(
            "Morning run, live"
        )
        expect(page.locator(".wagtail-live-player__heading-host")).to_have_text("Hana Host")
        # The chat sits over the lower part of the video, newest message at the bottom.
        chat = box(page, "[data-live-chat]")
        assert chat["y"] > height / 2 and chat["y"] + chat["height"] <= height
        assert chat["x"] >= 0 and chat["x"] + chat["width"] <= width
        messages = page.locator("[data-live-messages] li")
        expect(messages.filter(has_text="Keep going!")).to_be_visible()
        expect(messages.last.locator(".live-chat__text")).to_be_visible()
        last, input_box = (
            box(page, "[data-live-messages] li:last-child"),
            box(page, "[data-live-chat-input]"),
        )
        assert last["y"] < input_box["y"]
        # Names, badges (translated labels), relative times; the pinned message on top.
        welcome = messages.filter(has_text="Welcome everyone")
        expect(welcome.locator(".live-chat__badge")).to_have_text("Moderator")
        expect(messages.last.locator("time")).to_have_text("now")
        pinned = page.locator("[data-live-pinned]")
        expect(pinned).to_contain_text("Around 5:30/km")
        expect(pinned.locator(".live-chat__badge")).to_have_text("Host")
        assert box(page, "[data-live-pinned]")["y"] < box(page, "[data-live-messages]")["y"]

        # The input works.
        page.locator("[data-live-chat-input]").fill("hello from my phone")
        page.locator("[data-live-chat-input]").press("Enter")
        expect(messages.last.locator(".live-chat__text")).to_have_text("hello from my phone")
        expect(messages.last.locator(".live-chat__name")).to_have_text("Vera")

        # The heart: floating hearts, "you liked this", the coalesced total.
        like = page.locator("[data-live-like-button]")
        count = page.locator("[data-live-likes-count]")
        before = int(count.text_content())
        expect(like).to_have_attribute("aria-pressed", "false")
        expect(page.locator("[data-live-liked]")).to_be_hidden()
        like.tap()
        expect(page.locator(".live-heart").first).to_be_attached()
        expect(like).to_have_attribute("aria-pressed", "true")
        expect(count).to_have_text(str(before + 1))
        # A double tap on the video likes too, with a big heart where the finger was.
        screen = box(page, "[data-live-screen]")
        x, y = screen["x"] + screen["width"] / 2, screen["y"] + screen["height"] * 0.3
        page.touchscreen.tap(x, y)
        page.touchscreen.tap(x, y)
        expect(page.locator(".wagtail-live-player__tap-heart").first).to_be_attached()
        expect(count).to_have_text(str(before + 2), timeout=10000)

        # One tap hides the chat, another shows it; so does a sideways swipe.
        page.touchscreen.tap(x, y)
        expect(player).to_have_class(_has("is-chat-hidden"))
        expect(page.locator("[data-live-chat]")).to_be_hidden()
        page.wait_for_timeout(400)  # past the double-tap window
        page.touchscreen.tap(x, y)
        expect(player).not_to_have_class(_has("is-chat-hidden"))
        swipe(page, x - 100, y, x + 100, y)
        expect(player).to_have_class(_has("is-chat-hidden"))
        swipe(page, x + 100, y, x - 100, y)
        expect(player).not_to_have_class(_has("is-chat-hidden"))

        # Back leaves the view and stays on the page.
        url = page.url
        page.go_back()
        expect(player).not_to_have_class(_has("is-immersive"))
        assert page.url == url
        assert page.evaluate("document.querySelector('video').paused") is False
    finally:
        context.close()


def test_a_visitor_sees_log_in_to_chat_over_the_video(site, browser):
    from playwright.sync_api import expect

    context = browser.new_context(**PHONES["pixel7"])
    try:
        page = open_player(context, site, "phone-live")
        page.locator("[data-live-open]").tap()
        expect(page.locator("[data-live-player]")).to_have_class(_has("is-immersive"))
        login = page.locator("[data-live-chat-login]")
        expect(login).to_be_visible()
        expect(login).to_have_text("Log in to chat")
        expect(page.locator(".live-chat__form")).to_be_hidden()
        height = PHONES["pixel7"]["viewport"]["height"]
        assert height / 2 < box(page, "[data-live-chat-login]")["y"] < height
    finally:
        context.close()


def test_with_reduced_motion_no_hearts_float(site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "bob", reduced_motion="reduce", **PHONES["iphone13"])
    try:
        page = open_player(context, site, "phone-live")
        page.locator("[data-live-open]").tap()
        like = page.locator("[data-live-like-button]")
        like.tap()
        expect(like).to_have_attribute("aria-pressed", "true")
        screen = box(page, "[data-live-screen]")
        page.touchscreen.tap(screen["x"] + 100, screen["y"] + 200)
        page.touchscreen.tap(screen["x"] + 100, screen["y"] + 200)
        page.wait_for_timeout(500)
        assert page.locator(".live-heart").count() == 0
        assert page.locator(".wagtail-live-player__tap-heart").count() == 0
        # The likes still count.
        expect(page.locator("[data-live-likes-count]")).not_to_have_text("0")
    finally:
        context.close()


def test_the_view_works_by_keyboard(site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "ann", **PHONES["pixel7"])
    try:
        page = open_player(context, site, "phone-live")
        opener = page.locator("[data-live-open]")
        opener.focus()
        page.keyboard.press("Enter")
        player = page.locator("[data-live-player]")
        expect(player).to_have_class(_has("is-immersive"))
        stage = page.locator("[data-live-stage]")
        expect(stage).to_have_attribute("role", "dialog")
        expect(page.locator("[data-live-close]")).to_be_focused()
        # A modal view: the focus stays inside it (Shift+Tab from the first control wraps).
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("Boolean(document.activeElement.closest('[data-live-stage]'))")
        page.keyboard.press("Tab")
        expect(page.locator("[data-live-close]")).to_be_focused()
        # The chat toggle is a labelled button, pressed while the chat is hidden.
        toggle = page.get_by_role("button", name="Hide chat")
        toggle.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Show chat")).to_have_attribute(
            "aria-pressed", "true"
        )
        page.keyboard.press("Escape")
        expect(player).not_to_have_class(_has("is-immersive"))
        expect(opener).to_be_focused()
    finally:
        context.close()


def test_an_empty_chat_draws_no_box_and_a_landscape_stream_is_letterboxed(site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "ann", **PHONES["iphone13"])
    try:
        page = open_player(context, site, "desk-live")
        expect(page.locator("[data-live-messages]")).to_be_attached()
        assert page.locator("[data-live-messages]").bounding_box()["height"] == 0
        page.locator("[data-live-open]").tap()
        expect(page.locator("[data-live-player]")).to_have_class(_has("is-immersive"))
        assert page.evaluate("getComputedStyle(document.querySelector('video')).objectFit") == (
            "contain"
        )
    finally:
        context.close()


ENDING_SETUP = """
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_session

session = make_session("Short live", owner=User.objects.get(username="host"))
session.start()
root = Site.objects.get(is_default_site=True).root_page
page = root.add_child(instance=HomePage(
    title="Short live", slug="short-live",
    body=[("live_player", {"session": session, "show_chat": True})],
))
result = [session.pk, page.url]
"""


def test_when_the_live_ends_the_immersive_view_closes_on_the_ended_notice(site, browser):
    from playwright.sync_api import expect

    pk, path = site.run(ENDING_SETUP)
    context = logged_in_context(browser, site, "ann", **PHONES["iphone13"])
    try:
        page = context.new_page()
        page.goto(site.url + path)
        expect(page.locator("[data-live-realtime]")).to_have_attribute(
            "data-connection", "open", timeout=20000
        )
        page.locator("[data-live-open]").tap()
        player = page.locator("[data-live-player]")
        expect(player).to_have_class(_has("is-immersive"))
        site.run(f"LiveSession.objects.get(pk={pk}).end()")
        expect(player).not_to_have_class(_has("is-immersive"), timeout=15000)
        expect(page.locator('[data-live-state="ended"]')).to_be_visible()
        assert page.url.endswith(path)
    finally:
        context.close()


# -- a wide screen --------------------------------------------------------------------------


def test_on_a_wide_screen_video_and_chat_sit_side_by_side(site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "viewer", **DESKTOP)
    try:
        page = open_player(context, site, "desk-live")
        player = page.locator("[data-live-player]")
        screen, chat = box(page, "[data-live-screen]"), box(page, ".wagtail-live-player__realtime")
        assert chat["x"] >= screen["x"] + screen["width"]  # the chat column on the right
        assert abs(chat["y"] - screen["y"]) < 2 and abs(chat["height"] - screen["height"]) < 2
        expect(page.locator("[data-live-open]")).to_be_hidden()
        # A click on the video does not open the phone view.
        page.locator("[data-live-screen] video").click()
        expect(player).not_to_have_class(_has("is-immersive"))
        # Theatre: a wider video, the chat still beside it.
        page.get_by_role("button", name="Theatre mode").click()
        expect(player).to_have_class(_has("is-theatre"))
        wider = box(page, "[data-live-screen]")
        assert wider["width"] > screen["width"]
        assert box(page, ".wagtail-live-player__realtime")["x"] >= wider["x"] + wider["width"]
        page.get_by_role("button", name="Leave theatre mode").click()
        expect(player).not_to_have_class(_has("is-theatre"))
        # Full screen: the stage (video and chat) fills the screen.
        page.get_by_role("button", name="Full screen").click()
        page.wait_for_function(
            "document.fullscreenElement === document.querySelector('[data-live-stage]')"
        )
        expect(page.get_by_role("button", name="Leave full screen")).to_be_visible()
        page.get_by_role("button", name="Leave full screen").click()
        page.wait_for_function("document.fullscreenElement === null")
        # Play/pause and unmute are our own labelled buttons.
        page.get_by_role("button", name="Unmute").click()
        assert page.evaluate("document.querySelector('video').muted") is False
        expect(page.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "false")
        page.get_by_role("button", name="Pause").click()
        assert page.evaluate("document.querySelector('video').paused") is True
    finally:
        context.close()


# -- helpers --------------------------------------------------------------------------------


def _has(name):
    import re

    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def swipe(page, x0, y0, x1, y1):
    """A one-finger swipe through the DevTools protocol (Playwright's touchscreen only taps)."""
    cdp = page.context.new_cdp_session(page)
    steps = [("touchStart", x0, y0), ("touchMove", (x0 + x1) / 2, (y0 + y1) / 2)]
    steps += [("touchMove", x1, y1)]
    for kind, x, y in steps:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
