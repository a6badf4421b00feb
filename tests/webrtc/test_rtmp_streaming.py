"""Sub-second playback of an RTMP-ingested session: ffmpeg → Janus's Streaming plugin → WebRTC.

The embedded RTMP listener (``manage.py live_rtmp``), daphne, Janus, the ffmpeg encoder
and the aiortc viewer all run inside the test's network namespace (tests/webrtc/netns.py).
"""

import re
import subprocess
import sys

import pytest

from tests.ingest.streams import lavfi_args, probe
from tests.live_site import ROOT
from tests.webrtc.netns import janus_site
from tests.webrtc.test_whip_janus import (
    SETUP,
    live_dir,
    new_session_with_key,
    state,
    steps,
    viewer,
    visitors,
    wait_until,
)

pytestmark = pytest.mark.slow

LISTENING = re.compile(r"RTMP listener on rtmp://[\d.]+:(\d+)/")


class Listener:
    """``manage.py live_rtmp`` in ``netns`` with ``site``'s settings, on a port it picks."""

    def __init__(self, netns, site):
        self.log_path = site.directory / "rtmp.log"
        env = {**site.env, "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "django",
            "live_rtmp",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                netns.command(command),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        match = wait_until(lambda: LISTENING.search(self.log()), timeout=60, interval=0.2)
        self.port = int(match.group(1))

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rtmp-webrtc")
    with janus_site(directory, SETUP, RECONNECT_GRACE=2, WEBRTC_MAX_VIEWERS=1) as parts:
        netns, janus, site = parts
        listener = Listener(netns, site)
        try:
            yield netns, janus, site, listener
        finally:
            listener.stop()


def encoder(netns, listener, key, seconds):
    """ffmpeg publishing a test pattern (H.264 + AAC, as OBS) to the listener, in the netns."""
    from wagtail_live.ffmpeg import ffmpeg_binary

    url = f"rtmp://127.0.0.1:{listener.port}/live/{key}"
    argv = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    argv += [*lavfi_args(seconds, size="640x360"), "-f", "flv", url]
    return subprocess.Popen(
        netns.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def watch_url(site, pk):
    token = site.run(f"from wagtail_live import grants\nresult = grants.issue({pk}).token")
    return f"{site.url}/live/webrtc/{pk}/{token}/"


def finished(process, timeout=60):
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_an_rtmp_session_plays_over_webrtc_while_hls_and_the_recording_go_on(stack):
    netns, janus, site, listener = stack
    pk, key = new_session_with_key(site)
    url = watch_url(site, pk)
    alice, bob = visitors(site)
    publishing = encoder(netns, listener, key, seconds=25)
    try:
        wait_until(lambda: state(site, pk)["status"] == "live", timeout=60)
        watching = viewer(netns, site, url, "--frames", "30", "--hold", "2", "--visitor", alice)
        first = watching.stdout.readline()
        assert '"status": 201' in first, (first, listener.log()[-2000:])
        # The same cap counts people: a second person gets HLS.
        done, _err = steps(viewer(netns, site, url, "--visitor", bob))
        assert done["watch"]["status"] == 503 and done["watch"]["fallback"] == "hls"
        done, err = steps(watching)
        assert done["answer"]["status"] == 204, err
        assert "frames" in done, (err[-2000:], janus.log()[-2000:])
        assert done["frames"]["count"] == 30 and done["frames"]["width"] == 640
        assert done["keepalive"]["status"] == 204 and done["delete"]["status"] == 200
        playlist = live_dir(site, pk) / "hls" / "index.m3u8"
        assert playlist.read_text().count(".ts") >= 2
    finally:
        publishing.kill()
        publishing.wait()
    # The encoder gone, the grace over: the session ends, its mountpoint goes with it.
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s, timeout=90)
    assert result["status"] == "ended"
    codecs, duration = probe(live_dir(site, pk) / "recording.mpegts")
    assert codecs == ["aac", "h264"]  # the recording holds no Opus: that went to Janus only
    assert duration > 3
    done, _err = steps(viewer(netns, site, url, "--visitor", alice))
    assert done["watch"]["status"] == 404 and done["watch"]["fallback"] == "hls"
    # The mountpoint's pin and secret, like Janus's own secrets, never reach a log.
    assert janus.api_secret not in site.log() and janus.admin_key not in listener.log()
    assert "pin" not in first


def test_with_janus_down_hls_and_the_recording_go_on_and_viewers_are_sent_to_hls(stack):
    netns, janus, site, listener = stack
    janus.stop()  # the last test of the module: Janus stays down
    pk, key = new_session_with_key(site)
    url = watch_url(site, pk)
    publishing = encoder(netns, listener, key, seconds=8)
    try:
        wait_until(lambda: state(site, pk)["status"] == "live", timeout=60)
        playlist = live_dir(site, pk) / "hls" / "index.m3u8"
        wait_until(lambda: playlist.exists() and playlist.read_text().count(".ts") >= 2)
        done, _err = steps(viewer(netns, site, url))
        assert done["watch"]["status"] == 503 and done["watch"]["fallback"] == "hls"
        segment = playlist.parent / re.findall(r"^(seg-.*\.ts)$", playlist.read_text(), re.M)[-1]
        assert probe(segment)[0] == ["aac", "h264"]
    finally:
        finished(publishing)
    result = wait_until(lambda: (s := state(site, pk))["pages"] and s, timeout=90)
    assert result["status"] == "ended"
    codecs, duration = probe(live_dir(site, pk) / "recording.mpegts")
    assert codecs == ["aac", "h264"] and duration > 6
