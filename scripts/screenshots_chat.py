"""Regenerate the screenshots of docs/chat-and-moderation.md (needs chromium and playwright).

.venv/bin/python scripts/screenshots_chat.py
"""

import asyncio
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_client import RealSocket  # noqa: E402
from tests.live_site import LiveSite, migrated_database  # noqa: E402

OUT = ROOT / "docs" / "img"
SETUP = """
from tests.utils import make_editor, make_session
from wagtail_live import chat
host = make_editor("host", "moderate_chat")
host.first_name, host.last_name = "Hana", "Host"
host.save()
for name in ("ann", "bob", "spammer"):
    make_editor(name)
session = make_session("Friday Q&A", owner=host)
session.start()
spammer = User.objects.get(username="spammer")
result = {"pk": session.pk, "spammer": spammer.pk}
"""
from tests.utils import launch_chromium  # noqa: E402


def chat_from_viewers(site, pk):
    async def talk():
        ann = await RealSocket.open(site, pk, "ann")
        bob = await RealSocket.open(site, pk, "bob")
        spammer = await RealSocket.open(site, pk, "spammer")
        for socket, text in [
            (ann, "Hi everyone! 👋"),
            (bob, "Will the slides be online after the stream?"),
            (spammer, "CHEAP FOLLOWERS at example.com!!!"),
            (ann, "<b>bold?</b> no — chat is plain text"),
        ]:
            await socket.send({"type": "chat.send", "text": text})
            await asyncio.sleep(0.3)
        await ann.send({"type": "like", "count": 7})
        await asyncio.sleep(8)
        for socket in (ann, bob, spammer):
            await socket.close()

    thread = threading.Thread(target=lambda: asyncio.run(talk()))
    thread.start()
    return thread


def main():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        site = LiveSite(directory, migrated_database(directory))
        data = site.run(SETUP)
        site.start()
        try:
            cookie = site.login_cookie("host").split("=", 1)[1]
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies(
                    [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
                )
                page = context.new_page()
                page.goto(f"{site.url}/admin/live/{data['pk']}/dashboard/")
                page.wait_for_selector("[data-live-realtime][data-connection=open]")
                talking = chat_from_viewers(site, data["pk"])
                # Generous: each viewer's login runs a Django process first (slow on a busy machine).
                page.wait_for_function(
                    "document.querySelectorAll('[data-live-messages] li').length >= 4",
                    timeout=180000,
                )
                page.wait_for_timeout(1500)
                page.screenshot(path=OUT / "chat-dashboard.png", full_page=True)
                talking.join()
                site.run(
                    f"""
                    from wagtail_live import chat
                    chat.ban(User.objects.get(username="host"), {data["spammer"]}, "Spam links")
                    """
                )
                page.goto(f"{site.url}/admin/live/bans/")
                page.locator("tbody .w-dropdown__toggle").first.click()
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / "chat-bans.png", full_page=True)
                browser.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main()
