"""Glass-to-glass latency of the browser path: camera in the host's page -> viewer's screen.

The host's "camera" is a canvas whose every frame carries the wall clock twice:
as text for people and as a 42-bit barcode for the machine. It goes through the
whole real path: MediaRecorder (H.264) -> ingest websocket -> daphne -> ffmpeg
(copy) -> 1 s HLS segments -> hls.js on the public page. The viewer page reads
the barcode off the frame it is showing and subtracts it from its own clock
(same machine, same clock). Goal: median <= 4 s.

Run:  .venv/bin/python benchmarks/glass_to_glass.py [--seconds 30]
Needs Debian's chromium (``apt-get install chromium``).

``--webrtc`` measures the WebRTC tier instead (docs/ingest-backends.md, Janus): the host's
page publishes the same clock with the Go Live screen's low-latency switch (WHIP into a
real Janus), one viewer watches over WebRTC and a second one, over the WebRTC audience cap
(1 here), over HLS of the same stream, in the same run. Everything runs in a network
namespace the benchmark makes (tests/webrtc/netns.py; needs root, ``ip``, ``janus``).
Goal: WebRTC median <= 0.5 s. It also reports Janus's CPU with the publisher alone and
with the WebRTC viewer, whose difference is the CPU one WebRTC viewer costs.

``--webrtc --relay`` measures the Streaming path of RTMP and browser sessions instead: the
host's page publishes without the low-latency switch (websocket -> daphne -> ffmpeg), and
ffmpeg's RTP relay feeds the session's Janus Streaming mountpoint, which the WebRTC viewer
watches. It is the same ffmpeg relay an RTMP encoder's media takes (ingest/base.py); the
browser is the source because it can paint a machine-readable clock into every frame.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.test_go_live import CHROMIUM_ARGS  # noqa: E402
from tests.live_site import LiveSite, migrated_database  # noqa: E402
from tests.utils import chromium_path  # noqa: E402

BITS = 42  # Date.now() in ms fits in 41 bits until the year 2039

# Replaces the camera with a canvas showing the clock; runs before the page's scripts.
CLOCK_CAMERA = """
(() => {
  const BITS = __BITS__, W = 1280, H = 720, CELL = W / BITS;
  const canvas = document.createElement("canvas");
  canvas.width = W; canvas.height = H;
  const g = canvas.getContext("2d");
  function draw() {
    const now = Date.now();
    g.fillStyle = "#336"; g.fillRect(0, 0, W, H);
    for (let i = 0; i < BITS; i++) {
      const bit = Math.floor(now / 2 ** (BITS - 1 - i)) % 2;
      g.fillStyle = bit ? "#fff" : "#000";
      g.fillRect(i * CELL, 0, CELL, 120);
    }
    g.fillStyle = "#fff"; g.font = "bold 96px sans-serif";
    g.fillText(new Date(now).toISOString().slice(11, 23), 120, 400);
  }
  setInterval(draw, 1000 / 30); draw();
  navigator.mediaDevices.getUserMedia = async () => {
    const stream = canvas.captureStream(30);
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const out = audio.createMediaStreamDestination();
    tone.connect(out); tone.start();
    stream.addTrack(out.stream.getAudioTracks()[0]);
    return stream;
  };
})();
""".replace("__BITS__", str(BITS))

# Reads the barcode off the frame the viewer's <video> shows; returns latency in ms or null.
READ_LATENCY = """
() => {
  const video = document.querySelector("[data-live-video]");
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(video, 0, 0);
  const now = Date.now();
  const cell = canvas.width / __BITS__;
  let value = 0;
  for (let i = 0; i < __BITS__; i++) {
    const [r, gr, b] = g.getImageData(Math.floor((i + 0.5) * cell), 60, 1, 1).data;
    value = value * 2 + ((r + gr + b) / 3 > 128 ? 1 : 0);
  }
  const latency = now - value;
  return latency >= 0 && latency < 60000 ? latency : null;
}
""".replace("__BITS__", str(BITS))

SETUP = """
from tests.utils import make_editor, make_session
from example_site.home.models import HomePage
host = make_editor("host", "go_live")
session = make_session("Glass to glass", owner=host)
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {"session": session, "show_chat": False})]
page.save_revision().publish()
result = session.pk
"""


def measure(seconds):
    """Stream for ``seconds`` and return the latency samples in seconds."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        site = LiveSite(directory, migrated_database(directory))
        pk = site.run(SETUP)
        cookie = site.login_cookie("host").split("=", 1)[1]
        site.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
                )
                host = browser.new_context()
                host.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
                host.add_init_script(CLOCK_CAMERA)
                host_page = host.new_page()
                host_page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                host_page.wait_for_function(
                    "document.querySelector('[data-camera-preview]').videoWidth > 0"
                )
                host_page.click("[data-live-go]")
                host_page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=20000)

                viewer_page = browser.new_context().new_page()
                viewer_page.goto(site.url + "/")
                viewer_page.wait_for_function(
                    "document.querySelector('[data-live-video]')?.currentTime > 0",
                    timeout=60000,
                )
                time.sleep(3)  # let hls.js settle at its target distance from the live edge
                samples = []
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    latency = viewer_page.evaluate(READ_LATENCY)
                    if latency is not None:
                        samples.append(latency / 1000)
                    time.sleep(0.5)
                host_page.click("[data-live-end]")
                time.sleep(2)
                browser.close()
        finally:
            site.stop()
    return samples


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def janus_cpu_percent(pid, seconds):
    start = cpu_seconds(pid)
    time.sleep(seconds)
    return round(100 * (cpu_seconds(pid) - start) / seconds, 2)


def sample(page, seconds):
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latency = page.evaluate(READ_LATENCY)
        if latency is not None:
            samples.append(latency / 1000)
        time.sleep(0.25)
    return samples


