"""Take the studio view's screenshots of docs/going-live.md: a phone going live in portrait.

Run:  .venv/bin/python scripts/screenshots_studio.py
Headless Chromium as a phone (390x844, touch) with a portrait fake camera (a 720x1280 file),
a real daphne, and a viewer chatting from a second browser context. Writes
docs/img/studio-ready.png, studio-live.png, studio-moderate.png, studio-end-dialog.png and,
for comparison, studio-desktop.png (the desktop's classic form).
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

from tests.browser.test_go_live import CHROMIUM_ARGS  # noqa: E402
from tests.live_site import LiveSite, migrated_database  # noqa: E402
from tests.utils import chromium_path  # noqa: E402

IMAGES = ROOT / "docs" / "img"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

SETUP = """
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session
host = make_editor("host", "go_live")
for name, first in (("amira", "Amira"), ("tom", "Tom")):
    user = User.objects.create_user(name, f"{name}@example.com", "password")
    user.first_name = first
    user.save()
session = make_session("Year 9 maths: fractions", owner=host)
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {"session": session, "show_chat": True})]
page.save_revision().publish()
result = session.pk
"""


def shoot(page, name):
    page.screenshot(path=str(IMAGES / name))
    print("wrote", IMAGES / name)


def cookie_for(site, username):
    return {
        "name": "sessionid",
        "value": site.login_cookie(username).split("=", 1)[1],
        "url": site.url,
    }


def chat(browser, site, username, text):
    """A viewer on the public page posts ``text``; returns the open context."""
    context = browser.new_context()
    context.add_cookies([cookie_for(site, username)])
    page = context.new_page()
    page.goto(site.url + "/")
    page.wait_for_selector("[data-live-realtime][data-connection=open]")
    page.fill("[data-live-chat-input]", text)
    page.click("[data-live-chat-send]")
    return context


def main():
    import os

    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from tests.browser.test_studio import portrait_camera

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        site = LiveSite(directory, migrated_database(directory))
        pk = site.run(SETUP)
        camera = portrait_camera(directory)
        site.start(timeout=120)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(),
                    args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
                    headless=True,
                )
                desktop = browser.new_context(
                    viewport=DESKTOP, permissions=["camera", "microphone"]
                )
                desktop.add_cookies([cookie_for(site, "host")])
                desktop_page = desktop.new_page()
                desktop_page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                desktop_page.wait_for_function(
                    "document.querySelector('[data-camera-preview]').videoWidth > 0"
                )
                time.sleep(1)
                shoot(desktop_page, "studio-desktop.png")
                desktop.close()

                phone = browser.new_context(
                    viewport=PHONE,
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                    permissions=["camera", "microphone"],
                )
                phone.add_cookies([cookie_for(site, "host")])
                page = phone.new_page()
                page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                page.wait_for_function(
                    "document.querySelector('[data-camera-preview]').videoWidth > 0"
                )
                time.sleep(1)
                shoot(page, "studio-ready.png")

                page.locator("[data-live-go]").tap()
                page.wait_for_selector("[data-live-golive][data-status=live]", timeout=20000)
                viewers = [
                    chat(browser, site, "amira", "Good morning! Can you zoom on the board?"),
                    chat(browser, site, "tom", "Is 3/4 bigger than 5/8?"),
                ]
                page.locator(".live-chat__message", has_text="5/8").wait_for(timeout=15000)
                time.sleep(4)  # the elapsed time and the viewer count move on
                shoot(page, "studio-live.png")

                page.locator(".live-chat__message", has_text="5/8").tap()
                page.locator("[data-live-modsheet]").wait_for(state="visible")
                time.sleep(0.5)
                shoot(page, "studio-moderate.png")
                page.get_by_role("button", name="Cancel").tap()

                page.get_by_role("button", name="End live").tap()
                page.locator("[data-live-end-confirm]").wait_for(state="visible")
                time.sleep(0.5)
                shoot(page, "studio-end-dialog.png")
                page.locator("[data-live-end-confirm]").tap()
                page.wait_for_selector("text=This session has ended.", timeout=30000)
                for context in viewers:
                    context.close()
                browser.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main()
