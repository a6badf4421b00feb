"""In Chromium: the live player (player.js + hls.js) with HLS a real ffmpeg encoder wrote.

A plain static server stands in for the site (the player only needs its markup, a status
URL and the playlist): an audio-only live shows the audio-only state, not a black box, and
with 10 s keyframes (10 s segments) the player starts about one segment behind the live edge,
not two or three whole segments.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from tests.ingest.streams import lavfi_args
from tests.utils import chromium_path, launch_chromium, require
from wagtail_live.ffmpeg import ffmpeg_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATIC = os.path.join(os.path.dirname(__file__), "..", "..", "wagtail_live", "static")

PAGE = """<!doctype html><html><head><link rel="stylesheet" href="/static/wagtail_live/css/player.css"></head>
<body><section class="wagtail-live-player" data-live-player data-status="live"
  data-status-url="/status.json" data-hlsjs-url="/static/wagtail_live/vendor/hls.min.js"
  data-playback-url="/{name}/index.m3u8">
  <div data-live-state="scheduled" hidden></div>
  <div data-live-state="live">
    <p class="wagtail-live-player__audio-only" data-live-audio-only hidden>Audio only</p>
    <video data-live-video controls muted autoplay playsinline preload="none"></video>
  </div>
  <div data-live-state="ended" hidden></div>
  <p data-live-notice></p>
  <div hidden data-live-player-text><script type="application/json">{text}</script></div>
</section><script type="module" src="/static/wagtail_live/js/player.js"></script></body></html>
"""


def write_live_hls(directory, seconds, **options):
    """A live playlist (no ENDLIST) of ``seconds`` of media, segments cut at keyframes."""
    directory.mkdir()
    args = lavfi_args(seconds, realtime=False, **options)
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args,
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_flags", "omit_endlist",
         str(directory / "index.m3u8")],
        check=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("player")
    shutil.copytree(STATIC, root / "static")
    write_live_hls(root / "audio", 6, video=None)
    write_live_hls(root / "gop10", 30, keyframe_seconds=10)
    (root / "status.json").write_text(json.dumps({"status": "live"}))
    text = json.dumps({"playbackError": "error", "startsIn": "", "startingNow": "", "days": ""})
    for name in ("audio", "gop10"):
        (root / f"{name}.html").write_text(PAGE.format(name=name, text=text))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
        yield chromium
        chromium.close()


def test_an_audio_only_live_shows_the_audio_only_state(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/audio.html")
    supported = page.evaluate("MediaSource.isTypeSupported('audio/mp4; codecs=\"mp4a.40.2\"')")
    require(supported, "a Chromium that plays AAC")
    page.wait_for_selector(".wagtail-live-player.is-audio-only", timeout=30_000)
    assert page.is_visible("[data-live-audio-only]")
    height = page.evaluate("document.querySelector('video').getBoundingClientRect().height")
    assert height < 100  # the controls, not a 16:9 black box
    page.close()


def test_with_10_s_keyframes_the_player_starts_about_one_segment_from_the_live_edge(
    server, browser
):
    page = browser.new_page()
    page.goto(f"{server}/gop10.html")
    supported = page.evaluate("MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42E01E\"')")
    require(supported, "a Chromium that plays H.264")
    page.wait_for_function("document.querySelector('video').currentTime > 0", timeout=60_000)
    position = page.evaluate("document.querySelector('video').currentTime")
    # 30 s listed in 10 s segments: two segments' worth (hls.js's count) would start at ~10 s,
    # one segment plus 1.5 s starts at ~18.5 s.
    assert 16 <= position <= 22, position
    page.close()