def measure_webrtc(seconds, relay=False):
    """WHIP in, one WebRTC and one HLS viewer; ``(webrtc samples, hls samples, janus cpu)``.

    ``relay=True``: the websocket path in, viewers through the Streaming mountpoint.
    """
    import django
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()  # the Janus config writer is the app's own
    from tests.webrtc.netns import Janus, Netns, site_in

    with tempfile.TemporaryDirectory() as directory:
        netns = Netns()
        try:
            janus = Janus(netns, Path(directory) / "janus")
        except BaseException:
            netns.close()
            raise
        site = LiveSite(
            directory,
            migrated_database(directory),
            {
                "WEBRTC": "janus",
                "JANUS_URL": janus.url,
                "JANUS_API_SECRET": janus.api_secret,
                "JANUS_ADMIN_KEY": janus.admin_key,
                "WEBRTC_MAX_VIEWERS": 1,
            },
        )
        site_in(netns, site)
        pk = site.run(SETUP + "\nsession.issue_stream_key()\n")
        # Two people (the WebRTC cap counts people, by their signed visitor id).
        people = site.run(
            "from wagtail_live.visitors import new_visitor_cookie\n"
            "result = [new_visitor_cookie(), new_visitor_cookie()]"
        )
        cookie = site.login_cookie("host").split("=", 1)[1]
        site.start()
        wrapper = Path(directory) / "chromium-in-netns"
        wrapper.write_text(
            "#!/bin/sh\nexec " + " ".join(netns.command([chromium_path()])) + ' "$@"\n'
        )
        wrapper.chmod(0o755)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(wrapper),
                    args=[*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection"],
                    headless=True,
                )
                host = browser.new_context()
                host.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])
                host.add_init_script(CLOCK_CAMERA)
                host_page = host.new_page()
                host_page.goto(f"{site.url}/admin/live/{pk}/go-live/")
                host_page.wait_for_function(
                    "document.querySelector('[data-camera-preview]').videoWidth > 0"
                )
                if not relay:
                    host_page.check("[data-live-low-latency]")
                host_page.click("[data-live-go]")
                host_page.wait_for_selector("[data-live-badge]:not([hidden])", timeout=30000)
                time.sleep(3)
                cpu = {"publisher_only_percent": janus_cpu_percent(janus.process.pid, 5)}
                video = "document.querySelector('[data-live-video]')"
                viewers = []
                for person in people:
                    context = browser.new_context()
                    context.add_cookies(
                        [{"name": "wagtail_live_visitor", "value": person, "url": site.url}]
                    )
                    viewers.append(context)
                webrtc_page = viewers[0].new_page()
                webrtc_page.goto(site.url + "/")
                webrtc_page.wait_for_function(
                    f"{video}?.dataset.transport === 'webrtc' && {video}.currentTime > 0",
                    timeout=60000,
                )
                hls_page = viewers[1].new_page()
                hls_page.goto(site.url + "/")
                hls_page.wait_for_function(f"{video}?.currentTime > 0", timeout=60000)
                time.sleep(3)  # let hls.js settle at its target distance from the live edge
                start = cpu_seconds(janus.process.pid)
                began = time.monotonic()
                webrtc, hls = [], []
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    webrtc += sample(webrtc_page, 1)
                    hls += sample(hls_page, 1)
                elapsed = time.monotonic() - began
                cpu["with_one_webrtc_viewer_percent"] = round(
                    100 * (cpu_seconds(janus.process.pid) - start) / elapsed, 2
                )
                cpu["per_webrtc_viewer_percent"] = round(
                    cpu["with_one_webrtc_viewer_percent"] - cpu["publisher_only_percent"], 2
                )
                browser.close()
        finally:
            site.stop()
            janus.stop()
            netns.close()
    return webrtc, hls, cpu


def summary(samples, goal):
    samples = sorted(samples)
    result = {
        "samples": len(samples),
        "median_s": round(statistics.median(samples), 3),
        "p90_s": round(samples[int(len(samples) * 0.9) - 1], 3),
        "min_s": round(samples[0], 3),
        "max_s": round(samples[-1], 3),
        "goal_s": goal,
    }
    result["meets_goal"] = result["median_s"] <= goal
    return result


def machine():
    """A one-line description of where this ran."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="how long to sample")
    parser.add_argument(
        "--webrtc", action="store_true", help="WHIP in, WebRTC and HLS viewers (Janus, a netns)"
    )
    parser.add_argument(
        "--relay",
        action="store_true",
        help="with --webrtc: websocket in, ffmpeg's RTP relay to a Janus Streaming mountpoint",
    )
    args = parser.parse_args()
    if args.webrtc:
        webrtc, hls, cpu = measure_webrtc(args.seconds, relay=args.relay)
        if not webrtc or not hls:
            sys.exit("no frame could be read: is the stream playing?")
        result = {
            "webrtc": summary(webrtc, 0.5),
            "hls": summary(hls, 4.0),
            "janus_cpu": cpu,
            "path": "websocket -> ffmpeg -> Janus Streaming" if args.relay else "WHIP -> VideoRoom",
            "machine": machine(),
        }
        print(json.dumps(result, indent=2))
        return
    samples = measure(args.seconds)
    if not samples:
        sys.exit("no frame could be read: is the stream playing?")
    samples.sort()
    result = {
        "samples": len(samples),
        "median_s": round(statistics.median(samples), 2),
        "p90_s": round(samples[int(len(samples) * 0.9) - 1], 2),
        "min_s": round(samples[0], 2),
        "max_s": round(samples[-1], 2),
        "goal_s": 4.0,
        "machine": machine(),
    }
    result["meets_goal"] = result["median_s"] <= result["goal_s"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
