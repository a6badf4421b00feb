"""The chat front end (live.js) in a real Chromium: text stays text, likes and counts update."""

import asyncio
import threading

import pytest

from tests.live_client import RealSocket
from tests.live_site import LiveSite, migrated_database
from tests.utils import CHROMIUM_ARGS, chromium_path, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

SETUP = """
from tests.utils import make_editor, make_session
host = make_editor("host")
make_editor("mallory")
result = make_session("Browser chat", owner=host).pk
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(_playwright_available(), "the playwright package")
    import os

    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("browser-chat")
    site = LiveSite(directory, migrated_database(directory))
    pk = site.run(SETUP)
    site.start()
    site.session_pk = pk
    yield site
    site.stop()


def _playwright_available():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def run_in_thread(coroutine):
    """Run a websocket client beside Playwright's sync API (which owns this thread's loop)."""
    result = {}

    def target():
        result["value"] = asyncio.run(coroutine)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    return result.get("value")


def test_chat_text_is_never_html_and_counts_update(site):
    from playwright.sync_api import expect, sync_playwright

    pk = site.session_pk
    cookie = site.login_cookie("host").split("=", 1)[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
        )
        try:
            context = browser.new_context()
            context.add_cookies(
                [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
            )
            page = context.new_page()
            page.goto(f"{site.url}/admin/live/{pk}/dashboard/")
            realtime = page.locator("[data-live-realtime]")
            expect(realtime).to_have_attribute("data-connection", "open", timeout=15000)
            expect(page.locator("[data-live-viewers]")).to_contain_text("1")

            async def mallory_posts():
                mallory = await RealSocket.open(site, pk, "mallory")
                await mallory.send({"type": "chat.send", "text": XSS})
                await mallory.expect("chat.message")
                await mallory.send({"type": "like", "count": 3})
                await mallory.expect("likes", where=lambda m: m["total"] == 3)
                await asyncio.sleep(1.5)
                await mallory.close()

            run_in_thread(mallory_posts())

            message = page.locator("[data-live-messages] .live-chat__text").last
            expect(message).to_have_text(XSS)
            assert page.locator("[data-live-messages] img").count() == 0
            assert page.locator("[data-live-messages] script").count() == 0
            assert page.evaluate("window.__xss") is None
            expect(page.locator("[data-live-likes-count]")).to_have_text("3")

            # The host moderates from the dashboard: Remove takes the message away for everyone.
            page.locator("[data-live-messages] li").last.get_by_role(
                "button", name="Remove"
            ).click()
            expect(page.locator("[data-live-messages] li")).to_have_count(0)

            # Likes from this page: floating hearts, then the server's coalesced total.
            page.locator("[data-live-like-button]").click()
            expect(page.locator(".live-heart").first).to_be_attached()
            expect(page.locator("[data-live-likes-count]")).to_have_text("4", timeout=10000)

            # A dropped socket comes back by itself (backoff) and resynchronises from `state`.
            page.evaluate(
                """() => {
                    const live = document.querySelector('[data-live-realtime]').liveRealtime;
                    live.listEl.replaceChildren(document.createElement('li'));
                    live.socket.close();
                }"""
            )
            expect(realtime).to_have_attribute("data-connection", "closed")
            expect(realtime).to_have_attribute("data-connection", "open", timeout=15000)
            expect(page.locator("[data-live-messages] li")).to_have_count(0)
            expect(page.locator("[data-live-likes-count]")).to_have_text("4")
        finally:
            browser.close()
