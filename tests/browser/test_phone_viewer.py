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


# -- heavy and hostile input (a security tester's attacks, issue 14) --------------------------
#
# A second site: a portrait live whose pinned message is as long as chat text gets, with a
# 150-character name, markup and a bidi override in a name, and an account name piled with
# combining marks; and a private live. Where a test needs the server to send what it only
# sends under load (thousands of messages or like updates), it hands the frames to the page's
# chat module exactly as its socket does (``liveRealtime.handle``), so the client's own bounds
# are what is measured. The video need not play for these.

#: A 500-character message (CHAT_MAX_LENGTH) of short words: allowed, and as tall as chat text gets.
LONG_TEXT = ("Pinned notice " * 40)[:500]
#: A display name (first_name allows 150 characters) with no space to break at.
LONG_NAME = "W" * 150
#: An account name piled with combining marks ("Zalgo"): 100 on one letter.
ZALGO_NAME = "Z" + "\u0300\u0301\u0302\u0303" * 25
#: Markup and a bidi override in a logged-in user's name (names of accounts are not cleaned).
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">\u202eevil'

HOSTILE_SETUP = f"""
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session
from wagtail_live import chat

host = make_editor("host")
host.first_name = "Hana"
host.save()
User.objects.create_user("viewer", "viewer@example.com", "password", first_name="Vera")
longname = User.objects.create_user("longname", "l@example.com", "password",
                                    first_name={LONG_NAME!r})
hostile = User.objects.create_user("hostile", "h@example.com", "password",
                                   first_name={HOSTILE_NAME!r})
zalgo = User.objects.create_user("zalgo", "z@example.com", "password", first_name={ZALGO_NAME!r})
root = Site.objects.get(is_default_site=True).root_page
session = make_session("Public <b>live</b>", owner=host)
session.start()
page = root.add_child(instance=HomePage(
    title="Public live", slug="public-live",
    body=[("live_player", {{"session": session, "show_chat": True, "layout": "portrait"}})],
))
message = chat.send_message(session, host, {LONG_TEXT!r}, broadcast=False)
chat.pin(host, session, message.pk)
chat.send_message(session, longname, "x" * 500, broadcast=False)
chat.send_message(session, hostile, "hello", broadcast=False)
chat.send_message(session, zalgo, "zalgo says hi", broadcast=False)
secret = make_session("Secret board meeting", owner=host, privacy="private")
secret.start()
secret_page = root.add_child(instance=HomePage(
    title="Members", slug="members",
    body=[("live_player", {{"session": secret, "show_chat": True, "layout": "auto"}})],
))
result = {{"pk": session.pk, "url": page.url, "secret_url": secret_page.url}}
"""

PHONE = PHONES["iphone13"]


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("phone-viewer-hostile")
    site = LiveSite(directory, migrated_database(directory))
    site.page_info = site.run(HOSTILE_SETUP)
    site.start()
    yield site
    site.stop()


