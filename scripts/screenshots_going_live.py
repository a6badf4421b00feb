"""Take the screenshots of docs/going-live.md in headless Chromium (fake camera, real daphne).

Run:  .venv/bin/python scripts/screenshots_going_live.py
Writes docs/img/go-live-ready.png, go-live-live.png, go-live-end-dialog.png, player-live.png,
player-scheduled.png and player-members-only.png.
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.test_go_live import CHROMIUM_ARGS  # noqa: E402
from tests.live_site import LiveSite, migrated_database  # noqa: E402
from tests.utils import chromium_path  # noqa: E402

IMAGES = ROOT / "docs" / "img"
VIEWPORT = {"width": 1280, "height": 900}

SETUP = """
from tests.utils import make_editor, make_session
host = make_editor("host", "go_live")
session = make_session("Spring open day", owner=host, description="Tour of the new studio.")
session.issue_stream_key(user=host)
result = session.pk
"""

SHOW_ON_HOME_PAGE = """
from datetime import timedelta
from django.utils import timezone
from example_site.home.models import HomePage
from tests.utils import make_session
kind = {kind!r}
if kind == "live":
    session = LiveSession.objects.get(pk={pk})
elif kind == "scheduled":
    session = make_session("Summer concert", scheduled_start=timezone.now() + timedelta(days=2, hours=3))
else:
    session = make_session("Members' briefing", privacy=LiveSession.Privacy.PRIVATE)
    session.start()
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {{"session": session, "show_chat": True}})]
page.save_revision().publish()
"""


def shoot(page, name):
    page.screenshot(path=str(IMAGES / name), full_page=True)
    print("wrote", IMAGES / name)


def main():
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        site = LiveSite(directory, migrated_database(directory))
        pk = site.run(SETUP)
        cookie = site.login_cookie("host").split("=", 1)[1]
        site.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
                )
                host = browser.new_context(viewport=VIEWPORT)
                host.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
                host_page = host.new_page()
                host_page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                host_page.wait_for_function(
                    "document.querySelector('[data-camera-preview]').videoWidth > 0"
                )
                time.sleep(1)
                shoot(host_page, "go-live-ready.png")
                obs = host_page.locator(".w-live-golive__obs")
                obs.scroll_into_view_if_needed()
                obs.screenshot(path=str(IMAGES / "go-live-obs.png"))
                print("wrote", IMAGES / "go-live-obs.png")
                host_page.click("[data-live-go]")
                host_page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=20000)
                time.sleep(4)
                # Back up (the OBS picture scrolled Wagtail's content pane): LIVE badge, preview.
                host_page.evaluate(
                    "document.querySelector('[data-live-badge]').scrollIntoView({block: 'center'})"
                )
                time.sleep(0.5)
                shoot(host_page, "go-live-live.png")

                site.run(SHOW_ON_HOME_PAGE.format(kind="live", pk=pk))
                viewer = browser.new_context(viewport=VIEWPORT).new_page()
                viewer.goto(site.url + "/")
                viewer.wait_for_function(
                    "document.querySelector('[data-live-video]').currentTime > 1", timeout=60000
                )
                time.sleep(1)
                shoot(viewer, "player-live.png")
                host_page.click("[data-live-end]")
                time.sleep(0.5)
                shoot(host_page, "go-live-end-dialog.png")
                host_page.click("[data-live-end-confirm]")
                time.sleep(2)

                for kind, name in (
                    ("scheduled", "player-scheduled.png"),
                    ("private", "player-members-only.png"),
                ):
                    site.run(SHOW_ON_HOME_PAGE.format(kind=kind, pk=pk))
                    viewer.goto(site.url + "/")
                    time.sleep(1.5)
                    shoot(viewer, name)
                browser.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main()
