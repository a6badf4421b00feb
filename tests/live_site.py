"""A real daphne (or uvicorn) serving the test project, for tests that need real websockets or a browser.

The server runs in its own process with its own SQLite file and media root, so
tests set up data with :meth:`LiveSite.run` (Python run against the server's
database) and observe it over HTTP, on disk, or with ``run`` again.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# daphne: "Listening on TCP address 127.0.0.1:PORT"; uvicorn: "Uvicorn running on http://127.0.0.1:PORT".
LISTENING = re.compile(r"(?:Listening on TCP address |Uvicorn running on http://)[\d.]+:(\d+)")
# Both ASGI servers are supported (docs/deployment.md); WAGTAIL_LIVE_TEST_SERVER picks the default.
SERVERS = ("daphne", "uvicorn")

_PRELUDE = """
import json, os, django
django.setup()
from django.contrib.auth import get_user_model
from wagtail_live.models import LiveSession
User = get_user_model()
result = None
"""


def migrated_database(directory):
    """Create a migrated SQLite file in ``directory`` and return its path (copy it per site)."""
    path = Path(directory) / "template.sqlite3"
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=_environment(path, Path(directory) / "media", {}),
        check=True,
        timeout=300,
    )
    # The site's settings use WAL: fold the log into the file, which is what gets copied.
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _environment(database, media_root, live_settings):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.live_site_settings",
        PYTHONPATH=str(ROOT),
        WAGTAIL_LIVE_SITE_DB=str(database),
        WAGTAIL_LIVE_TEST_MEDIA=str(media_root),
        WAGTAIL_LIVE_SITE_SETTINGS=json.dumps(live_settings),
    )
    return env


def server_command(server, port, app):
    """The command line serving ASGI ``app`` with ``server`` on 127.0.0.1:``port`` (0: any)."""
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-e", f"tcp:{port}:interface=127.0.0.1", app]
    if server == "uvicorn":
        # Channels' router has no lifespan handler; uvloop + httptools come with uvicorn[standard];
        # wagtail_live's protocol answers remembered playback requests (docs/deployment.md).
        return [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--lifespan", "off", "--loop", "uvloop",
            "--http", "wagtail_live.servers:HttpToolsProtocol", app,
        ]  # fmt: skip
    raise ValueError(f"Unknown ASGI server {server!r}; use one of {SERVERS}.")


class LiveSite:
    """One daphne (or uvicorn) process on a free 127.0.0.1 port, with its database and media root.

    ``server`` is ``"daphne"`` or ``"uvicorn"``; by default ``WAGTAIL_LIVE_TEST_SERVER`` or daphne.
    """

    def __init__(self, directory, template_database, live_settings=None, server=None):
        self.server = server or os.environ.get("WAGTAIL_LIVE_TEST_SERVER") or "daphne"
        if self.server not in SERVERS:
            raise ValueError(f"Unknown ASGI server {self.server!r}; use one of {SERVERS}.")
        self.directory = Path(directory)
        self.database = self.directory / "site.sqlite3"
        self.media_root = self.directory / "media"
        self.media_root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_database, self.database)
        self.env = _environment(self.database, self.media_root, live_settings or {})
        self.log_path = self.directory / "daphne.log"
        self.process = None
        self.port = None
        self._cookies = {}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}"

    def run(self, code):
        """Run Python ``code`` with Django set up against this site; return its ``result`` (JSON)."""
        script = _PRELUDE + textwrap.dedent(code) + "\nprint('@@' + json.dumps(result))\n"
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"site script failed:\n{done.stderr}")
        return json.loads(done.stdout.rsplit("@@", 1)[1])

    def start(self, timeout=30):
        """Start daphne (on the port it had before, if restarted) and wait until it listens."""
        log = self.log_path.open("a")
        start = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            server_command(self.server, self.port or 0, "tests.live_site_asgi:application"),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text()[start:])
            if match:
                self.port = int(match.group(1))
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.server} did not start:\n{self.log()}")

    def stop(self):
        """Stop daphne (and the ffmpeg processes it started)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self):
        """Stop daphne as a crash would (its ffmpeg too) and start it again on the same port."""
        self.stop()
        return self.start()

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def login_cookie(self, username):
        """A session cookie header value logging ``username`` in (no form round trip)."""
        if username not in self._cookies:
            self._cookies[username] = self._new_login_cookie(username)
        return self._cookies[username]

    def _new_login_cookie(self, username):
        key = self.run(
            f"""
            from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
            from django.contrib.sessions.backends.db import SessionStore
            user = User.objects.get(username={username!r})
            store = SessionStore()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.save()
            result = store.session_key
            """
        )
        return f"sessionid={key}"
