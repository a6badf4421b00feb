"""Take the stream health screenshot of docs/going-live.md in headless Chromium (real daphne).

Run:  .venv/bin/python scripts/screenshots_stream_health.py
Writes docs/img/stream-health.png: the Go Live screen's panel for an encoder sending 720p at
30 fps with a keyframe only every 4 s and no audio, as a real ffmpeg encoder wrote it.
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_site import LiveSite, migrated_database  # noqa: E402
from tests.utils import CHROMIUM_ARGS, chromium_path  # noqa: E402

IMAGES = ROOT / "docs" / "img"

SETUP = """
from tests.test_health import write_hls
from tests.utils import make_editor, make_session
from wagtail_live import health
host = make_editor("host", "go_live")
session = make_session("Spring open day", owner=host)
write_hls(session, 12, size="1280x720", rate=30, keyframe_seconds=4, audio=None)
session.start()
health.measure_and_publish(session)
result = session.pk
"""


def main():
    from playwright.sync_api import sync_playwright

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
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
                page = context.new_page()
                page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                panel = page.locator("[data-live-health]")
                panel.scroll_into_view_if_needed()
                time.sleep(0.5)
                panel.screenshot(path=str(IMAGES / "stream-health.png"))
                print("wrote", IMAGES / "stream-health.png")
                browser.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main()
