"""Run the whole example site for `make demo`: web, background tasks, RTMP ingest, a demo stream."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

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

    def start_processes(self, port, rtmp_port, no_stream):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_site.settings"}
        python = sys.executable
        commands = {
            "web": [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "example_site.asgi:application"],
            "huey": [python, str(MANAGE), "run_huey"],
            "rtmp": [python, str(MANAGE), "live_rtmp", "--host", "0.0.0.0", "--port", str(rtmp_port)],
        }
        if not no_stream:
            commands["stream"] = [
                python, str(MANAGE), "live_demo_stream",
                "--url", f"rtmp://127.0.0.1:{rtmp_port}/live", "--wait",
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
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping.")
                        stop()
                time.sleep(1)
        except KeyboardInterrupt:
            stop()