def open_chat(context, site):
    """The hostile site's player page with its chat socket open and its ``state`` drawn."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(site.url + site.page_info["url"])
    expect(page.locator("[data-live-realtime]")).to_have_attribute(
        "data-connection", "open", timeout=20000
    )
    page.wait_for_selector("[data-live-messages] li", state="attached", timeout=20000)
    return page


def open_immersive(page):
    from playwright.sync_api import expect

    page.locator("[data-live-open]").click()
    expect(page.locator("[data-live-player]")).to_have_class(_has("is-immersive"))


def inside(inner, outer, slack=1):
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


def overlaps(a, b):
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


FLOOD_MESSAGES = """(count) => {
  const live = document.querySelector('[data-live-realtime]').liveRealtime;
  for (let i = 0; i < count; i += 1) {
    live.handle({type: 'chat.message', id: 10_000_000 + i, user_id: 99, display_name: 'Flood',
                 badge: '', text: 'message ' + i, time: new Date().toISOString()});
  }
  const items = [...document.querySelectorAll('[data-live-messages] li')];
  return {items: items.length, kept: live.messages.size,
          first: items[0].dataset.messageId, last: items.at(-1).dataset.messageId,
          pinned: document.querySelector('[data-live-pinned]').textContent,
          pinnedHidden: document.querySelector('[data-live-pinned]').hidden};
}"""


@pytest.mark.parametrize("count", [5000, 301])
def test_a_long_running_chat_keeps_its_newest_messages_only(hostile_site, browser, count):
    """5,000 messages (hours of a busy live) keep at most 300 <li> and 300 entries, the
    newest ones, in order; the pinned message stays; one past the bound drops the oldest."""
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        flood = page.evaluate(FLOOD_MESSAGES, count)
        assert flood["items"] == flood["kept"] == 300, flood
        assert flood["last"] == str(10_000_000 + count - 1)
        assert flood["first"] == str(10_000_000 + count - 300)
        assert not flood["pinnedHidden"] and "Pinned notice" in flood["pinned"]
        # A removal of a dropped message and of a kept one: both fine, the kept one goes.
        left = page.evaluate(
            """([dropped, kept]) => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              live.handle({type: 'chat.removed', id: dropped});
              live.handle({type: 'chat.removed', id: kept});
              return [live.messages.size, Boolean(document.querySelector(
                `[data-live-messages] li[data-message-id="${kept}"]`))];
            }""",
            [10_000_000, 10_000_000 + count - 1],
        )
        assert left == [299, False]
    finally:
        context.close()


def test_the_chat_in_the_immersive_view_is_bounded_too(hostile_site, browser):
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        flood = page.evaluate(FLOOD_MESSAGES, 2000)
        assert flood["items"] == flood["kept"] == 300
        # The newest message is in view at the bottom of the list.
        newest = box(page, "[data-live-messages] li:last-child")
        field = box(page, "[data-live-chat-input]")
        assert newest["y"] + newest["height"] <= field["y"] + 1
    finally:
        context.close()


LIKES_BURST = """(count) => {
  const live = document.querySelector('[data-live-realtime]').liveRealtime;
  const start = live.lastLikes ?? 0;
  for (let i = 1; i <= count; i += 1) live.handle({type: 'likes', total: start + i});
  return {hearts: document.querySelectorAll('.live-heart').length,
          shown: document.querySelector('[data-live-likes-count]').textContent,
          expected: String(start + count)};
}"""


@pytest.mark.parametrize("count", [10000, 1])
def test_a_burst_of_like_updates_floats_a_bounded_number_of_hearts(hostile_site, browser, count):
    """10,000 ``likes`` frames float at most a handful of hearts; the count shows every like."""
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        burst = page.evaluate(LIKES_BURST, count)
        assert 1 <= burst["hearts"] <= 24, burst
        assert burst["shown"] == burst["expected"]
        # The floating ones go at the end of their animation.
        page.wait_for_function("document.querySelectorAll('.live-heart').length === 0")
        # Hearts float again once the rate allows (a few each second).
        page.wait_for_function(f"({LIKES_BURST})(3).hearts > 0", timeout=10000, polling=200)
    finally:
        context.close()


def test_tapping_the_heart_very_fast_floats_a_bounded_number_of_hearts(hostile_site, browser):
    """5,000 taps (an auto-clicker, a stuck key): a few hearts; every tap counts and is sent
    summed (a few frames, not 5,000)."""
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        frames = []
        page.on(
            "websocket",
            lambda socket: socket.on(
                "framesent", lambda frame: frames.append(frame) if '"like"' in str(frame) else None
            ),
        )
        taps = page.evaluate(
            """() => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              const start = live.lastLikes ?? 0;
              const button = document.querySelector('[data-live-like-button]');
              for (let i = 0; i < 5000; i += 1) button.click();
              return {hearts: document.querySelectorAll('.live-heart').length,
                      shown: document.querySelector('[data-live-likes-count]').textContent,
                      expected: String(start + 5000)};
            }"""
        )
        assert 1 <= taps["hearts"] <= 24, taps
        assert taps["shown"] == taps["expected"]
        page.wait_for_function(
            "document.querySelector('[data-live-realtime]').liveRealtime.pendingLikes === 0"
        )
        # Double taps on the video, as fast as a script goes: a few big hearts, not 200.
        big = page.evaluate(
            """() => {
              const screen = document.querySelector('[data-live-screen]');
              for (let i = 0; i < 400; i += 1) {
                screen.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: 100,
                                                              clientY: 200}));
              }
              return document.querySelectorAll('.wagtail-live-player__tap-heart').length;
            }"""
        )
        assert 1 <= big <= 4, big
    finally:
        context.close()


@pytest.mark.parametrize("phone", sorted(PHONES))
def test_a_long_pinned_message_leaves_the_chat_and_its_input_on_screen(
    hostile_site, browser, phone
):
    """A 500-character pinned message shows 3 lines in the overlay; the messages keep their
    room, the input and the heart stay on screen and uncovered. "Show all" (a button, by
    keyboard too) opens the rest inside a bounded box, and closes it again."""
    from playwright.sync_api import expect

    options = PHONES[phone]
    context = logged_in_context(browser, hostile_site, "viewer", **options)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        screen = {"x": 0, "y": 0, **options["viewport"]}

        def check_layout():
            chat = box(page, "[data-live-chat]")
            pinned = box(page, "[data-live-pinned]")
            field = box(page, "[data-live-chat-input]")
            heart = box(page, "[data-live-like-button]")
            messages = box(page, "[data-live-messages]")
            assert inside(field, screen), f"input {field} off the {screen} screen"
            assert field["height"] >= 40, f"the input shrank: {field}"
            assert messages["height"] >= 60, f"the pinned message leaves the messages {messages}"
            assert inside(pinned, chat), f"pinned {pinned} spills out of the chat {chat}"
            assert pinned["y"] + pinned["height"] <= field["y"], "the pinned box covers the input"
            assert not overlaps(pinned, heart), "the pinned box covers the heart"
            return pinned

        clamped = check_layout()
        body = page.locator("[data-live-pinned-body]")
        line = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('[data-live-pinned-body]'))"
            ".lineHeight)"
        )
        assert body.bounding_box()["height"] <= 3 * line + 2
        more = page.locator("[data-live-pinned-more]")
        expect(more).to_be_visible()
        expect(more).to_have_attribute("aria-expanded", "false")
        assert more.get_attribute("aria-controls") == body.get_attribute("id")
        more.focus()
        page.keyboard.press("Enter")
        expect(more).to_have_attribute("aria-expanded", "true")
        expect(more).to_have_text("Show less")
        opened = check_layout()
        assert opened["height"] > clamped["height"]
        more.tap()
        expect(more).to_have_attribute("aria-expanded", "false")
        assert check_layout()["height"] == pytest.approx(clamped["height"], abs=1)
    finally:
        context.close()


def test_a_short_pinned_message_has_no_show_all_button(site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, site, "ann", **PHONES["iphone13"])
    try:
        page = open_player(context, site, "phone-live")
        page.locator("[data-live-open]").tap()
        expect(page.locator("[data-live-pinned]")).to_contain_text("river trail")
        expect(page.locator("[data-live-pinned-more]")).to_be_hidden()
    finally:
        context.close()


def test_a_long_pinned_message_leaves_the_desktop_chat_column_its_messages(hostile_site, browser):
    context = logged_in_context(browser, hostile_site, "viewer", **DESKTOP)
    try:
        page = open_chat(context, hostile_site)
        column = box(page, ".wagtail-live-player__realtime")
        messages = box(page, "[data-live-messages]")
        field = box(page, "[data-live-chat-input]")
        assert messages["height"] >= 60, messages
        assert inside(field, column), (field, column)
        assert page.locator("[data-live-pinned-more]").is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_long_names_and_words_wrap_inside_the_chat(hostile_site, browser, viewport):
    """A 150-character name (cut to 64 on the server) and a 500-character word stay inside
    the chat's width; the page does not scroll sideways."""
    options = PHONE if viewport == "phone" else DESKTOP
    context = logged_in_context(browser, hostile_site, "viewer", **options)
    try:
        page = open_chat(context, hostile_site)
        if viewport == "phone":
            open_immersive(page)
        chat = box(page, "[data-live-chat]")
        item = page.locator("[data-live-messages] li", has_text="xxxxxxxx").first
        name = item.locator(".live-chat__name")
        assert name.text_content() == "W" * 64
        name_box = name.bounding_box()
        text = item.locator(".live-chat__text").bounding_box()
        assert name_box["x"] + name_box["width"] <= chat["x"] + chat["width"] + 1, (name_box, chat)
        assert text["x"] + text["width"] <= chat["x"] + chat["width"] + 1, (text, chat)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= options["viewport"]["width"], f"page scrolls sideways: {width}px"
    finally:
        context.close()


