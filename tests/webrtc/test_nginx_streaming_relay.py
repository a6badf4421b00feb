"""WebRTC playback of an nginx-rtmp session: nginx's exec_push → live_janus_relay → Janus.

A real nginx with the RTMP module, configured by ``live_nginx_config`` (which adds the relay
because the site has ``WEBRTC`` set), daphne, Janus, the ffmpeg encoder and the aiortc viewer
all run inside the test's network namespace (tests/webrtc/netns.py). nginx starts the relay
itself, with the environment its ``env`` lines pass on, as in production.
"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.ingest.streams import lavfi_args
from tests.live_site import ROOT
from tests.utils import require
from tests.webrtc.netns import ADDRESSES, Janus, janus_site
from tests.webrtc.test_rtmp_streaming import watch_url
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

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Inside the namespace nothing else listens: fixed ports cannot collide (as netns.JANUS_PORT).
RTMP_PORT, CALLBACK_PORT = 1935, 1936
SECRET = "a-test-secret-of-some-length"
# What tests/live_site_settings.py reads from the environment: nginx must pass it on.
SITE_ENVIRONMENT = ("WAGTAIL_LIVE_SITE_DB", "WAGTAIL_LIVE_TEST_MEDIA", "WAGTAIL_LIVE_SITE_SETTINGS")


class Nginx:
    """nginx in ``netns`` with the ``--full`` config ``live_nginx_config`` prints for ``site``."""

    def __init__(self, netns, site, prefix):
        self.prefix = prefix
        prefix.mkdir()
        config = subprocess.run(
            [sys.executable, "-m", "django", "live_nginx_config", "--full",
             f"--site-url={site.url}", f"--rtmp-port={RTMP_PORT}", f"--prefix={prefix}",
             f"--module-path={MODULE}", f"--callback-port={CALLBACK_PORT}",
             *(f"--relay-env={name}" for name in SITE_ENVIRONMENT)],
            cwd=ROOT, env=site.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        self.config = config
        (prefix / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            netns.command(
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
            ),
            env=site.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        probe = netns.command(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{RTMP_PORT}"])
        wait_until(
            lambda: (
                self.process.poll() is not None
                or subprocess.run(probe, capture_output=True).returncode == 0
            ),
            timeout=15,
            interval=0.1,
        )
        assert self.process.poll() is None, self.process.stderr.read().decode()

    def relay_log(self):
        path = self.prefix / "janus-relay.log"
        return path.read_text() if path.exists() else ""

    def error_log(self):
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require(os.path.exists(NGINX) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    directory = tmp_path_factory.mktemp("nginx-webrtc")
    settings = {"RTMP": "nginx", "NGINX_SECRET": SECRET, "RECONNECT_GRACE": 0}
    with janus_site(directory, SETUP, **settings) as (netns, janus, site):
        (site.media_root.parent / "live-private" / "uploads" / "live").mkdir(parents=True)
        nginx = Nginx(netns, site, directory / "nginx")
        try:
            yield netns, janus, site, nginx
        finally:
            nginx.stop()


def encoder(netns, pk, key, seconds, *options):
    """ffmpeg publishing to nginx as OBS does (*Stream key* ``<pk>/hls?key=<key>``), in the netns.

    ``options`` are more encoder options (``-bf 2``: B-frames, as OBS's defaults send).
    """
    from wagtail_live.ffmpeg import ffmpeg_binary

    argv = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    argv += [*lavfi_args(seconds, size="640x360"), *options]
    argv += ["-rtmp_playpath", f"{pk}/hls?key={key}"]
    argv += ["-f", "flv", f"rtmp://127.0.0.1:{RTMP_PORT}/live"]
    return subprocess.Popen(
        netns.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def plays(netns, address, pk):
    """ffmpeg's exit status playing session ``pk``'s stream from nginx at ``address`` for 1 s."""
    from wagtail_live.ffmpeg import ffmpeg_binary

    argv = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    argv += ["-rtmp_playpath", f"{pk}/hls", "-i", f"rtmp://{address}:{RTMP_PORT}/live"]
    argv += ["-t", "1", "-f", "null", "-"]
    return subprocess.run(netns.command(argv), capture_output=True, timeout=60).returncode


MOUNTPOINT = """
import asyncio
from wagtail_live.ingest import janus

session = LiveSession.objects.get(pk={pk})

async def look():
    try:
        janus_session, _handle, _offer = await janus.subscribe(session)
    except janus.NotStreaming:
        return False
    await janus.end_publish(janus_session)
    return True

result = asyncio.run(look())
"""


def has_mountpoint(netns, site, pk):
    """Whether Janus has session ``pk``'s Streaming mountpoint (asked from inside the netns)."""
    script = "import django\ndjango.setup()\nfrom wagtail_live.models import LiveSession\n"
    script += MOUNTPOINT.format(pk=pk) + "print(result)\n"
    done = subprocess.run(
        netns.command([sys.executable, "-c", script]),
        cwd=ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"


def watched(netns, site, url, visitor, nginx, janus):
    """An aiortc viewer's steps, asserted to have decoded 30 frames of the 640x360 picture."""
    done, err = steps(viewer(netns, site, url, "--frames", "30", "--visitor", visitor))
    assert done["watch"]["status"] == 201, (done, nginx.relay_log()[-2000:])
    assert "frames" in done, (err[-2000:], nginx.relay_log()[-2000:], janus.log()[-2000:])
    assert done["frames"]["count"] == 30 and done["frames"]["width"] == 640
    return done


def test_an_nginx_session_plays_over_webrtc_and_its_mountpoint_goes_with_the_publish(stack):
    netns, janus, site, nginx = stack
    assert "exec_push" in nginx.config and "allow play 127.0.0.1;" in nginx.config
    pk, key = new_session_with_key(site)
    url = watch_url(site, pk)
    alice, _bob = visitors(site)
    publishing = encoder(netns, pk, key, seconds=40)
    try:
        wait_until(lambda: state(site, pk)["status"] == "live", timeout=60)
        wait_until(lambda: "ffmpeg sends to Janus" in nginx.relay_log(), timeout=60)
        done = watched(netns, site, url, alice, nginx, janus)
        assert done["answer"]["status"] == 204 and done["delete"]["status"] == 200
        assert f"session {pk}: the encoder sends B-frames" not in nginx.relay_log()  # copied
        # Only loopback may play: from the machine's other address nginx refuses the player.
        assert plays(netns, ADDRESSES[0], pk) != 0 and plays(netns, "127.0.0.1", pk) == 0
        # HLS is nginx's own, untouched by the relay.
        playlist = live_dir(site, pk) / "hls" / "index.m3u8"
        assert playlist.read_text().count(".ts") >= 2
        assert has_mountpoint(netns, site, pk)
    finally:
        publishing.kill()
        publishing.wait()
    # The publish over, nginx stops the relay (SIGTERM), which destroys the mountpoint.
    wait_until(lambda: "mountpoint destroyed" in nginx.relay_log(), timeout=30)
    assert not has_mountpoint(netns, site, pk)
    wait_until(lambda: state(site, pk)["status"] == "ended", timeout=30)
    done, _err = steps(viewer(netns, site, url, "--visitor", alice))
    assert done["watch"]["status"] == 404 and done["watch"]["fallback"] == "hls"
    # The stream key reaches no log: the relay gets the stream's name, never its arguments.
    for log in (nginx.relay_log(), nginx.error_log(), janus.log()):
        assert key not in log
    assert janus.api_secret not in nginx.relay_log()


def test_without_janus_nginx_writes_hls_and_the_relay_comes_back_with_janus(stack, tmp_path):
    netns, janus, site, nginx = stack
    janus.stop()  # the last test of the module: the fixture's Janus stays down
    pk, key = new_session_with_key(site)
    url = watch_url(site, pk)
    alice, _bob = visitors(site)
    publishing = encoder(netns, pk, key, 120, "-bf", "2")  # OBS's default: B-frames
    again = None
    try:
        wait_until(lambda: state(site, pk)["status"] == "live", timeout=60)
        playlist = live_dir(site, pk) / "hls" / "index.m3u8"
        wait_until(lambda: playlist.exists() and playlist.read_text().count(".ts") >= 2)
        wait_until(lambda: f"session {pk}: no WebRTC playback" in nginx.relay_log(), timeout=30)
        done, _err = steps(viewer(netns, site, url))
        assert done["watch"]["status"] in (404, 503) and done["watch"]["fallback"] == "hls"
        # Janus back: the relay's next try makes the mountpoint, and viewers get WebRTC.
        again = Janus(netns, tmp_path / "janus")
        wait_until(lambda: has_mountpoint(netns, site, pk), timeout=60, interval=2)
        watched(netns, site, url, alice, nginx, again)
        assert f"session {pk}: the encoder sends B-frames" in nginx.relay_log()  # transcoded
        # Janus restarted mid-publish loses the mountpoint: the relay notices and makes it again.
        again.stop()
        again = Janus(netns, tmp_path / "janus")
        wait_until(lambda: "Janus lost the mountpoint" in nginx.relay_log(), timeout=60)
        wait_until(lambda: has_mountpoint(netns, site, pk), timeout=60, interval=2)
        watched(netns, site, url, alice, nginx, again)
    finally:
        publishing.kill()
        publishing.wait()
        if again is not None:
            stop_after_relay(nginx, pk, again)
    wait_until(lambda: state(site, pk)["status"] == "ended", timeout=60)


def stop_after_relay(nginx, pk, janus):
    """Stop ``janus`` once nginx has stopped the relay of session ``pk`` (it destroys first)."""
    try:
        wait_until(lambda: f"session {pk}: stopped" in nginx.relay_log(), timeout=30)
    finally:
        janus.stop()
