"""Regenerate the screenshots of docs/watching.md (needs chromium, ffmpeg and playwright).

    .venv/bin/python scripts/screenshots_watching.py

A real site (tests/live_site.py) with two live sessions fed by a real ffmpeg (a portrait
360x640 and a landscape 640x360 test pattern), seen on phone-sized screens and a desktop.
The set-up is tests/browser/test_phone_viewer.py's, so the pictures show what it tests.
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure()  # only for wagtail_live.ffmpeg.ffmpeg_binary (defaults: ffmpeg on PATH)

from tests.browser.test_phone_viewer import (  # noqa: E402
    DESKTOP,
    PHONES,
    logged_in_context,
    open_player,
    start_encoder,
    start_site,
)
from tests.utils import launch_chromium  # noqa: E402

OUT = ROOT / "docs" / "img"

DESK_CHAT = """
from wagtail_live import chat
session = LiveSession.objects.get(pk={pk})
for username, text in [
    ("ann", "Joining from the Porto office!"),
    ("bob", "Will the slides be shared afterwards?"),
    ("mod", "Yes: the recording and the slides go on this page after the live"),
    ("host", "Welcome! We start with the numbers, then questions"),
    ("ann", "The audio is great today"),
]:
    chat.send_message(session, User.objects.get(username=username), text, broadcast=False)
"""


def shoot(page, name):
    page.screenshot(path=OUT / f"watching-{name}.png")
    print("wrote", OUT / f"watching-{name}.png")


def phone_views(browser, site):
    context = logged_in_context(browser, site, "viewer", **PHONES["iphone13"])
    page = open_player(context, site, "phone-live")
    page.wait_for_timeout(800)
    shoot(page, "phone-page")
    page.locator("[data-live-open]").tap()
    page.wait_for_timeout(600)
    shoot(page, "phone-immersive")
    # A double tap on the video: the big heart, and small ones rising from the like button.
    screen = page.locator("[data-live-screen]").bounding_box()
    x, y = screen["x"] + screen["width"] * 0.45, screen["y"] + screen["height"] * 0.32
    page.touchscreen.tap(x, y)
    page.touchscreen.tap(x, y)
    page.locator("[data-live-like-button]").tap()
    page.locator("[data-live-like-button]").tap()
    page.wait_for_timeout(250)
    shoot(page, "phone-hearts")
    page.wait_for_timeout(1500)
    page.touchscreen.tap(x, y)  # one tap: a clear screen
    page.wait_for_timeout(600)
    shoot(page, "phone-chat-hidden")
    context.close()

    context = logged_in_context(browser, site, "ann", **PHONES["pixel7"])
    page = open_player(context, site, "desk-live")
    page.locator("[data-live-open]").tap()
    page.wait_for_timeout(800)
    shoot(page, "phone-landscape")
    context.close()


def desktop_views(browser, site):
    context = logged_in_context(browser, site, "viewer", **DESKTOP)
    page = open_player(context, site, "desk-live")
    page.wait_for_timeout(800)
    page.locator("[data-live-player]").scroll_into_view_if_needed()
    shoot(page, "desktop")
    page.get_by_role("button", name="Theatre mode").click()
    page.wait_for_timeout(500)
    page.locator("[data-live-stage]").scroll_into_view_if_needed()
    shoot(page, "desktop-theatre")
    context.close()


def main():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        site = start_site(Path(directory))
        site.run(DESK_CHAT.format(pk=site.pages["desk-live"]["pk"]))
        encoders = [
            start_encoder(site.pages["phone-live"]["hls"], "360x640"),
            start_encoder(site.pages["desk-live"]["hls"], "640x360"),
        ]
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
                phone_views(browser, site)
                desktop_views(browser, site)
                browser.close()
        finally:
            for encoder in encoders:
                encoder.kill()
                encoder.wait()
            site.stop()


if __name__ == "__main__":
    main()