def test_markup_in_the_session_title_is_text(hostile_site, browser):
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        heading = page.locator(".wagtail-live-player__heading-title")
        assert heading.text_content() == "Public <b>live</b>"
        assert page.locator(".wagtail-live-player__heading-title b").count() == 0
    finally:
        context.close()


def test_a_hostile_name_is_text_in_the_overlay(hostile_site, browser):
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        item = page.locator("[data-live-messages] li", has_text="evil").first
        assert item.locator(".live-chat__name").text_content() == HOSTILE_NAME
        assert item.locator("img").count() == 0
        assert page.evaluate("window.__xss") is None
        # Its own <bdi dir=auto>: the override cannot reorder the text after it.
        assert item.locator("bdi.live-chat__name").get_attribute("dir") == "auto"
    finally:
        context.close()


def test_an_account_name_shows_at_most_five_marks_on_a_letter(hostile_site, browser):
    """The server trims the marks of an account's name (text.display_name): the overlay gets
    "Z" with its first five, not a hundred spilling over the messages around it."""
    from wagtail_live import text

    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        item = page.locator("[data-live-messages] li", has_text="zalgo says hi").first
        name = item.locator(".live-chat__name").text_content()
        assert name == text.display_name(ZALGO_NAME) == ZALGO_NAME[:6]
        assert text.most_marks_on_one_character(name) == text.MAX_MARKS_PER_CHARACTER
    finally:
        context.close()


