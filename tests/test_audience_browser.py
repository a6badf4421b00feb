"""The analytics page in a real Chromium: Chart.js draws the viewer samples."""

import os
import threading
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.utils import chromium_path, make_editor, make_session, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from tests.utils import CHROMIUM_ARGS  # noqa: E402


def in_thread(work):
    """Run database work beside Playwright's sync API, whose event loop owns this thread."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)


def require_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright package")
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")


@pytest.mark.django_db(transaction=True)
def test_analytics_chart_is_drawn_with_data(live_server):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from wagtail_live.models import LiveSession, ViewerSample

    host = make_editor("host")
    session = make_session("Charted", owner=host)
    session.start()
    start = timezone.now() - timedelta(hours=1)
    # An hour of 10-second samples: a ramp up to 300 viewers, then down again.
    counts = [min(i, 360 - i) for i in range(360)]
    ViewerSample.objects.bulk_create(
        ViewerSample(
            session=session,
            at=start + timedelta(seconds=10 * i),
            viewers=n,
            unique_viewers=min(i, 180) + max(0, i - 180) // 3,
        )
        for i, n in enumerate(counts)
    )
    LiveSession.objects.filter(pk=session.pk).update(started_at=start)
    client = Client()
    client.force_login(host)
    cookie = client.cookies["sessionid"].value

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            host_name = live_server.url.split("//", 1)[1].split(":")[0]
            context.add_cookies(
                [{"name": "sessionid", "value": cookie, "domain": host_name, "path": "/"}]
            )
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{live_server.url}/admin/live/{session.pk}/analytics/")
            canvas = page.locator("[data-live-viewer-chart]")
            expect(canvas).to_have_attribute("data-chart-ready", str(len(counts)), timeout=15000)
            expect(page.locator('[data-figure="peak"]')).to_have_text("180")
            # Chart.js registered the chart, holds our points and painted pixels on the canvas.
            drawn = page.evaluate(
                """() => {
                    const canvas = document.querySelector("[data-live-viewer-chart]");
                    const chart = window.Chart.getChart(canvas);
                    const points = chart.data.datasets[0].data;
                    const pixels = canvas.getContext("2d")
                        .getImageData(0, 0, canvas.width, canvas.height).data;
                    let painted = 0;
                    for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) painted++; }
                    return {points: points.length, max: Math.max(...points.map(p => p.y)),
                            width: canvas.width, painted};
                }"""
            )
            assert drawn["points"] == len(counts)
            assert drawn["max"] == 180
            assert drawn["width"] > 300
            assert drawn["painted"] > 1000
            assert errors == []
            if os.environ.get("WAGTAIL_LIVE_SCREENSHOTS"):
                page.screenshot(path=os.environ["WAGTAIL_LIVE_SCREENSHOTS"], full_page=True)

            # The session is live: a sample stored now shows up within one poll (10 s).
            in_thread(
                lambda: ViewerSample.objects.create(
                    session=session, viewers=321, unique_viewers=999
                )
            )
            expect(canvas).to_have_attribute(
                "data-chart-ready", str(len(counts) + 1), timeout=15000
            )
            last = page.evaluate(
                """() => window.Chart.getChart(document.querySelector("[data-live-viewer-chart]"))
                    .data.datasets[0].data.at(-1).y"""
            )
            assert last == 321
        finally:
            browser.close()


def render_with_csrf(block, value, user):
    """Render ``block`` as the page would for ``user``; return (html, csrf cookie value)."""
    from django.middleware.csrf import get_token
    from django.test import RequestFactory

    request = RequestFactory().get("/events/")
    request.user = user
    token = get_token(request)
    html = block.render(value, context={"request": request, "csrf_token": token})
    return html, request.META["CSRF_COOKIE"]


@pytest.mark.django_db(transaction=True)
def test_remind_me_button_works_in_the_browser(live_server):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from wagtail_live.blocks import UpcomingLiveBlock
    from wagtail_live.models import LiveReminder

    host = make_editor("host")
    visitor = make_editor("visitor")
    session = make_session(
        "Launch", owner=host, scheduled_start=timezone.now() + timedelta(hours=2)
    )
    block = UpcomingLiveBlock()
    html, csrf = render_with_csrf(block, block.to_python({"heading": "Soon", "count": 5}), visitor)
    client = Client()
    client.force_login(visitor)
    host_name = live_server.url.split("//", 1)[1].split(":")[0]
    cookies = [
        {"name": "sessionid", "value": client.cookies["sessionid"].value},
        {"name": "csrftoken", "value": csrf},
    ]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{**c, "domain": host_name, "path": "/"} for c in cookies])
            page = context.new_page()
            # Same origin as the site, so the block's scripts and its POST go to live_server.
            page.goto(f"{live_server.url}/live/sessions/{session.pk}/status.json")
            page.set_content(f"<!doctype html><html><body>{html}</body></html>")
            expect(page.locator("[data-live-countdown]")).to_contain_text("Starts in 0")
            page.get_by_role("button", name="Remind me").click()
            expect(page.locator("[data-live-remind-status]")).to_contain_text("We will e-mail you")
            expect(page.get_by_role("button", name="Remind me")).to_be_hidden()
        finally:
            browser.close()
    # Playwright's sync API runs an event loop in this thread: query the database after it.
    assert LiveReminder.objects.filter(session=session, user=visitor).count() == 1
