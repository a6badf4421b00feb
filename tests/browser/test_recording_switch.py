"""In Chromium: publishing a recording page switches open live players to the recording.

Everything real: a daphne process, the editor publishing in Wagtail's page editor, the
``page_published`` signal, the channel layer, the chat socket (live.js) and the player
(player.js) swapping the "ended" notice for the video.
"""

import os

import pytest

from tests.live_site import LiveSite, migrated_database
from tests.utils import chromium_path, launch_chromium, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = """
import pathlib, tempfile
from django.core.files.base import ContentFile
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.recording_media import make_media
from tests.utils import make_session
from wagtail_live.models import Recording
from wagtail_live.recordings import process_recording
from wagtail_live.storage import working_storage

User.objects.create_superuser("boss", "boss@example.com", "password")
session = make_session("Recorded show")
session.start()
session.end()
made = make_media(pathlib.Path(tempfile.mkdtemp()) / "r.ts", "h264_aac", seconds=2)
name = working_storage().save(session.media_path("recording.ts"), ContentFile(made.read_bytes()))
recording = process_recording(Recording.objects.create(session=session, source=name))
assert recording.status == "ready", recording.error
root = Site.objects.get(is_default_site=True).root_page
show = root.add_child(
    instance=HomePage(
        title="Show", slug="show", body=[("live_player", {"session": session, "show_chat": True})]
    )
)
result = {
    "page_path": "/show/",
    "recording_page": recording.page_id,
    "media_url": recording.media.url,
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright package")
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("recording-switch")
    site = LiveSite(directory, migrated_database(directory))
    site.data = site.run(SETUP)
    site.start()
    yield site
    site.stop()


def test_publishing_the_recording_page_swaps_the_ended_player_for_the_recording(site):
    from playwright.sync_api import expect, sync_playwright

    data = site.data
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            visitor = browser.new_context().new_page()
            visitor.goto(site.url + data["page_path"])
            slot = visitor.locator("[data-live-recording]")
            expect(visitor.locator('[data-live-state="ended"]')).to_be_visible()
            expect(slot.locator("video")).to_have_count(0)  # a draft is not for visitors
            # The chat socket is up once the server's "state" filled in the viewer count.
            expect(visitor.locator("[data-live-viewers]")).not_to_have_text("", timeout=15000)

            editor = browser.new_context()
            cookie = site.login_cookie("boss").split("=", 1)[1]
            editor.add_cookies(
                [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
            )
            admin = editor.new_page()
            admin.goto(f"{site.url}/admin/pages/{data['recording_page']}/edit/")
            # Wagtail keeps Publish in the footer's dropdown; click it the way the menu does.
            with admin.expect_navigation():
                admin.evaluate("document.querySelector('button[name=action-publish]').click()")

            expect(slot.locator("video")).to_have_attribute("src", data["media_url"], timeout=15000)
            expect(slot.locator("a")).to_have_attribute("href", "/recorded-show/")
        finally:
            browser.close()

    # A visitor arriving later gets the recording from the server-rendered block.
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(site.url + data["page_path"])
            source = page.locator("[data-live-recording] video source")
            expect(source).to_have_attribute("src", data["media_url"])
        finally:
            browser.close()