def test_a_private_sessions_title_is_not_sent_to_anonymous_visitors(hostile_site, browser):
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        response = page.goto(hostile_site.url + hostile_site.page_info["secret_url"])
        assert "Secret board meeting" not in response.text()
        assert page.locator("[data-live-members-only]").count() == 1
        assert page.locator("[data-live-stage], [data-live-realtime]").count() == 0
    finally:
        context.close()


def test_reduced_motion_floats_no_hearts_even_in_a_burst(hostile_site, browser):
    context = logged_in_context(browser, hostile_site, "viewer", reduced_motion="reduce", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        open_immersive(page)
        hearts = page.evaluate(
            """() => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              live.handle({type: 'likes', total: (live.lastLikes ?? 0) + 50});
              document.querySelector('[data-live-like-button]').click();
              return document.querySelectorAll('.live-heart, .wagtail-live-player__tap-heart')
                .length;
            }"""
        )
        assert hearts == 0
    finally:
        context.close()


# -- the immersive view is modal: the page behind it is inert --------------------------------


@pytest.mark.parametrize("key", ["Shift+Tab", "Tab"])
def test_tab_after_a_click_on_the_video_stays_in_the_immersive_view(hostile_site, browser, key):
    """A click on the video focuses the stage itself (tabindex -1); Tab and Shift+Tab from
    there stay inside the view: the rest of the page is inert and the trap wraps."""
    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        page.locator("[data-live-open]").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".wagtail-live-player.is-immersive")
        page.mouse.click(195, 300)  # the video, above the chat
        for _ in range(3):
            page.keyboard.press(key)
            focused = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
            assert page.evaluate(
                "document.querySelector('[data-live-stage]').contains(document.activeElement)"
            ), f"focus left the modal view for {focused}"
    finally:
        context.close()


def test_the_page_behind_the_immersive_view_is_inert_until_it_closes(hostile_site, browser):
    from playwright.sync_api import expect

    context = logged_in_context(browser, hostile_site, "viewer", **PHONE)
    try:
        page = open_chat(context, hostile_site)
        # Something the page itself made inert stays so after the view closes.
        page.evaluate(
            """() => {
              const own = document.createElement('p');
              own.id = 'already-inert';
              own.inert = true;
              document.body.append(own);
            }"""
        )
        opener = page.locator("[data-live-open]")
        opener.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".wagtail-live-player.is-immersive")
        state = page.evaluate(
            """() => {
              const stage = document.querySelector('[data-live-stage]');
              const made = [...document.querySelectorAll('[data-live-immersive-inert]')];
              return {made: made.length, allInert: made.every((node) => node.inert),
                      stageFree: !stage.closest('[inert]'),
                      titleInert: Boolean(document.querySelector(
                        '.wagtail-live-player__title').closest('[inert]'))};
            }"""
        )
        assert state["made"] and state["allInert"] and state["stageFree"], state
        assert state["titleInert"], state
        page.keyboard.press("Escape")
        expect(page.locator("[data-live-player]")).not_to_have_class(_has("is-immersive"))
        expect(opener).to_be_focused()
        after = page.evaluate(
            """() => ({made: document.querySelectorAll('[data-live-immersive-inert]').length,
                       inert: [...document.querySelectorAll('[inert]')].map((n) => n.id)})"""
        )
        assert after == {"made": 0, "inert": ["already-inert"]}
    finally:
        context.close()
