"""The analytics page in a real Chromium: Chart.js draws the viewer samples."""

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.utils import chromium_path, make_editor, make_session, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
        finally:
            browser.close()
