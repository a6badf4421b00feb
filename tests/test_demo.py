"""`make demo` as a new user runs it: the demo command's own processes, checked in Chromium.

The browser test starts ``example_site/manage.py demo`` itself (uvicorn on
``example_site.asgi:application``, Huey, the RTMP listener and the synthetic stream) on free
ports and a fresh data folder, so static files are collected and served exactly as a fresh
clone's ``make demo`` does it: no test-only ASGI wrapper anywhere.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client

from tests.utils import chromium_path, launch_chromium, make_session, require

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_site" / "manage.py"
DEMO_TITLE = "Demo stream"
UPCOMING_TITLE = "Science fair Q&A"


def demo_command():
    from example_site.home.management.commands.demo import Command

    return Command()


# -- the admin login and the demo sessions' host (no processes) ----------------------------


@pytest.fixture
def data_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_restarting_the_demo_keeps_logged_in_admins_logged_in(data_dir):
    user, password = demo_command().ensure_admin()
    client = Client()
    assert client.login(username=user.username, password=password)
    assert client.get("/admin/").status_code == 200

    again, same_password = demo_command().ensure_admin()
    assert (again.pk, same_password) == (user.pk, password)
    # The session made before the restart still opens the admin (no redirect to the login).
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_demo_resets_a_changed_admin_password_to_the_printed_one(data_dir):
    user, password = demo_command().ensure_admin()
    user.set_password("something else")
    user.save()
    again, printed = demo_command().ensure_admin()
    assert printed == password
    assert again.check_password(password)
    assert Client().login(username="admin", password=password)


@pytest.mark.django_db
def test_demo_sessions_have_the_admin_as_host(data_dir):
    from wagtail_live.models import LiveSession

    admin, _password = demo_command().ensure_admin()
    demo = demo_command().ensure_demo_content(admin)
    assert demo.title == DEMO_TITLE
    assert demo.owner == admin
    assert LiveSession.objects.get(title=UPCOMING_TITLE).owner == admin


@pytest.mark.django_db
def test_demo_sessions_from_an_older_demo_get_the_admin_as_host(data_dir):
    """A `.demo` folder from before sessions had a host: its sessions get one at the next start."""
    from wagtail_live.models import LiveSession

    old_demo = make_session(DEMO_TITLE)
    old_upcoming = make_session(UPCOMING_TITLE)
    someone_elses = make_session("Not a demo session")
    admin, _password = demo_command().ensure_admin()
    assert demo_command().ensure_demo_content(admin) == old_demo
    assert LiveSession.objects.filter(title=DEMO_TITLE).count() == 1
    old_demo.refresh_from_db()
    old_upcoming.refresh_from_db()
    someone_elses.refresh_from_db()
    assert old_demo.owner == admin
    assert old_upcoming.owner == admin
    assert someone_elses.owner is None


# -- the demo's own processes in Chromium ----------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoProcess:
    """``manage.py demo`` in its own process group, its output collected as it comes."""

    def __init__(self, data_dir):
        self.port = free_port()
        self.rtmp_port = free_port()
        env = {
            **os.environ,
            "EXAMPLE_SITE_DATA": str(data_dir),
            "PYTHONUNBUFFERED": "1",  # the banner must arrive while the demo runs
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py picks the example site's own
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(MANAGE),
                "demo",
                "--port",
                str(self.port),
                "--rtmp-port",
                str(self.rtmp_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # one group: daphne, Huey, RTMP, the stream and ffmpeg
        )
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self):
        return "".join(self.lines)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_for_banner(self, timeout):
        """The printed login and the demo session's Go Live path, once the demo says it runs."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(
            r"\(user (\S+), password (\S+)\).*?Go Live:\s+http://localhost:\d+(\S+)", re.S
        )
        while time.monotonic() < deadline:
            found = pattern.search(self.output)
            if found:
                return found.groups()
            assert self.process.poll() is None, f"demo exited early:\n{self.output[-4000:]}"
            time.sleep(0.5)
        pytest.fail(f"no login printed within {timeout} s:\n{self.output[-4000:]}")

    def wait_for_http(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            assert self.process.poll() is None, f"demo exited early:\n{self.output[-4000:]}"
            time.sleep(0.5)
        pytest.fail(f"the site did not answer within {timeout} s:\n{self.output[-4000:]}")

    def stop(self):
        """SIGTERM to the whole group (the demo stops its children), then SIGKILL what is left."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


@pytest.fixture
def demo(tmp_path):
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright package")
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    process = DemoProcess(tmp_path / "demo-data")
    try:
        yield process
    finally:
        process.stop()


class RequestLog:
    """Every request a page makes, and those that failed or answered outside 2xx/3xx."""

    def __init__(self, page):
        self.failures = []
        self.seen = []
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        # Requests Playwright does not report as events (the browser's own /favicon.ico)
        # still show in the console, as the user would see them there.
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Failed to load resource" in message.text:
            self.failures.append(f"console: {message.text} ({message.location.get('url')})")

    def _failed(self, request):
        # An aborted request (hls.js cancelling a playlist refresh on navigation) is not a
        # missing file; everything else is.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.failures.append(f"{request.resource_type} {request.url}: {request.failure}")

    def _response(self, response):
        request = response.request
        self.seen.append((request.resource_type, response.status, request.url))
        if response.status >= 400:
            self.failures.append(f"{request.resource_type} {request.url}: {response.status}")

    def urls(self, resource_type):
        return [url for kind, _status, url in self.seen if kind == resource_type]


MEAN_BRIGHTNESS = """(video) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 36;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0, 64, 36);
    const pixels = context.getImageData(0, 0, 64, 36).data;
    let sum = 0;
    for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
    return sum / (pixels.length / 4) / 3;
}"""

WAGTAIL_STYLED = """() => {
    const sheets = [...document.styleSheets].filter(
        (sheet) => sheet.href && sheet.href.includes("/static/wagtailadmin/css/"));
    const root = getComputedStyle(document.documentElement);
    return {
        sheets: sheets.map((sheet) => [sheet.href, sheet.cssRules.length]),
        // A custom property only Wagtail's admin CSS defines.
        primary: root.getPropertyValue("--w-color-primary").trim(),
        buttonBackground: getComputedStyle(
            document.querySelector("button[type=submit]")).backgroundColor,
    };
}"""


@pytest.mark.browser
@pytest.mark.services
@pytest.mark.slow
def test_make_demo_serves_a_styled_site_whose_player_plays(demo, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    # Migrations, collectstatic and the admin login on a two-core machine that runs other tests.
    username, password, go_live_path = demo.wait_for_banner(timeout=420)
    demo.wait_for_http(timeout=300)
    screenshots = Path(os.environ.get("WAGTAIL_LIVE_DEMO_SCREENSHOTS") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            # The home page: every file it loads answers, and the live player plays.
            home = context.new_page()
            home_requests = RequestLog(home)
            assert home.goto(demo.url + "/").status == 200
            video = "document.querySelector('[data-live-video]')"
            # The synthetic stream goes live within seconds of the demo starting.
            home.wait_for_function(
                f"{video} && {video}.currentTime > 0 && !{video}.paused", timeout=120000
            )
            first = home.evaluate(f"{video}.currentTime")
            home.wait_for_function(f"{video}.currentTime > {first} + 2", timeout=30000)
            # Frames are decoded and painted, and they are the test pattern, not black.
            assert home.evaluate(f"{video}.getVideoPlaybackQuality().totalVideoFrames") > 0
            assert home.evaluate(MEAN_BRIGHTNESS, home.query_selector("[data-live-video]")) > 40
            home.screenshot(path=str(screenshots / "demo-home.png"))
            scripts = home_requests.urls("script")
            assert any("/static/wagtail_live/vendor/hls.min.js" in url for url in scripts), scripts
            assert home_requests.urls("stylesheet"), "the home page loads no stylesheet"
            assert home_requests.failures == [], home_requests.failures
            home.close()

            # The admin login: styled by Wagtail's own CSS, every file answering.
            login = context.new_page()
            login_requests = RequestLog(login)
            assert login.goto(demo.url + "/admin/login/").status == 200
            login.wait_for_load_state("load")
            styled = login.evaluate(WAGTAIL_STYLED)
            login.screenshot(path=str(screenshots / "demo-admin-login.png"))
            assert styled["sheets"] and all(rules > 0 for _href, rules in styled["sheets"]), styled
            assert styled["primary"], styled
            # Chromium's own button face is rgb(239, 239, 239); Wagtail paints it its colour.
            assert styled["buttonBackground"] not in ("rgb(239, 239, 239)", "rgba(0, 0, 0, 0)")
            assert login_requests.urls("stylesheet") and login_requests.urls("script")
            assert login_requests.failures == [], login_requests.failures

            # Logging in with the printed login, the demo session's Go Live screen opens.
            login.fill("input[name=username]", username)
            login.fill("input[name=password]", password)
            login.click("button[type=submit]")
            login.wait_for_url(re.compile(r"/admin/$"), timeout=30000)
            response = login.goto(demo.url + go_live_path)
            assert response.status == 200
            expect(login.get_by_role("heading", name=DEMO_TITLE, exact=True)).to_be_visible(
                timeout=15000
            )
            login.screenshot(path=str(screenshots / "demo-go-live.png"))
            assert login_requests.failures == [], login_requests.failures
        finally:
            browser.close()
    assert demo.process.poll() is None, f"the demo stopped:\n{demo.output[-4000:]}"
