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


VIEWER_SETUP = """
from django.contrib.auth.models import Permission
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session

make_editor("chat-mod", "moderate_chat")
User.objects.create_user("viewer", "viewer@example.com", "password")
# A display name that tries to reverse the text around it (a right-to-left override).
User.objects.create_user("rtl", "rtl@example.com", "password", first_name="\\u202eevil")
session = make_session("Viewer chat", owner=make_editor("viewer-host"))
session.start()
root = Site.objects.get(is_default_site=True).root_page
page = root.add_child(instance=HomePage(
    title="Viewer chat", slug="viewer-chat",
    body=[("live_player", {"session": session, "show_chat": True})],
))
result = [session.pk, page.url]
"""


def test_viewers_see_isolated_text_their_restrictions_and_a_login_link(site):
    """Issue 10 §3 and issue 12 point 7, as a viewer sees them on a page with the player."""
    from playwright.sync_api import expect, sync_playwright

    pk, path = site.run(VIEWER_SETUP)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            # A visitor: "Log in to chat", back to this page afterwards; no form to type into.
            visitor = browser.new_page()
            visitor.goto(f"{site.url}{path}")
            expect(visitor.locator("[data-live-realtime]")).to_have_attribute(
                "data-connection", "open", timeout=15000
            )
            login = visitor.locator("[data-live-chat-login]")
            expect(login).to_be_visible()
            expect(login).to_have_text("Log in to chat")
            assert login.get_attribute("href") == f"/admin/login/?next={path.replace('/', '%2F')}"
            expect(visitor.locator(".live-chat__form")).to_be_hidden()

            context = browser.new_context()
            cookie = site.login_cookie("viewer").split("=", 1)[1]
            context.add_cookies(
                [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
            )
            page = context.new_page()
            page.goto(f"{site.url}{path}")
            realtime = page.locator("[data-live-realtime]")
            expect(realtime).to_have_attribute("data-connection", "open", timeout=15000)
            expect(page.locator("[data-live-chat-login]")).to_be_hidden()
            chat_input = page.locator("[data-live-chat-input]")
            send = page.locator("[data-live-chat-send]")
            expect(chat_input).to_be_enabled()

            # Names and text are each isolated, so an override in one cannot reorder the rest.
            async def rtl_posts():
                rtl = await RealSocket.open(site, pk, "rtl")
                # Right-to-left text (overrides themselves are refused: tests/test_chat_text.py).
                await rtl.send({"type": "chat.send", "text": "\u05e9\u05dc\u05d5\u05dd abc"})
                await rtl.expect("chat.message")
                await rtl.close()

            run_in_thread(rtl_posts())
            chat_input.fill("hello from me")
            send.click()
            messages = page.locator("[data-live-messages] li")
            expect(messages).to_have_count(2)
            isolated = page.evaluate(
                """() => [...document.querySelectorAll(
                    '[data-live-messages] .live-chat__name, [data-live-messages] .live-chat__text')]
                    .map((node) => [node.tagName, node.dir, getComputedStyle(node).unicodeBidi])"""
            )
            assert len(isolated) == 4
            assert all(found == ["BDI", "auto", "isolate"] for found in isolated), isolated
            expect(messages.first.locator(".live-chat__name")).to_have_text("\u202eevil")

            # A moderator mutes the viewer for a few seconds: told at once, input off, then on.
            async def moderate(frame):
                mod = await RealSocket.open(site, pk, "chat-mod")
                await mod.send(frame)
                await asyncio.sleep(0.5)
                await mod.close()

            viewer_id = site.run("result = User.objects.get(username='viewer').pk")
            run_in_thread(moderate({"type": "mod.mute", "user_id": viewer_id, "seconds": 4}))
            restriction = page.locator("[data-live-chat-restriction]")
            expect(restriction).to_be_visible(timeout=5000)
            expect(restriction).to_contain_text("muted")
            expect(chat_input).to_be_disabled()
            expect(send).to_be_disabled()
            expect(chat_input).to_be_enabled(timeout=8000)  # the mute ends by itself
            expect(send).to_be_enabled()
            expect(restriction).to_be_hidden()

            # A ban: the viewer's own messages go from their screen too, the input stays off.
            run_in_thread(moderate({"type": "mod.ban", "user_id": viewer_id}))
            expect(restriction).to_contain_text("banned", timeout=5000)
            expect(messages).to_have_count(1)
            expect(messages.first.locator(".live-chat__text")).to_have_text(
                "\u05e9\u05dc\u05d5\u05dd abc"
            )
            expect(chat_input).to_be_disabled()
            expect(send).to_be_disabled()
            expect(realtime).to_have_attribute("data-close-code", "4403")
        finally:
            browser.close()


VISITORS_SETUP = """
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session

session = make_session("Visitor ids", owner=make_editor("visitors-host"))
session.start()
root = Site.objects.get(is_default_site=True).root_page
page = root.add_child(instance=HomePage(
    title="Visitor ids", slug="visitor-ids",
    body=[("live_player", {"session": session, "show_chat": True})],
))
result = [session.pk, page.url]
"""


def test_anonymous_browsers_keep_the_signed_visitor_id_the_server_hands_out(site):
    """live.js stores the id from ``state``; with it each browser is one person, its tabs once."""
    from playwright.sync_api import expect, sync_playwright

    from wagtail_live.visitors import visitor_id

    pk, path = site.run(VISITORS_SETUP)

    def open_page(context):
        page = context.new_page()
        page.goto(f"{site.url}{path}")
        expect(page.locator("[data-live-realtime]")).to_have_attribute(
            "data-connection", "open", timeout=15000
        )
        return page

    def visitor_cookie(context):
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        return cookies.get("wagtail_live_visitor")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            first, second = browser.new_context(), browser.new_context()
            # A made-up id (what live.js used to choose) is replaced by a signed one.
            first.add_cookies(
                [{"name": "wagtail_live_visitor", "value": "0123456789abcdef", "url": site.url}]
            )
            pages = [open_page(first), open_page(second)]
            for _ in range(50):
                ids = [visitor_cookie(first), visitor_cookie(second)]
                if all(value and visitor_id(value) for value in ids):
                    break
                pages[0].wait_for_timeout(100)
            assert all(visitor_id(value) for value in ids), ids
            assert ids[0] != ids[1]
            # Back with their ids: two people; a second tab of the first browser adds no one.
            for page in pages:
                page.reload()
            pages.append(open_page(first))
            for page in pages:
                expect(page.locator("[data-live-realtime]")).to_have_attribute(
                    "data-connection", "open", timeout=15000
                )
            assert [visitor_cookie(first), visitor_cookie(second)] == ids  # kept, not reissued
            counted = run_in_thread(_viewers_seen_by_host(site, pk))
            assert counted == 2
        finally:
            browser.close()


async def _viewers_seen_by_host(site, pk):
    host = await RealSocket.open(site, pk, "visitors-host")
    try:
        return host.state["viewers"]
    finally:
        await host.close()
