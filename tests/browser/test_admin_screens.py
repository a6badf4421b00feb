"""The admin's live screens in a real Chromium (issue 10): what a new user tripped on.

A real daphne serves the site; a real ffmpeg publishes to the embedded RTMP
listener (``manage.py live_rtmp``) for the OBS case. Each test also saves
screenshots (desktop and a 390x844 phone) under ``WAGTAIL_LIVE_ADMIN_SCREENSHOTS`` when set.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ingest.streams import lavfi_args
from tests.live_site import ROOT, LiveSite, migrated_database
from tests.utils import chromium_path, launch_chromium, require
from wagtail_live.ffmpeg import ffmpeg_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LISTENING = re.compile(r"RTMP listener on (rtmp://\S+)")

SETUP = """
from tests.utils import make_editor
admin = User.objects.create_superuser("admin", "admin@example.com", "password")
make_editor("fan")
result = None
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), f"chromium at {chromium_path()}")
    directory = tmp_path_factory.mktemp("admin-screens")
    site = LiveSite(directory, migrated_database(directory), {"RECONNECT_GRACE": 5})
    site.run(SETUP)
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
        yield browser
        browser.close()


def admin_page(site, browser, viewport=DESKTOP, username="admin"):
    """A page logged in as ``username`` (a session cookie, no login form round trip)."""
    context = browser.new_context(viewport=viewport)
    name, value = site.login_cookie(username).split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": site.url}])
    page = context.new_page()
    # The browser's own prompt()/confirm() must never be used: record any that appear.
    page.native_dialogs = []
    page.on("dialog", lambda dialog: (page.native_dialogs.append(dialog.type), dialog.dismiss()))
    return page


def screenshot(page, name):
    """Save a screenshot when WAGTAIL_LIVE_ADMIN_SCREENSHOTS names a directory (for review)."""
    directory = os.environ.get("WAGTAIL_LIVE_ADMIN_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def live_session(site, title):
    return site.run(
        f"""
        from tests.utils import make_session
        session = make_session({title!r}, owner=User.objects.get(username="admin"))
        session.start()
        result = session.pk
        """
    )


def status(site, pk):
    return site.run(f"result = LiveSession.objects.get(pk={pk}).status")


def wait_for_status(site, pk, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(site, pk) == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"session {pk} is {status(site, pk)}, not {wanted}")


# -- the Go Live screen of a session live from OBS ---------------------------------


@pytest.fixture
def rtmp_listener(site):
    """``manage.py live_rtmp`` on a free port, against the site's database and media."""
    log_path = site.directory / "rtmp.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "live_rtmp", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT, env=site.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (match := LISTENING.search(log_path.read_text())):
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)
    yield match.group(1)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_go_live_screen_shows_the_obs_stream_and_its_encoder(site, browser, rtmp_listener):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    pk, key = site.run(
        """
        from tests.utils import make_session
        session = make_session("OBS show", owner=User.objects.get(username="admin"))
        result = [session.pk, session.issue_stream_key()]
        """
    )
    page = admin_page(site, browser)
    # Open before the encoder starts: the screen offers the camera (this Chromium has none).
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_selector("[data-camera-preview]")

    encoder = subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error",
         *lavfi_args(0, size="640x360"), "-f", "flv", f"{rtmp_listener}/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_status(site, pk, "live")
        # The screen noticed by itself and now shows what viewers get, and from which encoder.
        page.wait_for_selector("[data-live-encoder]", timeout=20000)
        assert page.get_attribute("[data-live-encoder]", "data-live-encoder") == "rtmp"
        assert "RTMP" in page.inner_text("[data-live-encoder]")
        video = "document.querySelector('[data-live-preview]')"
        page.wait_for_function(f"{video}.currentTime > 0 && !{video}.paused", timeout=45000)
        first = page.evaluate(f"{video}.currentTime")
        page.wait_for_function(f"{video}.currentTime > {first} + 1", timeout=30000)
        assert page.evaluate(f"{video}.videoWidth") == 640
        # No camera box, no camera error.
        assert page.query_selector("[data-camera-preview]") is None
        assert "No camera" not in page.inner_text("main")
        assert "NotFoundError" not in page.content()
        screenshot(page, "go-live-obs-desktop")
        phone = admin_page(site, browser, PHONE)
        phone.goto(f"{site.url}/admin/live/{pk}/go-live/")
        phone.wait_for_function(
            "document.querySelector('[data-live-preview]').currentTime > 0", timeout=45000
        )
        screenshot(phone, "go-live-obs-phone")
        phone.context.close()
    finally:
        encoder.kill()
        encoder.wait()
    page.context.close()


def test_preview_of_a_session_started_by_hand_plays_once_obs_sends(site, browser, rtmp_listener):
    # *Go live* pressed without a camera, OBS not sending yet: the preview has no playlist to
    # load at first, and must start playing by itself once the encoder's first segments exist.
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    pk, key = site.run(
        """
        from tests.utils import make_session
        session = make_session("Started by hand", owner=User.objects.get(username="admin"))
        key = session.issue_stream_key()
        session.start()
        result = [session.pk, key]
        """
    )
    page = admin_page(site, browser)
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_selector("[data-live-preview]")
    time.sleep(3)  # the first load of the playlist has failed by now
    encoder = subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error",
         *lavfi_args(0), "-f", "flv", f"{rtmp_listener}/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        video = "document.querySelector('[data-live-preview]')"
        page.wait_for_function(f"{video}.currentTime > 1 && !{video}.paused", timeout=60000)
    finally:
        encoder.kill()
        encoder.wait()
    page.context.close()


