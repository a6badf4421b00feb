"""In Chromium: the live player keeps playing across grant renewals, through the embedded verifier.

A real daphne (tests/live_site.py, with ``HLSVerifier`` in asgi.py) with grants of ~10 s;
a real ffmpeg writes live HLS into the session's folder in real time. The player must
renew its grant through status.json and fetch later segments under the new grant, every
request answered 200, and the video must advance past the first grant's life.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.ingest.streams import lavfi_args
from tests.live_site import LiveSite, migrated_database
from tests.utils import chromium_path, launch_chromium, require
from wagtail_live.ffmpeg import ffmpeg_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE = """<!doctype html><html><body>
<section class="wagtail-live-player" data-live-player data-status="live"
  data-status-url="/live/sessions/{pk}/status.json" data-hlsjs-url="/static/wagtail_live/vendor/hls.min.js"
  data-playback-url="{playback_url}">
  <div data-live-state="scheduled" hidden></div>
  <div data-live-state="live"><video data-live-video controls muted autoplay playsinline></video></div>
  <div data-live-state="ended" hidden></div>
  <p data-live-notice></p>
  <div hidden data-live-player-text><script type="application/json">{text}</script></div>
</section><script type="module" src="/static/wagtail_live/js/player.js"></script></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("grant-renewal")
    # Grants of 8-10 s: the player renews every 5 s (its shortest wait).
    settings = {"GRANT_SECONDS": 8, "GRANT_WINDOW_SECONDS": 2}
    site = LiveSite(directory, migrated_database(directory), settings)
    site.session_pk, site.hls_dir = site.run(
        """
        from tests.utils import make_editor, make_session
        host = make_editor("host")
        session = make_session("Renewal", owner=host, privacy=LiveSession.Privacy.PRIVATE)
        session.start()
        result = [session.pk, str(session.media_dir / "hls")]
        """
    )
    site.start()
    yield site
    site.stop()


def test_the_player_renews_its_grant_and_keeps_playing(site):
    from playwright.sync_api import sync_playwright

    hls = Path(site.hls_dir)
    hls.mkdir(parents=True, exist_ok=True)
    encoder = subprocess.Popen(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *lavfi_args(40),
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "delete_segments",
         str(hls / "index.m3u8")],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (hls / "index.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        cookie = site.login_cookie("host").split("=", 1)[1]
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
            try:
                context = browser.new_context()
                context.add_cookies(
                    [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
                )
                page = context.new_page()
                answers = []
                page.on(
                    "response",
                    lambda r: (
                        answers.append((r.url, r.status)) if "/live/delivery/" in r.url else None
                    ),
                )
                status = json.loads(
                    page.request.get(
                        f"{site.url}/live/sessions/{site.session_pk}/status.json"
                    ).text()
                )
                first = status["grant"]
                text = json.dumps(
                    {"playbackError": "error", "startsIn": "", "startingNow": "", "days": ""}
                )
                html = PAGE.format(
                    pk=site.session_pk, playback_url=first["playlist_url"], text=text
                )
                page.route(
                    f"{site.url}/player.html",
                    lambda route: route.fulfill(body=html, content_type="text/html"),
                )
                page.goto(f"{site.url}/player.html")
                page.wait_for_function(
                    "document.querySelector('video').currentTime > 1", timeout=20000
                )
                started = page.evaluate("document.querySelector('video').currentTime")
                # Past the first grant's life.
                page.wait_for_timeout(max(0, (first["expires"] - time.time()) * 1000) + 6000)
                played = page.evaluate("document.querySelector('video').currentTime")
            finally:
                browser.close()
    finally:
        encoder.kill()
        encoder.wait()
    tokens = {url.split("/")[6] for url, _status in answers}
    assert len(tokens) >= 2, answers  # renewed, and later requests carried the new grant
    assert all(code == 200 for _url, code in answers), [a for a in answers if a[1] != 200]
    later = [
        url for url, _ in answers if url.split("/")[6] != f"{first['expires']}-{first['signature']}"
    ]
    assert any(".ts" in url for url in later), later
    assert played - started > 8, (started, played)
