"""Regenerate the screenshots of docs/analytics.md, scheduling-and-reminders.md and webhooks.md.

    .venv/bin/python scripts/screenshots_audience.py

Needs chromium and playwright. The session analytics screenshot comes from
tests/test_audience_browser.py (``WAGTAIL_LIVE_SCREENSHOTS=docs/img/analytics-session.png``).
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_site import LiveSite, migrated_database  # noqa: E402

OUT = ROOT / "docs" / "img"
SETUP = """
from datetime import timedelta
from django.utils import timezone
from tests.utils import make_editor, make_session
from wagtail_live import reminders, webhooks
from wagtail_live.models import LiveSession, ViewerSample, Webhook, WebhookDelivery
host = User.objects.create_superuser("host", "host@example.com", "password")
guest = make_editor("guest")
now = timezone.now()
fans = [User.objects.create_user(f"fan{n}", f"fan{n}@example.com") for n in range(12)]
for title, hours, owner, waiting in [
    ("Product launch", 3, host, 12), ("Friday Q&A", 27, host, 5),
    ("Cooking with Ana", 30, guest, 2), ("Year in review", 75, host, 0),
]:
    session = make_session(title, owner=owner, scheduled_start=now + timedelta(hours=hours))
    for fan in fans[:waiting]:
        reminders.remind_me(session, fan)
past = []
for n in range(8):
    session = make_session(f"Weekly stream #{n + 1}", owner=host if n % 3 else guest)
    session.start()
    start = now - timedelta(days=7 * (n + 1))
    LiveSession.objects.filter(pk=session.pk).update(
        started_at=start, ended_at=start + timedelta(hours=1), status="ended", likes=40 * n + 7
    )
    ViewerSample.objects.bulk_create(
        ViewerSample(session=session, at=start + timedelta(seconds=10 * i),
                     viewers=(i % 50) + 10 * n, unique_viewers=i + 20 * n)
        for i in range(360)
    )
hook = Webhook.objects.create(name="Chat bot", url="https://93.184.215.14/hook",
                              events=["session.started", "session.ended"])
for attempt, (state, code, error) in enumerate(
    [("retrying", 500, "The receiver answered 500 Internal Server Error."),
     ("retrying", None, "No answer within 5 s."), ("succeeded", 200, "")], start=1
):
    WebhookDelivery.objects.create(webhook=hook, event="session.started",
                                   body=webhooks.build_body("session.started", session).decode(),
                                   attempt=attempt, state=state, status_code=code, error=error,
                                   attempted_at=now, duration_ms=120 * attempt)
result = None
"""
from tests.utils import launch_chromium  # noqa: E402


def main():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        site = LiveSite(directory, migrated_database(directory))
        site.run(SETUP)
        site.start()
        try:
            cookie = site.login_cookie("host").split("=", 1)[1]
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_cookies(
                    [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
                )
                page = context.new_page()
                for path, name in [
                    ("/admin/live/upcoming/", "upcoming-agenda.png"),
                    ("/admin/live/report/", "analytics-report.png"),
                    ("/admin/live/webhook-deliveries/", "webhook-deliveries.png"),
                ]:
                    page.goto(site.url + path)
                    page.wait_for_timeout(500)
                    page.screenshot(path=OUT / name, full_page=True)
                browser.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main()
