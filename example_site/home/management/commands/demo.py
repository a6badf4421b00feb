"""Run the whole example site for `make demo`: web, background tasks, RTMP ingest, a demo stream."""

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils import timezone

MANAGE = Path(__file__).resolve().parents[4] / "example_site" / "manage.py"


def uvicorn_http():
    """wagtail_live's HTTP protocol where httptools is installed (it builds on uvicorn's httptools
    one, docs/deployment.md), else uvicorn's own choice."""
    return "wagtail_live.servers:HttpToolsProtocol" if find_spec("httptools") else "auto"


# Both serve the same ASGI application (chat, playback, the admin). uvicorn's "auto" picks
# uvloop and httptools, which uvicorn[standard] installs where they build (not on Windows);
# Channels' router has no lifespan handler, hence "--lifespan off".
WEB_SERVERS = {
    "uvicorn": lambda port: [
        "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
        "--loop", "auto", "--http", uvicorn_http(),
    ],
    "daphne": lambda port: ["daphne", "-b", "127.0.0.1", "-p", str(port)],
}  # fmt: skip


class Command(BaseCommand):
    help = (
        "Migrate, create an admin login, then run the site (uvicorn, or daphne with --server), "
        "Huey, the RTMP listener and a demo stream."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--rtmp-port", type=int, default=1935)
        parser.add_argument(
            "--no-stream", action="store_true", help="Do not start the synthetic demo stream."
        )
        parser.add_argument(
            "--server",
            choices=sorted(WEB_SERVERS),
            default="uvicorn",
            help="ASGI server for the site (default uvicorn, the faster one: docs/benchmarks.md).",
        )

    def handle(self, *args, port, rtmp_port, no_stream, server="uvicorn", **options):
        self.stdout.write(
            "Preparing the database and static files (the first run takes about 30 s)..."
        )
        # collectstatic touches no database: it runs beside migrate, which is most of a first start.
        collect = subprocess.Popen(
            [sys.executable, str(MANAGE), "collectstatic", "--noinput", "--verbosity", "0"],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "example_site.settings"},
            cwd=MANAGE.parent.parent,
        )
        call_command("migrate", interactive=False, verbosity=0)
        if collect.wait() != 0:
            raise CommandError("collectstatic failed; see its output above.")
        admin, password = self.ensure_admin()
        demo = self.ensure_demo_content(admin)
        processes = self.start_processes(port, rtmp_port, no_stream, server)
        go_live = reverse("wagtail_live_admin:go_live", args=[demo.pk])
        self.stdout.write(
            self.style.SUCCESS(
                "\nThe example site is running.\n"
                f"  Site:      http://localhost:{port}/\n"
                f"  Admin:     http://localhost:{port}/admin/  (user {admin.username}, password {password})\n"
                f"  Go Live:   http://localhost:{port}{go_live}  (the demo session)\n"
                f"  OBS/RTMP:  rtmp://localhost:{rtmp_port}/live  (stream key on each session's Go Live screen)\n"
                "Press Ctrl-C to stop.\n"
            )
        )
        self.wait(processes)

    def ensure_admin(self):
        """One admin login per checkout; its password is kept in the demo data folder.

        Returns ``(user, password)``. The password is set only when it differs from the saved
        one: setting it again would change the hash that every logged-in session is checked
        against, and log everyone out at each restart of the demo.
        """
        password_file = Path(settings.DATA_DIR) / "admin-password.txt"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(9))
        password = password_file.read_text().strip()
        User = get_user_model()
        user = User.objects.filter(username="admin").first() or User(username="admin")
        user.email = "admin@example.com"
        user.is_staff = user.is_superuser = True
        if user.pk is None or not user.check_password(password):
            user.set_password(password)
        user.save()
        return user, password

    def ensure_demo_content(self, host):
        """An open demo session on the home page's live player, and one scheduled for next week.

        Both belong to ``host`` (the admin), so they show in its own Upcoming and sessions
        views; sessions an older demo made without an owner get it too. Returns the demo session.
        """
        from wagtail_live.management.commands.live_demo_stream import DEMO_TITLE
        from wagtail_live.models import LiveSession

        from ...models import HomePage

        demo = LiveSession.objects.active().filter(title=DEMO_TITLE).order_by("-pk").first()
        if demo is None:
            demo = LiveSession.objects.create(
                title=DEMO_TITLE,
                description="A synthetic stream: a test pattern with a running clock and a tone.",
                owner=host,
            )
        upcoming_title = "Science fair Q&A"
        if not LiveSession.objects.active().filter(title=upcoming_title).exists():
            LiveSession.objects.create(
                title=upcoming_title,
                description="Ask the finalists anything.",
                scheduled_start=timezone.now() + timedelta(days=7),
                owner=host,
            )
        LiveSession.objects.filter(
            title__in=[DEMO_TITLE, upcoming_title], owner__isnull=True
        ).update(owner=host)
        demo.refresh_from_db()
        home = HomePage.objects.filter(depth=2).first()
        if home is None:
            return demo
        players = [block for block in home.body if block.block_type == "live_player"]
        if players and players[0].value["session"] == demo:
            return demo
        ours = ("live_player", "upcoming_live")
        body = [(b.block_type, b.value) for b in home.body if b.block_type not in ours]
        body.insert(0, ("live_player", {"session": demo, "show_chat": True}))
        body.append(("upcoming_live", {"heading": "Coming up", "count": 5}))
        home.body = body
        home.save_revision().publish()
        return demo

    def start_processes(self, port, rtmp_port, no_stream, server="uvicorn"):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_site.settings"}
        python = sys.executable
        commands = {
            "web": [python, "-m", *WEB_SERVERS[server](port), "example_site.asgi:application"],
            "huey": [python, str(MANAGE), "run_huey"],
            "rtmp": [
                python,
                str(MANAGE),
                "live_rtmp",
                "--host",
                "0.0.0.0",
                "--port",
                str(rtmp_port),
            ],
        }
        if not no_stream:
            commands["stream"] = [
                python, str(MANAGE), "live_demo_stream",
                "--url", f"rtmp://127.0.0.1:{rtmp_port}/live",
            ]  # fmt: skip
        cwd = MANAGE.parent.parent
        processes = {}
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, env=env, cwd=cwd)
            if name == "rtmp":
                time.sleep(1)  # let the listener bind before the demo stream connects
        return processes

    def wait(self, processes):
        def stop(*_):
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            while True:
                for name, process in processes.items():
                    if process.poll() is not None and name != "stream":
                        self.stderr.write(
                            f"{name} exited with code {process.returncode}; stopping."
                        )
                        stop()
                time.sleep(1)
        except KeyboardInterrupt:
            stop()