# -- End live asks first, with Wagtail's dialog ------------------------------------


@pytest.mark.parametrize("screen", ["go-live", "dashboard"])
def test_end_live_asks_for_confirmation_in_wagtails_dialog(site, browser, screen):
    pk = live_session(site, f"Confirm on {screen}")
    page = admin_page(site, browser)
    page.goto(f"{site.url}/admin/live/{pk}/{screen}/")
    header = page.inner_text("#header-title")
    assert f"Confirm on {screen}" in header  # which session this screen is about

    page.click("[data-live-end]")
    dialog = page.locator("#live-end-dialog")
    confirm = dialog.locator("[data-live-end-confirm]")
    confirm.wait_for(state="visible")
    assert "End the live for everyone?" in dialog.inner_text()
    assert dialog.get_attribute("data-controller") == "w-dialog"  # Wagtail's own dialog
    screenshot(page, f"end-live-dialog-{screen}-desktop")
    time.sleep(1)
    assert status(site, pk) == "live"  # one click only asked

    dialog.locator("[data-live-end-cancel]").click()
    confirm.wait_for(state="hidden")
    assert status(site, pk) == "live"

    page.click("[data-live-end]")
    confirm.wait_for(state="visible")
    confirm.click()
    page.wait_for_selector("text=This session has ended.", timeout=30000)
    assert status(site, pk) == "ended"
    assert page.native_dialogs == []
    page.context.close()


def test_end_live_dialog_on_a_phone(site, browser):
    pk = live_session(site, "Phone confirm")
    page = admin_page(site, browser, PHONE)
    page.goto(f"{site.url}/admin/live/{pk}/dashboard/")
    page.click("[data-live-end]")
    page.locator("[data-live-end-confirm]").wait_for(state="visible")
    box = page.locator("#live-end-dialog .w-dialog__box").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
    screenshot(page, "end-live-dialog-phone")
    page.context.close()


# -- Ban asks for the reason in a Wagtail dialog, not prompt() -----------------------


def test_ban_reason_is_asked_in_a_wagtail_dialog(site, browser):
    pk = live_session(site, "Ban dialog")
    site.run(
        f"""
        from wagtail_live import chat
        chat.send_message(LiveSession.objects.get(pk={pk}), User.objects.get(username="fan"),
                          "buy my stuff", broadcast=False)
        """
    )
    for viewport, name in [(PHONE, "phone"), (DESKTOP, "desktop")]:
        page = admin_page(site, browser, viewport)
        page.goto(f"{site.url}/admin/live/{pk}/dashboard/")
        message = page.locator(".live-chat__message", has_text="buy my stuff")
        ban = message.get_by_role("button", name="Ban")
        ban.wait_for(timeout=20000)
        ban.click()
        form = page.locator("[data-live-ban-form]")
        form.wait_for(state="visible")
        assert form.locator("[data-live-ban-name]").inner_text() == "fan"
        assert page.locator("#live-ban-dialog").get_attribute("data-controller") == "w-dialog"
        form.locator("textarea").fill("Spam links")
        screenshot(page, f"ban-dialog-{name}")
        if name == "phone":
            form.get_by_role("button", name="Cancel").click()
            form.wait_for(state="hidden")
            page.context.close()
            continue
        form.locator("[data-live-ban-confirm]").click()
        form.wait_for(state="hidden")
        message.wait_for(state="detached", timeout=10000)  # a ban removes their messages
        assert page.native_dialogs == []
        page.context.close()
    reasons = site.run(
        """
        from wagtail_live.models import ChatBan
        result = list(ChatBan.objects.values_list("reason", flat=True))
        """
    )
    assert reasons == ["Spam links"]  # exactly one ban: the phone's Cancel banned nobody


# -- the analytics chart's time axis ----------------------------------------------


def test_analytics_chart_ticks_are_distinct_times(site, browser):
    pk = site.run(
        """
        from datetime import timedelta
        from django.utils import timezone
        from tests.utils import make_session
        from wagtail_live.models import ViewerSample
        session = make_session("Short show", owner=User.objects.get(username="admin"))
        session.start()
        session.end()
        start = timezone.now() - timedelta(minutes=10)
        ViewerSample.objects.bulk_create(
            ViewerSample(session=session, at=start + timedelta(seconds=10 * i), viewers=i % 7)
            for i in range(25)  # four minutes of samples, one each 10 s
        )
        result = session.pk
        """
    )
    for viewport, name in [(DESKTOP, "desktop"), (PHONE, "phone")]:
        page = admin_page(site, browser, viewport)
        page.goto(f"{site.url}/admin/live/{pk}/analytics/")
        assert "Short show" in page.inner_text("#header-title")
        page.wait_for_selector("[data-live-viewer-chart][data-chart-ready='25']")
        labels = page.evaluate(
            """Chart.getChart(document.querySelector('[data-live-viewer-chart]'))
                 .scales.x.ticks.map((tick) => tick.label)"""
        )
        assert len(labels) >= 3, labels
        assert len(set(labels)) == len(labels), labels
        screenshot(page, f"analytics-{name}")
        page.context.close()
