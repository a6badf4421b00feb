"""Run the whole example site for `make demo`: web, background tasks, RTMP ingest, a demo stream."""

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

MANAGE = Path(__file__).resolve().parents[4] / "example_site" / "manage.py"


class Command(BaseCommand):
    help = "Migrate, create an admin login, then run daphne, Huey, the RTMP listener and a demo stream."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--rtmp-port", type=int, default=1935)
        parser.add_argument(
            "--no-stream", action="store_true", help="Do not start the synthetic demo stream."
        )

    def handle(self, *args, port, rtmp_port, no_stream, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        username, password = self.ensure_admin()
        self.ensure_demo_content()
        processes = self.start_processes(port, rtmp_port, no_stream)
        self.stdout.write(
            self.style.SUCCESS(
                "\nThe example site is running.\n"
                f"  Site:      http://localhost:{port}/\n"
                f"  Admin:     http://localhost:{port}/admin/  (user {username}, password {password})\n"
                f"  OBS/RTMP:  rtmp://localhost:{rtmp_port}/live  (stream key on each session's Go Live screen)\n"
                "Press Ctrl-C to stop.\n"
            )
        )
        self.wait(processes)

    def ensure_admin(self):
        """One admin login per checkout; its password is kept in the demo data folder and printed."""
        password_file = Path(settings.DATA_DIR) / "admin-password.txt"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(9))
        password = password_file.read_text().strip()
        User = get_user_model()
        user = User.objects.filter(username="admin").first() or User(username="admin")
        user.email = "admin@example.com"
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return "admin", password

    def ensure_demo_content(self):
        """An open demo session on the home page's live player, and one scheduled for next week."""
        from wagtail_live.management.commands.live_demo_stream import DEMO_TITLE
        from wagtail_live.models import LiveSession

        from ...models import HomePage

        demo = LiveSession.objects.active().filter(title=DEMO_TITLE).order_by("-pk").first()
        if demo is None:
            demo = LiveSession.objects.create(
                title=DEMO_TITLE,
                description="A synthetic stream: a test pattern with a running clock and a tone.",
            )
        upcoming_title = "Science fair Q&A"
        if not LiveSession.objects.active().filter(title=upcoming_title).exists():
            LiveSession.objects.create(
                title=upcoming_title,
                description="Ask the finalists anything.",
                scheduled_start=timezone.now() + timedelta(days=7),
            )
        home = HomePage.objects.filter(depth=2).first()
        if home is None:
            return
        players = [block for block in home.body if block.block_type == "live_player"]
        if players and players[0].value["session"] == demo:
            return
        ours = ("live_player", "upcoming_live")
        body = [(b.block_type, b.value) for b in home.body if b.block_type not in ours]
        body.insert(0, ("live_player", {"session": demo, "show_chat": True}))
        body.append(("upcoming_live", {"heading": "Coming up", "count": 5}))
        home.body = body
        home.save_revision().publish()

    def start_processes(self, port, rtmp_port, no_stream):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_site.settings"}
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "example_site.asgi:application",
            ],
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
