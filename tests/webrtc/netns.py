"""A private network namespace for WebRTC tests, and a Janus running in it.

WebRTC traffic must never leave the machine: every WebRTC test runs Janus, daphne,
the publishers and Chromium inside a namespace the test makes itself
(``unshare --net``). Janus's ICE (libnice) gathers no loopback candidates, so the
namespace gets a veth pair with **both ends inside it** (10.254.0.1/24 and
10.254.0.2/24); the machine's own interfaces are never used.

A holder process (``sleep``) keeps the namespace alive; every other process joins
it with ``nsenter --net=/proc/<holder>/ns/net``.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.utils import require

ADDRESSES = ("10.254.0.1", "10.254.0.2")
JANUS_PORT = 8088  # inside the namespace: nothing else listens there


def netns_available():
    """Whether this machine lets the tests make a network namespace with a veth pair."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    done = subprocess.run(
        ["unshare", "--net", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        capture_output=True,
    )
    return done.returncode == 0


class Netns:
    """A network namespace with lo and a veth pair up; ``command(argv)`` runs argv in it."""

    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sleep", "100000"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.path = f"/proc/{self.holder.pid}/ns/net"
        deadline = time.monotonic() + 5
        # The holder's namespace is its own once unshare has exec'd sleep.
        while os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not make a network namespace")
            time.sleep(0.02)
        for argv in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            ["ip", "addr", "add", f"{ADDRESSES[0]}/24", "dev", "v0"],
            ["ip", "addr", "add", f"{ADDRESSES[1]}/24", "dev", "v1"],
            ["ip", "link", "set", "v0", "up"],
            ["ip", "link", "set", "v1", "up"],
        ):
            subprocess.run(self.command(argv), check=True, capture_output=True)

    def command(self, argv):
        """``argv`` run inside the namespace."""
        return ["nsenter", f"--net={self.path}", *argv]

    def close(self):
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


def require_netns():
    require(netns_available(), "root, unshare and ip with veth support (network namespaces)")


def require_janus():
    require(shutil.which("janus"), "the janus binary (Debian package janus)")


def have_ffmpeg():
    from django.core.exceptions import ImproperlyConfigured

    from wagtail_live.ffmpeg import ffmpeg_binary

    try:
        return bool(ffmpeg_binary())
    except ImproperlyConfigured:
        return False


def require_webrtc_parts():
    """Skip (fail under WAGTAIL_LIVE_REQUIRE_ALL) without a namespace, Janus, ffmpeg or aiortc."""
    require_netns()
    require_janus()
    require(have_ffmpeg(), "ffmpeg")
    try:
        import aiortc  # noqa: F401
    except ImportError:
        require(False, "aiortc (the test extra)")


class Janus:
    """A real Janus in ``netns`` with the config ``live_janus_config`` would write."""

    def __init__(self, netns, directory, api_secret="test-api-secret", admin_key="test-admin"):
        from wagtail_live.ingest.janus import write_janus_config

        self.directory = Path(directory)
        self.api_secret = api_secret
        self.admin_key = admin_key
        self.config = write_janus_config(
            self.directory,
            port=JANUS_PORT,
            ip="127.0.0.1",
            api_secret=api_secret,
            admin_key=admin_key,
            ice_enforce_list="v0,v1",
        )
        self.log_path = self.directory / "janus.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            netns.command(["janus", "-F", str(self.directory), "-C", str(self.config), "-o"]),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.netns = netns
        self.wait_ready()

    @property
    def url(self):
        return f"http://127.0.0.1:{JANUS_PORT}/janus"

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        probe = self.netns.command(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{JANUS_PORT}"])
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited:\n{self.log()}")
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"janus did not start:\n{self.log()}")

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def site_in(netns, site):
    """Make ``site`` (a :class:`tests.live_site.LiveSite`) start its server inside ``netns``."""
    from unittest import mock

    from tests import live_site

    start = site.start
    real_popen = subprocess.Popen

    def popen(argv, *args, **kwargs):
        return real_popen(netns.command(list(argv)), *args, **kwargs)

    def start_inside(timeout=30):
        with mock.patch.object(live_site.subprocess, "Popen", popen):
            return start(timeout)

    site.start = start_inside
    return site


@contextlib.contextmanager
def janus_site(directory, setup, **live_settings):
    """A namespace with Janus and a site (:class:`tests.live_site.LiveSite`) inside it.

    The site's ``WAGTAIL_LIVE`` is WebRTC through that Janus plus ``live_settings``; its
    database is set up with the code ``setup`` (run as :meth:`LiveSite.run` runs it) before
    it starts. Yields ``(netns, janus, site)``; all of it is stopped after, also when a
    part fails to start.
    """
    from tests.live_site import LiveSite, migrated_database

    require_webrtc_parts()
    netns = Netns()
    janus = site = None
    try:
        janus = Janus(netns, directory / "janus")
        settings = {
            "WEBRTC": "janus",
            "JANUS_URL": janus.url,
            "JANUS_API_SECRET": janus.api_secret,
            "JANUS_ADMIN_KEY": janus.admin_key,
            **live_settings,
        }
        site = site_in(netns, LiveSite(directory, migrated_database(directory), settings))
        site.run(setup)
        site.start()
        yield netns, janus, site
    finally:
        for part in (site, janus):
            if part is not None:
                part.stop()
        netns.close()


def http(netns, method, url, body=None, headers=()):
    """``(status, {lower-cased header: value}, body text)`` of one request made inside the netns."""
    argv = ["curl", "-s", "-i", "-X", method, "-H", "Expect:", "--max-time", "40"]
    for header in headers:
        argv += ["-H", header]
    if body is not None:
        argv += ["--data-binary", "@-"]
    done = subprocess.run(
        netns.command([*argv, url]),
        input=(body or "").encode(),
        capture_output=True,
        timeout=60,
    )
    head, _sep, text = done.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, {name.lower(): value for name, value in fields.items()}, text
